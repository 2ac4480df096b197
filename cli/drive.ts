import type { RunEvent } from '../src/core/types.js';
import type { RunResult } from '../src/run/execute-run.js';
import { RunLeaseLostError } from '../src/errors.js';
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
  options: { verbose?: boolean } = {},
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
  const reporter = createReporter(totalSteps, { mode: progressMode(json), stack: options.verbose ? 'full' : 'tail' });
  try {
    const result = await drive(cancel.signal, reporter);
    process.stdout.write = stdoutWrite;
    if (json) process.stdout.write(`${JSON.stringify(runSummary(result))}\n`);
    if (interrupted) return EXIT.interrupted;
    return result.status === 'SUCCESS' ? EXIT.success : EXIT.runFailed;
  } catch (e) {
    // Stopped driving: the one --json object still comes, with what this process last knew.
    if (json && e instanceof RunLeaseLostError) {
      process.stdout.write = stdoutWrite;
      process.stdout.write(`${JSON.stringify({ ...runSummary(e.run), error: { code: e.code, message: e.message } })}\n`);
    }
    throw e;
  } finally {
    reporter.close();
    process.stdout.write = stdoutWrite;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * The live view: a compact progress block on a terminal; plain lines when stderr is piped or with
 * `--json`. `BATON_PROGRESS=lines|compact` chooses explicitly.
 */
function progressMode(json: boolean | undefined): 'lines' | 'compact' {
  const asked = process.env.BATON_PROGRESS;
  if (asked === 'lines' || asked === 'compact') return asked;
  return !json && process.stderr.isTTY === true ? 'compact' : 'lines';
}
