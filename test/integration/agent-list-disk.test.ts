// The agent's list_disk as a real process on a real nats-server mbus: a persistent disk counts
// only while its path is a mount point (a bind mount on the host stands in for the local CPI's
// inside a VM), and the disks are read again from the settings file the CPI rewrites on
// attach_disk. The mount is undone and the agent stopped whatever happens.
import anyTest, { type TestFn } from 'ava';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { AgentMbus } from '../helpers/agent-mbus.ts';
import { DirectorClient, startAgentProcess, waitFor, type StartedAgent } from '../helpers/agent-process.ts';
import { scratchDir } from '../helpers/tmp.ts';

const execFileP = promisify(execFile);
const AGENT_ID = 'agent-list-disk-1';
const test = anyTest as TestFn<unknown>;

// Module-level: ava's after hook sees the before hook's context only.
let mbus: AgentMbus | undefined;
let agent: StartedAgent | undefined;
let director: DirectorClient | undefined;
let mounted: string | undefined;

const disk = scratchDir('agent-list-disk-data');

async function bindStore(store: string): Promise<void> {
  mkdirSync(store, { recursive: true });
  await execFileP('/usr/bin/mount', ['--bind', disk, store]);
  mounted = store;
}

async function unmountStore(): Promise<void> {
  if (!mounted) return;
  await execFileP('/usr/bin/umount', [mounted]);
  mounted = undefined;
}

test.before(async () => {
  mbus = await AgentMbus.start([AGENT_ID]);
  const cred = mbus.agent(AGENT_ID);
  agent = startAgentProcess({
    agent_id: AGENT_ID,
    mbus: { url: mbus.url, user: cred.user, password: cred.password },
    blobstore: { url: '' },
    disks: { persistent: { 'disk-1': '/var/vcap/store' } },
  });
  director = await DirectorClient.connect(mbus.url, mbus.director.user, mbus.director.password);
  const d = director;
  await waitFor('the agent to answer ping', async () => (await d.call(AGENT_ID, 'ping').catch(() => undefined)) === 'pong', 20_000);
});

test.after.always(async () => {
  await unmountStore().catch(() => execFileP('/usr/bin/umount', ['-l', mounted!]).catch(() => undefined));
  await agent?.kill();
  await director?.close().catch(() => undefined);
  await mbus?.stop();
});

test.serial('a disk is listed only while its store is a mount point, not while it is a plain directory', async (t) => {
  const store = join(agent!.root, 'store');
  t.deepEqual(await director!.call(AGENT_ID, 'list_disk'), []);
  mkdirSync(store);
  t.deepEqual(await director!.call(AGENT_ID, 'list_disk'), [], 'a directory is no disk');
  await bindStore(store);
  t.deepEqual(await director!.call(AGENT_ID, 'list_disk'), ['disk-1']);
  await unmountStore();
  t.deepEqual(await director!.call(AGENT_ID, 'list_disk'), [], 'unmounted behind the agent’s back');
});

test.serial('the disks are read again from the settings file: a disk attached later is listed and mountable', async (t) => {
  const file = join(dirname(agent!.root), 'settings.json');
  const settings = JSON.parse(readFileSync(file, 'utf8')) as { disks: { persistent: Record<string, string> } };
  writeFileSync(file, JSON.stringify({ ...settings, disks: { persistent: { 'disk-2': '/var/vcap/store' } } }));
  await bindStore(join(agent!.root, 'store'));
  t.deepEqual(await director!.call(AGENT_ID, 'list_disk'), ['disk-2']);
  t.deepEqual(await director!.call(AGENT_ID, 'mount_disk', ['disk-2']), { 'disk-2': join(agent!.root, 'store') });
  const refused = await director!.request(AGENT_ID, { method: 'mount_disk', arguments: ['disk-1'] });
  t.regex((refused as { exception: { message: string } }).exception.message, /^Mounting persistent disk disk-1: the settings name no such disk \(known: disk-2\)$/);
});
