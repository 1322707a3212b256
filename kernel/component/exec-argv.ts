// Node flags for a child process that runs one of our own files. From a checkout that file is
// TypeScript, and tsx must load it whether this process got tsx by `--import` (tests) or by
// its API (bin/ingot.js — a child does not inherit that); a release runs plain JavaScript.
export function childExecArgv(mainFile: string): string[] {
  if (!mainFile.endsWith('.ts') || process.execArgv.some((a) => a.includes('tsx'))) return process.execArgv;
  return [...process.execArgv, '--import', import.meta.resolve('tsx')];
}
