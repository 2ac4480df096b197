#!/usr/bin/env node
import { Command } from 'commander';
import { registerLimits } from './commands/limits.js';
import { registerLogs } from './commands/logs.js';
import { registerOperate } from './commands/operate.js';
import { registerPlan } from './commands/plan.js';
import { registerRun } from './commands/run.js';
import { registerRuns } from './commands/runs.js';
import { registerSchedules } from './commands/schedules.js';
import { registerSensors } from './commands/sensors.js';
import { registerSchema } from './commands/schema.js';
import { registerServe } from './commands/serve.js';
import { registerStatus } from './commands/status.js';
import { registerUi } from './commands/ui.js';
import { registerValidate } from './commands/validate.js';
import { registerWorkers } from './commands/workers.js';
import { errorJson, reportError } from '../common/exit-codes.js';
import { RunLeaseLostError } from '../src/errors.js';
import { batonVersion } from '../src/version.js';

// `coordinator logs ... | head`: a closed pipe ends the command quietly.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command('coordinator')
  .description('baton: run Dagster-style jobs in-process, multiprocess, or distributed on Redis queues')
  .version(batonVersion())
  .showHelpAfterError()
  .exitOverride();

registerRun(program);
registerPlan(program);
registerValidate(program);
registerStatus(program);
registerLogs(program);
registerRuns(program);
registerOperate(program);
registerLimits(program);
registerServe(program);
registerUi(program);
registerSchedules(program);
registerSensors(program);
registerSchema(program);
registerWorkers(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // `run --json` prints exactly one object on stdout on every exit path, an error's too.
  const code = reportError(e);
  const args = process.argv.slice(2);
  // (A run that lost its lease has printed its own object already: what it last knew of the run.)
  const printed = e instanceof RunLeaseLostError;
  if (code !== 0 && !printed && args[0] === 'run' && args.includes('--json')) process.stdout.write(`${JSON.stringify(errorJson(e))}\n`);
  process.exitCode = code;
  // A coordinator that lost its lease may hold sockets to a Redis it is cut off from: exit now.
  if (printed) process.exit(code);
}
