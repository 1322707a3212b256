// `((var))` interpolation. A value that is exactly `((name))` is replaced by the variable
// itself, keeping its type (a number stays a number, a certificate stays a map); a
// placeholder inside a longer string is stringified into it. `((name.key))` reads a
// sub-key (`((nats_tls.certificate))`). Values come from `-v` flags first, then from the
// store, where the manifest's `variables:` are generated on first use. Every missing
// variable is reported with the path where it was used.
import { ManifestError, type Problem } from './errors.ts';
import { generateCertificate } from './certificates.ts';
import { generatePassword, generateRsa, generateSsh, type VariableDefinition, type VariableStore } from './variables.ts';
import { isPlainMap, keepOrigin, setKey, problemAt, type PathKey, type YamlSource } from './yaml-source.ts';

const PLACEHOLDER = /\(\((!?[-\w./:]+)\)\)/g;
const WHOLE = /^\(\((!?[-\w./:]+)\)\)$/;

/** Every `((…))` reference in the document, by variable name (the part before the first dot). */
export function referencedVariables(value: unknown): Set<string> {
  const names = new Set<string>();
  walkStrings(value, (s) => {
    for (const m of s.matchAll(PLACEHOLDER)) names.add(splitRef(m[1]!).name);
  });
  return names;
}

function walkStrings(value: unknown, visit: (s: string) => void): void {
  if (typeof value === 'string') visit(value);
  else if (Array.isArray(value)) value.forEach((v) => walkStrings(v, visit));
  else if (isPlainMap(value)) Object.values(value).forEach((v) => walkStrings(v, visit));
}

function splitRef(ref: string): { name: string; keys: string[] } {
  // `!` only stops spiff-era tools from reading the name; it has no meaning here.
  const [name, ...keys] = ref.replace(/^!/, '').split('.');
  return { name: name!, keys };
}

/**
 * Interpolates a document. `vars` are the `-v`/`-l` values; the document's `variables:`
 * section says which others may be generated into `store`. The `variables:` section itself
 * is left as written.
 */
export async function interpolate(
  doc: YamlSource,
  vars: Readonly<Record<string, unknown>>,
  store: VariableStore,
): Promise<YamlSource> {
  const problems: Problem[] = [];
  const definitions = readDefinitions(doc, problems);
  const values = new Map<string, unknown>();
  const root = doc.value;
  const body = isPlainMap(root) ? Object.entries(root).filter(([k]) => k !== 'variables') : [['', root] as const];
  for (const name of referencedVariables(body.map(([, v]) => v))) {
    if (Object.hasOwn(vars, name)) values.set(name, vars[name]);
    else {
      try {
        const v = await resolveStored(name, definitions, store, new Set(), vars);
        if (v !== undefined) values.set(name, v);
      } catch (err) {
        // A generation failure (a missing CA) is reported once, at the definition; its uses stay silent.
        if (!(err instanceof GenerationError)) throw err;
        const at = definitions.get(err.variable)?.index ?? 0;
        problems.push(problemAt(doc, ['variables', at], err.message));
        values.set(name, undefined);
      }
    }
  }

  const substitute = (value: unknown, path: PathKey[]): unknown => {
    if (typeof value === 'string') return substituteString(value, path);
    if (Array.isArray(value)) {
      const out = value.map((v, i) => substitute(v, [...path, i]));
      keepOrigin(value, out);
      return out;
    }
    if (isPlainMap(value)) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const skip = path.length === 0 && k === 'variables';
        setKey(out, k, skip ? v : substitute(v, [...path, k]));
      }
      keepOrigin(value, out);
      return out;
    }
    return value;
  };

  const lookup = (ref: string, path: PathKey[]): { ok: true; value: unknown } | { ok: false } => {
    const { name, keys } = splitRef(ref);
    if (!values.has(name)) {
      problems.push(problemAt(doc, path, `variable ${name} is not defined: pass it with -v ${name}=… or add it to variables`));
      return { ok: false };
    }
    let v = values.get(name);
    if (v === undefined) return { ok: false }; // generation failed; reported at its definition
    for (const key of keys) {
      if (!isPlainMap(v) || !Object.hasOwn(v, key)) {
        problems.push(problemAt(doc, path, `variable ${name} has no key ${keys.join('.')}`));
        return { ok: false };
      }
      v = v[key];
    }
    return { ok: true, value: v };
  };

  const substituteString = (s: string, path: PathKey[]): unknown => {
    const whole = WHOLE.exec(s);
    if (whole) {
      const r = lookup(whole[1]!, path);
      return r.ok ? r.value : s;
    }
    return s.replace(PLACEHOLDER, (text, ref: string) => {
      const r = lookup(ref, path);
      if (!r.ok) return text;
      if (typeof r.value === 'object' && r.value !== null) {
        problems.push(problemAt(doc, path, `variable ${ref} is a map or list and cannot be placed inside a string`));
        return text;
      }
      return String(r.value);
    });
  };

  const value = substitute(root, []);
  if (problems.length > 0) throw new ManifestError(problems);
  return { file: doc.file, value };
}

