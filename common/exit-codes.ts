import { CommanderError } from 'commander';
import { BatonError, InputError, type Problem } from '../src/errors.js';
import { redactCredentials } from '../src/redact.js';

/** The CLI's exit codes: a public contract. */
export const EXIT = { success: 0, runFailed: 1, invalidInput: 2, interrupted: 130 } as const;

/** Codes that mean the user's input (or environment) was wrong and nothing ran. */
const INPUT_CODES: ReadonlySet<string> = new Set(['USAGE', 'REDIS_UNAVAILABLE', 'LIMIT_INVALID', 'NEEDS_REDIS', 'RUN_NOT_FOUND', 'SCHEDULE_NOT_FOUND', 'SENSOR_NOT_FOUND', 'RUN_NOT_RESUMABLE', 'RUN_BUSY']);

/** The `--json` object for an error (`{"error":{"code","message","problems"}}`): a public contract. */
export function errorJson(e: unknown): { error: { code: string; message: string; problems: Problem[] } } {
  if (e instanceof CommanderError) return { error: { code: 'USAGE', message: redactCredentials(e.message.replace(/^error: /, '')), problems: [] } };
  if (e instanceof BatonError) {
    const problems = e instanceof InputError ? redactProblems(e.problems) : [];
    return { error: { code: e.code, message: redactCredentials(e.message), problems } };
  }
  return { error: { code: 'INTERNAL', message: redactCredentials(e instanceof Error ? e.message : String(e)), problems: [] } };
}

/** Problems as `--json` shows them: any credentials in a message or hint hidden. */
export function redactProblems(problems: readonly Problem[]): Problem[] {
  return problems.map((p) => {
    const out: Problem = { ...p, message: redactCredentials(p.message) };
    if (p.hint !== undefined) out.hint = redactCredentials(p.hint);
    return out;
  });
}

/** Prints an error for a person and returns the exit code it maps to. */
export function reportError(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT.invalidInput;
  if (e instanceof InputError) {
    const n = e.problems.length;
    console.error(`error: ${n === 1 ? 'invalid input' : `${n} problems in the input`} [${e.code}]`);
    for (const line of e.message.split('\n')) console.error(`  ${line}`);
    return EXIT.invalidInput;
  }
  if (e instanceof BatonError) {
    console.error(`error [${e.code}]: ${e.message}`);
    return INPUT_CODES.has(e.code) ? EXIT.invalidInput : EXIT.runFailed;
  }
  console.error(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return EXIT.runFailed;
}
