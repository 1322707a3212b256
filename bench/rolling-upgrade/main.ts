// bench/rolling-upgrade (issue 11): the whole kernel rolls to a new release under load.
// Brings the local platform up (npm start; a no-op when it is up), pushes an app with two
// instances, keeps ~100 requests a second on it through the balancer from a second process,
// builds and uploads a new release of this checkout (its version stamped into the ingot
// package, so every kernel job changes), deploys it, pushes another app during the roll, then
// checks that every process has a new pid and that every kernel component reports the new
// version (the smoke-tests errand, installed from the new release). The last line:
//   rolling upgrade: N requests, F failed, max latency X ms, push during roll: ok|failed, roll took T s
// Options (environment): RATE (requests/s, default 100), PUSH_AFTER_S (default 30).
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { ingotCli, rollUnderLoad, summaryLine } from './roll.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RUN = join(ROOT, '.ingot-run', 'platform');
const HOME = process.env.INGOT_HOME ?? join(homedir(), '.ingot');
const APP = 'roll-probe';

function must(what: string, r: { code: number | null; out: string }): string {
  if (r.code !== 0) throw new Error(`${what} failed:\n${r.out.slice(-3000)}`);
  return r.out;
}

async function npmStart(): Promise<void> {
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn('bash', ['scripts/start.sh'], { cwd: ROOT, env: { ...process.env, INGOT_HOME: HOME }, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('close', resolve);
  });
  if (code !== 0) throw new Error(`npm start exited with ${code}`);
}

async function main(): Promise<void> {
  const ingot = ingotCli(ROOT, HOME);
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  log('bringing the platform up (npm start)…');
  await npmStart();

  must(`ingot push ${APP}`, await ingot(['push', APP, '-p', 'examples/node-hello', '-i', '2', '-m', '64M'], 600_000));
  const version = `${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}-roll.${Date.now()}`;
  log(`building release ingot/${version}…`);
  const created = JSON.parse(must('ingot create-release', await ingot(['create-release', '--dir', join(RUN, 'releases'), '--version', version, '--json']))) as { tarball: string };
  must('ingot upload-release', await ingot(['upload-release', created.tarball]));
  const adminPassword = readFileSync(join(RUN, 'admin.password'), 'utf8').trim();

  log(`rolling the kernel to ${version} under ${process.env.RATE ?? 100} requests/s…`);
  const report = await rollUnderLoad({
    root: ROOT,
    ingot,
    appHost: `${APP}.localhost`,
    deployArgs: ['manifests/local.yml', '-v', `cc_admin_password=${adminPassword}`],
    pushAfterS: Number(process.env.PUSH_AFTER_S ?? 30),
    push: { name: `roll-push-${Date.now().toString(36)}`, path: 'examples/static-site' },
    rate: Number(process.env.RATE ?? 100),
  });
  if (report.deployCode !== 0) log(`the deploy failed:\n${report.deployOutput.slice(-3000)}`);
  if (report.push === 'failed') log(`the push during the roll failed:\n${report.pushOutput.slice(-1500)}`);
  for (const f of report.load.failures) log(`  failed request at ${(f.at_ms / 1000).toFixed(1)} s: ${f.reason}`);
  log(`processes with the same pid after the roll: ${report.samePid.length} of ${report.processes}${report.samePid.length ? ` (${report.samePid.join(', ')})` : ''}`);
  const smoke = await ingot(['-d', 'ingot', 'run-errand', 'smoke-tests'], 300_000);
  const versionLine = smoke.out.split('\n').find((l) => /runs this release/.test(l)) ?? smoke.out.slice(-800);
  log(`smoke tests after the roll (exit ${smoke.code}): ${versionLine.trim()}`);
  log(summaryLine(report));
  if (report.deployCode !== 0 || report.load.failed > 0 || report.push === 'failed') process.exitCode = 1;
}

main().catch((err: Error) => {
  process.stderr.write(`rolling-upgrade: ${err.message}\n`);
  process.exit(1);
});
