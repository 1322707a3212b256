// Keeps one registry proxy daemon per local CPI running on the bridge's gateway address. It is
// started detached by the first create_vm that finds it missing and lives until sweep(prefix).

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { open, readFile, rename, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { doing } from '../errors.ts';
import { run } from './command.ts';
import type { LocalCpiConfig } from './config.ts';
import { isAlive, readProcess, type ProcessId } from './vm-process.ts';
import { childExecArgv } from '../../../kernel/component/exec-argv.ts';

export const PROXY_MAIN = new URL(`./registry-proxy-main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).pathname;

export async function ensureRegistryProxy(config: LocalCpiConfig): Promise<void> {
  const proxy = config.registryProxy;
  if (!proxy) return;
  const pidFile = join(config.dataDir, 'registry-proxy.json');
  const known = await readFile(pidFile, 'utf8').then(parseProcessId, () => null);
  if (known && (await isAlive(known))) return;
  await doing(`Starting the registry proxy on ${config.gateway}:${proxy.port}`, async () => {
    const registry = proxy.registry ?? (await run(['npm', 'config', 'get', 'registry'])).stdout.trim();
    const log = await open(join(config.dataDir, 'registry-proxy.log'), 'a');
    const child = spawn(
      process.execPath,
      [...childExecArgv(PROXY_MAIN), PROXY_MAIN, config.gateway, String(proxy.port), registry, '--prefix', config.prefix],
      { detached: true, stdio: ['ignore', log.fd, log.fd] },
    );
    child.unref();
    await log.close();
    let exited = false;
    child.once('exit', () => (exited = true));
    const deadline = Date.now() + 10_000;
    while (!(await accepts(config.gateway, proxy.port))) {
      if (exited) throw new Error(`it exited: ${(await readFile(join(config.dataDir, 'registry-proxy.log'), 'utf8')).trim().split('\n').slice(-2).join(' / ')}`);
      if (Date.now() > deadline) throw new Error('it did not listen within 10 s');
      await sleep(50);
    }
    // Another create_vm may have started it first; then ours exits on EADDRINUSE.
    const info = exited ? null : await readProcess(child.pid!);
    // Through a rename: parallel create_vm calls read this file while one writes it.
    if (info) {
      const tmp = `${pidFile}.${randomUUID()}.tmp`;
      await writeFile(tmp, JSON.stringify({ pid: child.pid!, startTime: info.startTime }));
      await rename(tmp, pidFile);
    }
  });
}

/** A record another call is still writing reads as none (the proxy is then checked again). */
function parseProcessId(text: string): ProcessId | null {
  try {
    const v = JSON.parse(text) as Partial<ProcessId>;
    return typeof v.pid === 'number' && typeof v.startTime === 'number' ? { pid: v.pid, startTime: v.startTime } : null;
  } catch {
    return null;
  }
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
