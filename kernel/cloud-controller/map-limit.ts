// Runs an async function over a list with at most `limit` calls in flight, results in the
// list's order: many small requests to a remote blobstore (a HEAD per resource of a push) take
// one round trip's time per `limit` files instead of one per file.

/** `fn` over `items`, `limit` at a time; rejects with the first failure (calls in flight finish unobserved). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`mapLimit: limit must be a positive integer, not ${limit}`);
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
