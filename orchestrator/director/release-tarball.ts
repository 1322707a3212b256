// Reading uploaded tarballs at the edge: the members of a gzipped tar in memory, the minimal
// release check used until orchestrator/release's reader is plugged in, and stemcell.MF.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { describeIssues } from '../../kernel/cloud-controller/http/body.ts';
import { ReleaseInvalidError } from './errors.ts';
import type { ReleaseDescription } from './types.ts';

/** The regular files of a (gzipped) tar, by path without a leading `./`. */
export async function tarMembers(tarball: Buffer, wanted: (path: string) => boolean = () => true): Promise<Map<string, Buffer>> {
  const members = new Map<string, Buffer>();
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      const path = entry.path.replace(/^\.\//, '');
      if (entry.type !== 'File' || !wanted(path)) {
        entry.resume();
        return;
      }
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => members.set(path, Buffer.concat(chunks)));
    },
  });
  await pipeline(Readable.from([tarball]), parser as unknown as NodeJS.WritableStream);
  return members;
}

// A version may be written as a number in YAML (`version: 3`); it is text everywhere after.
const versionText = z.preprocess((v) => (typeof v === 'number' ? String(v) : v), z.string().min(1));

const Item = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a name is letters, digits, ".", "_" and "-"'),
  version: versionText.optional(),
  fingerprint: z.string().min(1),
  dependencies: z.array(z.string()).optional(),
});

const ReleaseManifest = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a name is letters, digits, ".", "_" and "-"'),
  version: versionText,
  jobs: z.array(Item).default([]),
  packages: z.array(Item).default([]),
});

/** The minimal check: a gzipped tar holding a release.MF with name, version, jobs and packages. */
export async function minimalReleaseCheck(tarball: Buffer): Promise<ReleaseDescription> {
  let members: Map<string, Buffer>;
  try {
    members = await tarMembers(tarball, (p) => p === 'release.MF');
  } catch (err) {
    throw new ReleaseInvalidError(`Reading the release tarball: ${(err as Error).message}`);
  }
  const mf = members.get('release.MF');
  if (!mf) throw new ReleaseInvalidError('Reading the release tarball: it holds no release.MF');
  let doc: unknown;
  try {
    doc = parseYaml(mf.toString('utf8'));
  } catch (err) {
    throw new ReleaseInvalidError(`Reading release.MF: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = ReleaseManifest.safeParse(doc);
  if (!parsed.success) throw new ReleaseInvalidError(`Reading release.MF: ${describeIssues(parsed.error)}`);
  return parsed.data;
}
