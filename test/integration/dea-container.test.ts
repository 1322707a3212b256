// The DEA's container layer against the real kernel: namespaces, cgroups (v1 here), veths,
// nftables. Each test owns its prefix, subnet, ports and uids, and everything it creates is
// removed in after.always (then checked gone).

import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { KERNEL_BLOCKS } from '../helpers/kernel-blocks.ts';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ContainerHost,
  checkIsolationSupport,
  sweep,
  vethName,
  type Container,
  type ExitInfo,
  type HostOptions,
} from '../../kernel/dea/container/mod.ts';

const RUN = randomBytes(2).toString('hex');
// Blocks of this file, disjoint from the other suites' (test/helpers/kernel-blocks.ts).
const SUBNET_OCTET = KERNEL_BLOCKS.deaContainer.subnetOctet();
const PORT_BASE = KERNEL_BLOCKS.deaContainer.portBase();
const UID_BASE = 30000 + (randomBytes(2).readUInt16BE() % 1000) * 40;
const NODE = '/usr/bin/node';

const hosts: ContainerHost[] = [];
const prefixes: string[] = [];
const dirs: string[] = [];
const netnsCleanups: Array<() => void> = [];
let slotCounter = 0;

// System tools only: under npm, node_modules/.bin (which holds an unrelated `nft`) leads PATH.
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function sh(cmd: string): string {
  return execFileSync('/bin/sh', ['-c', cmd], { encoding: 'utf8', env: { ...process.env, PATH: SYSTEM_PATH } });
}

/** The machine's first global IPv4 address: the "DEA address" routers would dial. */
function hostAddress(): string {
  const doc = JSON.parse(execFileSync('/usr/sbin/ip', ['-j', '-4', 'addr', 'show', 'scope', 'global'], { encoding: 'utf8' })) as Array<{
    addr_info: Array<{ local: string }>;
  }>;
  const addr = doc.flatMap((l) => l.addr_info.map((a) => a.local))[0];
  if (!addr) throw new Error('no global IPv4 address on this machine');
  return addr;
}

/** A fresh prefix, /28 of container addresses, 10 host ports and 10 uids for one test. */
function allocate(): { prefix: string; subnet: string; ports: { start: number; count: number }; uids: { start: number; count: number } } {
  const n = slotCounter++;
  const prefix = `itst-dc${RUN}${n.toString(36)}`;
  prefixes.push(prefix);
  return {
    prefix,
    subnet: `10.254.${SUBNET_OCTET}.${n * 16}/28`,
    ports: { start: PORT_BASE + n * 10, count: 10 },
    uids: { start: UID_BASE + n * 10, count: 10 },
  };
}

async function makeHost(t: ExecutionContext, extra: Partial<HostOptions['network']> = {}, isolation: 'namespaces' | 'none' = 'namespaces') {
  const a = allocate();
  const dataDir = await mkdtemp(join(tmpdir(), `${a.prefix}-data-`));
  dirs.push(dataDir);
  const options: HostOptions = {
    prefix: a.prefix,
    dataDir,
    isolation,
    network: { subnet: a.subnet, hostAddress: hostAddress(), hostPorts: a.ports, ...extra },
    uidRange: a.uids,
  };
  const host = await ContainerHost.create(options);
  hosts.push(host);
  t.log(`prefix ${a.prefix}, subnet ${a.subnet}, ports ${a.ports.start}+`);
  return { host, options, dataDir };
}

async function appDir(files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `ingot-dc${RUN}-app-`));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

const spec = (id: string, more: Partial<Parameters<ContainerHost['createContainer']>[0]> = {}) => ({
  id,
  memoryBytes: 256 * 1024 * 1024,
  diskBytes: 64 * 1024 * 1024,
  pids: 64,
  ...more,
});

/** Runs a command to completion in the container; collects its output. */
async function runIn(c: Container, command: string): Promise<{ stdout: string; stderr: string; exit: ExitInfo }> {
  const p = await c.spawn({ command });
  const collect = async (stream: NodeJS.ReadableStream) => {
    const chunks: Buffer[] = [];
    for await (const b of stream) chunks.push(b as Buffer);
    return Buffer.concat(chunks).toString();
  };
  const [stdout, stderr, exit] = await Promise.all([collect(p.stdout!), collect(p.stderr!), p.exited]);
  return { stdout, stderr, exit };
}

