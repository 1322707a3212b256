// The droplet: what staging produces and a DEA runs. A gzipped tar holding
//
//   app/                 the build directory after the buildpack, with .profile.d/ scripts
//   deps/<index>/        what bin/supply installed (only when a buildpack supplied something)
//   staging_info.yml     detected_buildpack, start_command (and the buildpack used)
//
// A DEA unpacks it into the instance's home (/home/vcap), sets HOME to the app directory,
// sources app/.profile.d/*.sh with bash from there and runs start_command with `bash -c`.
// Links stay links (never followed), owners are dropped, and only regular files, directories
// and links are packed: a buildpack cannot smuggle a device or fifo into a droplet.
import { createHash } from 'node:crypto';
import { Stats, createReadStream } from 'node:fs';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create as createTar } from 'tar';
import { stringify } from 'yaml';

export interface StagingInfo {
  detected_buildpack: string;
  start_command: string;
  buildpack: string;
}

export function renderStagingInfo(info: StagingInfo): string {
  return stringify(info);
}

/**
 * Writes `root/staging_info.yml` and packs `root/app` (+ `root/deps` when not empty) and it
 * into `dest`. Returns the droplet's sha256 and size.
 */
export async function packDroplet(root: string, info: StagingInfo, dest: string): Promise<{ sha256: string; bytes: number }> {
  await writeFile(join(root, 'staging_info.yml'), renderStagingInfo(info));
  const members = ['app', 'staging_info.yml'];
  if (await hasEntries(join(root, 'deps'))) members.splice(1, 0, 'deps');
  await createTar(
    {
      gzip: true,
      cwd: root,
      file: dest,
      portable: true,
      follow: false,
      filter: (_path, st) => !(st instanceof Stats) || st.isFile() || st.isDirectory() || st.isSymbolicLink(),
    },
    members,
  );
  return { sha256: await sha256File(dest), bytes: (await stat(dest)).size };
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** deps/ counts when one of its deps/<index> directories holds something. */
async function hasEntries(dir: string): Promise<boolean> {
  try {
    for (const d of await readdir(dir, { withFileTypes: true })) {
      if (!d.isDirectory() || (await readdir(join(dir, d.name))).length > 0) return true;
    }
  } catch {
    // No deps directory.
  }
  return false;
}
