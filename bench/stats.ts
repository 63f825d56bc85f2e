// Order statistics for the benchmarks' figures.
export function quantile(a: number[], q: number): number {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : NaN;
}

export const median = (a: number[]) => quantile(a, 0.5);

/** The mean per-query difference a - b and its standard error (the queries are the same: a paired comparison). */
export function paired(a: number[], b: number[]): { diff: number; se: number } {
  const d = a.map((x, i) => x - b[i]!);
  const m = d.reduce((s, x) => s + x, 0) / d.length;
  const v = d.reduce((s, x) => s + (x - m) ** 2, 0) / (d.length - 1);
  return { diff: m, se: Math.sqrt(v / d.length) };
}

/** a - b as "+0.012 ± 0.005": paired() of the per-query figures. */
export function pairedText(a: number[], b: number[]): string {
  const { diff, se } = paired(a, b);
  return `${diff >= 0 ? '+' : ''}${diff.toFixed(3)} ± ${se.toFixed(3)}`;
}
