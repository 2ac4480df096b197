/** A worker's one info line per step, like Celery's: received, then succeeded or failed in N s, on which process. */
import type { Logger } from 'pino';
import type { StepObserver } from '../executors/observed-runner.js';

export function stepLogLines(log: Logger): StepObserver {
  return {
    received(s) {
      log.info({ runId: s.runId, job: s.jobName, step: s.stepKey, attempt: s.attempt }, `step ${s.stepKey} received`);
    },
    ended(s, outcome, seconds) {
      const where = s.pid === undefined ? '' : ` on process ${s.pid}`;
      const fields = { runId: s.runId, job: s.jobName, step: s.stepKey, attempt: s.attempt, pid: s.pid, seconds };
      if (outcome.ok) log.info(fields, `step ${s.stepKey} succeeded in ${seconds.toFixed(2)} s${where}`);
      else log.info({ ...fields, code: outcome.error.code }, `step ${s.stepKey} failed in ${seconds.toFixed(2)} s${where}: ${outcome.error.message}`);
    },
  };
}
