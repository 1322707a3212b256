// Prometheus text exposition of a component's numbers. A component describes its metrics
// once; /varz shows the same numbers as JSON.

export interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples: Array<{ labels?: Record<string, string>; value: number }>;
}

export function counter(name: string, help: string, value: number, labels?: Record<string, string>): Metric {
  return { name, help, type: 'counter', samples: [{ value, ...(labels ? { labels } : {}) }] };
}

export function gauge(name: string, help: string, value: number, labels?: Record<string, string>): Metric {
  return { name, help, type: 'gauge', samples: [{ value, ...(labels ? { labels } : {}) }] };
}

/** One metric with a sample per key of a record: `requests_by_app{app_id="…"}`. */
export function labelled(
  name: string,
  help: string,
  type: Metric['type'],
  label: string,
  values: Record<string, number>,
): Metric {
  return { name, help, type, samples: Object.entries(values).map(([k, value]) => ({ labels: { [label]: k }, value })) };
}

export function renderPrometheus(prefix: string, metrics: Metric[]): string {
  const out: string[] = [];
  for (const m of metrics) {
    const name = sanitize(`${prefix}_${m.name}`);
    out.push(`# HELP ${name} ${m.help.replace(/\n/g, ' ')}`);
    out.push(`# TYPE ${name} ${m.type}`);
    for (const s of m.samples) {
      const labels = s.labels
        ? `{${Object.entries(s.labels)
            .map(([k, v]) => `${sanitize(k)}="${escapeLabel(v)}"`)
            .join(',')}}`
        : '';
      out.push(`${name}${labels} ${Number.isFinite(s.value) ? s.value : 0}`);
    }
  }
  return out.join('\n') + '\n';
}

function sanitize(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
