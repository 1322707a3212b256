// Names of kernel objects, the address pool, index pools and option validation.

import test from 'ava';
import fc from 'fast-check';
import { InvalidConfigError, PoolExhaustedError } from '../../kernel/dea/container/errors.ts';
import { IndexPool } from '../../kernel/dea/container/index-pool.ts';
import { formatIPv4, parseCidr, parseIPv4, slotAddresses, slotCount } from '../../kernel/dea/container/ipv4.ts';
import {
  CONTAINER_ID_PATTERN,
  IFNAME_MAX,
  PREFIX_PATTERN,
  cgroupPath,
  hostnameFor,
  netnsName,
  nftTableName,
  vethName,
} from '../../kernel/dea/container/names.ts';
import { compileContainerSpec, compileHostOptions } from '../../kernel/dea/container/options.ts';
import type { HostOptions } from '../../kernel/dea/container/types.ts';

const prefixArb = fc.stringMatching(PREFIX_PATTERN);
const idArb = fc.stringMatching(CONTAINER_ID_PATTERN);

test('veth names fit IFNAMSIZ for any prefix and id, and are stable', (t) => {
  fc.assert(
    fc.property(prefixArb, idArb, (prefix, id) => {
      const name = vethName(prefix, id);
      return name.length <= IFNAME_MAX && /^iv[0-9a-f]{12}$/.test(name) && name === vethName(prefix, id);
    }),
  );
  t.not(vethName('ingot-a', 'x'), vethName('ingot-b', 'x'));
  t.not(vethName('ingot-a', 'x'), vethName('ingot-a', 'y'));
});

test('netns, nft table and cgroup names carry the prefix', (t) => {
  t.is(netnsName('ingot-t1a2b', 'web-0'), 'ingot-t1a2b-web-0');
  t.is(nftTableName('ingot-t1a2b'), 'ingot_t1a2b');
  t.is(cgroupPath('ingot', 'ingot-t1a2b', 'web-0'), 'ingot/ingot-t1a2b/web-0');
  t.is(cgroupPath('', 'ingot-t1a2b', 'web-0'), 'ingot-t1a2b/web-0');
});

test('hostnames are RFC 1123 labels', (t) => {
  t.is(hostnameFor('Web_0.abc'), 'web-0-abc');
  t.is(hostnameFor('___'), 'container');
  t.is(hostnameFor('a'.repeat(80)).length, 63);
});

test('IPv4: parse, format, CIDR with host bits refused', (t) => {
  t.is(parseIPv4('10.254.3.1'), 0x0afe0301);
  t.is(formatIPv4(0xc0000202), '192.0.2.2');
  t.is(parseIPv4('10.254.3'), null);
  t.is(parseIPv4('10.254.3.256'), null);
  t.deepEqual(parseCidr('10.254.3.0/24'), { base: 0x0afe0300, bits: 24 });
  t.deepEqual(parseCidr('192.0.2.2'), { base: 0xc0000202, bits: 32 });
  t.is(parseCidr('10.254.3.1/24'), null);
  t.is(parseCidr('10.254.3.0/33'), null);
});

test('the pool is cut into /30s: gateway .1, container .2', (t) => {
  const pool = parseCidr('10.254.3.0/24')!;
  t.is(slotCount(pool), 64);
  t.is(slotCount(parseCidr('10.254.3.0/30')!), 1);
  t.is(slotCount(parseCidr('10.254.3.0/31')!), 0);
  t.deepEqual(slotAddresses(pool, 0), { network: '10.254.3.0/30', gateway: '10.254.3.1', container: '10.254.3.2' });
  t.deepEqual(slotAddresses(pool, 63), { network: '10.254.3.252/30', gateway: '10.254.3.253', container: '10.254.3.254' });
});

test('index pools hand out the lowest free index, take claims back, and say when full', (t) => {
  const p = new IndexPool('host ports', 3);
  t.true(p.claim(1));
  t.false(p.claim(1));
  t.false(p.claim(3));
  t.is(p.allocate(), 0);
  t.is(p.allocate(), 2);
  const err = t.throws(() => p.allocate(), { instanceOf: PoolExhaustedError });
  t.is(err?.message, 'All 3 host ports are in use');
  p.release(1);
  t.is(p.allocate(), 1);
});

const goodHost: HostOptions = {
  prefix: 'ingot-t1',
  dataDir: '/var/vcap/data/dea',
  network: { subnet: '10.254.3.0/24', hostAddress: '192.0.2.2', hostPorts: { start: 61000, count: 100 } },
  uidRange: { start: 20000, count: 100 },
};

test('host options get their defaults', (t) => {
  const o = compileHostOptions(goodHost);
  t.is(o.isolation, 'namespaces');
  t.is(o.cgroupParent, 'ingot');
  t.is(o.cgroupRoot, '/sys/fs/cgroup');
  t.is(o.network.containerPort, 8080);
  t.true(o.network.mapLoopback);
  t.deepEqual(o.network.deny, []);
});

test('egress rules are normalized', (t) => {
  const o = compileHostOptions({ ...goodHost, network: { ...goodHost.network, deny: [{ cidr: '10.0.0.1', ports: [443, 80, 80] }] } });
  t.deepEqual(o.network.deny, [{ cidr: '10.0.0.1/32', ports: [80, 443] }]);
});

test('every problem of host options is named, with its path', (t) => {
  const err = t.throws(
    () =>
      compileHostOptions({
        prefix: 'Bad_Prefix',
        dataDir: '',
        network: { subnet: '10.254.3.1/24', hostAddress: 'nope', hostPorts: { start: 65530, count: 10 }, deny: [{ cidr: 'x' }] },
        uidRange: { start: 0, count: 1 },
      }),
    { instanceOf: InvalidConfigError },
  );
  const problems = err!.problems.join('\n');
  for (const path of ['prefix', 'dataDir', 'network.subnet', 'network.hostAddress', 'network.hostPorts', 'network.deny.0.cidr', 'uidRange.start']) {
    t.regex(problems, new RegExp(`^${path.replace(/\./g, '\\.')}: `, 'm'), path);
  }
  t.is(err!.code, 'INVALID_CONFIG');
});

test('container specs: defaults and problems', (t) => {
  t.is(compileContainerSpec({ id: 'web-0', memoryBytes: 64 << 20, diskBytes: 1 << 30, pids: 256 }).cpuShares, 1024);
  const err = t.throws(() => compileContainerSpec({ id: '../x', memoryBytes: 1, diskBytes: 0, pids: 0, appDir: 'relative' }), {
    instanceOf: InvalidConfigError,
  });
  t.is(err!.problems.length, 5);
  t.regex(err!.message, /^Invalid container spec \.\.\/x: id: expected/);
});
