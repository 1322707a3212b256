// The job renderer: a job's spec, its templates, the properties the manifest gives it and
// the links resolved for it in; the files of the rendered job out (the agent's spec.json and
// each config file). Pure: no I/O, so the director renders every instance before it touches
// anything and reports every problem at once.
//
// Templates are YAML or JSON *data* with placeholders, never code:
//   ((p:router.port))            a property (the manifest's value, else the spec's default)
//   ((p?:router.workers))        the same, or — as a whole value — the key is left out when unset
//   ((link:nats.addresses))      the addresses of the link's instances (also .address: the first; .instances)
//   ((link:nats:nats.port))      a property the link's provider shares
//   ((spec:index))               this instance: deployment, name, index, id, address, az, bootstrap, root, job_dir
//   ((item)) / ((item.address))  the current element inside an ((each …)) expansion
//   ((p:nats.password | url))    a filter: url (percent-encoding for a URL's user or password)
// A placeholder that is a whole value is replaced by the value itself (a number, a list, a
// map); inside a longer string it must be a scalar. A sequence element `{"((each EXPR))": T}`
// becomes one element per item of the list EXPR, T rendered with ((item)) bound. The template
// is parsed first and values are substituted into the parsed tree, then serialised: a value
// is data, never re-read as a template or as YAML, so no property can inject structure.
import { parseDocument, stringify } from 'yaml';
import type { LinkData, LinkInstance } from '../manifest/links.ts';
// setKey defines a key even when it is `__proto__`: a template or property is data, never a prototype.
import { dig, isPlainMap as isMap, setKey, setPath } from '../manifest/yaml-source.ts';
import { describeIssues, JobSpecFile, ProcessDef } from '../agent/protocol.ts';
import { RenderError } from './errors.ts';
import { tarMemory } from './tarball.ts';
import type { JobSpec } from './job-spec.ts';

/** The instance the job is rendered for (BOSH's `spec` in templates). */
export interface InstanceContext {
  deployment?: string;
  /** The instance group's name. */
  name?: string;
  index?: number;
  id?: string;
  address?: string | null;
  az?: string;
  bootstrap?: boolean;
  /** Where the agent installs jobs and packages; /var/vcap by default. */
  root?: string;
}

export interface RenderedJob {
  name: string;
  /** Relative path in the job's directory → content: spec.json and every template's output. */
  files: Record<string, string>;
  /** The properties after defaults, nested (`{router: {port: 8080}}`), for the agent's properties.json. */
  properties: Record<string, unknown>;
}

const OMIT = Symbol('omit');
type Value = unknown;

const PLACEHOLDER = /\(\(([^()]*)\)\)/g;
const WHOLE = /^\(\(([^()]*)\)\)$/;
const EACH = /^\(\(\s*each\s+([^()]+?)\s*\)\)$/;
const SPEC_FIELDS = ['deployment', 'name', 'index', 'id', 'address', 'az', 'bootstrap', 'root', 'job_dir'] as const;
const FILTERS: Record<string, (v: Value) => Value> = {
  url: (v) => encodeURIComponent(String(v)),
};

interface Scope {
  item?: Value;
}

/**
 * Renders a job. `templates` maps each template's file name (spec `templates` keys) to its
 * text; `properties` are the job's properties as the manifest nests them; `links` holds the
 * consumed links by name (null for an optional link left unfilled). Throws a RenderError
 * listing every problem.
 */
