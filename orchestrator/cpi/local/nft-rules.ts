// The nftables table of one local CPI: VMs have no route out of this machine. Forwarded traffic
// from the bridge to anything outside the subnet is rejected (fails fast instead of hanging);
// the gateway (the host's bridge address) is reached through input, not forward. Pure.

export interface NftInput {
  table: string;
  bridge: string;
  subnet: string;
  gateway: string;
}

export function renderTable(input: NftInput): string {
  return [
    `table ip ${input.table} {`,
    '\tchain forward_filter {',
    '\t\ttype filter hook forward priority 0; policy accept;',
    `\t\tiifname "${input.bridge}" ip daddr ${input.gateway} accept`,
    // A TCP reset answers a connect at once; ICMP errors are rate-limited and left to retries.
    `\t\tiifname "${input.bridge}" ip daddr != ${input.subnet} meta l4proto tcp counter reject with tcp reset comment "VMs do not leave this machine"`,
    `\t\tiifname "${input.bridge}" ip daddr != ${input.subnet} counter reject with icmp type admin-prohibited comment "VMs do not leave this machine"`,
    `\t\toifname "${input.bridge}" ip saddr != ${input.subnet} ct state new counter reject comment "nothing outside reaches VMs"`,
    '\t}',
    '}',
  ].join('\n');
}

/** An `nft -f` script replacing the table in one transaction. */
export function renderReplace(input: NftInput): string {
  return `table ip ${input.table}\ndelete table ip ${input.table}\n${renderTable(input)}\n`;
}

export function renderDelete(table: string): string {
  return `table ip ${table}\ndelete table ip ${table}\n`;
}
