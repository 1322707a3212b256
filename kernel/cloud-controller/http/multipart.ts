// A streaming multipart/form-data parser: file parts go straight to disk as they arrive (an
// app's bits may be large), text fields are kept in memory up to a bound. Written here
// rather than pulled in because the controller needs only this much of it.
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';

export interface MultipartFile {
  path: string;
  size: number;
  filename: string;
}

export interface MultipartResult {
  fields: Record<string, string>;
  files: Record<string, MultipartFile>;
}

export class MultipartError extends Error {
  override name = 'MultipartError';
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 16 * 1024;

/** The boundary of a `multipart/form-data; boundary=…` content type, or undefined. */
export function boundaryOf(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/form-data\b/i.test(contentType)) return undefined;
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m?.[1] ?? m?.[2];
}

/** `form-data; name="bits"; filename="a.zip"` → {name, filename}. */
export function dispositionParams(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /;\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;
  for (let m = re.exec(value); m; m = re.exec(value)) out[m[1]!.toLowerCase()] = (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1').trim();
  return out;
}

/**
 * Parses a multipart body. `fileFields` are written to `tempPath(name)`; any other part is a
 * text field limited to `maxFieldBytes`. The caller removes the files.
 */
export async function parseMultipart(
  source: AsyncIterable<Buffer>,
  boundary: string,
  opts: { fileFields: readonly string[]; tempPath: (field: string) => string; maxFieldBytes: number },
): Promise<MultipartResult> {
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const result: MultipartResult = { fields: {}, files: {} };
  // A CRLF in front lets the first boundary match the same delimiter as the others.
  let buf: Buffer = Buffer.from(CRLF);
  let state: 'preamble' | 'after' | 'headers' | 'body' | 'done' = 'preamble';
  let sink: FieldSink | FileSink | undefined;
  let partName = '';
  const open: FileSink[] = [];

  try {
    for await (const chunk of source) {
      if (state === 'done') continue; // the epilogue is ignored
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        if (state === 'preamble') {
          const i = buf.indexOf(delimiter);
          if (i < 0) {
            buf = buf.subarray(Math.max(0, buf.length - delimiter.length));
            break;
          }
          buf = buf.subarray(i + delimiter.length);
          state = 'after';
        }
        if (state === 'after') {
          if (buf.length < 2) break;
          if (buf[0] === 0x2d && buf[1] === 0x2d) {
            state = 'done';
            break;
          }
          // Transport padding (spaces/tabs) may precede the CRLF.
          const nl = buf.indexOf(CRLF);
          if (nl < 0) {
            if (buf.length > 256) throw new MultipartError('malformed multipart boundary line');
            break;
          }
          if (buf.subarray(0, nl).toString().trim() !== '') throw new MultipartError('malformed multipart boundary line');
          buf = buf.subarray(nl + 2);
          state = 'headers';
        }
        if (state === 'headers') {
          const i = buf.indexOf(HEADER_END);
          if (i < 0) {
            if (buf.length > MAX_HEADER_BYTES) throw new MultipartError('multipart part headers too large');
            break;
          }
          const headers = parseHeaders(buf.subarray(0, i).toString('utf8'));
          buf = buf.subarray(i + HEADER_END.length);
          const disposition = dispositionParams(`x${(headers['content-disposition'] ?? '').replace(/^[^;]*/, '')}`);
          const name = disposition.name;
          if (!name) throw new MultipartError('a multipart part has no name');
          if (opts.fileFields.includes(name)) {
            const f = new FileSink(opts.tempPath(name), disposition.filename ?? name);
            open.push(f);
            sink = f;
          } else {
            sink = new FieldSink(opts.maxFieldBytes, name);
          }
          partName = name;
          state = 'body';
        }
        if (state === 'body') {
          const i = buf.indexOf(delimiter);
          if (i < 0) {
            // Keep what could be the start of a delimiter split across chunks.
            const safe = buf.length - (delimiter.length - 1);
            if (safe > 0) {
              await sink!.write(buf.subarray(0, safe));
              buf = buf.subarray(safe);
            }
            break;
          }
          await sink!.write(buf.subarray(0, i));
          buf = buf.subarray(i + delimiter.length);
          if (sink instanceof FileSink) {
            await sink.end();
            result.files[partName] = { path: sink.path, size: sink.size, filename: sink.filename };
          } else if (sink) {
            result.fields[partName] = sink.text();
          }
          sink = undefined;
          state = 'after';
          continue;
        }
        break;
      }
    }
    if (state !== 'done') throw new MultipartError('the multipart body ended before its closing boundary');
    return result;
  } catch (err) {
    for (const f of open) f.destroy();
    throw err;
  }
}

function parseHeaders(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const c = line.indexOf(':');
    if (c > 0) out[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
  }
  return out;
}

class FieldSink {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  constructor(
    private readonly max: number,
    private readonly field: string,
  ) {}
  async write(b: Buffer): Promise<void> {
    this.size += b.length;
    if (this.size > this.max) throw new MultipartError(`the multipart field ${this.field} is larger than ${this.max} bytes`);
    this.chunks.push(Buffer.from(b));
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

class FileSink {
  private readonly stream: WriteStream;
  size = 0;
  constructor(
    readonly path: string,
    readonly filename: string,
  ) {
    this.stream = createWriteStream(path, { flags: 'wx' });
  }
  async write(b: Buffer): Promise<void> {
    if (b.length === 0) return;
    this.size += b.length;
    if (!this.stream.write(b)) await once(this.stream, 'drain');
  }
  async end(): Promise<void> {
    this.stream.end();
    await once(this.stream, 'finish');
  }
  destroy(): void {
    this.stream.destroy();
  }
}