/** Polls `check` until it returns a value other than undefined, or fails at the deadline. */
async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(100);
  }
}

async function httpGet(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return res.text();
}

/** Tries a TCP connection from the host side; resolves 'connected' or the error code. */
function tcpProbe(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 3000 });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('timeout', () => {
      s.destroy();
      resolve('TIMEOUT');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/** A node one-liner, run inside a container, printing "<port> connected" or "<port> <ERRCODE>". */
function connectScript(targets: Array<[string, number]>): string {
  const js = `const net=require('net');const t=${JSON.stringify(targets)};(async()=>{for(const [h,p] of t){const r=await new Promise(res=>{const s=net.connect({host:h,port:p,timeout:3000});s.on('connect',()=>{s.destroy();res('connected')});s.on('timeout',()=>{s.destroy();res('TIMEOUT')});s.on('error',e=>res(e.code))});console.log(h+':'+p+' '+r)}})()`;
  return `${NODE} -e ${shellQuote(js)}`;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function leftovers(prefix: string): string[] {
  const found: string[] = [];
  for (const ns of sh('ip netns list').split('\n')) if (ns.startsWith(prefix)) found.push(`netns ${ns}`);
  const table = prefix.replace(/-/g, '_');
  for (const line of sh('nft list tables').split('\n')) if (line.includes(table)) found.push(`nft ${line}`);
  for (const ctrl of ['memory', 'pids', 'cpu', 'cpuacct']) {
    if (existsSync(`/sys/fs/cgroup/${ctrl}/ingot/${prefix}`)) found.push(`cgroup ${ctrl}/ingot/${prefix}`);
  }
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) if (line.includes(prefix)) found.push(`mount ${line}`);
  const links = JSON.parse(sh('ip -j link show type veth')) as Array<{ ifname: string; ifalias?: string }>;
  for (const l of links) if (l.ifalias?.startsWith(prefix)) found.push(`link ${l.ifname}`);
  return found;
}

test.before(async () => {
  const support = await checkIsolationSupport();
  if (!support.ok) throw new Error(`these tests need isolation support: ${support.missing.join('; ')}`);
});

test.after.always(async () => {
  for (const h of hosts) await h.shutdown().catch(() => undefined);
  for (const p of prefixes) await sweep(p).catch(() => undefined);
  for (const f of netnsCleanups) f();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  const left = prefixes.flatMap(leftovers);
  if (left.length > 0) throw new Error(`left behind: ${left.join(', ')}`);
});

test('checkIsolationSupport finds everything namespaces need on this machine', async (t) => {
  const support = await checkIsolationSupport();
  t.deepEqual(support, { ok: true, missing: [] });
});

test('a container runs as its own uid in its own pid, uts and mount namespaces over a read-only OS', async (t) => {
  t.timeout(60_000);
  const { host, dataDir } = await makeHost(t);
  const app = await appDir({ 'hello.txt': 'from the droplet\n' });
  const c = await host.createContainer(spec('iso-0', { appDir: app, hostname: 'iso-zero' }));

  const id = await runIn(c, 'id -u; id -g; id -G; hostname; cat /home/vcap/app/hello.txt; pwd; echo "$HOME $PORT"');
  t.is(id.exit.exitStatus, 0, id.stderr);
  t.deepEqual(id.stdout.trim().split('\n'), [
    String(c.uid), String(c.uid), String(c.uid), 'iso-zero', 'from the droplet', '/home/vcap/app', '/home/vcap 8080',
  ]);

  // pid 1 is the container's init; nothing of the host's process table shows.
  const ps = await runIn(c, "ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' '");
  const pids = ps.stdout.trim().split(/\s+/).map(Number);
  t.true(pids.includes(1), ps.stdout);
  t.true(pids.length <= 6, `container sees pids ${ps.stdout}`);

  // /home/vcap/app is the app dir, writable, owned by the container's uid.
  const write = await runIn(c, 'echo written > /home/vcap/app/out.txt && echo ok > /tmp/t && cat /tmp/t');
  t.is(write.exit.exitStatus, 0, write.stderr);
  t.is(readFileSync(join(app, 'out.txt'), 'utf8'), 'written\n');
  t.is((await stat(join(app, 'out.txt'))).uid, c.uid);

  // The OS is there, read-only.
  const ro = await runIn(c, 'touch /usr/ingot-probe; touch /etc/ingot-probe; touch /ingot-probe; ls /usr/bin/env');
  t.regex(ro.stderr, /\/usr\/ingot-probe.*Read-only file system/);
  t.regex(ro.stderr, /\/etc\/ingot-probe.*Read-only file system/);
  t.regex(ro.stderr, /\/ingot-probe.*Read-only file system/);
  t.regex(ro.stdout, /\/usr\/bin\/env/);
  t.false(existsSync('/usr/ingot-probe'));

  // Nothing of the DEA's data dir (nor its path) is reachable.
  await writeFile(join(dataDir, 'dea-secret'), 'secret');
  const hidden = await runIn(c, `ls ${dataDir}; cat ${join(dataDir, 'dea-secret')}; grep -c ${dataDir} /proc/mounts; ls /`);
  t.regex(hidden.stderr, /No such file or directory/);
  t.false(hidden.stdout.includes('secret'));
  t.true(hidden.stdout.startsWith('0\n'), hidden.stdout);
  t.false(/containers|rootfs|ingot-old-root/.test(hidden.stdout), hidden.stdout);
  // The container's mounts live in its own namespace: the host's table never shows them.
  t.false(readFileSync('/proc/mounts', 'utf8').includes(c.paths.rootfs));
});

test('containers do not see each other\'s files, /tmp or processes', async (t) => {
  t.timeout(60_000);
  const { host } = await makeHost(t);
  const a = await host.createContainer(spec('a'));
  const b = await host.createContainer(spec('b'));
  t.not(a.uid, b.uid);
  const bRun = await b.spawn({ command: 'echo b-secret > /home/vcap/app/b-marker; echo b > /tmp/b-tmp; exec sleep 1000' });
  await waitFor('b to write its marker', () => (existsSync(join(b.paths.app, 'b-marker')) ? true : undefined));

  const look = await runIn(a, `ls /home/vcap/app /tmp; ls ${b.paths.app}; ps -eo comm | grep -c sleep`);
  t.false(look.stdout.includes('b-marker'));
  t.false(look.stdout.includes('b-tmp'));
  t.regex(look.stderr, /No such file or directory/);
  t.is(look.stdout.trim().split('\n').at(-1), '0', 'sleep of b is not visible in a');

  await b.stop({ graceMs: 5000 });
  t.is((await bRun.exited).reason, 'stopped');
});

test('the app is reachable through the host address and loopback on its mapped port', async (t) => {
  t.timeout(60_000);
  const { host, options } = await makeHost(t);
  const app = await appDir({
    'server.js': "require('http').createServer((q, s) => s.end('hi from ' + require('os').hostname())).listen(process.env.PORT)",
  });
  const c = await host.createContainer(spec('web-0', { appDir: app }));
  const lines: string[] = [];
  await c.spawn({ command: `exec ${NODE} server.js`, onLine: (_s, l) => lines.push(l) });

  const viaHost = await waitFor('the app on the host address', () => httpGet(`http://${options.network.hostAddress}:${c.hostPort}/`));
  t.is(viaHost, 'hi from web-0');
  t.is(await httpGet(`http://127.0.0.1:${c.hostPort}/`), 'hi from web-0');
  t.is(await httpGet(`http://${c.address}:8080/`), 'hi from web-0');
  const exit = await c.stop({ graceMs: 5000 });
  t.is(exit?.reason, 'stopped');
  t.is(await tcpProbe(options.network.hostAddress, c.hostPort), 'ECONNREFUSED');
});

test('egress: allowed services are reached, denied platform addresses and other containers are not', async (t) => {
  t.timeout(90_000);
  const address = hostAddress();
  // Tiny TCP servers on the host: one a "service" (allowed), one a "platform port" (denied),
  // one nobody mentioned (the DEA's own ports are off limits by default).
  const servers = await Promise.all([0, 1, 2].map(() => listen(address)));
  t.teardown(() => servers.forEach((s) => s.server.close()));
  const [svc, platform, other] = servers.map((s) => s.port) as [number, number, number];

  // A "service VM" in its own netns on another subnet, reached through the host's forwarding.
  const svcNet = await serviceNetns(t, `${allocate().prefix}-svc`);

  const { host } = await makeHost(t, {
    allow: [{ cidr: `${address}/32`, ports: [svc] }, { cidr: `${svcNet.address}/32`, ports: [7001] }],
    deny: [{ cidr: `${address}/32`, ports: [platform] }, { cidr: svcNet.subnet }],
  });
  const a = await host.createContainer(spec('egress-a'));
  const b = await host.createContainer(spec('egress-b'));
  const bApp = await b.spawn({ command: `exec ${NODE} -e "require('net').createServer(s=>{s.on('error',()=>{});s.end('b')}).listen(8080)"` });
  await waitFor('b listening', async () => ((await tcpProbe(b.address!, 8080)) === 'connected' ? true : undefined));

  const r = await runIn(a, connectScript([
    [address, svc],
    [address, platform],
    [address, other],
    [svcNet.address, 7001],
    [svcNet.address, 7002],
    [b.address!, 8080],
    [address, b.hostPort],
  ]));
  const results = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
  t.deepEqual(results, {
    [`${address}:${svc}`]: 'connected',
    [`${address}:${platform}`]: 'ECONNREFUSED',
    [`${address}:${other}`]: 'ECONNREFUSED',
    [`${svcNet.address}:7001`]: 'connected',
    [`${svcNet.address}:7002`]: 'ECONNREFUSED',
    [`${b.address}:8080`]: 'ECONNREFUSED',
    [`${address}:${b.hostPort}`]: 'ECONNREFUSED',
  });
  await b.stop({ graceMs: 2000 });
  await bApp.exited;
});

test.serial('over its memory limit the app is killed and reported as out of memory', async (t) => {
  t.timeout(60_000);
  const { host } = await makeHost(t);
  const c = await host.createContainer(spec('oom-0', { memoryBytes: 48 * 1024 * 1024 }));
  const p = await c.spawn({ command: `exec ${NODE} -e "const a=[]; for(;;) a.push(Buffer.alloc(1<<20, 1))"` });
  const exit = await p.exited;
  t.is(exit.reason, 'out of memory');
  t.is(exit.description, 'out of memory');
  t.is(exit.exitStatus, 137);
  // The host is fine and the container can run again.
  const again = await runIn(c, 'echo alive');
  t.is(again.stdout, 'alive\n');
  t.is(again.exit.reason, 'exited');
});

test.serial('a fork bomb stops at the pids limit, the host stays responsive, destroy ends it', async (t) => {
  t.timeout(90_000);
  const { host } = await makeHost(t);
  const max = 20 + 2; // the app's 20, plus the launcher and the container's init
  const pidsDir = (c: Container) => `/sys/fs/cgroup/pids/${c.cgroupPath}`;
  const refused = (c: Container) => Number(readFileSync(`${pidsDir(c)}/pids.events`, 'utf8').split(/\s+/)[1]);

  // The classic shell bomb: dash gives up at the first fork the limit refuses.
  const classic = await host.createContainer(spec('bomb-sh', { pids: 20, cpuShares: 64 }));
  const sh = await classic.spawn({ command: "sh -c 'while :; do sleep 100 & done'", onLine: () => undefined });
  const shExit = await sh.exited;
  t.is(shExit.reason, 'exited', shExit.description);
  t.true(refused(classic) > 0, 'forks were refused');
  await classic.destroy();

  // A bomb that never gives up: every process keeps forking, for as long as it runs.
  const c = await host.createContainer(spec('bomb-py', { pids: 20, cpuShares: 64 }));
  let lines = 0;
  const p = await c.spawn({
    command: `exec python3 -c "
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"`,
    onLine: () => lines++,
    logLinesPerSecond: 20,
  });
  t.is(readFileSync(`${pidsDir(c)}/pids.max`, 'utf8').trim(), String(max));
  await waitFor('the bomb to reach the pids limit', () => (refused(c) > 100 ? true : undefined));
  const current = Number(readFileSync(`${pidsDir(c)}/pids.current`, 'utf8'));
  t.true(current <= max, `pids.current ${current}`);

  // Meanwhile the host forks freely and quickly.
  for (let i = 0; i < 5; i++) {
    const started = Date.now();
    t.is(spawnSync('/bin/true').status, 0);
    t.true(Date.now() - started < 2000, `a fork on the host took ${Date.now() - started} ms`);
  }

  await c.destroy();
  t.is((await p.exited).reason, 'stopped');
  await waitFor('every process of the container uid to be gone', () =>
    spawnSync('/usr/bin/pgrep', ['-u', String(c.uid)]).status === 1 ? true : undefined,
  );
  t.false(existsSync(pidsDir(c)));
  t.log(`${lines} log lines passed, ${p.droppedLogLines()} dropped`);
});

test('stop: SIGTERM reaches the app through pid 1; an app ignoring it is killed after the grace period', async (t) => {
  t.timeout(60_000);
  const { host } = await makeHost(t);
  const c = await host.createContainer(spec('stop-0'));
  const out: string[] = [];
  const graceful = await c.spawn({
    command: `exec ${NODE} -e "process.on('SIGTERM', () => { console.log('bye'); process.exit(0) }); console.log('up'); setInterval(() => {}, 1000)"`,
    onLine: (_s, l) => out.push(l),
  });
  await waitFor('the app to start', () => (out.includes('up') ? true : undefined));
  const exit = await c.stop({ graceMs: 10_000, reason: 'instance stopped by the cloud controller' });
  t.deepEqual(exit, { exitStatus: 0, signal: null, reason: 'stopped', description: 'instance stopped by the cloud controller' });
  t.true(out.includes('bye'));
  t.is(await graceful.exited, exit!);

  const stubbornOut: string[] = [];
  await c.spawn({ command: "trap '' TERM; echo up; while :; do sleep 1; done", onLine: (_s, l) => stubbornOut.push(l) });
  await waitFor('the stubborn app to start', () => (stubbornOut.includes('up') ? true : undefined));
  const started = Date.now();
  const killed = await c.stop({ graceMs: 500 });
  t.is(killed?.reason, 'stopped');
  t.true(Date.now() - started < 5000);
  t.is(c.process, null);
});

test('stats and checkDisk measure the container; over its quota it says so', async (t) => {
  t.timeout(60_000);
  const { host } = await makeHost(t);
  const c = await host.createContainer(spec('disk-0', { diskBytes: 1024 * 1024 }));
  const r = await runIn(c, 'head -c 3000000 /dev/urandom > /home/vcap/app/blob; head -c 10000000 /dev/zero | md5sum >/dev/null');
  t.is(r.exit.exitStatus, 0, r.stderr);
  const stats = await c.stats();
  t.true(stats.diskBytes >= 3_000_000, `disk ${stats.diskBytes}`);
  t.true(stats.cpuNanos > 0);
  t.true(stats.memoryBytes >= 0);
  const disk = await c.checkDisk();
  t.true(disk.overQuota);
  t.true(disk.complete);
  t.is(disk.quotaBytes, 1024 * 1024);
});

test('destroy removes netns, veth, port mapping, cgroups and files; shutdown removes the table', async (t) => {
  t.timeout(60_000);
  const { host } = await makeHost(t);
  const c = await host.createContainer(spec('gone-0'));
  const p = await c.spawn({ command: 'exec sleep 1000' });
  const table = host.nftTable;
  t.true(sh('ip netns list').includes(c.netns!));
  t.true(existsSync(`/sys/class/net/${c.veth}`));
  t.true(sh(`nft list table ip ${table}`).includes(`dport ${c.hostPort}`));
  t.true(existsSync(`/sys/fs/cgroup/memory/${c.cgroupPath}`));

  await c.destroy();
  await c.destroy(); // idempotent
  t.is((await p.exited).reason, 'stopped');
  t.false(sh('ip netns list').includes(c.netns!));
  t.false(existsSync(`/sys/class/net/${c.veth}`));
  t.false(sh(`nft list table ip ${table}`).includes(`dport ${c.hostPort}`));
  for (const ctrl of ['memory', 'pids', 'cpu', 'cpuacct']) t.false(existsSync(`/sys/fs/cgroup/${ctrl}/${c.cgroupPath}`), ctrl);
  t.false(existsSync(c.paths.dir));
  t.is(host.get('gone-0'), undefined);

  await host.shutdown();
  t.deepEqual(leftovers(host.prefix), []);
});

test('a restarted DEA finds its running containers again and can stop them', async (t) => {
  t.timeout(60_000);
  const { host, options } = await makeHost(t);
  const c = await host.createContainer(spec('keep-0'));
  const p = await c.spawn({ command: 'exec sleep 1000' });
  // The app itself, not merely three processes: while pid 1 still sets the container up, its
  // mount commands count too, and a SIGTERM then ends it before the runner (which leaves the
  // exit status) has started.
  const cmdline = (pid: number): string => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return '';
    }
  };
  await waitFor('the app to run', async () => ((await host.cgroupDriver!.pids(c.cgroupPath)).some((pid) => cmdline(pid).startsWith('sleep\u00001000')) ? true : undefined));

  const again = await ContainerHost.create(options);
  hosts.push(again);
  const found = again.get('keep-0');
  t.truthy(found);
  t.is(found!.process?.pid, p.pid);
  t.is(found!.uid, c.uid);
  t.is(found!.hostPort, c.hostPort);
  // A generous grace: stop returns as soon as the app is gone; under load the runner may need a
  // moment to write the status, and a SIGKILL at the end of a short grace would lose it.
  const exit = await found!.stop({ graceMs: 15_000 });
  t.is(exit?.reason, 'stopped');
  t.is(exit?.exitStatus, 143, 'not our child, yet its status is known: the runner left it (SIGTERM: 128 + 15)');
  await found!.destroy();
  // The first host object (the DEA that "died") sees its child end, too.
  t.is((await p.exited).exitStatus, 128 + 15);
});

