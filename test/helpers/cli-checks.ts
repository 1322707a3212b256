// What a CLI run in a test must show: `ok` — exit 0; `refused` — exit 1 and exactly one line on
// stderr, starting `ingot: ` and matching the pattern, never a stack. Bound to the file's own
// `cli` (its INGOT_HOME, its timeout).

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The assertions these need (an ava ExecutionContext has them). */
export interface CliAsserts {
  is: (a: unknown, b: unknown, m?: string) => void;
  regex: (s: string, r: RegExp, m?: string) => void;
  notRegex: (s: string, r: RegExp, m?: string) => void;
}

export function cliChecks(cli: (...args: string[]) => Promise<CliRun>) {
  return {
    async ok(t: Pick<CliAsserts, 'is'>, ...args: string[]): Promise<CliRun> {
      const r = await cli(...args);
      t.is(r.code, 0, `ingot ${args.join(' ')}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      return r;
    },
    async refused(t: CliAsserts, pattern: RegExp, ...args: string[]): Promise<CliRun> {
      const r = await cli(...args);
      t.is(r.code, 1, `ingot ${args.join(' ')} should fail; stdout: ${r.stdout}; stderr: ${r.stderr}`);
      const lines = r.stderr.trimEnd().split('\n');
      t.is(lines.length, 1, `one line: ${r.stderr}`);
      t.regex(lines[0]!, /^ingot: /);
      t.regex(lines[0]!, pattern);
      t.notRegex(r.stderr, /\n\s+at /, 'no stack');
      return r;
    },
  };
}
