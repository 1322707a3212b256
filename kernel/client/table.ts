// Plain-text tables and key/value blocks as the CLI prints them: columns padded to their
// widest cell, no trailing spaces. Pure.

export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

export function keyValues(pairs: Array<[string, string]>): string[] {
  const width = Math.max(...pairs.map(([k]) => k.length + 1));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width)}   ${v}`.trimEnd());
}
