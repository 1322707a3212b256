// A loopback npm registry, so tests that `npm install` never reach the internet. It serves
// every package installed in this checkout's node_modules (nested copies too, so several
// versions of one package can coexist, as js-yaml 3 and 4 do here): packuments at
// /<name> (and /@scope%2fname) and tarballs packed from the installed files at
// /<name>/-/<name>-<version>.tgz. It listens on 127.0.0.1, or on the host's own address for
// stagers in containers (whose 127.0.0.1 is their own); either way nothing leaves the machine.
// Tarballs are packed on first use with fixed mtimes and kept,
// so a packument's integrity always matches the tarball served.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { readdir, readFile, lstat } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create as createTar } from 'tar';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** npm's own fixed mtime for reproducible tarballs. */
const TAR_MTIME = new Date('1985-10-26T08:15:00Z');

export interface NpmRegistry {
  /** http://<host>:<port>/ — for npm_config_registry. */
  url: string;
  host: string;
  port: number;
  /** Every request path, in order. */
  requests: string[];
  /** `name@version` of every tarball served. */
  tarballsServed: string[];
  close(): Promise<void>;
}

interface Installed {
  dir: string;
  manifest: Record<string, unknown> & { name: string; version: string };
}

interface Packed {
  tgz: Buffer;
  integrity: string;
  shasum: string;
}

export async function startNpmRegistry(opts: { nodeModules?: string; host?: string } = {}): Promise<NpmRegistry> {
  const host = opts.host ?? '127.0.0.1';
  const index = await indexNodeModules(opts.nodeModules ?? join(ROOT, 'node_modules'));
  const packed = new Map<string, Promise<Packed>>();
  const requests: string[] = [];
  const tarballsServed: string[] = [];
  const sockets = new Set<Socket>();
  let base = '';

  const pack = (p: Installed): Promise<Packed> => {
    const key = `${p.manifest.name}@${p.manifest.version}`;
    let got = packed.get(key);
    if (!got) {
      got = packTarball(p.dir);
      packed.set(key, got);
    }
    return got;
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    requests.push(path);
    const reply = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    void (async () => {
      const parts = decodeURIComponent(path).replace(/^\/+/, '').split('/');
      const scoped = parts[0]?.startsWith('@');
      const name = scoped ? `${parts[0]}/${parts[1]}` : parts[0]!;
      const rest = parts.slice(scoped ? 2 : 1);
      const versions = index.get(name);
      if (!versions) return reply(404, { error: 'not found' });
      if (rest.length === 0) {
        const doc = await packument(name, versions, pack, base);
        return reply(200, doc);
      }
      if (rest[0] === '-' && rest.length === 2) {
        const bare = name.split('/').pop()!;
        const hit = [...versions.values()].find((p) => rest[1] === `${bare}-${p.manifest.version}.tgz`);
        if (!hit) return reply(404, { error: 'no such tarball' });
        const { tgz } = await pack(hit);
        tarballsServed.push(`${name}@${hit.manifest.version}`);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': tgz.length });
        return void res.end(tgz);
      }
      reply(404, { error: 'not found' });
    })().catch((err: Error) => reply(500, { error: err.message }));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  base = `http://${host}:${port}/`;

  return {
    url: base,
    host,
    port,
    requests,
    tarballsServed,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** name → version → installed copy, from a node_modules tree and every nested one. */
async function indexNodeModules(root: string): Promise<Map<string, Map<string, Installed>>> {
  const index = new Map<string, Map<string, Installed>>();
  const visit = async (nodeModules: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(nodeModules);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      if (name.startsWith('@')) {
        for (const sub of await readdir(join(nodeModules, name)).catch(() => [] as string[])) await visitPackage(join(nodeModules, name, sub));
      } else {
        await visitPackage(join(nodeModules, name));
      }
    }
  };
  const visitPackage = async (dir: string): Promise<void> => {
    if (!(await lstat(dir)).isDirectory()) return;
    let manifest: Installed['manifest'];
    try {
      manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Installed['manifest'];
    } catch {
      return;
    }
    if (typeof manifest.name === 'string' && typeof manifest.version === 'string') {
      let versions = index.get(manifest.name);
      if (!versions) index.set(manifest.name, (versions = new Map()));
      if (!versions.has(manifest.version)) versions.set(manifest.version, { dir, manifest });
    }
    await visit(join(dir, 'node_modules'));
  };
  await visit(root);
  return index;
}

async function packument(name: string, versions: Map<string, Installed>, pack: (p: Installed) => Promise<Packed>, base: string): Promise<Record<string, unknown>> {
  const bare = name.split('/').pop()!;
  const out: Record<string, unknown> = {};
  for (const [version, p] of versions) {
    const { integrity, shasum } = await pack(p);
    const { _id, _resolved, _integrity, _from, ...manifest } = p.manifest as Record<string, unknown>;
    void _id, _resolved, _integrity, _from;
    out[version] = {
      ...manifest,
      _id: `${name}@${version}`,
      dist: { tarball: `${base}${name}/-/${bare}-${version}.tgz`, integrity, shasum },
    };
  }
  const latest = [...versions.keys()].sort(compareVersions).pop()!;
  return { _id: name, name, 'dist-tags': { latest }, versions: out };
}

/** Packs a package directory as npm does: everything under `package/`, minus node_modules. */
async function packTarball(dir: string): Promise<Packed> {
  const files: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      if (rel === '' && name === 'node_modules') continue;
      const relPath = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(dir, relPath));
      if (st.isDirectory()) await walk(relPath);
      else if (st.isFile()) files.push(relPath);
    }
  };
  await walk('');
  const chunks: Buffer[] = [];
  const stream = createTar({ gzip: true, cwd: dir, prefix: 'package', portable: true, mtime: TAR_MTIME }, files);
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  const tgz = Buffer.concat(chunks);
  return {
    tgz,
    integrity: `sha512-${createHash('sha512').update(tgz).digest('base64')}`,
    shasum: createHash('sha1').update(tgz).digest('hex'),
  };
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((x) => Number(x));
  const pb = b.split(/[.+-]/).map((x) => Number(x));
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
