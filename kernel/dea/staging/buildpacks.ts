// Which buildpacks a staging tries, and getting them onto disk. A request names no buildpack
// (every installed one is detected in order), an installed one by name, a directory, or a git
// URL (`url#ref` picks a branch or tag), cloned with `git clone --depth 1` for this staging
// only, as Cloud Foundry does. A buildpack asked for explicitly is not detected: it is used.
import { spawn } from 'node:child_process';
import { access, readdir, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { isAbsolute, join, normalize } from 'node:path';
import { StagingError, errorMessage } from './errors.ts';
import { detectedName } from './release.ts';
import type { Buildpack, BuildpackRequest, CompiledStagerOptions, OnLog } from './types.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
const GIT_URL = /^(https?|git|ssh|file):\/\//i;
/** scp-like ssh address: git@github.com:org/buildpack.git */
const SCP_URL = /^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:[^/]/;

/** Reads the request's `buildpack` field. Throws StagingError('buildpack_unavailable') for what it cannot be. */
export function parseBuildpackRequest(value: string | undefined): BuildpackRequest {
  const v = value?.trim() ?? '';
  if (v === '') return { kind: 'detect' };
  if (GIT_URL.test(v) || SCP_URL.test(v)) {
    const hash = v.indexOf('#');
    const url = hash >= 0 ? v.slice(0, hash) : v;
    const ref = hash >= 0 ? v.slice(hash + 1) : undefined;
    if (ref !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_./-]{0,199}$/.test(ref)) {
      throw unavailable(`Choosing the buildpack: ${JSON.stringify(ref)} is not a branch or tag name`);
    }
    return { kind: 'git', url, ref: ref || undefined };
  }
  if (isAbsolute(v)) return { kind: 'directory', path: normalize(v) };
  if (NAME.test(v)) return { kind: 'name', name: v };
  throw unavailable(`Choosing the buildpack: ${JSON.stringify(v)} is neither a buildpack name, an absolute directory nor a git URL`);
}

/** Names in the configured order first, then every other installed one by name. */
export function orderBuildpacks(installed: string[], order: string[]): string[] {
  const have = new Set(installed);
  const first = order.filter((n) => have.has(n));
  const rest = installed.filter((n) => !order.includes(n)).sort();
  return [...first, ...rest];
}

/** Installed buildpacks: the folders of `dir` holding an executable bin/detect, in detection order. */
export async function installedBuildpacks(dir: string, order: string[]): Promise<Buildpack[]> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory() && NAME.test(d.name)).map((d) => d.name);
  } catch (err) {
    throw new StagingError('buildpack_unavailable', 'buildpack', `Listing the buildpacks in ${dir}: ${errorMessage(err)}`, { cause: err });
  }
  const usable: string[] = [];
  for (const name of names) {
    if (await isExecutable(join(dir, name, 'bin/detect'))) usable.push(name);
  }
  return orderBuildpacks(usable, order).map((name) => ({ name, dir: join(dir, name), origin: 'builtin' as const }));
}

export interface ResolvedBuildpacks {
  candidates: Buildpack[];
  /** True when the request named one: it is used without running its bin/detect. */
  explicit: boolean;
}

/** Turns the request's buildpack field into the buildpacks to try; clones a git one into `cloneDir`. */
export async function resolveBuildpacks(
  request: BuildpackRequest,
  options: CompiledStagerOptions,
  cloneDir: string,
  onLog: OnLog,
  signal: AbortSignal,
): Promise<ResolvedBuildpacks> {
  switch (request.kind) {
    case 'detect': {
      const candidates = await installedBuildpacks(options.buildpacksDir, options.buildpackOrder);
      if (candidates.length === 0) throw unavailable(`Choosing the buildpack: no buildpacks are installed in ${options.buildpacksDir}`);
      return { candidates, explicit: false };
    }
    case 'name': {
      const found = (await installedBuildpacks(options.buildpacksDir, options.buildpackOrder)).find((b) => b.name === request.name);
      if (!found) throw unavailable(`Choosing the buildpack: there is no buildpack named ${request.name}`);
      return { candidates: [found], explicit: true };
    }
    case 'directory': {
      if (!options.allowLocalBuildpacks) throw unavailable(`Choosing the buildpack: buildpacks from a directory of the DEA (${request.path}) are not allowed here`);
      await checkLayout(request.path, request.path);
      return { candidates: [{ name: request.path, dir: request.path, origin: 'directory' }], explicit: true };
    }
    case 'git': {
      const shown = redactUrl(request.url) + (request.ref ? `#${request.ref}` : '');
      if (/^file:/i.test(request.url) && !options.allowLocalBuildpacks) {
        throw unavailable(`Choosing the buildpack: file:// buildpack URLs (${shown}) are not allowed here`);
      }
      onLog(`-----> Cloning buildpack ${shown}`, 'out');
      await cloneBuildpack(options.git, request.url, request.ref, cloneDir, signal, onLog);
      await checkLayout(cloneDir, shown);
      return { candidates: [{ name: shown, dir: cloneDir, origin: 'git' }], explicit: true };
    }
  }
}

