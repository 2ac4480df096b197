import { CommanderError } from 'commander';
import { BatonError, InputError } from '../src/errors.js';

/** The CLI's exit codes: a public contract. */
export const EXIT = { success: 0, runFailed: 1, invalidInput: 2, interrupted: 130 } as const;

/** Codes that mean the user's input (or environment) was wrong and nothing ran. */
const INPUT_CODES: ReadonlySet<string> = new Set(['USAGE', 'REDIS_UNAVAILABLE', 'LIMIT_INVALID', 'NEEDS_REDIS', 'RUN_NOT_FOUND', 'RUN_NOT_RESUMABLE', 'RUN_BUSY']);

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