test('sweep removes everything a dead run left behind', async (t) => {
  t.timeout(60_000);
  const { host, options } = await makeHost(t);
  const c = await host.createContainer(spec('dead-0'));
  await c.spawn({ command: 'exec sleep 1000' });
  // The run "dies": nothing is destroyed; only the prefix is known.
  t.true(leftovers(options.prefix).length >= 3);
  const report = await sweep(options.prefix);
  t.deepEqual(report.netns, [c.netns]);
  t.deepEqual(report.nftTables, [host.nftTable]);
  t.true(report.processes >= 2, `killed ${report.processes}`);
  t.true(report.cgroups.includes(c.cgroupPath));
  t.deepEqual(leftovers(options.prefix), []);
  await waitFor('every process of the container uid to be gone', () =>
    spawnSync('/usr/bin/pgrep', ['-u', String(c.uid)]).status === 1 ? true : undefined,
  );
});

test('isolation none: one process tree and uid per instance, limits by ulimit, no namespaces', async (t) => {
  t.timeout(60_000);
  const { host } = await makeHost(t, {}, 'none');
  const c = await host.createContainer(spec('dev-0', { pids: 10 }));
  t.is(c.containerPort, c.hostPort);
  t.is(c.address, null);
  const r = await runIn(c, "id -u; echo \"$PORT\"; pwd; grep 'Max processes' /proc/self/limits | awk '{print $3}'; readlink /proc/self/ns/pid");
  const [uid, port, cwd, nproc, pidns] = r.stdout.trim().split('\n');
  t.is(uid, String(c.uid));
  t.is(port, String(c.hostPort));
  t.is(cwd, c.paths.app);
  t.is(nproc, '11');
  t.is(pidns, sh('readlink /proc/self/ns/pid').trim());
  await c.destroy();
  t.false(existsSync(c.paths.dir));
});

