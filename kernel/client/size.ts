// Sizes as developers write them in flags and manifests — `256M`, `1G`, `512` (megabytes) —
// parsed strictly into megabytes, and byte counts rendered the way `cf` prints them (`12.3M`).

const UNITS: Record<string, number> = { M: 1, MB: 1, G: 1024, GB: 1024, T: 1024 * 1024, TB: 1024 * 1024 };

/** Why `text` is not a size, or the size in MB. Pure; the caller names the flag or key. */
export function parseSizeMb(text: string | number): { mb: number } | { error: string } {
  const raw = typeof text === 'number' ? String(text) : text.trim();
  const m = /^(\d+)\s*([A-Za-z]*)$/.exec(raw);
  const unit = m?.[2]?.toUpperCase() ?? '';
  const factor = unit === '' ? 1 : UNITS[unit];
  if (!m || factor === undefined) return { error: `"${raw}" is not a size; expected a whole number with M or G, such as 256M, 1G or 512 (MB)` };
  const mb = Number(m[1]) * factor;
  if (!Number.isSafeInteger(mb) || mb <= 0) return { error: `"${raw}" must be more than 0` };
  return { mb };
}

/** `1024` → `1G`, `300` → `300M`: the shortest exact form of a size in MB. */
export function formatMb(mb: number): string {
  if (mb >= 1024 && mb % 1024 === 0) return `${mb / 1024}G`;
  return `${mb}M`;
}

/** `0` → `0`, `512` → `512B`, `12_900_000` → `12.3M`. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes <= 0) return '0';
  const steps: Array<[string, number]> = [
    ['T', 1024 ** 4],
    ['G', 1024 ** 3],
    ['M', 1024 ** 2],
    ['K', 1024],
  ];
  for (const [unit, size] of steps) {
    if (bytes >= size) {
      const v = bytes / size;
      return `${v >= 100 ? Math.round(v) : Number(v.toFixed(1))}${unit}`;
    }
  }
  return `${Math.round(bytes)}B`;
}
