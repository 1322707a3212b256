// What `ingot deploy` sends: the manifest with its ops files applied and its `-v` values put
// in, as BOSH's CLI does; every other ((variable)) is left for the director, which generates
// and keeps them. Pure: texts in, YAML out; every mistake reported with file, line and path.
import { stringify } from 'yaml';
import { applyOps, isPlainMap, ManifestError, readYaml, setKey } from '../manifest/mod.ts';

const PLACEHOLDER = /\(\((!?[-\w./:]+)\)\)/g;
const WHOLE = /^\(\((!?[-\w./:]+)\)\)$/;

export interface PreparedManifest {
  /** The deployment's name (the manifest's `name`). */
  name: string;
  yaml: string;
}

export function prepareManifest(
  manifest: { text: string; file: string },
  opsFiles: ReadonlyArray<{ text: string; file: string }>,
  vars: Readonly<Record<string, string>>,
): PreparedManifest {
  const doc = applyOps(readYaml(manifest.text, manifest.file), opsFiles.map((o) => readYaml(o.text, o.file)));
  const value = substitute(doc.value, vars);
  const name = isPlainMap(value) ? value.name : undefined;
  if (typeof name !== 'string' || name === '') {
    throw new ManifestError([{ file: manifest.file, line: 1, path: 'name', message: 'a deployment manifest needs a name' }]);
  }
  return { name, yaml: stringify(value, { lineWidth: 0 }) };
}

/** Puts the -v values where the manifest names them (`((name))`), keeping a whole value's type
 *  as given; a `variables:` section is left alone, as are names -v does not give. */
function substitute(value: unknown, vars: Readonly<Record<string, string>>, top = true): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE.exec(value);
    if (whole && Object.hasOwn(vars, refName(whole[1]!))) return vars[refName(whole[1]!)];
    return value.replace(PLACEHOLDER, (m, ref: string) => (Object.hasOwn(vars, refName(ref)) ? vars[refName(ref)]! : m));
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars, false));
  if (isPlainMap(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) setKey(out, k, top && k === 'variables' ? v : substitute(v, vars, false));
    return out;
  }
  return value;
}

/** `((name))` only: a -v value is a string, it has no sub-keys (`((name.key))` stays for the director). */
function refName(ref: string): string {
  const name = ref.replace(/^!/, '');
  return name.includes('.') ? '\0' : name;
}
