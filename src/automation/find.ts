/** Finding schedules and sensors among a code location's jobs, by `job/name` or `name` alone where only one job has it. */
import type { JobDefinition, ScheduleDefinition, SensorDefinition } from '../core/types.js';
import { BatonError } from '../errors.js';
import type { AutomationKind } from './tick-store.js';

export const KIND_WORD = { schedules: 'schedule', sensors: 'sensor' } as const;

export interface FoundEntry<K extends AutomationKind = AutomationKind> {
  kind: K;
  job: JobDefinition;
  entry: K extends 'schedules' ? ScheduleDefinition : SensorDefinition;
  /** `job/name` */
  id: string;
}

export function entriesOf<K extends AutomationKind>(jobs: Iterable<JobDefinition>, kind: K): Array<FoundEntry<K>> {
  return [...jobs].flatMap((job) =>
    [...((kind === 'schedules' ? job.schedules : job.sensors)?.values() ?? [])].map((entry) => ({ kind, job, entry, id: `${job.name}/${entry.name}` }) as FoundEntry<K>),
  );
}

/** `job/name`, or `name` alone when only one job has a schedule (sensor) of that name. */
export function findEntry<K extends AutomationKind>(jobs: Iterable<JobDefinition>, name: string, kinds: readonly K[]): FoundEntry<K> {
  const list = [...jobs];
  const all = kinds.flatMap((k) => entriesOf(list, k));
  const matches = name.includes('/') ? all.filter((f) => f.id === name) : all.filter((f) => f.entry.name === name);
  const what = kinds.map((k) => KIND_WORD[k]).join(' or ');
  if (matches.length === 1) return matches[0] as FoundEntry<K>;
  if (matches.length > 1) {
    throw new BatonError('USAGE', `${what} "${name}" is declared more than once: name one of ${matches.map((f) => `${f.id} (${KIND_WORD[f.kind]})`).join(', ')}`);
  }
  const known = all.map((f) => f.id).join(', ') || 'none';
  const code = kinds.length === 1 && kinds[0] === 'sensors' ? 'SENSOR_NOT_FOUND' : 'SCHEDULE_NOT_FOUND';
  throw new BatonError(code, `no ${what} "${name}" in the jobs given with --jobs (${kinds.join(' and ')}: ${known})`);
}
