/**
 * How long tests wait before they call something hung. These are ceilings, never expected
 * durations: a test waits for the event itself and only fails past them. CI machines are busy
 * (a load average of 15 on two cores is not rare while other work runs), so a process start, a
 * CLI run or an awaited event gets at least these, whatever shorter bound a test names.
 */
export const CEILING_MS = {
  /** A worker or server process printing that it is ready. */
  processStart: 120_000,
  /** A whole CLI command. */
  cli: 120_000,
  /** An awaited state or event. */
  event: 90_000,
} as const;

/** The ceiling for a wait a test bounded by `ms`: never below the floor for its kind. */
export function ceiling(kind: keyof typeof CEILING_MS, ms?: number): number {
  return Math.max(ms ?? 0, CEILING_MS[kind]);
}
