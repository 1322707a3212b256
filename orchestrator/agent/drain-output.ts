// What a drain script prints, per BOSH: one integer on the last line of stdout. A positive n
// means "wait n seconds, then stop me"; a negative n means "wait |n| seconds, then run me again
// with `status`" (dynamic drain). Pure.

export type DrainAnswer = { kind: 'wait'; seconds: number } | { kind: 'poll'; seconds: number };

export function parseDrainOutput(stdout: string): DrainAnswer {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const last = lines.at(-1);
  if (last === undefined) throw new Error('Parsing drain output: the script printed nothing; it must print an integer');
  if (!/^-?\d+$/.test(last)) throw new Error(`Parsing drain output: expected an integer, got ${JSON.stringify(last.slice(0, 80))}`);
  const n = Number.parseInt(last, 10);
  return n < 0 ? { kind: 'poll', seconds: -n } : { kind: 'wait', seconds: n };
}
