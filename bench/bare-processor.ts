/** The no-op processor file of bare BullMQ's sandboxed worker (bare-worker.ts `sandboxed`). */
export default function noop(): Promise<null> {
  return Promise.resolve(null);
}
