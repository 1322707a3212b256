// The blobstore as the agent sees it: GET a blob by id and check its sha256, PUT a new one.
import { createHash, randomUUID } from 'node:crypto';
import { AgentError } from './errors.ts';

export class BlobstoreClient {
  constructor(private readonly baseUrl: string) {}

  private urlOf(id: string): string {
    if (!this.baseUrl) throw new AgentError('blob_fetch_failed', 'the agent settings name no blobstore URL');
    return `${this.baseUrl.replace(/\/+$/, '')}/${encodeURIComponent(id)}`;
  }

  async fetchVerified(id: string, sha256: string, signal?: AbortSignal): Promise<Buffer> {
    const url = this.urlOf(id);
    let res: Response;
    try {
      res = await fetch(url, signal ? { signal } : {});
    } catch (err) {
      throw new AgentError('blob_fetch_failed', `fetching blob ${id} from ${url}: ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok) throw new AgentError('blob_fetch_failed', `fetching blob ${id} from ${url}: HTTP ${res.status}`);
    const body = Buffer.from(await res.arrayBuffer());
    const want = sha256.replace(/^sha256:/, '');
    const got = createHash('sha256').update(body).digest('hex');
    if (got !== want) {
      throw new AgentError('digest_mismatch', `verifying blob ${id}: its sha256 is ${got}, but the spec expects ${want}; refusing to install it`);
    }
    return body;
  }

  async upload(body: Buffer): Promise<{ blobstore_id: string; sha256: string }> {
    const id = randomUUID();
    const url = this.urlOf(id);
    let res: Response;
    try {
      res = await fetch(url, { method: 'PUT', body, headers: { 'content-type': 'application/octet-stream' } });
    } catch (err) {
      throw new AgentError('upload_failed', `uploading blob to ${url}: ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok) throw new AgentError('upload_failed', `uploading blob to ${url}: HTTP ${res.status}`);
    return { blobstore_id: id, sha256: createHash('sha256').update(body).digest('hex') };
  }
}
