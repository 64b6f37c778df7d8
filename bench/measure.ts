/** How benchmarks measure: A and B interleaved (A B A B …) in one process, medians compared. */

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** Runs baseline and subject alternately `runs` times each; each returns its measurement. */
export async function interleaved(runs: number, baseline: () => Promise<number>, subject: () => Promise<number>) {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < runs; i++) {
    a.push(await baseline());
    b.push(await subject());
  }
  return { baseline: median(a), subject: median(b), baselineRuns: a, subjectRuns: b };
}

export const time = async (work: () => Promise<unknown>): Promise<number> => {
  const started = performance.now();
  await work();
  return performance.now() - started;
};

export interface Row {
  id: string;
  measure: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  /** subject / baseline, in the direction the target reads. */
  ratio?: number;
  target: string;
  met: boolean | null;
  note?: string;
}

const fmt = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2));

export function table(rows: Row[]): string {
  const lines = rows.map((r) => [
    r.id,
    r.measure,
    `${fmt(r.value)} ${r.unit}`,
    r.baseline ? `${r.baseline.name}: ${fmt(r.baseline.value)} ${r.unit}` : '—',
    r.ratio === undefined ? '—' : `${r.ratio.toFixed(3)}×`,
    r.target,
    r.met === null ? 'n/a' : r.met ? 'yes' : 'NO',
    r.note ?? '',
  ]);
  const header = ['#', 'measure', 'value', 'baseline', 'ratio', 'target', 'met?', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [row(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(row)].join('\n');
}
