// Rendering push events (push.ts) for a person: on a terminal the instance count is one line
// rewritten in place; elsewhere (pipes, CI logs, tests) every change is a plain line of its
// own. The events carry data; only this file decides the words.
import { describeCounts } from './instances.ts';
import type { PushEvent } from './push.ts';
import { formatBytes } from './size.ts';
import { renderSummary } from './summary.ts';

export interface Sink {
  write(text: string): unknown;
}

export class PushRenderer {
  /** Text of a line being rewritten in place (TTY only). */
  private pending = '';

  constructor(
    private readonly out: Sink,
    private readonly err: Sink,
    private readonly opts: { tty: boolean; now?: () => number },
  ) {}

  handle(e: PushEvent): void {
    switch (e.type) {
      case 'app':
        return this.line(`${e.created ? 'Creating' : 'Updating'} app ${e.name} in space ${e.space}`);
      case 'route':
        return this.line(`Mapping route ${e.url}${e.created ? '' : ' (existing)'}`);
      case 'service':
        return this.line(`Binding service instance ${e.name}${e.created ? '' : ' (already bound)'}`);
      case 'files': {
        const ignored = e.ignored ? `, ${e.ignored} ignored` : '';
        return this.line(
          `Matched ${e.files} ${plural(e.files, 'file')} (${size(e.bytes)}${ignored}): ${e.matchedFiles} already on the platform, ${size(e.matchedBytes)} skipped`,
        );
      }
      case 'uploaded':
        return this.line(e.bytes === 0 ? 'Uploaded 0 bytes: every file was already on the platform' : `Uploaded ${size(e.bytes)} (${e.files} ${plural(e.files, 'file')}, zipped)`);
      case 'staging':
        return this.line('Staging app and tracing logs...');
      case 'staging-log':
        return this.line(`   ${e.line.line}`);
      case 'staged':
        return this.line('Staged.');
      case 'stopping':
        return this.line('Stopping app...');
      case 'starting':
        return this.line(e.strategy === 'rolling' ? `Restarting ${e.instances} ${plural(e.instances, 'instance')} one at a time...` : `Starting ${e.instances} ${plural(e.instances, 'instance')}...`);
      case 'instances':
        return this.progress(describeCounts(e.counts, e.verb));
      case 'warning':
        this.flush();
        this.err.write(`warning: ${e.text}\n`);
        return;
      case 'summary':
        this.line('');
        for (const l of renderSummary(e.summary, this.opts.now?.())) this.line(l);
        return;
    }
  }

  /** Ends a line left open by an in-place update. */
  flush(): void {
    if (this.pending) {
      this.out.write('\n');
      this.pending = '';
    }
  }

  private line(text: string): void {
    this.flush();
    this.out.write(`${text}\n`);
  }

  private progress(text: string): void {
    if (!this.opts.tty) return this.line(text);
    this.out.write(`\r\x1b[2K${text}`);
    this.pending = text;
  }
}

function plural(n: number, word: string): string {
  return n === 1 ? word : `${word}s`;
}

function size(bytes: number): string {
  return bytes === 0 ? '0 bytes' : bytes < 1024 ? `${bytes} bytes` : formatBytes(bytes);
}
