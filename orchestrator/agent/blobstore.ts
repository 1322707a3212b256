// The blobstore as the agent sees it: GET a blob by id and check its sha256, PUT a new one.
// A transfer that stops moving is abandoned after a stall timeout (a director killed mid-apply
// must not leave an agent waiting forever on a half-sent blob); a slow one that moves is not.
import { createHash, randomUUID } from 'node:crypto';
import { AgentError } from './errors.ts';

/** No byte for this long and a transfer is given up (default). */
const STALL_MS = 60_000;

export class BlobstoreClient {
  constructor(
    private readonly baseUrl: string,
    private readonly stallMs = STALL_MS,
  ) {}

  private urlOf(id: string): string {
    if (!this.baseUrl) throw new AgentError('blob_fetch_failed', 'the agent settings name no blobstore URL');
    return `${this.baseUrl.replace(/\/+$/, '')}/${encodeURIComponent(id)}`;
  }

  async fetchVerified(id: string, sha256: string, signal?: AbortSignal): Promise<Buffer> {
    const url = this.urlOf(id);
    const stalled = new AbortController();
    let timer = setTimeout(() => stalled.abort(), this.stallMs);
    const moved = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => stalled.abort(), this.stallMs);
    };
    const failed = (err: unknown): AgentError => {
      const why = stalled.signal.aborted ? `no data for ${this.stallMs / 1000} s` : (err as Error).message;
      return new AgentError('blob_fetch_failed', `fetching blob ${id} from ${url}: ${why}`, { cause: err });
    };
    const chunks: Buffer[] = [];
    try {
      const res = await fetch(url, { signal: signal ? AbortSignal.any([signal, stalled.signal]) : stalled.signal });
      if (!res.ok) {
        await res.body?.cancel();
        throw new AgentError('blob_fetch_failed', `fetching blob ${id} from ${url}: HTTP ${res.status}`);
      }
      for await (const chunk of res.body ?? []) {
        chunks.push(Buffer.from(chunk));
        moved();
      }
    } catch (err) {
      throw err instanceof AgentError ? err : failed(err);
    } finally {
      clearTimeout(timer);
    }
    const body = Buffer.concat(chunks);
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
      // At most 64 MB of logs: five minutes is ample even on a slow link.
      res = await fetch(url, { method: 'PUT', body, headers: { 'content-type': 'application/octet-stream' }, signal: AbortSignal.timeout(300_000) });
    } catch (err) {
      throw new AgentError('upload_failed', `uploading blob to ${url}: ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok) throw new AgentError('upload_failed', `uploading blob to ${url}: HTTP ${res.status}`);
    return { blobstore_id: id, sha256: createHash('sha256').update(body).digest('hex') };
  }
}