export function renderJob(
  spec: JobSpec,
  templates: Readonly<Record<string, string>>,
  properties: Readonly<Record<string, unknown>>,
  links: Readonly<Record<string, LinkData | null | undefined>>,
  context: InstanceContext = {},
): RenderedJob {
  const problems: string[] = [];
  const seen = new Set<string>();
  const report = (message: string) => {
    if (!seen.has(message)) problems.push(message);
    seen.add(message);
  };
  const job = `job ${spec.name}`;

  const resolved = resolveProperties(spec, properties, (m) => report(`${job}: ${m}`));
  for (const c of spec.consumes) {
    if (!c.optional && !links[c.name]) report(`${job}: missing link ${c.name} (type ${c.type}): no provider was given`);
  }
  for (const name of Object.keys(links)) {
    if (!spec.consumes.some((c) => c.name === name)) report(`${job}: was given link ${name}, which it does not consume (consumes: ${spec.consumes.map((c) => c.name).join(', ') || 'none'})`);
  }
  const root = context.root ?? '/var/vcap';
  const specValues: Record<(typeof SPEC_FIELDS)[number], Value> = {
    deployment: context.deployment,
    name: context.name,
    index: context.index,
    id: context.id,
    address: context.address ?? undefined,
    az: context.az,
    bootstrap: context.bootstrap,
    root,
    job_dir: `${root}/jobs/${spec.name}`,
  };

  const evaluate = (expr: string, scope: Scope, where: string): Value | typeof OMIT => {
    const [head, ...filterNames] = expr.split('|').map((s) => s.trim());
    let value = lookup(head ?? '', scope, where);
    if (value === OMIT || value === undefined) return value;
    for (const f of filterNames) {
      const filter = Object.hasOwn(FILTERS, f) ? FILTERS[f] : undefined;
      if (!filter) {
        report(`${where}: unknown filter "${f}" (known: ${Object.keys(FILTERS).join(', ')})`);
        return undefined;
      }
      value = filter(value);
    }
    return value;
  };

  // undefined: a problem was reported; OMIT: an optional value is unset.
  const lookup = (expr: string, scope: Scope, where: string): Value | typeof OMIT => {
    if (expr === 'item' || expr.startsWith('item.')) {
      if (!('item' in scope)) return void report(`${where}: ((${expr})) is only meaningful inside an ((each …)) expansion`);
      if (expr === 'item') return scope.item;
      const field = expr.slice(5);
      const v = isMap(scope.item) && Object.hasOwn(scope.item, field) ? scope.item[field] : undefined;
      if (v === undefined || v === null) return void report(`${where}: the item has no ${field}`);
      return v;
    }
    const m = /^(p|link|spec)(\?)?:(.+)$/.exec(expr);
    if (!m) return void report(`${where}: malformed placeholder ((${expr})); expected p:NAME, link:NAME.addresses, link:NAME:PROPERTY, spec:FIELD or item`);
    const [, kind, optional, rest] = m as unknown as [string, 'p' | 'link' | 'spec', string | undefined, string];
    if (kind === 'p') {
      if (!Object.hasOwn(spec.properties, rest)) return void report(`${where}: unknown property ${rest} (not in the job's spec)`);
      const v = resolved.get(rest);
      if (v !== undefined) return v;
      if (optional) return OMIT;
      return void report(`${where}: missing required property ${rest} (no value in the manifest and no default in the spec)`);
    }
    if (kind === 'spec') {
      if (!(SPEC_FIELDS as readonly string[]).includes(rest)) return void report(`${where}: unknown spec field ${rest} (known: ${SPEC_FIELDS.join(', ')})`);
      const v = specValues[rest as (typeof SPEC_FIELDS)[number]];
      if (v !== undefined) return v;
      if (optional) return OMIT;
      return void report(`${where}: the instance's ${rest} is not known`);
    }
    // link:NAME.addresses | link:NAME.address | link:NAME.instances | link:NAME:PROPERTY
    const lm = /^([A-Za-z0-9_-]+)(?:\.(addresses|address|instances)|:([A-Za-z0-9_.-]+))$/.exec(rest);
    if (!lm) return void report(`${where}: malformed link placeholder ((${expr})); expected link:NAME.addresses, link:NAME.address, link:NAME.instances or link:NAME:PROPERTY`);
    const [, name, field, property] = lm as unknown as [string, string, string | undefined, string | undefined];
    const consumed = spec.consumes.find((c) => c.name === name);
    if (!consumed) return void report(`${where}: link ${name} is not consumed by the job (consumes: ${spec.consumes.map((c) => c.name).join(', ') || 'none'})`);
    const link = links[name];
    if (!link) return optional ? OMIT : undefined; // the missing link is reported once, above
    if (property !== undefined) {
      const v = dig(link.properties, property.split('.'));
      if (v !== undefined) return v;
      if (optional) return OMIT;
      return void report(`${where}: link ${name} shares no property ${property}`);
    }
    const addressOf = (i: LinkInstance): string | undefined => {
      if (i.address !== null) return i.address;
      report(`${where}: link ${name}: instance ${i.name}/${i.index} has no address yet`);
      return undefined;
    };
    if (field === 'instances') return link.instances.map((i) => ({ ...i }));
    if (field === 'addresses') return link.instances.map(addressOf);
    if (link.instances.length === 0) return optional ? OMIT : void report(`${where}: link ${name} has no instances`);
    return addressOf(link.instances[0]!);
  };

  const renderString = (text: string, scope: Scope, where: string): Value | typeof OMIT => {
    const whole = WHOLE.exec(text);
    if (whole) return evaluate(whole[1]!.trim(), scope, where);
    let failed = false;
    const out = text.replace(PLACEHOLDER, (_, expr: string) => {
      const v = evaluate(expr.trim(), scope, where);
      if (v === OMIT) {
        report(`${where}: ((${expr.trim()})) is unset and sits inside a longer string, which cannot leave it out`);
        failed = true;
        return '';
      }
      if (v === undefined) {
        failed = true;
        return '';
      }
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
      report(`${where}: ((${expr.trim()})) is ${Array.isArray(v) ? 'a list' : 'a map'} and sits inside a longer string; only a whole value may be a list or map`);
      failed = true;
      return '';
    });
    // What is left of "((" after substitution came from the template, not from a value.
    if (/\(\(|\)\)/.test(text.replace(PLACEHOLDER, ''))) {
      report(`${where}: unbalanced "((" or "))"`);
      return undefined;
    }
    return failed ? undefined : out;
  };

  const render = (node: Value, scope: Scope, where: string, path: string): Value | typeof OMIT => {
    const at = path === '' ? where : `${where}, at ${path}`;
    if (typeof node === 'string') return renderString(node, scope, at);
    if (Array.isArray(node)) {
      const out: Value[] = [];
      node.forEach((el, i) => {
        const each = isMap(el) && Object.keys(el).length === 1 ? EACH.exec(Object.keys(el)[0]!) : null;
        if (each) {
          const list = evaluate(each[1]!, scope, `${where}, at ${path}[${i}]`);
          if (list === OMIT || list === undefined) return;
          if (!Array.isArray(list)) return void report(`${where}, at ${path}[${i}]: ((each ${each[1]})) needs a list`);
          const body = Object.values(el)[0];
          list.forEach((item) => {
            const v = render(body, { item }, where, `${path}[${i}]`);
            if (v !== OMIT) out.push(v);
          });
          return;
        }
        const v = render(el, scope, where, `${path}[${i}]`);
        if (v !== OMIT) out.push(v);
      });
      return out;
    }
    if (isMap(node)) {
      const out: Record<string, Value> = {};
      for (const [k, v] of Object.entries(node)) {
        const keyPath = path === '' ? k : `${path}.${k}`;
        if (/\(\(|\)\)/.test(k)) {
          report(`${where}, at ${keyPath}: a key cannot hold a placeholder (only a sequence element may be {"((each …))": …})`);
          continue;
        }
        const r = render(v, scope, where, keyPath);
        if (r !== OMIT) setKey(out, k, r);
      }
      return out;
    }
    return node;
  };

  const files: Record<string, string> = {};
  for (const [src, dest] of Object.entries(spec.templates)) {
    const where = `${job}, template ${src}`;
    const text = templates[src];
    if (text === undefined) {
      report(`${where}: the template file is missing`);
      continue;
    }
    const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length > 0) {
      report(`${where}: not valid ${src.endsWith('.json') ? 'JSON' : 'YAML'}: ${doc.errors[0]!.message.split('\n')[0]}`);
      continue;
    }
    let tree: unknown;
    try {
      tree = doc.toJS({ maxAliasCount: 100 }) ?? {};
    } catch (err) {
      report(`${where}: ${(err as Error).message}`);
      continue;
    }
    const rendered = render(tree, {}, where, '');
    if (rendered === OMIT || rendered === undefined) continue;
    files[dest] = src.endsWith('.json') ? `${JSON.stringify(rendered, null, 2)}\n` : stringify(rendered, { aliasDuplicateObjects: false, lineWidth: 0 });
  }

  const processes = spec.processes.map((proc, i) => {
    const where = `${job}, processes[${i}] (${proc.name})`;
    const before = problems.length;
    const out = render(proc, {}, where, '');
    // Checked with the agent's schema here, naming the process and the value: a property that
    // renders a string where stop_timeout_s needs a number is refused before any VM sees it.
    const def = ProcessDef.safeParse(out);
    if (!def.success && problems.length === before) {
      for (const issue of def.error.issues) {
        const value = dig(out, issue.path.map(String));
        report(`${where}, at ${issue.path.join('.')}: ${issue.message}${value === undefined ? '' : ` (rendered ${JSON.stringify(value)})`}`);
      }
    }
    return out;
  });
  const errand = spec.errand === undefined ? {} : { errand: render(spec.errand, {}, `${job}, errand`, '') };
  const drain = spec.drain === undefined ? {} : { drain: render(spec.drain, {}, `${job}, drain`, '') };
  const agentSpec = JobSpecFile.safeParse({ name: spec.name, processes, ...errand, ...drain });
  if (!agentSpec.success && problems.length === 0) report(`${job}: ${describeIssues(agentSpec.error, 'spec')}`);
  files['spec.json'] = `${JSON.stringify({ name: spec.name, processes, ...errand, ...drain }, null, 2)}\n`;

  if (problems.length > 0) throw new RenderError(spec.name, problems);
  return { name: spec.name, files, properties: nest(resolved) };
}