class GenerationError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
  }
}

type Definitions = Map<string, VariableDefinition & { index: number }>;

function readDefinitions(doc: YamlSource, problems: Problem[]): Definitions {
  const defs: Definitions = new Map();
  const raw = isPlainMap(doc.value) ? doc.value.variables : undefined;
  if (raw === undefined || raw === null) return defs;
  if (!Array.isArray(raw)) {
    problems.push(problemAt(doc, ['variables'], 'expected an array'));
    return defs;
  }
  raw.forEach((v, i) => {
    if (!isPlainMap(v) || typeof v.name !== 'string') {
      problems.push(problemAt(doc, ['variables', i, 'name'], 'required: a name'));
      return;
    }
    if (!['password', 'certificate', 'ssh', 'rsa'].includes(v.type as string)) {
      problems.push(problemAt(doc, ['variables', i, 'type'], `expected password, certificate, ssh or rsa, got ${JSON.stringify(v.type ?? null)}`));
      return;
    }
    if (defs.has(v.name)) problems.push(problemAt(doc, ['variables', i, 'name'], `variable ${v.name} is defined twice`));
    defs.set(v.name, { name: v.name, type: v.type as VariableDefinition['type'], options: isPlainMap(v.options) ? v.options : {}, index: i });
  });
  return defs;
}

/** The stored value, generated (and stored) first if the manifest defines it. */
async function resolveStored(
  name: string,
  defs: Definitions,
  store: VariableStore,
  resolving: Set<string>,
  vars: Readonly<Record<string, unknown>>,
): Promise<unknown> {
  const existing = await store.get(name);
  if (existing !== undefined) return existing;
  const def = defs.get(name);
  if (!def) return undefined;
  if (resolving.has(name)) throw new GenerationError(name, `variable ${name} is signed by itself through its ca chain`);
  resolving.add(name);
  const value = await generate({ ...def, options: interpolateOptions(def, vars) }, async (ca) => resolveStored(ca, defs, store, resolving, vars));
  await store.set(name, value);
  return value;
}

/**
 * Options may use `-v` values (`common_name: ((system_domain))`), but not other generated
 * variables: a certificate's name must not depend on a password.
 */
function interpolateOptions(def: VariableDefinition, vars: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const fill = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(fill);
    if (isPlainMap(value)) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) setKey(out, k, fill(v));
      return out;
    }
    if (typeof value !== 'string') return value;
    const whole = WHOLE.exec(value);
    const get = (ref: string) => {
      const { name, keys } = splitRef(ref);
      let v: unknown = Object.hasOwn(vars, name) ? vars[name] : undefined;
      for (const k of keys) v = isPlainMap(v) ? v[k] : undefined;
      if (v === undefined) throw new GenerationError(def.name, `options of variable ${def.name} use ((${ref})), which is not given with -v`);
      return v;
    };
    if (whole) return get(whole[1]!);
    return value.replace(PLACEHOLDER, (_, ref: string) => String(get(ref)));
  };
  return fill(def.options) as Record<string, unknown>;
}

async function generate(def: VariableDefinition, ca: (name: string) => Promise<unknown>): Promise<unknown> {
  const o = def.options;
  switch (def.type) {
    case 'password':
      return generatePassword(typeof o.length === 'number' ? o.length : undefined);
    case 'rsa':
      return generateRsa();
    case 'ssh':
      return generateSsh();
    case 'certificate': {
      const caName = typeof o.ca === 'string' ? o.ca : undefined;
      const issuer = caName === undefined ? undefined : await ca(caName);
      if (caName !== undefined && (!isPlainMap(issuer) || typeof issuer.certificate !== 'string' || typeof issuer.private_key !== 'string')) {
        throw new GenerationError(def.name, `ca ${caName} of variable ${def.name} is not a certificate variable`);
      }
      return generateCertificate({
        commonName: typeof o.common_name === 'string' ? o.common_name : def.name,
        alternativeNames: Array.isArray(o.alternative_names) ? o.alternative_names.map(String) : [],
        isCa: o.is_ca === true,
        extendedKeyUsage: Array.isArray(o.extended_key_usage) ? o.extended_key_usage.map(String) : [],
        durationDays: typeof o.duration === 'number' ? o.duration : 365,
        ca: issuer as { certificate: string; private_key: string } | undefined,
      });
    }
  }
}
