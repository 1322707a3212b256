// YAML parsed into plain values that remember where they came from. Ops files and
// interpolation rewrite the document before it is validated, so positions cannot live in
// the yaml package's node tree: instead every map and array we build is registered with
// its file and the line of each child, and every rewrite copies that record along. A
// problem found after three ops files still names the file and line the value came from.
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { formatPath } from '../../kernel/component/config.ts';
import { ManifestError, type Problem } from './errors.ts';

/** A parsed document: its plain value and the file it was read from. */
export interface YamlSource {
  readonly file: string;
  readonly value: unknown;
}

export type PathKey = string | number;

interface Origin {
  file: string;
  line: number;
  /** Line of each child: the key's line for a map entry, the item's line for an array. */
  children: Map<PathKey, Loc>;
}

export interface Loc {
  file: string;
  line: number;
}

const origins = new WeakMap<object, Origin>();

/** Parses YAML text; a syntax error becomes a ManifestError naming file and line. */
export function readYaml(text: string, file: string): YamlSource {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ManifestError(
      doc.errors.map((e) => ({ file, line: lines.linePos(e.pos[0]).line, path: '', message: e.message.split('\n')[0]! })),
    );
  }
  const lineAt = (offset: number | undefined) => lines.linePos(offset ?? 0).line;
  return { file, value: convert(doc.contents, doc, file, lineAt) ?? {} };
}

function convert(node: unknown, doc: Document, file: string, lineAt: (o?: number) => number): unknown {
  if (isAlias(node)) return convert(node.resolve(doc), doc, file, lineAt);
  if (isScalar(node)) return node.value;
  if (isMap(node)) {
    const out: Record<string, unknown> = {};
    const children = new Map<PathKey, Loc>();
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      // `<<` merge keys are not part of BOSH manifests; they are kept as ordinary keys.
      setKey(out, key, convert(pair.value, doc, file, lineAt));
      children.set(key, { file, line: lineAt((pair.key as Node | null)?.range?.[0]) });
    }
    origins.set(out, { file, line: lineAt(node.range?.[0]), children });
    return out;
  }
  if (isSeq(node)) {
    const children = new Map<PathKey, Loc>();
    const out = node.items.map((item, i) => {
      children.set(i, { file, line: lineAt((item as Node | null)?.range?.[0] ?? node.range?.[0]) });
      return convert(item, doc, file, lineAt);
    });
    origins.set(out, { file, line: lineAt(node.range?.[0]), children });
    return out;
  }
  return null;
}

/** File and line of the deepest value on the path that is known (a missing key points at its parent). */
export function locate(source: YamlSource, path: readonly PathKey[]): { file: string; line: number } {
  let here = { file: source.file, line: 1 };
  let value: unknown = source.value;
  if (isObject(value)) here = originOf(value, here);
  for (const key of path) {
    if (!isObject(value)) break;
    const origin = origins.get(value);
    const child = origin?.children.get(Array.isArray(value) ? Number(key) : String(key));
    if (child) here = child;
    value = (value as Record<PathKey, unknown>)[key];
    if (isObject(value)) {
      const inner = origins.get(value);
      // A child that came from another file (an ops file) is located there.
      if (inner && inner.file !== here.file) here = { file: inner.file, line: inner.line };
    }
  }
  return here;
}

function originOf(value: object, fallback: { file: string; line: number }) {
  const o = origins.get(value);
  return o ? { file: o.file, line: o.line } : fallback;
}

/** A problem at a path of a source, with its file and line. */
export function problemAt(source: YamlSource, path: readonly PathKey[], message: string): Problem {
  return { ...locate(source, path), path: formatPath([...path]), message };
}

/** Sets an own key, even `__proto__`: manifest keys are data, never prototypes. */
export function setKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

export function isObject(v: unknown): v is object {
  return typeof v === 'object' && v !== null;
}

export function isPlainMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The value at a path of map keys (own keys only), or undefined. */
export function dig(obj: unknown, keys: readonly string[]): unknown {
  let v = obj;
  for (const k of keys) {
    if (!isPlainMap(v) || !Object.hasOwn(v, k)) return undefined;
    v = v[k];
  }
  return v;
}

/** Sets the value at a path of map keys, making maps on the way (`a.b.c` of a dotted property name). */
export function setPath(root: Record<string, unknown>, keys: readonly string[], value: unknown): void {
  let here = root;
  for (const k of keys.slice(0, -1)) {
    if (!isPlainMap(here[k])) setKey(here, k, {});
    here = here[k] as Record<string, unknown>;
  }
  setKey(here, keys[keys.length - 1]!, value);
}

/** A deep copy that keeps every container's origin, so rewrites of the copy stay located. */
export function cloneTracked<T>(value: T): T {
  if (Array.isArray(value)) {
    const out = value.map((v) => cloneTracked(v));
    const o = origins.get(value);
    if (o) origins.set(out, { ...o, children: new Map(o.children) });
    return out as T;
  }
  if (isPlainMap(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      setKey(out, k, cloneTracked(v));
    }
    const o = origins.get(value);
    if (o) origins.set(out, { ...o, children: new Map(o.children) });
    return out as T;
  }
  return value;
}

/** Records that `child` (at `key` of `container`) came from `line` of `file`. */
export function noteChild(container: object, key: PathKey, at: Loc): void {
  let o = origins.get(container);
  if (!o) {
    o = { ...at, children: new Map() };
    origins.set(container, o);
  }
  o.children.set(key, at);
}

/** Keeps an array's per-item lines in step with a splice (insert or delete at `index`). */
export function shiftItems(array: unknown[], index: number, removed: number, inserted: Array<Loc | undefined>): void {
  const o = origins.get(array);
  if (!o) return;
  const lines: Array<Loc | undefined> = [];
  for (let i = 0; i < array.length + removed - inserted.length; i++) lines.push(o.children.get(i));
  lines.splice(index, removed, ...inserted);
  o.children = new Map();
  lines.forEach((l, i) => {
    if (l !== undefined) o.children.set(i, l);
  });
}

/** Copies the origin of `from` onto `to` (a rebuilt container holding the same keys). */
export function keepOrigin(from: unknown, to: object): void {
  if (!isObject(from)) return;
  const o = origins.get(from);
  if (o) origins.set(to, { ...o, children: new Map(o.children) });
}
