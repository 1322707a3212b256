// The director's blobstore: content-addressed files under data_dir/blobs (the id of a blob is
// its sha256), written to a temporary file, fsynced and renamed into place so a crash never
// leaves half a blob under a real id. The director's own code puts and gets; agents read over
// HTTP (api.ts) at `<blobstore url>/<id>`, the path orchestrator/agent/blobstore.ts fetches.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

const ID = /^[0-9a-f]{64}$/;

export class Blobstore {
  constructor(private readonly root: string) {}

  static isId(id: string): boolean {
    return ID.test(id);
  }

  async init(): Promise<void> {
    await mkdir(join(this.root, 'tmp'), { recursive: true });
    // Temporary files of a director killed mid-write.
    await rm(join(this.root, 'tmp'), { recursive: true, force: true });
    await mkdir(join(this.root, 'tmp'), { recursive: true });
  }

  pathOf(id: string): string {
    if (!Blobstore.isId(id)) throw new Error(`Locating blob ${JSON.stringify(id)}: a blob id is a sha256 in hex`);
    return join(this.root, id.slice(0, 2), id);
  }

  has(id: string): boolean {
    return Blobstore.isId(id) && existsSync(this.pathOf(id));
  }

  async put(body: Buffer): Promise<string> {
    const id = createHash('sha256').update(body).digest('hex');
    if (this.has(id)) return id;
    const tmp = join(this.root, 'tmp', randomUUID());
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await mkdir(join(this.root, id.slice(0, 2)), { recursive: true });
    await rename(tmp, this.pathOf(id));
    return id;
  }

  /** Stores a file (an upload already on disk); the caller keeps or removes the original. */
  async putFile(path: string): Promise<string> {
    return this.put(await readFile(path));
  }

  async get(id: string): Promise<Buffer> {
    return readFile(this.pathOf(id));
  }

  async size(id: string): Promise<number> {
    return (await stat(this.pathOf(id))).size;
  }

  stream(id: string): NodeJS.ReadableStream {
    return createReadStream(this.pathOf(id));
  }

  async delete(id: string): Promise<void> {
    await rm(this.pathOf(id), { force: true });
  }
}
