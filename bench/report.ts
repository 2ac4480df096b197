/** Bench figures, their targets, and how they are printed: a table per section, then a summary. */

export interface Target {
  cmp: '<=' | '>=' | '==';
  limit: number;
}

export interface Figure {
  name: string;
  value: number;
  unit: string;
  target?: Target;
  note?: string;
}

export interface Section {
  title: string;
  /** The title in the summary; default `title`. */
  short?: string;
  /** What exactly was measured, printed under the title. */
  method?: string;
  figures: Figure[];
  /** Set when the section did not run: why. */
  skipped?: string;
  /** Set when the section failed part-way: the error, verbatim. */
  error?: string;
}

export function isMet(f: Figure): boolean | undefined {
  const t = f.target;
  if (!t) return undefined;
  if (t.cmp === '<=') return f.value <= t.limit;
  if (t.cmp === '>=') return f.value >= t.limit;
  return f.value === t.limit;
}

export function fmt(value: number, unit = ''): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = unit === '×' ? 2 : abs >= 100 || Number.isInteger(value) ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  const text = value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return unit === '×' ? `${text}×` : unit ? `${text} ${unit}` : text;
}

function targetText(f: Figure): string {
  return f.target ? `${f.target.cmp === '==' ? '=' : f.target.cmp === '<=' ? '≤' : '≥'} ${fmt(f.target.limit, f.unit)}` : '';
}

/** "yes"/"NO" and value ÷ target, e.g. "yes (0.42×)". */
function metText(f: Figure): string {
  const met = isMet(f);
  if (met === undefined) return '';
  const ratio = f.target && f.target.limit !== 0 && f.target.cmp !== '==' ? ` (${fmt(f.value / f.target.limit, '×')})` : '';
  return `${met ? 'yes' : 'NO'}${ratio}`;
}

export function printSection(s: Section): void {
  console.log(`\n== ${s.title}`);
  if (s.method) for (const line of s.method.split('\n')) console.log(`   ${line}`);
  if (s.skipped) console.log(`   skipped: ${s.skipped}`);
  if (s.figures.length > 0) {
    const rows = [
      ['Figure', 'Value', 'Target', 'Met (value ÷ target)'],
      ...s.figures.map((f) => [f.name, fmt(f.value, f.unit), targetText(f), metText(f)]),
    ];
    const widths = rows[0]!.map((_h, i) => Math.max(...rows.map((r) => r[i]!.length)));
    const line = (r: string[]): string =>
      '   ' + r.map((cell, i) => (i === 1 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd();
    console.log(line(rows[0]!));
    console.log('   ' + widths.map((w) => '-'.repeat(w)).join('  '));
    s.figures.forEach((f, i) => {
      console.log(line(rows[i + 1]!));
      if (f.note) console.log(`     ↳ ${f.note}`);
    });
  }
  if (s.error) console.log(`   ERROR: ${s.error}`);
}

/** One line per target (and per section that did not run or failed). */
export function printSummary(sections: Section[]): void {
  console.log('\n== Summary');
  for (const s of sections) {
    const title = s.short ?? s.title;
    if (s.skipped) console.log(`   [skipped] ${title}: ${s.skipped}`);
    if (s.error) console.log(`   [error]   ${title}: ${s.error.split('\n')[0]}`);
    for (const f of s.figures) {
      const met = isMet(f);
      if (met === undefined) continue;
      console.log(`   [${met ? 'met' : 'MISSED'}]${met ? '   ' : ''} ${title} / ${f.name}: ${fmt(f.value, f.unit)} (target ${targetText(f)})`);
    }
  }
}
