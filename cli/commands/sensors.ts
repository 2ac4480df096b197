import type { Command } from 'commander';
import { entriesOf, findEntry, loadJobs, nameArgument, print, registerStartStop, withAutomationOptions, withStores, type AutomationFlags } from '../automation-options.js';

export function registerSensors(program: Command): void {
  const sensors = program.command('sensors').description('the sensors declared in job files; start, stop and test them in the instance');

  withAutomationOptions(sensors.command('list').description('each sensor with its function, interval, status in the instance, cursor and last run key'), 'sensors')
    .option('--json', 'print an array of sensor objects')
    .action(async (flags: AutomationFlags & { json?: boolean }) => {
      const found = entriesOf((await loadJobs(flags, 'sensors')).values(), 'sensors');
      const rows = await withStores(flags, async ({ sensors: store }) => {
        const out = [];
        for (const { job, entry: s, id } of found) {
          const [status, cursor, lastRunKey] = await Promise.all([store.statusOf(id), store.cursor(id), store.lastRunKey(id)]);
          out.push({ id, job: job.name, name: s.name, fn: s.fn.ref, intervalSeconds: s.intervalSeconds, status: status ?? s.defaultStatus, cursor: cursor ?? null, lastRunKey: lastRunKey ?? null });
        }
        return out;
      });
      print(flags.json, rows, () =>
        rows.length === 0 ? ['no sensors in these jobs'] : rows.map((r) => `${r.id}  ${r.status}  ${r.fn} every ${r.intervalSeconds} s  last run key ${r.lastRunKey ?? '-'}`),
      );
    });

  registerStartStop(sensors, 'sensors', (status) =>
    status === 'running' ? 'start a sensor (it keeps its cursor and the run keys it launched)' : 'stop a sensor; serve evaluates it no more',
  );

  withAutomationOptions(
    sensors.command('test').description('evaluate a sensor once with its stored cursor and print the runs it asks for; nothing is launched or recorded').argument(...nameArgument('sensors')),
    'sensors',
  )
    .option('--json', 'print {runs, cursor, skip, storedCursor}')
    .action(async (name: string, flags: AutomationFlags & { json?: boolean }) => {
      const found = findEntry((await loadJobs(flags, 'sensors')).values(), name, ['sensors']);
      const [{ testSensor }, { createProcessLogger }] = await Promise.all([import('../../src/automation/sensor-daemon.js'), import('../../src/logger.js')]);
      const result = await withStores(flags, ({ sensors: store }) => testSensor(store, found.job, found.entry, createProcessLogger('baton-sensor')));
      const runs = result.runs.map((r) => ({ run_key: r.runKey, ...(r.runConfig ? { run_config: r.runConfig } : {}), ...(r.tags ? { tags: r.tags } : {}) }));
      print(flags.json, { runs, cursor: result.cursor ?? null, skip: result.skip ?? null, storedCursor: result.storedCursor ?? null }, () => [
        ...(runs.length === 0 ? [`no runs asked for${result.skip ? `: ${result.skip}` : ''}`] : runs.map((r) => `run ${r.run_key}${r.run_config ? ` ${JSON.stringify(r.run_config)}` : ''}`)),
        ...(result.cursor !== undefined ? [`cursor ${result.cursor}`] : []),
        '(test: nothing launched)',
      ]);
    });
}
