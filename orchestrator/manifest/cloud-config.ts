// The cloud-config: what the IaaS offers a deployment (AZs, VM and disk types, networks
// and their subnets, compilation workers). Validated on its own here; what a manifest asks
// of it is checked in validate.ts.
import { z } from 'zod';
import { ManifestError, type Problem } from './errors.ts';
import { parseCidr, parseIp, parseIpRange } from './ip-ranges.ts';
import { checkSchema } from './schema.ts';
import { problemAt, readYaml, type YamlSource } from './yaml-source.ts';

const name = z.string().min(1, 'expected a non-empty name');
const cloudProperties = z.record(z.unknown()).default({});
const ipText = z.string().refine((s) => parseIp(s) !== undefined, 'expected an IPv4 address');
const rangeText = z.string().refine((s) => parseIpRange(s) !== undefined, 'expected an address or a range such as 10.0.0.2 - 10.0.0.9');
/** BOSH accepts a single string or a list for reserved and static. */
const rangeList = z.union([z.array(rangeText), rangeText.transform((s) => [s])]).default([]);

const subnet = z
  .object({
    range: z.string().refine((s) => parseCidr(s) !== undefined, 'expected a CIDR range such as 10.0.0.0/24').optional(),
    gateway: ipText.optional(),
    reserved: rangeList,
    static: rangeList,
    az: name.optional(),
    azs: z.array(name).optional(),
    dns: z.array(ipText).optional(),
    cloud_properties: cloudProperties,
  })
  .strict();

const network = z
  .object({
    name,
    type: z.enum(['manual', 'dynamic', 'vip']).default('manual'),
    subnets: z.array(subnet).default([]),
    cloud_properties: cloudProperties,
  })
  .strict();

export const cloudConfigSchema = z
  .object({
    azs: z.array(z.object({ name, cloud_properties: cloudProperties, cpi: z.string().optional() }).strict()).default([]),
    vm_types: z.array(z.object({ name, cloud_properties: cloudProperties }).strict()).default([]),
    disk_types: z
      .array(
        z
          .object({ name, disk_size: z.number().int().positive('expected a size in MB greater than 0'), cloud_properties: cloudProperties })
          .strict(),
      )
      .default([]),
    networks: z.array(network).default([]),
    vm_extensions: z.array(z.object({ name, cloud_properties: cloudProperties }).strict()).default([]),
    compilation: z
      .object({
        workers: z.number().int().min(1),
        reuse_compilation_vms: z.boolean().default(false),
        az: name.optional(),
        vm_type: name.optional(),
        network: name,
        cloud_properties: z.record(z.unknown()).optional(),
      })
      .strict(),
  })
  .strict();

type RawCloudConfig = z.output<typeof cloudConfigSchema>;

export interface Subnet {
  range: string | undefined;
  gateway: string | undefined;
  reserved: string[];
  static: string[];
  /** The AZs this subnet serves (`az` and `azs` merged). */
  azs: string[];
  dns: string[];
  cloud_properties: Record<string, unknown>;
}

export type CloudConfig = Omit<RawCloudConfig, 'networks'> & {
  networks: Array<Omit<RawCloudConfig['networks'][number], 'subnets'> & { subnets: Subnet[] }>;
  /** The document it came from, to name lines in later cross-checks. */
  readonly source: YamlSource;
};

/** Parses and validates a cloud-config; throws ManifestError listing every problem. */
export function parseCloudConfig(text: string | YamlSource, file?: string): CloudConfig {
  const source = typeof text === 'string' ? readYaml(text, file ?? 'cloud-config.yml') : text;
  const checked = checkSchema(source, cloudConfigSchema);
  if (!checked.ok) throw new ManifestError(checked.problems);
  const raw = checked.value;
  const problems: Problem[] = [];
  const at = (path: Array<string | number>, message: string) => problems.push(problemAt(source, path, message));

  for (const kind of ['azs', 'vm_types', 'disk_types', 'networks', 'vm_extensions'] as const) {
    const seen = new Set<string>();
    raw[kind].forEach((item, i) => {
      if (seen.has(item.name)) at([kind, i, 'name'], `${item.name} is defined twice in ${kind}`);
      seen.add(item.name);
    });
  }
  const azs = new Set(raw.azs.map((a) => a.name));
  const networks = raw.networks.map((net, n) => ({
    ...net,
    subnets: net.subnets.map((s, i): Subnet => {
      const path = ['networks', n, 'subnets', i];
      if (s.az !== undefined && s.azs !== undefined) at(path, 'set az or azs, not both');
      const subnetAzs = s.azs ?? (s.az === undefined ? [] : [s.az]);
      subnetAzs.forEach((az) => {
        if (!azs.has(az)) at([...path, s.azs ? 'azs' : 'az'], `unknown az ${az} (cloud-config azs: ${[...azs].join(', ') || 'none'})`);
      });
      if (net.type === 'manual') checkManualSubnet(s, path, at);
      return { range: s.range, gateway: s.gateway, reserved: s.reserved, static: s.static, azs: subnetAzs, dns: s.dns ?? [], cloud_properties: s.cloud_properties };
    }),
  }));
  const c = raw.compilation;
  if (c.az !== undefined && !azs.has(c.az)) at(['compilation', 'az'], `unknown az ${c.az}`);
  if (c.vm_type !== undefined && !raw.vm_types.some((v) => v.name === c.vm_type)) at(['compilation', 'vm_type'], `unknown vm_type ${c.vm_type}`);
  if (c.vm_type === undefined && c.cloud_properties === undefined) at(['compilation'], 'set vm_type (or cloud_properties) for the compilation workers');
  if (!raw.networks.some((n) => n.name === c.network)) at(['compilation', 'network'], `unknown network ${c.network}`);
  if (problems.length > 0) throw new ManifestError(problems);
  return { ...raw, networks, source };
}

function checkManualSubnet(
  s: z.output<typeof subnet>,
  path: Array<string | number>,
  at: (path: Array<string | number>, message: string) => void,
): void {
  if (s.range === undefined) return at([...path, 'range'], 'required for a manual network');
  if (s.gateway === undefined) return at([...path, 'gateway'], 'required for a manual network');
  const cidr = parseCidr(s.range)!;
  const gw = parseIp(s.gateway)!;
  if (gw < cidr.first || gw > cidr.last) at([...path, 'gateway'], `${s.gateway} is outside the range ${s.range}`);
  for (const key of ['reserved', 'static'] as const) {
    s[key].forEach((text, i) => {
      const [a, b] = parseIpRange(text)!;
      if (a < cidr.first || b > cidr.last) at([...path, key, i], `${text} is outside the range ${s.range}`);
    });
  }
  const reserved = s.reserved.map((t) => parseIpRange(t)!);
  s.static.forEach((text, i) => {
    const [a, b] = parseIpRange(text)!;
    if (reserved.some(([ra, rb]) => a <= rb && ra <= b)) at([...path, 'static', i], `${text} overlaps the reserved addresses`);
    if (a <= gw && gw <= b) at([...path, 'static', i], `${text} includes the gateway ${s.gateway}`);
  });
}
