// The local IaaS's network: VMs created side by side take their static IPs, reach each other and
// the host's gateway address, and reach nothing outside their subnet — failing at once, never
// leaving this machine.
import test from 'ava';
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { promisify } from 'node:util';
import {
  cpiResult,
  execInVm,
  localCpiFixture,
  manualNetwork,
  sweepCpi,
  vmLeftovers,
  vmPids,
  type CpiFixture,
} from '../helpers/cpi-local.ts';

const execFileP = promisify(execFile);

// The agent stand-in: answers HTTP on :8080 with the agent id from its settings file.
const AGENT = `
const fs = require('node:fs');
const s = JSON.parse(fs.readFileSync('/var/vcap/bosh/settings.json', 'utf8'));
require('node:http').createServer((q, r) => r.end(s.agent_id)).listen(8080);
`;

// Run inside a VM: a TCP connect to argv[1]:argv[2], printing "<outcome> <ms>".
const PROBE = `
const t0 = Date.now();
const s = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]) });
const done = (what) => { console.log(what + ' ' + (Date.now() - t0)); s.destroy(); process.exit(0); };
s.setTimeout(5000, () => done('TIMEOUT'));
s.on('connect', () => done('CONNECTED'));
s.on('data', (d) => done('DATA:' + d));
s.on('error', (e) => done(e.code));
`;

interface Ctx {
  fx: CpiFixture;
  vms: string[];
  server: Server | null;
}
const ctx: Ctx = { fx: undefined as unknown as CpiFixture, vms: [], server: null };

async function probe(vm: string, host: string, port: number): Promise<{ outcome: string; ms: number }> {
  const r = await execInVm(ctx.fx.prefix, vm, [process.execPath, '-e', PROBE, host, String(port)]);
  const [outcome = `FAILED ${r.stderr}`, ms = 'NaN'] = r.stdout.trim().split(' ');
  return { outcome, ms: Number(ms) };
}

async function httpGet(vm: string, host: string): Promise<string> {
  const code = `fetch('http://${host}:8080/').then(r => r.text()).then(t => console.log(t), e => console.log('ERR ' + e.cause?.code))`;
  return (await execInVm(ctx.fx.prefix, vm, [process.execPath, '-e', code])).stdout.trim();
}

test.before(async () => {
  ctx.fx = await localCpiFixture({ agent_command: [process.execPath, '-e', AGENT] });
  const stemcell = await cpiResult<string>(ctx.fx.configFile, 'create_stemcell', ['/var/tmp/stemcell.tgz', {}]);
  ctx.vms = await Promise.all(
    [30, 31].map((host, i) =>
      cpiResult<string>(ctx.fx.configFile, 'create_vm', [`agent-${i}`, stemcell, { memory_mb: 256 }, manualNetwork(ctx.fx, host), [], {}]),
    ),
  );
});

test.after.always(async () => {
  ctx.server?.close();
  if (!ctx.fx) return;
  for (const vm of ctx.vms) await cpiResult(ctx.fx.configFile, 'delete_vm', [vm]).catch(() => undefined);
  await sweepCpi(ctx.fx);
  await rm(ctx.fx.dir, { recursive: true, force: true });
});

/** Waits until a VM's agent stand-in answers, polling. */
async function agentAnswers(from: string, host: string, deadlineMs = 10_000): Promise<string> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const text = await httpGet(from, host);
    if (!text.startsWith('ERR') || Date.now() > end) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test.serial('VMs take their static IPs', async (t) => {
  for (const [i, vm] of ctx.vms.entries()) {
    const { stdout } = await execInVm(ctx.fx.prefix, vm, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    t.regex(stdout, new RegExp(`inet ${ctx.fx.net.replaceAll('.', '\\.')}\\.${30 + i}/25 `));
  }
});

test.serial('VMs reach each other and the host gateway', async (t) => {
  const [a, b] = ctx.vms as [string, string];
  t.is(await agentAnswers(a, `${ctx.fx.net}.31`), 'agent-1');
  t.is(await agentAnswers(b, `${ctx.fx.net}.30`), 'agent-0');
  ctx.server = createServer((s) => {
    s.on('error', () => undefined);
    s.end('gateway');
  });
  await new Promise<void>((resolve) => ctx.server!.listen(0, ctx.fx.gateway, resolve));
  const port = (ctx.server.address() as { port: number }).port;
  t.regex((await probe(a, ctx.fx.gateway, port)).outcome, /^(CONNECTED|DATA:gateway)$/);
});

test.serial('VMs reach nothing outside their subnet, and fail fast', async (t) => {
  const [a] = ctx.vms as [string];
  for (const host of ['192.0.2.1', '198.51.100.1', '203.0.113.9', `${ctx.fx.net}.200`]) {
    const { outcome, ms } = await probe(a, host, 80);
    t.not(outcome, 'CONNECTED', host);
    t.not(outcome, 'TIMEOUT', host);
    t.true(ms < 1000, `${host}: ${outcome} after ${ms} ms`);
  }
});

test.serial('the reserved range is unreachable from the host outside the bridge', async (t) => {
  const { stdout } = await execFileP('/usr/sbin/ip', ['route', 'show', 'exact', ctx.fx.reservedRange]);
  t.regex(stdout, /^unreachable /);
  const r = await execFileP('/usr/sbin/ip', ['route', 'get', `${ctx.fx.net}.200`]).catch((e: { stderr: string }) => ({ stdout: '', stderr: e.stderr }));
  t.regex(`${r.stdout}${r.stderr}`, /unreachable|No route/i);
  const bridge = await execFileP('/usr/sbin/ip', ['route', 'get', `${ctx.fx.net}.30`]);
  t.regex(bridge.stdout, new RegExp(`dev ${ctx.fx.bridge}`));
});

test.serial('a VM is in a cgroup sized by its cloud_properties', async (t) => {
  const [a] = ctx.vms as [string];
  const [keeper] = await vmPids(ctx.fx.prefix, a);
  const { stdout } = await execFileP('cat', [`/proc/${keeper}/cgroup`]);
  const path = stdout.split('\n').find((l) => /:memory:/.test(l))!.split(':')[2]!;
  t.is(path, `/ingot/${ctx.fx.prefix}/${a}`);
  const { stdout: limit } = await execFileP('cat', [`/sys/fs/cgroup/memory${path}/memory.limit_in_bytes`]);
  t.is(limit.trim(), String(256 * 1024 * 1024));
});

test.serial('deleting the VMs leaves nothing', async (t) => {
  const seen = (await Promise.all(ctx.vms.map((vm) => vmPids(ctx.fx.prefix, vm)))).flat();
  for (const vm of ctx.vms) await cpiResult(ctx.fx.configFile, 'delete_vm', [vm]);
  ctx.vms = [];
  t.deepEqual(await vmLeftovers(ctx.fx.prefix, seen), []);
});
