// Fixture factories for agent tests: jobs and packages as tarballs in a loopback blobstore,
// and the apply spec that names them.
import type { BlobServer } from './blob-server.ts';
import { tarball } from './agent-process.ts';

export const HTTP_SERVER_JS = `
const { readFileSync } = require('node:fs');
const props = JSON.parse(readFileSync(process.env.INGOT_JOB_PROPERTIES, 'utf8'));
require('node:http').createServer((req, res) => res.end('hello from ' + props.greeting)).listen(props.port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
`;

export interface JobFixture {
  name: string;
  files: Record<string, string>;
  properties?: Record<string, unknown>;
}

/** Puts each job's tarball into the blobstore and returns the apply spec. */
export async function publishSpec(blobs: BlobServer, opts: { name: string; jobs: JobFixture[]; packages?: JobFixture[] }): Promise<Record<string, unknown>> {
  const refs = async (items: JobFixture[], kind: string): Promise<Array<Record<string, unknown>>> =>
    Promise.all(
      items.map(async (j) => {
        const { body, sha256 } = await tarball(j.files);
        const id = `${kind}-${j.name}-${sha256.slice(0, 8)}`;
        blobs.put(`/${id}`, body);
        return { name: j.name, blobstore_id: id, sha256, ...(kind === 'job' ? { properties: j.properties ?? {} } : {}) };
      }),
    );
  return {
    deployment: 'test',
    name: opts.name,
    index: 0,
    jobs: await refs(opts.jobs, 'job'),
    packages: await refs(opts.packages ?? [], 'pkg'),
  };
}

export function nodeProcessJob(name: string, script: string, extra: Record<string, string> = {}, properties: Record<string, unknown> = {}): JobFixture {
  return {
    name,
    properties,
    files: {
      'spec.json': JSON.stringify({ name, processes: [{ name, executable: process.execPath, args: ['main.cjs'] }] }),
      'main.cjs': script,
      ...extra,
    },
  };
}
