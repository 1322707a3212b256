// IPv4 arithmetic for the container address pool. The pool is cut into /30s: slot i owns
// base+4i .. base+4i+3; the host end of its veth takes +1 and the container +2, so every
// container is a point-to-point link with the host and no bridge joins containers.

export interface Cidr {
  base: number;
  bits: number;
}

export function parseIPv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Parses `a.b.c.d/n` (or a bare address as /32); null when malformed or host bits are set. */
export function parseCidr(text: string): Cidr | null {
  const [addr, bitsText, extra] = text.split('/');
  if (addr === undefined || extra !== undefined) return null;
  const base = parseIPv4(addr);
  if (base === null) return null;
  const bits = bitsText === undefined ? 32 : /^\d{1,2}$/.test(bitsText) ? Number(bitsText) : NaN;
  if (!(bits >= 0 && bits <= 32)) return null;
  if ((base & hostMask(bits)) !== 0) return null;
  return { base, bits };
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.base)}/${c.bits}`;
}

function hostMask(bits: number): number {
  return bits === 0 ? 0xffffffff : bits === 32 ? 0 : (2 ** (32 - bits) - 1) >>> 0;
}

export function slotCount(pool: Cidr): number {
  return pool.bits > 30 ? 0 : 2 ** (30 - pool.bits);
}

export interface SlotAddresses {
  /** The /30 of the slot, e.g. 10.254.3.4/30. */
  network: string;
  /** Host end of the veth. */
  gateway: string;
  /** Container end (eth0 in the container). */
  container: string;
}

export function slotAddresses(pool: Cidr, slot: number): SlotAddresses {
  const net = pool.base + slot * 4;
  return {
    network: `${formatIPv4(net)}/30`,
    gateway: formatIPv4(net + 1),
    container: formatIPv4(net + 2),
  };
}
