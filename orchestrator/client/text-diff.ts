// A line diff of two texts (the cloud-config before and after), shown before anything
// changes: `+ ` added, `- ` removed, a few unchanged lines of context around each change and
// `...` where unchanged lines are left out. Pure; a longest-common-subsequence over lines,
// which is plenty for files of a few thousand lines.

export type DiffLine = { op: ' ' | '+' | '-'; text: string };

export function diffLines(before: string, after: string): DiffLine[] {
  const a = splitLines(before);
  const b = splitLines(after);
  // lcs[i][j]: the common subsequence length of a[i..] and b[j..].
  const lcs: Uint32Array[] = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      out.push({ op: ' ', text: a[i]! });
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) out.push({ op: '-', text: a[i++]! });
    else out.push({ op: '+', text: b[j++]! });
  }
  while (i < a.length) out.push({ op: '-', text: a[i++]! });
  while (j < b.length) out.push({ op: '+', text: b[j++]! });
  return out;
}

/** The diff as printed lines, with `context` unchanged lines around each change; [] when equal. */
export function renderDiff(before: string, after: string, context = 3): string[] {
  const d = diffLines(before, after);
  if (!d.some((l) => l.op !== ' ')) return [];
  const keep = d.map(() => false);
  d.forEach((l, n) => {
    if (l.op === ' ') return;
    for (let k = Math.max(0, n - context); k <= Math.min(d.length - 1, n + context); k++) keep[k] = true;
  });
  const out: string[] = [];
  let skipped = false;
  d.forEach((l, n) => {
    if (!keep[n]) {
      if (!skipped) out.push('  ...');
      skipped = true;
      return;
    }
    skipped = false;
    out.push(`${l.op} ${l.text}`.trimEnd());
  });
  return out;
}

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}
