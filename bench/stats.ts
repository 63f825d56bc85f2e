// Order statistics for the benchmarks' figures.
export function quantile(a: number[], q: number): number {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : NaN;
}

export const median = (a: number[]) => quantile(a, 0.5);
