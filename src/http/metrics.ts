// Counters and latency histograms in process, rendered in the Prometheus text format.
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type Labels = Record<string, string>;
/** A label value in the text format: backslash, double quote and newline escaped. */
const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

const key = (labels: Labels) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',');

export class Metrics {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>();
  private readonly histograms = new Map<string, { help: string; values: Map<string, { buckets: number[]; sum: number; count: number }> }>();
  private readonly gauges = new Map<string, { help: string; read: () => number }>();

  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    let c = this.counters.get(name);
    if (!c) {
      c = { help, values: new Map() };
      this.counters.set(name, c);
    }
    const k = key(labels);
    c.values.set(k, (c.values.get(k) ?? 0) + by);
  }

  observe(name: string, help: string, labels: Labels, seconds: number): void {
    let h = this.histograms.get(name);
    if (!h) {
      h = { help, values: new Map() };
      this.histograms.set(name, h);
    }
    const k = key(labels);
    let v = h.values.get(k);
    if (!v) {
      v = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 };
      h.values.set(k, v);
    }
    BUCKETS.forEach((b, i) => {
      if (seconds <= b) v.buckets[i]!++;
    });
    v.sum += seconds;
    v.count++;
  }

  /** A value read when metrics are scraped. */
  gauge(name: string, help: string, read: () => number): void {
    this.gauges.set(name, { help, read });
  }

  render(): string {
    const out: string[] = [];
    const join = (k: string, extra?: string) => {
      const all = [k, extra].filter(Boolean).join(',');
      return all ? `{${all}}` : '';
    };
    for (const [name, c] of this.counters) {
      out.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} counter`);
      for (const [k, v] of c.values) out.push(`${name}${join(k)} ${v}`);
    }
    for (const [name, h] of this.histograms) {
      out.push(`# HELP ${name} ${h.help}`, `# TYPE ${name} histogram`);
      for (const [k, v] of h.values) {
        BUCKETS.forEach((b, i) => out.push(`${name}_bucket${join(k, `le="${b}"`)} ${v.buckets[i]}`));
        out.push(`${name}_bucket${join(k, 'le="+Inf"')} ${v.count}`, `${name}_sum${join(k)} ${v.sum}`, `${name}_count${join(k)} ${v.count}`);
      }
    }
    for (const [name, g] of this.gauges) out.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`, `${name} ${g.read()}`);
    return `${out.join('\n')}\n`;
  }
}
