// `ingot logs NAME`: the app's live log (the controller's event stream, reconnected when it
// drops) until interrupted; `--recent` prints the lines the controller keeps and exits.
import type { Argv } from 'yargs';
import type { LogStream } from '../api-client.ts';
import { formatLogLine } from '../log-format.ts';
import { findApp, openSpaceSession } from '../session.ts';
import { jsonOption, print } from './common.ts';

/** Waits between reconnects grow to this. */
const MAX_BACKOFF_MS = 5000;

export function logCommands(y: Argv): Argv {
  return y.command(
    'logs <name>',
    "Follow an app's logs (or print the recent ones)",
    (a) =>
      a
        .positional('name', { type: 'string', demandOption: true })
        .option('recent', { type: 'boolean', default: false, describe: 'Print the recent lines and exit' })
        .option('json', { ...jsonOption, describe: 'One JSON object per line' }),
    async (args) => {
      const s = await openSpaceSession();
      const app = await findApp(s, args.name);
      const show = (l: Parameters<typeof formatLogLine>[0]): void => {
        process.stdout.write(`${args.json ? JSON.stringify(l) : formatLogLine(l)}\n`);
      };
      if (args.recent) {
        for (const l of await s.client.recentLogs(app.guid)) show(l);
        return;
      }
      if (!args.json) print(`Retrieving logs for app ${app.name} in org ${s.organization.name} / space ${s.space.name}...\n`);
      let stream: LogStream | undefined;
      let stopping = false;
      const stop = (): void => {
        stopping = true;
        stream?.close();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      let backoff = 250;
      while (!stopping) {
        try {
          stream = await s.client.streamLogs(app.guid, show);
          await stream.ready;
          backoff = 250;
          await stream.ended;
        } catch (err) {
          if (stopping) break;
          // An app deleted meanwhile ends the command; other failures are retried.
          if ((err as { code?: string }).code === 'api_error' && (err as { status?: number }).status === 404) throw err;
          if ((err as { code?: string }).code === 'session_expired' || (err as { code?: string }).code === 'not_logged_in') throw err;
          process.stderr.write(`ingot: the log stream broke (${(err as Error).message}); reconnecting\n`);
        }
        if (stopping) break;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    },
  );
}