/**
 * A rendered job as the agent installs it (orchestrator/agent/installer.ts): a reproducible
 * .tgz of spec.json and the config files, to store in the blobstore under its sha256.
 */
export function packRenderedJob(job: RenderedJob): Buffer {
  return tarMemory(Object.entries(job.files).map(([path, data]) => ({ path, data })));
}

/** Each declared property's value (manifest, else default); properties the spec does not declare are reported. */
function resolveProperties(spec: JobSpec, given: Readonly<Record<string, unknown>>, report: (m: string) => void): Map<string, unknown> {
  const declared = Object.keys(spec.properties);
  const out = new Map<string, unknown>();
  for (const name of declared) {
    const v = dig(given, name.split('.'));
    const value = v !== undefined ? v : spec.properties[name]!.default;
    if (value !== undefined) out.set(name, value);
  }
  const walk = (value: unknown, path: string[]): void => {
    const dotted = path.join('.');
    if (path.length > 0 && Object.hasOwn(spec.properties, dotted)) return;
    const deeper = declared.some((d) => d.startsWith(path.length === 0 ? '' : `${dotted}.`));
    if (isMap(value) && (path.length === 0 || deeper)) {
      for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
      return;
    }
    if (path.length > 0) report(`unknown property ${dotted} (the spec declares: ${declared.join(', ') || 'none'})`);
  };
  walk(given, []);
  return out;
}

