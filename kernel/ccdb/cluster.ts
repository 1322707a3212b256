// The ccdb's cluster on disk, below `dir` (the persistent disk):
//   dir/                  root's, 0711: the server's user may pass, not look
//   dir/superuser.secret  the superuser's password, made once, 0600 root's
//   dir/data/             the cluster (0700, the server's user's)
//   dir/run/              the server's unix socket and its lock
// initdb runs in dir/data.initdb and is renamed to dir/data only once it succeeded, so a
// crash half-way through leaves no half-made cluster that looks whole: the next start
// removes the leftover and runs initdb again.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../component/mod.ts';
import { lookupUser, nodeSecret, ownedDir, type Owner } from '../services/node/server-backend.ts';
import { SUPERUSER, type CcdbConfig } from './config.ts';
import { CcdbError } from './errors.ts';
import { renderPgHba } from './sql.ts';

export interface ClusterPaths {
  dir: string;
  dataDir: string;
  socketDir: string;
  secretFile: string;
}

export interface PreparedCluster extends ClusterPaths {
  /** The server's user; undefined when the component is not root (the server runs as the component's user). */
  owner: Owner | undefined;
  /** The superuser's password. */
  password: string;
}

export function clusterPaths(dir: string): ClusterPaths {
  return { dir, dataDir: join(dir, 'data'), socketDir: join(dir, 'run'), secretFile: join(dir, 'superuser.secret') };
}

/** Directories ready, the superuser's secret read (or made), the cluster made when there is none, pg_hba.conf written. */
export async function prepareCluster(config: CcdbConfig, log: Logger): Promise<PreparedCluster> {
  const paths = clusterPaths(config.dir);
  const owner = process.getuid?.() === 0 ? lookupUser(config.postgres.run_as, 'postgres.run_as', 'Debian\'s postgresql package creates "postgres"') : undefined;
  await mkdir(paths.dir, { recursive: true, mode: 0o711 });
  await chmod(paths.dir, 0o711); // the component's own directory: the server's user passes through it
  if (owner) checkReachable(paths.dir, owner);
  const hasData = existsSync(join(paths.dataDir, 'PG_VERSION'));
  if (hasData && !existsSync(paths.secretFile)) {
    throw new CcdbError(`${paths.secretFile} is gone but ${paths.dataDir} holds a cluster: the superuser's password is lost (restore the file, or move the data away to start afresh)`);
  }
  const password = await nodeSecret(paths.secretFile);
  await ownedDir(paths.socketDir, owner);
  if (!hasData) await initdb(config, paths, owner, password, log);
  // Rewritten at every start, so the cluster never trusts what an edit by hand let in.
  const hba = join(paths.dataDir, 'pg_hba.conf');
  await writeFile(hba, renderPgHba(), { mode: 0o640 });
  if (owner) await chown(hba, owner.uid, owner.gid);
  return { ...paths, owner, password };
}

async function initdb(config: CcdbConfig, paths: ClusterPaths, owner: Owner | undefined, password: string, log: Logger): Promise<void> {
  if (existsSync(paths.dataDir)) {
    if ((await readdir(paths.dataDir)).length > 0) throw new CcdbError(`${paths.dataDir} exists but holds no cluster (no PG_VERSION): move it away`);
    await rmdir(paths.dataDir);
  }
  const staging = `${paths.dataDir}.initdb`;
  await rm(staging, { recursive: true, force: true }); // an initdb that died half-way
  await ownedDir(staging, owner);
  const pwfile = join(paths.dir, 'initdb.pw');
  await writeFile(pwfile, password + '\n', { mode: 0o600 });
  if (owner) await chown(pwfile, owner.uid, owner.gid);
  try {
    const argv = [join(config.postgres.bin_dir, 'initdb'), '-D', staging, '-U', SUPERUSER, `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=scram-sha-256', '--no-locale', '--encoding=UTF8'];
    const cmd = [...asOwner(owner), ...argv];
    const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: paths.dir, encoding: 'utf8' });
    if (r.status !== 0) throw new CcdbError(`initdb of ${paths.dataDir} failed (${r.status ?? r.error?.message}): ${(r.stderr || r.stdout || '').trim().slice(-1000)}`);
  } finally {
    await rm(pwfile, { force: true });
  }
  await rename(staging, paths.dataDir);
  log.info({ data_dir: paths.dataDir }, 'postgresql cluster created');
}

/** argv prefix running a command as the server's user (nothing when the component is not root). */
function asOwner(owner: Owner | undefined): string[] {
  return owner ? ['setpriv', `--reuid=${owner.name}`, `--regid=${owner.name}`, '--init-groups', '--'] : [];
}

/** The server's user must reach `dir` (search permission on it and every parent). */
function checkReachable(dir: string, owner: Owner): void {
  const probe = spawnSync('setpriv', [`--reuid=${owner.name}`, `--regid=${owner.name}`, '--clear-groups', '--', 'test', '-x', dir]);
  if (probe.status !== 0) throw new CcdbError(`user ${owner.name} (postgres.run_as) cannot reach dir ${dir}: give it and its parent directories search permission (o+x)`);
}