test('a spec with problems is refused with all of them named', async (t) => {
  const { host } = await makeHost(t);
  const err = await t.throwsAsync(host.createContainer({ id: 'bad id', memoryBytes: 10, diskBytes: 0, pids: 0 }));
  t.regex(err!.message, /id: expected/);
  t.regex(err!.message, /memoryBytes: expected at least 4 MiB/);
  t.regex(err!.message, /pids/);
  t.regex(err!.message, /diskBytes/);
});

test('without privileges the host refuses to start, saying what is missing', async (t) => {
  t.timeout(60_000);
  // A real unprivileged process: the DEA run as nobody.
  const dir = await mkdtemp(join(tmpdir(), `ingot-dc${RUN}-nobody-`));
  dirs.push(dir);
  await chmod(dir, 0o755);
  const mod = new URL('../../kernel/dea/container/mod.ts', import.meta.url).pathname;
  const script = join(dir, 'refuse.mts');
  await writeFile(
    script,
    `import { ContainerHost } from ${JSON.stringify(mod)};
try {
  await ContainerHost.create({ prefix: 'ingot-dc${RUN}nobody', dataDir: ${JSON.stringify(join(dir, 'data'))},
    network: { subnet: '10.254.1.0/30', hostAddress: '192.0.2.2', hostPorts: { start: 40000, count: 1 } },
    uidRange: { start: 20000, count: 1 } });
  console.log('started');
} catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, missing: e.missing, message: e.message })); }
`,
    { mode: 0o644 },
  );
  const r = spawnSync('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', NODE, '--import', 'tsx', script], {
    encoding: 'utf8',
    cwd: process.cwd(),
  });
  t.truthy(r.stdout.trim(), `no output from the unprivileged process: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { name: string; code: string; missing: string[]; message: string };
  t.is(out.name, 'IsolationUnavailableError');
  t.is(out.code, 'ISOLATION_UNAVAILABLE');
  t.regex(out.missing[0]!, /^root privileges \(running as uid 65534/);
  t.true(out.missing.some((m) => m.startsWith('a writable memory cgroup controller')));
  t.regex(out.message, /^Cannot isolate containers with namespaces: missing root privileges .* or set isolation: none \(development only, no isolation\)\.$/);
});

async function listen(address: string): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined); // a client's reset is no failure of ours
    s.end('hello\n');
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  return { server, port: (server.address() as net.AddressInfo).port };
}

/** A network namespace standing in for a service VM: 10.253.<x>.<y>/30, TCP servers on 7001
 *  and 7002, reached from the host through a veth. Removed in teardown. */
async function serviceNetns(t: ExecutionContext, ns: string): Promise<{ address: string; subnet: string; ns: string }> {
  const octet = SUBNET_OCTET;
  const base = (slotCounter * 4) % 256;
  const subnet = `10.253.${octet}.${base}/30`;
  const gw = `10.253.${octet}.${base + 1}`;
  const address = `10.253.${octet}.${base + 2}`;
  const veth = vethName(ns, 'svc');
  const cleanup = () => {
    spawnSync('/usr/sbin/ip', ['netns', 'pids', ns], { encoding: 'utf8' })
      .stdout?.split('\n')
      .filter(Boolean)
      .forEach((pid) => {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      });
    spawnSync('/usr/sbin/ip', ['netns', 'delete', ns]);
    spawnSync('/usr/sbin/ip', ['link', 'delete', veth]);
  };
  netnsCleanups.push(cleanup);
  t.teardown(cleanup);
  sh(`ip netns add ${ns}`);
  sh(`ip link add ${veth} type veth peer name eth0 netns ${ns}`);
  sh(`ip link set ${veth} alias ${ns} up && ip addr add ${gw}/30 dev ${veth}`);
  sh(`ip -n ${ns} addr add ${address}/30 dev eth0 && ip -n ${ns} link set eth0 up && ip -n ${ns} link set lo up`);
  sh(`ip -n ${ns} route add default via ${gw}`);
  const server = spawn('/usr/sbin/ip', ['netns', 'exec', ns, NODE, '-e',
    "for (const p of [7001, 7002]) require('net').createServer(s => { s.on('error', () => {}); s.end('svc') }).listen(p)"], { stdio: 'ignore' });
  t.teardown(() => server.kill('SIGKILL'));
  await waitFor('the service netns servers', async () => ((await tcpProbe(address, 7002)) === 'connected' ? true : undefined));
  return { address, subnet, ns };
}
