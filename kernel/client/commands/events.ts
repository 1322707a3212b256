// `ingot events APP`: what happened to an app, newest first, as `cf events` prints it — time,
// event, actor, description — or the events as JSON.
import type { Argv } from 'yargs';
import type { AuditEvent } from '../api-types.ts';
import { findApp, openSpaceSession, spaceLabel } from '../session.ts';
import { table } from '../table.ts';
import { jsonOption, print, printJson } from './common.ts';

/** Keys that identify rather than describe: left out of the description. */
const HIDDEN = /(^|_)guid$|^version$|^instance$/;

/** An event's data in one line: `instances: 3, memory_in_mb: 512` (a request's fields, unwrapped). */
export function describeEvent(e: Pick<AuditEvent, 'data'>): string {
  const data = e.data as Record<string, unknown>;
  const source = typeof data.request === 'object' && data.request !== null ? (data.request as Record<string, unknown>) : data;
  const parts: string[] = [];
  const walk = (o: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(o)) {
      if (HIDDEN.test(k) || v === undefined) continue;
      const key = `${prefix}${k}`;
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, `${key}.`);
      else parts.push(`${key}: ${Array.isArray(v) ? v.join(' ') : String(v)}`);
    }
  };
  walk(source, '');
  return parts.join(', ');
}

export function eventCommands(y: Argv): Argv {
  return y.command(
    'events <name>',
    'Show the recent events of an app: who did what, when',
    (a) => a.positional('name', { type: 'string', demandOption: true }).option('json', jsonOption),
    async (args) => {
      const s = await openSpaceSession();
      const app = await findApp(s, args.name);
      const events = await s.client.events(app.guid);
      if (args.json) return printJson(events);
      print(`Getting events for app ${app.name} in space ${spaceLabel(s)} as ${s.target.user ?? 'you'}...`);
      if (events.length === 0) return print('No events found.');
      print(['', ...table(['time', 'event', 'actor', 'description'], events.map((e) => [e.created_at, e.type, e.actor?.name ?? '', describeEvent(e)]))]);
    },
  );
}
