/**
 * The local adapter of `TickStore`: schedule and sensor state as files under a local instance's
 * storage directory, so `coordinator ui` without Redis runs them and they survive restarts:
 *
 *   <dir>/<kind>/<id>/status            running | stopped (absent: the file's status)
 *   <dir>/<kind>/<id>/cursor            the cursor (schedules: epoch ms; sensors: their own string)
 *   <dir>/<kind>/<id>/lastkey           the last run key launched (sensors)
 *   <dir>/<kind>/<id>/lock              {holder, until}: the process evaluating it now
 *   <dir>/<kind>/<id>/ticks/<ms>.json   a tick's record; created exclusively, which claims the tick
 *   <dir>/<kind>/<id>/runkeys/<h>.json  {runKey, runId, launched}; created exclusively, which claims the key
 *
 * `<id>` is `<job>/<name>` URI-encoded; `<h>` the sha256 of the run key. Exclusive creation
 * (`wx`) keeps claims exactly-once even with two processes on one directory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readJson, writeJsonAtomically } from '../instance/local/files.js';
import { TICK_RETENTION, type AutomationKind, type AutomationStores, type RunKeyClaim, type TickRecord, type TickStore } from './tick-store.js';

const isMissing = (e: unknown): boolean => (e as NodeJS.ErrnoException).code === 'ENOENT';
const isTaken = (e: unknown): boolean => (e as NodeJS.ErrnoException).code === 'EEXIST';

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
}

/** Creates `file` with `text` unless it exists: true when this call created it. */
async function createExclusive(file: string, text: string): Promise<boolean> {
  await mkdir(path.dirname(file), { recursive: true });
  try {
    await writeFile(file, text, { flag: 'wx' });
    return true;
  } catch (e) {
    if (isTaken(e)) return false;
    throw e;
  }
}

/** Written to a temp file then renamed: a reader never sees half a file. */
async function writeText(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

export function createLocalTickStore(dir: string, kind: AutomationKind): TickStore {
  const base = (id: string): string => path.join(dir, kind, encodeURIComponent(id));
  const tickFile = (id: string, ms: number): string => path.join(base(id), 'ticks', `${ms}.json`);
  const keyFile = (id: string, runKey: string): string => path.join(base(id), 'runkeys', `${createHash('sha256').update(runKey).digest('hex')}.json`);

  const tickTimes = async (id: string): Promise<number[]> => {
    const names = await readdir(path.join(base(id), 'ticks')).catch((e: unknown) => (isMissing(e) ? [] : Promise.reject(e)));
    return names.flatMap((n) => (/^\d+\.json$/.test(n) ? [Number(n.slice(0, -5))] : [])).sort((a, b) => b - a);
  };

  const prune = async (id: string): Promise<void> => {
    const times = await tickTimes(id);
    // Kept a week before the newest tick (Redis keeps each a week from its claim).
    const oldest = (times[0] ?? 0) - TICK_RETENTION.ttlSeconds * 1000;
    const drop = times.filter((t, i) => i >= TICK_RETENTION.count || t < oldest);
    await Promise.all(drop.map((t) => rm(tickFile(id, t), { force: true })));
  };

  return {
    async statusOf(id) {
      const v = (await readText(path.join(base(id), 'status')))?.trim();
      return v === 'running' || v === 'stopped' ? v : undefined;
    },
    async setStatus(id, status, cursorOnStart) {
      if (status === 'running' && cursorOnStart !== undefined) await writeText(path.join(base(id), 'cursor'), String(cursorOnStart));
      await writeText(path.join(base(id), 'status'), status);
    },
    cursor: (id) => readText(path.join(base(id), 'cursor')),
    setCursor: (id, value) => writeText(path.join(base(id), 'cursor'), String(value)),
    async lock(id, holder, ms) {
      const file = path.join(base(id), 'lock');
      const mine = JSON.stringify({ holder, until: Date.now() + ms });
      if (await createExclusive(file, mine)) return true;
      const held = await readJson<{ holder: string; until: number }>(file).catch(() => undefined);
      if (held && held.until > Date.now()) return false;
      await rm(file, { force: true }); // lapsed
      return createExclusive(file, mine);
    },
    async unlock(id, holder) {
      const file = path.join(base(id), 'lock');
      const held = await readJson<{ holder: string }>(file).catch(() => undefined);
      if (held?.holder === holder) await rm(file, { force: true });
    },
    async claim(r) {
      const ok = await createExclusive(tickFile(r.schedule, Date.parse(r.tickTime)), JSON.stringify(r));
      if (ok) await prune(r.schedule);
      return ok;
    },
    async update(r) {
      const file = tickFile(r.schedule, Date.parse(r.tickTime));
      if ((await readText(file)) === undefined) return false;
      await writeJsonAtomically(file, r);
      return true;
    },
    async ticks(id, limit = 50) {
      const times = (await tickTimes(id)).slice(0, limit);
      const records = await Promise.all(times.map((t) => readJson<TickRecord>(tickFile(id, t)).catch(() => undefined)));
      return records.filter((r): r is TickRecord => r !== undefined);
    },
    async claimRunKey(id, runKey, runId, atMs) {
      const file = keyFile(id, runKey);
      const claim: RunKeyClaim = { runId, launched: false, at: atMs };
      if (await createExclusive(file, JSON.stringify({ runKey, ...claim }))) return undefined;
      return (await readJson<RunKeyClaim>(file)) ?? claim;
    },
    async markRunKeyLaunched(id, runKey, runId) {
      await writeJsonAtomically(keyFile(id, runKey), { runKey, runId, launched: true, at: Date.now() });
      await writeText(path.join(base(id), 'lastkey'), runKey);
    },
    lastRunKey: (id) => readText(path.join(base(id), 'lastkey')),
  };
}

export function openLocalAutomationStores(dir: string): AutomationStores {
  return { schedules: createLocalTickStore(dir, 'schedules'), sensors: createLocalTickStore(dir, 'sensors'), close: async () => {} };
}
