import { distance } from 'fastest-levenshtein';

/**
 * The closest candidates to a misspelt name, best first: used for did-you-mean hints on keys,
 * op names and selections. Pure; linear in the number of candidates.
 */
export function suggest(name: string, candidates: Iterable<string>, max = 3): string[] {
  const budget = Math.max(2, Math.floor(name.length / 3));
  const scored: Array<[string, number]> = [];
  const lower = name.toLowerCase();
  for (const c of candidates) {
    const d = distance(lower, c.toLowerCase());
    if (d <= budget || c.toLowerCase().includes(lower) || lower.includes(c.toLowerCase())) scored.push([c, d]);
  }
  return scored
    .sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))
    .slice(0, max)
    .map(([c]) => c);
}

/** `did you mean "a" or "b"?`, or undefined when nothing is close. */
export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  const s = suggest(name, candidates);
  if (s.length === 0) return undefined;
  return `did you mean ${s.map((x) => `"${x}"`).join(' or ')}?`;
}
