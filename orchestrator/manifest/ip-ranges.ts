// IPv4 arithmetic for subnets: ranges, reserved and static lists (`10.0.0.2 - 10.0.0.9`).
// IPv6 subnets are not supported yet; they are reported as invalid rather than misread.

export function parseIp(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text.trim());
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  /** First address (the network address). */
  first: number;
  /** Last address (the broadcast address). */
  last: number;
}

export function parseCidr(text: string): Cidr | undefined {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text.trim());
  if (!m) return undefined;
  const base = parseIp(m[1]!);
  const bits = Number(m[2]);
  if (base === undefined || bits > 32) return undefined;
  const size = 2 ** (32 - bits);
  const first = base - (base % size);
  return { first, last: first + size - 1 };
}

/** `a`, or `a - b` (inclusive); undefined when malformed or reversed. */
export function parseIpRange(text: string): [number, number] | undefined {
  const parts = text.split('-').map((s) => s.trim());
  if (parts.length === 1) {
    const ip = parseIp(parts[0]!);
    return ip === undefined ? undefined : [ip, ip];
  }
  if (parts.length !== 2) return undefined;
  const a = parseIp(parts[0]!);
  const b = parseIp(parts[1]!);
  return a === undefined || b === undefined || b < a ? undefined : [a, b];
}

/** Every address of a list of ranges (sizes are bounded by a subnet, so listing them is fine). */
export function expandRanges(ranges: ReadonlyArray<[number, number]>): number[] {
  const out: number[] = [];
  for (const [a, b] of ranges) for (let ip = a; ip <= b; ip++) out.push(ip);
  return out;
}
