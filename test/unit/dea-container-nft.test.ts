// Rendering of the DEA's nftables table: port maps, masquerade, egress filter order.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { egressMatch, renderDelete, renderReplace, renderTable, type RulesetInput } from '../../kernel/dea/container/nft-ruleset.ts';

const input = (more: Partial<RulesetInput> = {}): RulesetInput => ({
  table: 'ingot_t1a2b',
  subnet: '10.254.3.0/24',
  hostAddress: '192.0.2.2',
  mapLoopback: true,
  mappings: [
    { containerId: 'web-1', hostPort: 61002, containerAddress: '10.254.3.6', containerPort: 8080 },
    { containerId: 'web-0', hostPort: 61001, containerAddress: '10.254.3.2', containerPort: 8080 },
  ],
  allow: [{ cidr: '10.0.5.10/32', ports: [5432] }],
  deny: [{ cidr: '10.0.0.0/8', ports: [] }, { cidr: '192.0.2.0/24', ports: [4222, 25555] }],
  ...more,
});

const chainBody = (text: string, chain: string) => {
  const start = text.indexOf(`chain ${chain} {`);
  return text.slice(start, text.indexOf('\t}', start));
};

test('egress matches: a whole network, or its ports for tcp and udp', (t) => {
  t.is(egressMatch({ cidr: '10.0.0.0/8', ports: [] }), 'ip daddr 10.0.0.0/8');
  t.is(egressMatch({ cidr: '10.0.0.1/32', ports: [80, 443] }), 'ip daddr 10.0.0.1/32 meta l4proto { tcp, udp } th dport { 80, 443 }');
});

test('each mapping is a DNAT from the host address, in prerouting and output, in port order', (t) => {
  const text = renderTable(input());
  for (const chain of ['prerouting_nat', 'output_nat']) {
    const body = chainBody(text, chain);
    const a = body.indexOf('ip daddr 192.0.2.2 tcp dport 61001 dnat to 10.254.3.2:8080 comment "web-0"');
    const b = body.indexOf('ip daddr 192.0.2.2 tcp dport 61002 dnat to 10.254.3.6:8080 comment "web-1"');
    t.true(a > 0 && b > a, chain);
  }
  t.false(chainBody(text, 'prerouting_nat').includes('127.0.0.1'), 'loopback is only for host-originated traffic');
  t.true(chainBody(text, 'output_nat').includes('ip daddr 127.0.0.1 tcp dport 61001 dnat to 10.254.3.2:8080'));
  t.true(chainBody(text, 'postrouting_nat').includes('ip saddr 127.0.0.0/8 ip daddr 10.254.3.0/24 masquerade'));
});

test('without mapLoopback nothing mentions 127.0.0.1', (t) => {
  t.false(renderTable(input({ mapLoopback: false })).includes('127.0.0'));
});

test('container traffic leaving the pool is masqueraded', (t) => {
  t.true(chainBody(renderTable(input()), 'postrouting_nat').includes('ip saddr 10.254.3.0/24 ip daddr != 10.254.3.0/24 masquerade'));
});

test('forward: replies, then allow, then deny, then other containers', (t) => {
  const body = chainBody(renderTable(input()), 'forward_filter');
  const order = [
    'ip saddr 10.254.3.0/24 ct state established,related accept',
    'ip saddr 10.254.3.0/24 ip daddr 10.0.5.10/32 meta l4proto { tcp, udp } th dport { 5432 } accept',
    'ip saddr 10.254.3.0/24 ip daddr 10.0.0.0/8 reject',
    'ip saddr 10.254.3.0/24 ip daddr 192.0.2.0/24 meta l4proto { tcp, udp } th dport { 4222, 25555 } reject',
    'ip saddr 10.254.3.0/24 ip daddr 10.254.3.0/24 reject',
  ].map((rule) => body.indexOf(rule));
  t.false(order.includes(-1), body);
  t.deepEqual(order, [...order].sort((a, b) => a - b));
});

test('input: containers reach this host only where allowed', (t) => {
  const body = chainBody(renderTable(input()), 'input_filter');
  t.true(body.includes('ip saddr 10.254.3.0/24 ip daddr 10.0.5.10/32 meta l4proto { tcp, udp } th dport { 5432 } accept'));
  t.true(body.trimEnd().endsWith('ip saddr 10.254.3.0/24 reject comment "containers do not reach this host"'));
});

test('replace and delete are single transactions that work whether or not the table exists', (t) => {
  const replace = renderReplace(input());
  t.true(replace.startsWith('table ip ingot_t1a2b\ndelete table ip ingot_t1a2b\ntable ip ingot_t1a2b {\n'));
  t.is(renderDelete('ingot_t1a2b'), 'table ip ingot_t1a2b\ndelete table ip ingot_t1a2b\n');
});

test('nft accepts the rendered ruleset (syntax check, nothing applied)', (t) => {
  if (!existsSync('/usr/sbin/nft') || process.geteuid?.() !== 0) return t.pass('nft or root not available');
  const r = spawnSync('/usr/sbin/nft', ['-c', '-f', '-'], { input: renderReplace(input()), encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const empty = spawnSync('/usr/sbin/nft', ['-c', '-f', '-'], { input: renderReplace(input({ mappings: [], allow: [], deny: [] })), encoding: 'utf8' });
  t.is(empty.status, 0, empty.stderr);
});
