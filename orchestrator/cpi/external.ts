// The external door: one BOSH external-CPI request on stdin, one response on stdout. Every
// failure — a bad request, an unknown CPI, a config error, a failing method — becomes the
// response's error object; the process never crashes on input.

import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { CpiError, InvalidCallError, NotImplementedError, wrapCpiError } from './errors.ts';
import { cpiNames, cpiRegistry } from './registry.ts';
import { parseRequest } from './request.ts';
import type { Cpi, ExternalResponse } from './types.ts';

/** All of a stream (stdin) as text: the door reads its one request whole. */
export async function readAll(stream: AsyncIterable<Buffer | string>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

export async function loadConfigFile(configFile: string): Promise<unknown> {
  const text = await readFile(configFile, 'utf8');
  return parseYaml(text) ?? {};
}

function toErrorObject(err: unknown): NonNullable<ExternalResponse['error']> {
  if (err instanceof CpiError) return { type: err.type, message: err.message, ok_to_retry: err.okToRetry };
  return { type: 'Bosh::Clouds::CloudError', message: err instanceof Error ? err.message : String(err), ok_to_retry: false };
}

/** Answers one request; the returned text is the whole of stdout. */
export async function runExternalCpi(name: string, configFile: string, stdin: string): Promise<string> {
  const log: string[] = [];
  const response: ExternalResponse = { result: null, error: null, log: '' };
  try {
    const call = parseRequest(stdin);
    const load = cpiRegistry[name];
    if (!load) throw new InvalidCallError(`Unknown CPI "${name}"; known: ${cpiNames().join(', ')}`);
    let cpi: Cpi;
    try {
      cpi = (await load())(await loadConfigFile(configFile), configFile);
    } catch (err) {
      throw wrapCpiError(`Loading the ${name} CPI with config ${configFile}`, err);
    }
    log.push(`${name} CPI: ${call.method}`);
    const method = cpi[call.method] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    if (typeof method !== 'function') throw new NotImplementedError(call.method, name);
    response.result = (await method.apply(cpi, call.arguments)) ?? null;
  } catch (err) {
    response.error = toErrorObject(err);
    response.result = null;
    log.push(err instanceof Error && !(err instanceof CpiError) ? (err.stack ?? err.message) : '');
  }
  response.log = log.filter(Boolean).join('\n');
  return JSON.stringify(response);
}
