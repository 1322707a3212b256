import test from 'ava';
import { CloudError } from '../../orchestrator/cpi/errors.ts';
import { renderSettings } from '../../orchestrator/cpi/local/agent-settings.ts';
import { limitWrites, readLimits } from '../../orchestrator/cpi/local/cgroup.ts';
import { compileConfig } from '../../orchestrator/cpi/local/config.ts';

test('defaults: bridge ingot0, a /24 inside the reserved 10.244.0.0/16', (t) => {
  const c = compileConfig({});
  t.is(c.prefix, 'ingot');
  t.is(c.bridge, 'ingot0');
  t.is(c.subnet.text, '10.244.0.0/24');
  t.is(c.reservedRange.text, '10.244.0.0/16');
  t.is(c.gateway, '10.244.0.1');
  t.is(c.agentCommand, null);
});

test('a string agent_command runs through sh', (t) => {
  t.deepEqual(compileConfig({ agent_command: 'sleep 1' }).agentCommand, ['/bin/sh', '-c', 'sleep 1']);
  t.deepEqual(compileConfig({ agent_command: ['/bin/true'] }).agentCommand, ['/bin/true']);
});

test('every config problem is reported at once', (t) => {
  const err = t.throws(
    () => compileConfig({ prefix: 'itst1234', bridge: 'other0', subnet: '10.245.1.0/24', reserved_range: '10.245.1.0/24' }, 'cpi.yml'),
    { instanceOf: CloudError },
  );
  t.regex(err!.message, /^Invalid cpi\.yml: /);
  t.regex(err!.message, /subnet: 10\.245\.1\.0\/24 must lie strictly inside reserved_range/);
  t.regex(err!.message, /bridge: "other0" must start with the prefix "itst1234"/);
  t.throws(() => compileConfig({ prefix: 'Bad_Prefix' }), { message: /prefix/ });
  t.throws(() => compileConfig({ prefix: 'averyveryverylongprefix' }), { message: /prefix/ });
  t.throws(() => compileConfig({ subnet: '10.244.0.1/24' }), { message: /subnet: expected/ });
  t.throws(() => compileConfig({ colour: 'red' }), { message: /colour|Unrecognized/ });
});

test('vm_type cloud_properties size the cgroup', (t) => {
  t.deepEqual(limitWrites(readLimits({ memory_mb: 512, cpu_shares: 256 })), [
    { controller: 'memory', file: 'memory.limit_in_bytes', value: String(512 * 1024 * 1024) },
    { controller: 'cpu', file: 'cpu.shares', value: '256' },
  ]);
  t.deepEqual(limitWrites(readLimits({})), []);
  t.throws(() => readLimits({ memory_mb: '1G', cpu_shares: 1 }), { message: /memory_mb: .*; cpu_shares/ });
});

test('agent settings take mbus from env first, then the CPI config', (t) => {
  const s = renderSettings({
    agentId: 'a-1',
    vmCid: 'vm-1',
    networks: { n: { type: 'manual', ip: '10.244.0.5' } },
    env: { bosh: { mbus: { url: 'nats://director:4222' } } },
    disks: ['disk-old', 'disk-new'],
    defaults: { mbus: { url: 'nats://default', user: 'u', password: 'p' }, blobstore: { url: 'http://blobs' } },
  });
  t.deepEqual(s.mbus, { url: 'nats://director:4222', user: 'u', password: 'p' });
  t.deepEqual(s.blobstore, { url: 'http://blobs' });
  t.deepEqual(s.disks, { persistent: { 'disk-new': '/var/vcap/store' } });
  t.deepEqual(s.vm, { name: 'vm-1' });
  t.is(s.agent_id, 'a-1');
});
