// A server-sent events parser (text/event-stream, as the controller's live log stream speaks
// it): chunks in, `{event, data}` out; `:` comments (the controller's `: connected` and
// `: keepalive`) are reported as comments so a caller knows the stream is up. Pure.

export type SseItem = { kind: 'event'; event: string; data: string } | { kind: 'comment'; text: string };

export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];

  /** Feeds a chunk; returns every complete item it finished. */
  push(chunk: string): SseItem[] {
    this.buffer += chunk;
    const out: SseItem[] = [];
    let nl: number;
    while ((nl = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, nl);
      const width = this.buffer.startsWith('\r\n', nl) ? 2 : 1;
      // A lone \r at the end of a chunk may be half of \r\n: wait for the next chunk.
      if (this.buffer[nl] === '\r' && width === 1 && nl === this.buffer.length - 1) break;
      this.buffer = this.buffer.slice(nl + width);
      if (line === '') {
        if (this.data.length > 0) out.push({ kind: 'event', event: this.event || 'message', data: this.data.join('\n') });
        this.event = '';
        this.data = [];
        continue;
      }
      if (line.startsWith(':')) {
        out.push({ kind: 'comment', text: line.slice(1).trim() });
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') this.event = value;
      else if (field === 'data') this.data.push(value);
    }
    return out;
  }
}
