// `.cfignore`: which files of an app directory a push leaves out. The syntax is .gitignore's
// (blank lines and `#` comments skipped, `!` re-includes, a leading or inner `/` anchors a
// pattern to the app root, a trailing `/` matches directories only, `*`, `?`, `[…]` and
// `**`), and, as the cf CLI does, a few names are always left out. Pure: paths in, verdicts out.

/** What the cf CLI never uploads, whatever .cfignore says. */
export const DEFAULT_IGNORES = ['.cfignore', '/manifest.yml', '.gitignore', '.git', '.hg', '.svn', '_darcs', '.DS_Store'];

interface Rule {
  negate: boolean;
  dirOnly: boolean;
  regex: RegExp;
}

export class IgnoreRules {
  private readonly rules: Rule[];

  constructor(patterns: string[]) {
    this.rules = patterns.flatMap((p) => {
      const rule = compile(p);
      return rule ? [rule] : [];
    });
  }

  /** The default ignores followed by the lines of a .cfignore file (later lines win). */
  static fromCfignore(text: string | undefined): IgnoreRules {
    return new IgnoreRules([...DEFAULT_IGNORES, ...(text ?? '').split(/\r?\n/)]);
  }

  /**
   * Is `path` (relative, `/`-separated, no leading `./`) ignored? A path under an ignored
   * directory is ignored too, and — as in git — cannot be re-included.
   */
  ignores(path: string, isDir: boolean): boolean {
    const parts = path.split('/').filter((p) => p !== '');
    for (let i = 1; i < parts.length; i++) {
      if (this.verdict(parts.slice(0, i).join('/'), true)) return true;
    }
    return this.verdict(parts.join('/'), isDir);
  }

  private verdict(path: string, isDir: boolean): boolean {
    let ignored = false;
    for (const r of this.rules) {
      if (r.dirOnly && !isDir) continue;
      if (r.regex.test(path)) ignored = !r.negate;
    }
    return ignored;
  }
}

function compile(line: string): Rule | undefined {
  let p = line.replace(/(?<!\\)\s+$/, '');
  if (p === '' || p.startsWith('#')) return undefined;
  let negate = false;
  if (p.startsWith('!')) {
    negate = true;
    p = p.slice(1);
  } else if (p.startsWith('\\!') || p.startsWith('\\#')) {
    p = p.slice(1);
  }
  let dirOnly = false;
  if (p.endsWith('/')) {
    dirOnly = true;
    p = p.replace(/\/+$/, '');
  }
  if (p.startsWith('./')) p = p.slice(2);
  if (p === '') return undefined;
  // A slash anywhere but at the end anchors the pattern to the root; otherwise it matches a
  // name at any depth.
  const anchored = p.includes('/');
  if (p.startsWith('/')) p = p.slice(1);
  const body = globToRegex(p);
  const regex = new RegExp(anchored ? `^${body}$` : `^(?:.*/)?${body}$`);
  return { negate, dirOnly, regex };
}

/** A gitignore glob → a regex body over `/`-separated paths. */
export function globToRegex(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const before = i === 0 || glob[i - 1] === '/';
        const after = glob[i + 2] === undefined || glob[i + 2] === '/';
        if (before && after) {
          // `**/` any leading directories, `/**` everything inside, `a/**/b` zero or more dirs.
          if (glob[i + 2] === '/') {
            out += '(?:.*/)?';
            i += 2;
          } else {
            out += '.*';
            i += 1;
          }
          continue;
        }
        i += 1;
      }
      out += '[^/]*';
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let cls = glob.slice(i + 1, end);
      if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
      out += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < glob.length) {
      out += escapeChar(glob[i + 1]!);
      i += 1;
    } else {
      out += escapeChar(c);
    }
  }
  return out;
}

function escapeChar(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}
