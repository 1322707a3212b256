// Errors of the manifest package. A manifest mistake is the operator's: ManifestError holds
// every problem found (not just the first), each naming file, line and path, so one deploy
// attempt shows everything to fix.
import { basename } from 'node:path';

export interface Problem {
  file: string;
  line: number;
  /** `instance_groups[2].instances`; empty for the whole document. */
  path: string;
  message: string;
}

/** `local.yml:14 instance_groups[2].instances: expected a number, got string`. */
export function formatProblem(p: Problem): string {
  const where = p.path === '' ? '' : ` ${p.path}:`;
  return `${basename(p.file)}:${p.line}${where} ${p.message}`;
}

export class ManifestError extends Error {
  override name = 'ManifestError';
  readonly code = 'invalid_manifest';
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    // In file order, so the operator reads them top to bottom (the sort is stable).
    const sorted = [...problems].sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
    const lines = sorted.map(formatProblem);
    super(lines.length === 1 ? lines[0]! : `${lines.length} problems:\n  ${lines.join('\n  ')}`);
    this.problems = sorted;
  }

  /** The problems as the one-line sentences the CLI prints. */
  get lines(): string[] {
    return this.problems.map(formatProblem);
  }
}
