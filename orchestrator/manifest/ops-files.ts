// Ops files (`-o`): BOSH's go-patch semantics over a parsed manifest. Each entry is
// `{type: replace|remove, path, value}`; a path is a JSON-pointer-like list of tokens:
// `/key`, `/0` (index), `/-` (append, replace only), `/name=foo` (the one array item whose
// `name` is foo), and a trailing `?` on a token makes it and everything after optional
// (replace creates missing maps and matching items, remove does nothing). Every failure
// names the ops file, its entry index and the path, with the entry's line.
import { ManifestError, type Problem } from './errors.ts';
import {
  cloneTracked,
  isPlainMap,
  setKey,
  locate,
  noteChild,
  problemAt,
  shiftItems,
  type Loc,
  type YamlSource,
} from './yaml-source.ts';

type Token =
  | { kind: 'key'; key: string; optional: boolean }
  | { kind: 'index'; index: number; optional: boolean }
  | { kind: 'append'; optional: boolean }
  | { kind: 'match'; key: string; value: string; optional: boolean };

/** Parses `/a/b=c/0/-` into tokens; throws a message for a malformed pointer. */
export function parsePointer(pointer: string): Token[] {
  if (pointer === '' || pointer === '/') return [];
  if (!pointer.startsWith('/')) throw new Error(`path must start with /`);
  let optional = false;
  return pointer
    .slice(1)
    .split('/')
    .map((raw) => {
      let text = raw;
      if (text.endsWith('?')) {
        optional = true;
        text = text.slice(0, -1);
      }
      const unescape = (s: string) => s.replace(/~1/g, '/').replace(/~0/g, '~');
      if (text === '-') return { kind: 'append', optional };
      if (/^\d+$/.test(text)) return { kind: 'index', index: Number(text), optional };
      const eq = text.indexOf('=');
      if (eq > 0) return { kind: 'match', key: unescape(text.slice(0, eq)), value: unescape(text.slice(eq + 1)), optional };
      return { kind: 'key', key: unescape(text), optional };
    });
}

interface Op {
  type: 'replace' | 'remove';
  path: string;
  value: unknown;
  /** Where the entry's value is written, so values it inserts are located in the ops file. */
  at: Loc;
}

/**
 * Applies ops files in order to a copy of the document. The input is not changed.
 * Problems from all entries of all files are collected, then thrown together.
 */
export function applyOps(doc: YamlSource, opsFiles: readonly YamlSource[]): YamlSource {
  let value = cloneTracked(doc.value);
  const problems: Problem[] = [];
  for (const ops of opsFiles) {
    if (!Array.isArray(ops.value)) {
      problems.push(problemAt(ops, [], 'an ops file must be a list of operations'));
      continue;
    }
    ops.value.forEach((raw, i) => {
      const op = readOp(ops, raw, i, problems);
      if (!op) return;
      try {
        value = applyOne(value, op);
      } catch (err) {
        // The path is the operation's, not the document's: the document path is in the message.
        problems.push({ ...problemAt(ops, [i, 'path'], ''), path: `[${i}]`, message: `${op.type} ${op.path} failed at ${(err as Error).message}` });
      }
    });
  }
  if (problems.length > 0) throw new ManifestError(problems);
  return { file: doc.file, value };
}

function readOp(ops: YamlSource, raw: unknown, i: number, problems: Problem[]): Op | undefined {
  if (!isPlainMap(raw)) {
    problems.push(problemAt(ops, [i], 'expected an operation {type, path, value}'));
    return undefined;
  }
  const before = problems.length;
  if (raw.type !== 'replace' && raw.type !== 'remove') {
    problems.push(problemAt(ops, [i, 'type'], `expected replace or remove, got ${JSON.stringify(raw.type ?? null)}`));
  }
  if (typeof raw.path !== 'string') problems.push(problemAt(ops, [i, 'path'], 'required: a path such as /instance_groups/name=nats/instances'));
  if (raw.type === 'replace' && !('value' in raw)) problems.push(problemAt(ops, [i], 'replace needs a value'));
  if (problems.length > before) return undefined;
  return { type: raw.type as Op['type'], path: raw.path as string, value: raw.value, at: locate(ops, [i, 'value']) };
}

