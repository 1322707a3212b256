// Renders the one nftables table a DEA owns. The table is replaced whole, in a single nft
// transaction, whenever a container comes or goes: desired state in, ruleset text out.
//
// - DNAT: <hostAddress>:<hostPort> → <container>:<containerPort>, in prerouting (traffic from
//   other machines, e.g. routers) and in output (traffic this host originates, so the DEA and
//   local routers reach containers through the same address). With mapLoopback, output also
//   maps 127.0.0.1:<hostPort>; such a packet keeps its 127/8 source, which the kernel routes
//   out of a veth only with route_localnet on it (network.ts sets it) and which the container
//   could not answer, so postrouting masquerades it to the veth's host address.
// - Masquerade: container traffic leaving the container pool takes the host's address.
// - Egress filter: container → this host (input hook) is rejected unless allowed; container →
//   elsewhere (forward hook) is rejected for deny rules and for other containers, after allow
//   rules had their say. Replies to connections made to a container always pass.

import type { CompiledEgressRule } from './types.ts';

export interface PortMapping {
  containerId: string;
  hostPort: number;
  containerAddress: string;
  containerPort: number;
}

export interface RulesetInput {
  table: string;
  /** The container address pool, CIDR. */
  subnet: string;
  hostAddress: string;
  mapLoopback: boolean;
  mappings: PortMapping[];
  allow: CompiledEgressRule[];
  deny: CompiledEgressRule[];
}

// Numeric priorities: named ones (dstnat, srcnat) are not accepted in every hook by nft 1.0.
const PRIORITY_DSTNAT = -100;
const PRIORITY_FILTER = 0;
const PRIORITY_SRCNAT = 100;

export function egressMatch(rule: CompiledEgressRule): string {
  const dest = `ip daddr ${rule.cidr}`;
  if (rule.ports.length === 0) return dest;
  return `${dest} meta l4proto { tcp, udp } th dport { ${rule.ports.join(', ')} }`;
}

function chain(name: string, hook: string, type: 'nat' | 'filter', priority: number, rules: string[]): string {
  return [
    `\tchain ${name} {`,
    `\t\ttype ${type} hook ${hook} priority ${priority}; policy accept;`,
    ...rules.map((r) => `\t\t${r}`),
    '\t}',
  ].join('\n');
}

/** The table's full definition. */
export function renderTable(input: RulesetInput): string {
  const s = input.subnet;
  const sorted = [...input.mappings].sort((a, b) => a.hostPort - b.hostPort);
  const dnatOn = (address: string) =>
    sorted.map(
      (m) => `ip daddr ${address} tcp dport ${m.hostPort} dnat to ${m.containerAddress}:${m.containerPort} comment "${m.containerId}"`,
    );
  const dnat = dnatOn(input.hostAddress);
  const loopback = input.mapLoopback ? dnatOn('127.0.0.1') : [];
  const established = `ip saddr ${s} ct state established,related accept`;
  const allow = input.allow.map((r) => `ip saddr ${s} ${egressMatch(r)} accept comment "allow"`);
  const deny = input.deny.map((r) => `ip saddr ${s} ${egressMatch(r)} reject comment "deny"`);
  return [
    `table ip ${input.table} {`,
    chain('prerouting_nat', 'prerouting', 'nat', PRIORITY_DSTNAT, dnat),
    chain('output_nat', 'output', 'nat', PRIORITY_DSTNAT, [...dnat, ...loopback]),
    chain('postrouting_nat', 'postrouting', 'nat', PRIORITY_SRCNAT, [
      `ip saddr ${s} ip daddr != ${s} masquerade`,
      ...(input.mapLoopback ? [`ip saddr 127.0.0.0/8 ip daddr ${s} masquerade`] : []),
    ]),
    chain('input_filter', 'input', 'filter', PRIORITY_FILTER, [
      established,
      ...allow,
      `ip saddr ${s} reject comment "containers do not reach this host"`,
    ]),
    chain('forward_filter', 'forward', 'filter', PRIORITY_FILTER, [
      established,
      ...allow,
      ...deny,
      `ip saddr ${s} ip daddr ${s} reject comment "containers do not reach each other"`,
    ]),
    '}',
  ].join('\n');
}

/** An `nft -f` script replacing the table atomically (declare, delete, define, one transaction). */
export function renderReplace(input: RulesetInput): string {
  return `table ip ${input.table}\ndelete table ip ${input.table}\n${renderTable(input)}\n`;
}

/** An `nft -f` script deleting the table, succeeding whether or not it exists. */
export function renderDelete(table: string): string {
  return `table ip ${table}\ndelete table ip ${table}\n`;
}
