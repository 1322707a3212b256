// A small path router over node:http: routes are `METHOD /v3/apps/:guid/actions/start`
// patterns, matched segment by segment. Pure: it only says which route a request reaches,
// or which methods the path would accept (for 405).

export interface Match<T> {
  route: T;
  params: Record<string, string>;
}

interface Entry<T> {
  method: string;
  segments: string[];
  route: T;
}

export class PathRouter<T> {
  private readonly entries: Array<Entry<T>> = [];

  add(method: string, pattern: string, route: T): void {
    this.entries.push({ method: method.toUpperCase(), segments: split(pattern), route });
  }

  /** The route for this method and path; `allowed` lists other methods when only those match. */
  match(method: string, path: string): { match: Match<T> } | { allowed: string[] } | null {
    const segments = split(path);
    const allowed: string[] = [];
    // Literal segments beat parameters: /v3/apps/:guid vs /v3/apps/actions never collide, but
    // /v3/processes/:guid/stats and a hypothetical /v3/processes/x/stats would.
    let best: { match: Match<T>; score: number } | undefined;
    for (const e of this.entries) {
      const params = matchSegments(e.segments, segments);
      if (!params) continue;
      if (e.method !== method.toUpperCase() && !(method.toUpperCase() === 'HEAD' && e.method === 'GET')) {
        allowed.push(e.method);
        continue;
      }
      const score = e.segments.filter((s) => !s.startsWith(':')).length;
      if (!best || score > best.score) best = { match: { route: e.route, params }, score };
    }
    if (best) return { match: best.match };
    return allowed.length ? { allowed: [...new Set(allowed)] } : null;
  }
}

function split(path: string): string[] {
  return path.split('/').filter((s) => s.length > 0);
}

function matchSegments(pattern: string[], actual: string[]): Record<string, string> | null {
  if (pattern.length !== actual.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const a = actual[i]!;
    if (p.startsWith(':')) {
      let value: string;
      try {
        value = decodeURIComponent(a);
      } catch {
        return null;
      }
      params[p.slice(1)] = value;
    } else if (p !== a) {
      return null;
    }
  }
  return params;
}
