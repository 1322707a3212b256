// The blobstore as the agent sees it: GET a blob by id and check its sha256, PUT a new one.
// A transfer that stops moving is abandoned after a stall timeout (a director killed mid-apply
// must not leave an agent waiting forever on a half-sent blob); a slow one that moves is not.
// A fetch that fails on the network or with a 5xx is tried again a few times: a VM that has
// just come up, or a director busy serving a whole roll, may refuse or drop one connection.
import { createHash, randomUUID } from 'node:crypto';
import { AgentError } from './errors.ts';

/** No byte for this long and a transfer is given up (default). */
const STALL_MS = 60_000;
/** Waits before the second and third attempts of a fetch. */
const RETRY_DELAYS_MS = [500, 2000];

/** A failure worth another attempt: the network's or the server's, not a refusal or a wrong blob. */
class TransientError extends Error {}

/** undici's "fetch failed" hides its reason in `cause`: the code says what happened. */
function reasonOf(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  return e.cause ? `${e.message} (${e.cause.code ?? e.cause.message ?? 'no reason given'})` : e.message;
}

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
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.fetchOnce(id, sha256, signal);
      } catch (err) {
        if (!(err instanceof TransientError) || attempt >= RETRY_DELAYS_MS.length || signal?.aborted) {
          throw err instanceof TransientError ? new AgentError('blob_fetch_failed', err.message, { cause: err.cause }) : err;
        }
        await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[attempt]));
      }
    }
  }

  private async fetchOnce(id: string, sha256: string, signal?: AbortSignal): Promise<Buffer> {
    const url = this.urlOf(id);
    const stalled = new AbortController();
    let timer = setTimeout(() => stalled.abort(), this.stallMs);
    const moved = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => stalled.abort(), this.stallMs);
    };
    const chunks: Buffer[] = [];
    try {
      const res = await fetch(url, { signal: signal ? AbortSignal.any([signal, stalled.signal]) : stalled.signal });
      if (!res.ok) {
        await res.body?.cancel();
        const message = `fetching blob ${id} from ${url}: HTTP ${res.status}`;
        throw res.status >= 500 ? new TransientError(message) : new AgentError('blob_fetch_failed', message);
      }
      for await (const chunk of res.body ?? []) {
        chunks.push(Buffer.from(chunk));
        moved();
      }
    } catch (err) {
      if (err instanceof AgentError || err instanceof TransientError) throw err;
      // A stall is final (the director is gone or wedged); so is the caller's cancel.
      if (stalled.signal.aborted) throw new AgentError('blob_fetch_failed', `fetching blob ${id} from ${url}: no data for ${this.stallMs / 1000} s`, { cause: err });
      if (signal?.aborted) throw new AgentError('blob_fetch_failed', `fetching blob ${id} from ${url}: ${reasonOf(err)}`, { cause: err });
      throw new TransientError(`fetching blob ${id} from ${url}: ${reasonOf(err)}`, { cause: err });
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
