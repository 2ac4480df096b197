import type { RunEvent } from '../src/core/types.js';
import type { RunResult } from '../src/run/execute-run.js';
import { EXIT } from '../common/exit-codes.js';
import { createReporter, runSummary } from './reporter.js';

/**
 * Runs something that drives a run (run, resume, reexecute) the way `coordinator run` does: live
 * progress on stderr, Ctrl-C cancels cleanly (a second one quits at once), `--json` prints one
 * summary object, and the exit code says how it went.
 */
export async function driveWithProgress(
  totalSteps: number,
  json: boolean | undefined,
  drive: (signal: AbortSignal, onEvent: (e: RunEvent) => void) => Promise<RunResult>,
): Promise<number> {
  const cancel = new AbortController();
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(EXIT.interrupted);
    interrupted = true;
    process.stderr.write('\ninterrupt: canceling the run (Ctrl-C again to quit at once)\n');
    cancel.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // With --json, stdout holds the summary alone: whatever an in-process op prints goes to stderr.
  const stdoutWrite = process.stdout.write;
  if (json) process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  try {
    const result = await drive(cancel.signal, createReporter(totalSteps));
    process.stdout.write = stdoutWrite;
    if (json) process.stdout.write(`${JSON.stringify(runSummary(result))}\n`);
    if (interrupted) return EXIT.interrupted;
    return result.status === 'SUCCESS' ? EXIT.success : EXIT.runFailed;
  } finally {
    process.stdout.write = stdoutWrite;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
