import type { Command } from 'commander';
import { isoInZone, nextTicks } from '../../src/core/schedule-ticks.js';
import { positive } from '../../common/options.js';
import { entriesOf, findEntry, loadJobs, nameArgument, print, registerStartStop, tickLine, withAutomationOptions, withStores, type AutomationFlags } from '../automation-options.js';

export function registerSchedules(program: Command): void {
  const schedules = program.command('schedules').description('the schedules declared in job files; start and stop them in the instance');

  withAutomationOptions(schedules.command('list').description('each schedule with its cron line, time zone, status in the instance and next tick'), 'schedules')
    .option('--json', 'print an array of schedule objects')
    .action(async (flags: AutomationFlags & { json?: boolean }) => {
      const found = entriesOf((await loadJobs(flags, 'schedules')).values(), 'schedules');
      const rows = await withStores(flags, async (stores, redis) => {
        // On Redis: whether a live serve runs the schedules of the job (a local instance has no daemons to ask).
        const { listDaemons } = await import('../../src/distributed/daemon-registry.js');
        const daemons = redis ? await listDaemons(redis) : undefined;
        const served = (job: string): boolean | null => (daemons ? daemons.some((d) => d.runs.includes('schedules') && d.jobs.includes(job)) : null);
        const out = [];
        for (const { job, entry: s, id } of found) {
          const status = (await stores.schedules.statusOf(id)) ?? s.defaultStatus;
          const next = nextTicks(s, new Date(), 1)[0];
          out.push({ id, job: job.name, name: s.name, cron: s.cron, timezone: s.timezone, status, catchup: s.catchup, nextTick: next ? isoInZone(next, s.timezone) : null, daemonLive: served(job.name) });
        }
        return out;
      });
      print(flags.json, rows, () =>
        rows.length === 0
          ? ['no schedules in these jobs']
          : rows.map((r) => {
              const flag = r.status === 'running' && r.daemonLive === false ? '  (no live serve runs it: start `coordinator serve --jobs ...`)' : '';
              return `${r.id}  ${r.status}  "${r.cron}" ${r.timezone}  next ${r.nextTick ?? '-'}${flag}`;
            }),
      );
    });

  registerStartStop(schedules, 'schedules', (status) =>
    status === 'running' ? 'start a schedule (from now on: ticks missed while stopped are not caught up)' : 'stop a schedule; serve makes no more runs for it',
  );

  withAutomationOptions(schedules.command('preview').description('the next tick times of a schedule, in its time zone').argument(...nameArgument('schedules')), 'schedules', false)
    .option('--count <n>', 'how many tick times', positive('--count', true), 5)
    .action(async (name: string, flags: AutomationFlags & { count: number }) => {
      const { entry } = findEntry((await loadJobs(flags, 'schedules')).values(), name, ['schedules']);
      for (const t of nextTicks(entry, new Date(), flags.count)) process.stdout.write(`${isoInZone(t, entry.timezone)}\n`);
    });

  withAutomationOptions(
    program
      .command('ticks')
      .description("a schedule's or sensor's tick history, newest first: STARTED, SUCCESS (its runs), SKIPPED (why), FAILURE (the error)")
      .argument(...nameArgument('both')),
    'both',
  )
    .option('--limit <n>', 'at most this many ticks', positive('--limit', true), 50)
    .option('--json', 'print an array of tick objects')
    .action(async (name: string, flags: AutomationFlags & { json?: boolean; limit: number }) => {
      const { id, kind } = findEntry((await loadJobs(flags, 'both')).values(), name, ['schedules', 'sensors']);
      const ticks = await withStores(flags, (stores) => stores[kind].ticks(id, flags.limit));
      print(flags.json, ticks, () => (ticks.length === 0 ? [`no ticks yet for ${id}`] : ticks.map(tickLine)));
    });
}
