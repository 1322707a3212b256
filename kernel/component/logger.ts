// JSON logs (pino) to stdout, with the component's type and index on every line.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export function createLogger(type: string, index: number, level: LevelWithSilent = 'info'): Logger {
  return pino({ level, base: { type, index, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
