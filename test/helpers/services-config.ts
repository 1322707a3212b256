// The problems a config text has under a component schema, for unit tests of config validation.
import type { z } from 'zod';
import { ConfigError, parseConfig } from '../../kernel/component/mod.ts';

export function configProblems(text: string, file: string, schema: z.ZodTypeAny): string[] {
  try {
    parseConfig(text, file, schema);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}
