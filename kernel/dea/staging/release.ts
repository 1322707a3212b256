// What an app will be started with: the Procfile, bin/release's YAML, and the rule that picks
// the start command (the user's own, else the Procfile's `web`, else the buildpack's
// default). Pure functions; the stager reads the files and runs the commands.
import { parse } from 'yaml';
import type { ReleaseInfo } from './types.ts';

/**
 * Parses a Procfile: `name: command` per line, `#` comments and blank lines ignored. Throws a
 * sentence naming the line for anything else, as Heroku's and CF's parsers refuse it too.
 */
export function parseProcfile(text: string): Record<string, string> {
  const types: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z0-9_-]+)\s*:\s*(.*)$/.exec(line);
    if (!m) throw new Error(`Procfile line ${i + 1}: expected "name: command", got ${JSON.stringify(line)}`);
    const command = m[2]!.trim();
    if (command === '') throw new Error(`Procfile line ${i + 1}: process type ${m[1]} has no command`);
    types[m[1]!] = command;
  }
  return types;
}

/**
 * Parses bin/release's output: YAML with `default_process_types` (type → command) and optional
 * `config_vars`. An empty output is a release without defaults. Throws a sentence otherwise.
 */
export function parseRelease(text: string): ReleaseInfo {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new Error(`its output is not YAML (${(err as Error).message.split('\n')[0]})`);
  }
  if (doc === null || doc === undefined) return { defaultProcessTypes: {}, configVars: {} };
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error('its output is not a YAML mapping');
  const d = doc as Record<string, unknown>;
  return {
    defaultProcessTypes: stringMap(d.default_process_types, 'default_process_types'),
    configVars: stringMap(d.config_vars, 'config_vars'),
  };
}

function stringMap(value: unknown, key: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${key} is not a mapping`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
    else throw new Error(`${key}.${k} is not a string`);
  }
  return out;
}

export type StartCommandSource = 'user' | 'procfile' | 'buildpack';

/** The user's command wins, then the Procfile's web, then the buildpack's default web. */
export function selectStartCommand(input: {
  user?: string | undefined;
  procfile?: Record<string, string> | undefined;
  release?: ReleaseInfo | undefined;
}): { command: string; source: StartCommandSource } | undefined {
  const user = input.user?.trim();
  if (user) return { command: user, source: 'user' };
  const procfile = input.procfile?.web?.trim();
  if (procfile) return { command: procfile, source: 'procfile' };
  const dflt = input.release?.defaultProcessTypes.web?.trim();
  if (dflt) return { command: dflt, source: 'buildpack' };
  return undefined;
}

/** bin/detect may print the framework it found; the first non-empty line names it. */
export function detectedName(detectOutput: string, fallback: string): string {
  const first = detectOutput
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l !== '');
  return first ? first.slice(0, 200) : fallback;
}
