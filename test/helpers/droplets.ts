// Droplets for tests: a tgz of an app directory under app/ plus staging_info.yml, the shape
// a stager produces.
import { createHash, randomUUID } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar';
import { scratchDir } from './tmp.ts';

export interface BuiltDroplet {
  file: string;
  sha256: string;
}

export async function buildDroplet(appDir: string, startCommand: string): Promise<BuiltDroplet> {
  const dir = scratchDir('droplet');
  const stage = join(dir, 'stage');
  mkdirSync(stage);
  cpSync(appDir, join(stage, 'app'), { recursive: true });
  writeFileSync(join(stage, 'staging_info.yml'), `detected_buildpack: test\nstart_command: ${JSON.stringify(startCommand)}\n`);
  const file = join(dir, 'droplet.tgz');
  await tar.c({ gzip: true, file, cwd: stage, portable: true }, ['app', 'staging_info.yml']);
  const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
  return { file, sha256 };
}

/** A dea.<id>.start message for a test app running `droplet` (fields in `over` win). */
export function deaStartMessage(droplet: { uri: string; sha256: string }, appId: string, index: number, over: Record<string, unknown> = {}) {
  return {
    app_id: appId,
    name: `app-${appId.slice(0, 6)}`,
    index,
    version: 'v1',
    instance_id: randomUUID(),
    droplet_uri: droplet.uri,
    droplet_sha256: droplet.sha256,
    uris: [`${appId.slice(0, 8)}.apps.test`],
    limits: { memory_mb: 128, disk_mb: 256 },
    env: {} as Record<string, string>,
    services: [] as unknown[],
    ...over,
  };
}
