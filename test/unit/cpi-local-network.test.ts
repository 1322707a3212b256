import test from 'ava';
import fc from 'fast-check';
import { parseCidr } from '../../kernel/dea/container/ipv4.ts';
import { CloudError } from '../../orchestrator/cpi/errors.ts';
import { IFNAME_MAX, cgroupPath, netnsName, newVmCid, nftTableName, vethName } from '../../orchestrator/cpi/local/names.ts';
import { candidateAddresses, netmaskToBits, readNetworks } from '../../orchestrator/cpi/local/network-settings.ts';
import { renderReplace, renderTable } from '../../orchestrator/cpi/local/nft-rules.ts';

const subnet = { ...parseCidr('10.244.0.0/24')!, text: '10.244.0.0/24' };
const gw = '10.244.0.1';

test('a static ip is honoured with the netmask and the bridge gateway', (t) => {
  const a = readNetworks({ default: { type: 'manual', ip: '10.244.0.7', netmask: '255.255.255.0', gateway: gw } }, subnet, gw);
  t.deepEqual(a, { network: 'default', ip: '10.244.0.7', prefixLength: 24, gateway: gw });
});

test('a dynamic network gets an address allocated', (t) => {
  t.is(readNetworks({ d: { type: 'dynamic' } }, subnet, gw).ip, null);
});

test('of several networks, the one with the default gateway is the VM\'s', (t) => {
  const a = readNetworks({ a: { type: 'dynamic' }, b: { type: 'manual', ip: '10.244.0.9', default: ['dns', 'gateway'] } }, subnet, gw);
  t.is(a.network, 'b');
});

test('every problem of a network is reported at once', (t) => {
  const err = t.throws(() => readNetworks({ n: { type: 'manual', ip: '10.9.0.1', netmask: '255.0.255.0', gateway: '10.9.0.254' } }, subnet, gw), {
    instanceOf: CloudError,
  });
  t.regex(err!.message, /n\.ip: 10\.9\.0\.1 is outside the local subnet 10\.244\.0\.0\/24/);
  t.regex(err!.message, /n\.netmask: "255\.0\.255\.0" is not a netmask/);
  t.regex(err!.message, /n\.gateway: 10\.9\.0\.254 is not the local bridge's address/);
  t.throws(() => readNetworks({}, subnet, gw), { message: /no network given/ });
  t.throws(() => readNetworks({ n: { type: 'manual' } }, subnet, gw), { message: /needs an ip/ });
  t.throws(() => readNetworks({ n: { ip: gw } }, subnet, gw), { message: /gateway address/ });
  t.throws(() => readNetworks({ n: { ip: '10.244.0.255' } }, subnet, gw), { message: /broadcast/ });
});

test('netmasks convert to prefix lengths', (t) => {
  t.is(netmaskToBits('255.255.255.0'), 24);
  t.is(netmaskToBits('255.255.0.0'), 16);
  t.is(netmaskToBits('255.255.255.128'), 25);
  t.is(netmaskToBits('255.255.255.255'), 32);
  t.is(netmaskToBits('0.0.0.0'), 0);
  t.is(netmaskToBits('255.0.255.0'), null);
  t.is(netmaskToBits('nope'), null);
});

test('candidate addresses skip network, broadcast and gateway', (t) => {
  const all = [...candidateAddresses(parseCidr('10.1.2.0/29')!, '10.1.2.1')];
  t.deepEqual(all, ['10.1.2.2', '10.1.2.3', '10.1.2.4', '10.1.2.5', '10.1.2.6']);
});

test('interface names fit 15 characters and carry the prefix', (t) => {
  fc.assert(
    fc.property(fc.stringMatching(/^[a-z][a-z0-9]{2,9}$/), (prefix) => {
      const cid = newVmCid();
      const veth = vethName(prefix, cid);
      return veth.length <= IFNAME_MAX && veth.startsWith(prefix) && netnsName(prefix, cid).startsWith(prefix);
    }),
  );
  t.not(vethName('ingot', 'vm-a'), vethName('ingot', 'vm-b'));
  t.is(nftTableName('itst12ab'), 'itst12ab_cpi');
  t.is(cgroupPath('ingot', 'itst12ab', 'vm-1'), 'ingot/itst12ab/vm-1');
  t.is(cgroupPath('', 'p', 'vm-1'), 'p/vm-1');
});

test('the nft table rejects forwarding out of the subnet but lets the gateway be', (t) => {
  const text = renderTable({ table: 'ingot_cpi', bridge: 'ingot0', subnet: '10.244.0.0/24', gateway: gw });
  t.regex(text, /^table ip ingot_cpi \{/);
  t.regex(text, /type filter hook forward priority 0; policy accept;/);
  t.regex(text, /iifname "ingot0" ip daddr 10\.244\.0\.1 accept/);
  t.regex(text, /iifname "ingot0" ip daddr != 10\.244\.0\.0\/24 meta l4proto tcp counter reject with tcp reset/);
  t.regex(text, /iifname "ingot0" ip daddr != 10\.244\.0\.0\/24 counter reject with icmp type admin-prohibited/);
  t.false(/\bfwd\b/.test(text), 'fwd is reserved in nft');
  const replace = renderReplace({ table: 't', bridge: 'b', subnet: '10.0.0.0/24', gateway: '10.0.0.1' });
  t.true(replace.startsWith('table ip t\ndelete table ip t\ntable ip t {'));
});

test('the registry proxy lets only the registry\'s host and port through', async (t) => {
  const { isAllowed, registryTarget } = await import('../../orchestrator/cpi/local/registry-proxy.ts');
  const npmjs = registryTarget('https://registry.npmjs.org/');
  t.deepEqual(npmjs, { host: 'registry.npmjs.org', port: 443 });
  t.true(isAllowed('CONNECT', 'registry.npmjs.org:443', npmjs));
  t.true(isAllowed('CONNECT', 'Registry.NPMJS.org:443', npmjs));
  t.false(isAllowed('CONNECT', 'registry.npmjs.org:22', npmjs));
  t.false(isAllowed('CONNECT', 'evil.example:443', npmjs));
  t.false(isAllowed('GET', 'http://registry.npmjs.org/x', npmjs), 'port 80 is not the https registry');
  const local = registryTarget('http://127.0.0.1:4873');
  t.true(isAllowed('GET', 'http://127.0.0.1:4873/left-pad', local));
  t.false(isAllowed('GET', '/left-pad', local), 'origin-form is not a proxy request');
  t.false(isAllowed('GET', 'http://127.0.0.1:4874/', local));
  t.throws(() => registryTarget('ftp://x'), { message: /not http/ });
});