function nest(flat: Map<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of flat) setPath(out, name.split('.'), value);
  return out;
}

/**
 * Checks a job's templates without properties or links: each exists and parses, and each
 * placeholder names a declared property, a consumed link, a known spec field and known
 * filters. Run when a release is built and when one is uploaded; returns every problem.
 */
export function checkTemplates(spec: JobSpec, templates: Readonly<Record<string, string>>, where = `job ${spec.name}`): string[] {
  const problems: string[] = [];
  const consumed = new Set(spec.consumes.map((c) => c.name));
  const check = (text: string, at: string): void => {
    if (/\(\(|\)\)/.test(text.replace(PLACEHOLDER, ''))) problems.push(`${at}: unbalanced "((" or "))"`);
    for (const m of text.matchAll(PLACEHOLDER)) {
      const raw = m[1]!.trim();
      const each = /^each\s+(.+)$/.exec(raw);
      const [head, ...filters] = (each ? each[1]! : raw).split('|').map((s) => s.trim());
      for (const f of filters) if (!Object.hasOwn(FILTERS, f)) problems.push(`${at}: ((${raw})): unknown filter "${f}"`);
      const e = head ?? '';
      if (e === 'item' || e.startsWith('item.')) continue;
      const pm = /^(p|link|spec)(\?)?:(.+)$/.exec(e);
      if (!pm) {
        problems.push(`${at}: malformed placeholder ((${raw}))`);
        continue;
      }
      const [, kind, , rest] = pm as unknown as [string, string, string | undefined, string];
      if (kind === 'p' && !Object.hasOwn(spec.properties, rest)) problems.push(`${at}: ((${raw})): unknown property ${rest} (not in the job's spec)`);
      if (kind === 'spec' && !(SPEC_FIELDS as readonly string[]).includes(rest)) problems.push(`${at}: ((${raw})): unknown spec field ${rest}`);
      if (kind === 'link') {
        const lm = /^([A-Za-z0-9_-]+)(?:\.(addresses|address|instances)|:([A-Za-z0-9_.-]+))$/.exec(rest);
        if (!lm) problems.push(`${at}: malformed link placeholder ((${raw}))`);
        else if (!consumed.has(lm[1]!)) problems.push(`${at}: ((${raw})): link ${lm[1]} is not consumed by the job`);
      }
    }
  };
  for (const src of Object.keys(spec.templates)) {
    const text = templates[src];
    const at = `${where}, template ${src}`;
    if (text === undefined) {
      problems.push(`${at}: the template file is missing`);
      continue;
    }
    const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length > 0) problems.push(`${at}: not valid ${src.endsWith('.json') ? 'JSON' : 'YAML'}: ${doc.errors[0]!.message.split('\n')[0]}`);
    check(text, at);
  }
  spec.processes.forEach((p, i) => check(JSON.stringify(p), `${where}, processes[${i}]`));
  if (spec.errand) check(JSON.stringify(spec.errand), `${where}, errand`);
  if (spec.drain) check(JSON.stringify(spec.drain), `${where}, drain`);
  return problems;
}