/** Applies one operation, mutating `root` (already a private copy) where it can. */
function applyOne(root: unknown, op: Op): unknown {
  const tokens = parsePointer(op.path);
  if (tokens.length === 0) {
    if (op.type === 'remove') throw new Error('cannot remove the whole document');
    return cloneTracked(op.value);
  }
  const valueLine = op.at;
  let here = root;
  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t]!;
    const last = t === tokens.length - 1;
    const at = () => '/' + op.path.slice(1).split('/').slice(0, t + 1).join('/');
    if (token.kind === 'key') {
      if (!isPlainMap(here)) throw new Error(`${at()}: expected a map, found ${describe(here)}`);
      if (last) {
        if (op.type === 'remove') {
          if (!Object.hasOwn(here, token.key)) {
            if (token.optional) return root;
            throw new Error(`${at()}: no key ${token.key}`);
          }
          delete here[token.key];
        } else {
          setKey(here, token.key, cloneTracked(op.value));
          noteChild(here, token.key, valueLine);
        }
        return root;
      }
      if (!Object.hasOwn(here, token.key)) {
        if (!token.optional || op.type === 'remove') {
          if (token.optional) return root;
          throw new Error(`${at()}: no key ${token.key} (append ? to create it)`);
        }
        setKey(here, token.key, tokens[t + 1]!.kind === 'key' ? {} : []);
      }
      here = here[token.key];
      continue;
    }
    if (!Array.isArray(here)) throw new Error(`${at()}: expected an array, found ${describe(here)}`);
    if (token.kind === 'append') {
      if (!last || op.type === 'remove') throw new Error(`${at()}: - (append) may only end a replace path`);
      here.push(cloneTracked(op.value));
      shiftItems(here, here.length - 1, 0, [valueLine]);
      return root;
    }
    let index: number;
    if (token.kind === 'index') {
      index = token.index;
      if (index >= here.length) {
        if (op.type === 'remove' && token.optional) return root;
        throw new Error(`${at()}: index ${index} out of range (the array has ${here.length} items)`);
      }
    } else {
      const matches = here.flatMap((item, i) => (isPlainMap(item) && String(item[token.key]) === token.value ? [i] : []));
      if (matches.length > 1) throw new Error(`${at()}: ${token.key}=${token.value} matches ${matches.length} items`);
      if (matches.length === 0) {
        if (!token.optional) throw new Error(`${at()}: no item with ${token.key}=${token.value}`);
        if (op.type === 'remove') return root;
        // An optional matcher that finds nothing creates the item it was looking for.
        here.push(last ? cloneTracked(op.value) : { [token.key]: token.value });
        shiftItems(here, here.length - 1, 0, [valueLine]);
        if (last) return root;
        here = here[here.length - 1];
        continue;
      }
      index = matches[0]!;
    }
    if (last) {
      if (op.type === 'remove') {
        here.splice(index, 1);
        shiftItems(here, index, 1, []);
      } else {
        here[index] = cloneTracked(op.value);
        shiftItems(here, index, 1, [valueLine]);
      }
      return root;
    }
    here = here[index];
  }
  return root;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null || v === undefined) return 'nothing';
  return `a ${typeof v}`;
}

/** `-v key=value` flags: values stay strings, as the BOSH CLI keeps them. */
export function parseVarFlags(flags: readonly string[]): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    if (eq <= 0) throw new ManifestError([{ file: '-v', line: 0, path: '', message: `expected key=value, got ${JSON.stringify(flag)}` }]);
    setKey(vars, flag.slice(0, eq), flag.slice(eq + 1));
  }
  return vars;
}
