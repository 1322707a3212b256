// The DEA job's drain command (kernel/jobs/dea/spec.yml), run as the agent runs it against a real
// DEA process and a real nats-server: the first call starts evacuation (SIGUSR2) and answers -1
// (BOSH's dynamic drain: ask again), job_check_status keeps answering -1 while the evacuating
// DEA lives and 0 once it has exited (the agent, which unmonitors before a drain, lists the live
// DEA afresh for each call); with no DEA running it answers 0 at once. (Evacuation itself
// — instances kept serving until replaced — is test/integration/dea.test.ts's.)
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDrainOutput } from '../../orchestrator/agent/mod.ts';
import { parseJobSpec } from '../../orchestrator/release/job-spec.ts';
import { eventually, startComponentProcess, writeConfig, type StartedComponent } from '../helpers/component-process.ts';
import { hostAddress } from '../helpers/host-address.ts';
import { KERNEL_BLOCKS } from '../helpers/kernel-blocks.ts';
import { NatsServer } from '../helpers/nats-server.ts';
import { freePort } from '../helpers/ports.ts';
import { runPrefix, scratchDir } from '../helpers/tmp.ts';

const SPEC = fileURLToPath(new URL('../../kernel/jobs/dea/spec.yml', import.meta.url));
const drain = parseJobSpec(readFileSync(SPEC, 'utf8'), SPEC).drain!;

let nats: NatsServer | undefined;
let dea: StartedComponent | undefined;
const root = scratchDir('dea-drain-root');

/** The drain command as the agent runs it: its args, then BOSH's two, in the job's environment. */
function runDrain(kind: 'job_shutdown' | 'job_check_status', pids: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(drain.executable, [...drain.args, kind, 'hash_unchanged'], { env: { ...process.env, ...drain.env, INGOT_ROOT: root, INGOT_JOB_PIDS: pids }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`drain exited with ${code}: ${out}`))));
  });
}

test.before(async () => {
  nats = await NatsServer.start();
  const configFile = writeConfig('dea-drain', {
    nats: { ...nats.componentConfig, servers: [nats.url] },
    index: 0,
    local_ip: hostAddress(),
    status: { host: '127.0.0.1', port: await freePort() },
    base_dir: scratchDir('dea-drain-base'),
    prefix: runPrefix(),
    memory_mb: 256,
    network: { subnet: `10.254.${KERNEL_BLOCKS.deaDrain.subnetOctet()}.0/26`, host_ports: { start: KERNEL_BLOCKS.deaDrain.portBase(), count: 4 } },
    evacuation_timeout_s: 30,
    drain_timeout_s: 20,
  });
  dea = await startComponentProcess('dea', configFile);
});

test.after.always(async () => {
  if (dea && dea.proc.exitCode === null) {
    dea.proc.kill('SIGTERM');
    await Promise.race([dea.exited, new Promise((r) => setTimeout(r, 20_000))]);
    await dea.kill();
  }
  await nats?.stop();
});

test.serial('the DEA drain evacuates and answers -1 until the DEA has exited, then 0', async (t) => {
  t.timeout(60_000);
  const pid = dea!.proc.pid!;
  const first = parseDrainOutput(await runDrain('job_shutdown', `dea=${pid}`));
  t.deepEqual(first, { kind: 'poll', seconds: 1 });
  await dea!.waitForLog((l) => l.msg === 'evacuating', 10_000);
  // The agent asks again with job_check_status, naming the DEA while it lives.
  const answers: string[] = [];
  await eventually(
    async () => {
      const a = parseDrainOutput(await runDrain('job_check_status', dea!.proc.exitCode === null ? `dea=${pid}` : ''));
      answers.push(a.kind);
      return a.kind === 'wait' && a.seconds === 0;
    },
    30_000,
    'the drain answering 0',
  );
  const { code } = await dea!.exited;
  t.is(code, 0, 'the DEA exited on its own once nothing was left to evacuate');
  t.log(`status answers: ${answers.join(', ')}`);
});

test.serial('with no DEA running the drain answers 0 at once', async (t) => {
  t.deepEqual(parseDrainOutput(await runDrain('job_shutdown', '')), { kind: 'wait', seconds: 0 });
});