/**
 * Runs `detect` on each candidate in order and returns the first that accepts the app, with
 * the name it reported (its first line of output, else its own name).
 */
export async function detectBuildpack(
  candidates: Buildpack[],
  detect: (bp: Buildpack) => Promise<{ accepted: boolean; output: string }>,
): Promise<{ buildpack: Buildpack; detected: string } | undefined> {
  for (const bp of candidates) {
    const { accepted, output } = await detect(bp);
    if (accepted) return { buildpack: bp, detected: detectedName(output, bp.name) };
  }
  return undefined;
}

export interface BuildpackScripts {
  detect: boolean;
  compile: boolean;
  supply: boolean;
  finalize: boolean;
  release: boolean;
}

/** Which of the buildpack contract's scripts this buildpack has (as executable files). */
export async function buildpackScripts(dir: string): Promise<BuildpackScripts> {
  const has = (s: string) => isExecutable(join(dir, 'bin', s));
  const [detect, compile, supply, finalize, release] = await Promise.all(['detect', 'compile', 'supply', 'finalize', 'release'].map(has));
  return { detect: detect!, compile: compile!, supply: supply!, finalize: finalize!, release: release! };
}

async function checkLayout(dir: string, shown: string): Promise<void> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw unavailable(`Choosing the buildpack: ${shown} is not a directory (${errorMessage(err)})`);
  }
  const s = await buildpackScripts(dir);
  const missing = [
    ...(s.release ? [] : ['bin/release']),
    ...(s.compile || s.finalize ? [] : ['bin/compile (or bin/finalize)']),
  ];
  if (missing.length > 0) throw unavailable(`Choosing the buildpack: ${shown} has no executable ${missing.join(' nor ')}`);
}

/** `git clone --depth 1 [--branch ref] -- url dest`, never prompting and never running transports like ext::. */
async function cloneBuildpack(git: string, url: string, ref: string | undefined, dest: string, signal: AbortSignal, onLog: OnLog): Promise<void> {
  const args = ['-c', 'protocol.ext.allow=never', 'clone', '--quiet', '--depth', '1', ...(ref ? ['--branch', ref] : []), '--', url, dest];
  const stderr: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(git, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dest,
        GIT_TERMINAL_PROMPT: '0',
        GIT_ASKPASS: '/bin/false',
        GIT_SSH_COMMAND: 'ssh -o BatchMode=yes',
        GIT_CONFIG_NOSYSTEM: '1',
      },
      signal,
    });
    child.stderr!.on('data', (c: Buffer) => stderr.push(c.toString()));
    child.once('error', reject);
    child.once('close', resolve);
  }).catch((err: unknown) => {
    if (signal.aborted) throw err;
    throw unavailable(`Cloning the buildpack ${redactUrl(url)}: could not run ${git} (${errorMessage(err)})`);
  });
  if (code !== 0) {
    const why = redactText(stderr.join('').trim().split('\n').slice(-2).join(' / ')) || `git exited with status ${code}`;
    onLog(`       ${why}`, 'err');
    throw unavailable(`Cloning the buildpack ${redactUrl(url)}${ref ? `#${ref}` : ''}: ${why}`);
  }
}

/** A URL without its password or token, for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = u.username ? '***' : '';
      u.password = '';
    }
    return u.toString();
  } catch {
    return url;
  }
}

function redactText(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@');
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    const s = await stat(path);
    if (!s.isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function unavailable(message: string): StagingError {
  return new StagingError('buildpack_unavailable', 'buildpack', message);
}
