/** Reading user files: size limit, strict UTF-8, and YAML parsing with located syntax errors. */
import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { YAMLException, load } from 'js-yaml';
import { InputError, type ErrorCode, type Problem } from '../errors.js';
import { SourceIndex } from './locate.js';
import { MAX_PROBLEMS, formatPath, type PathSeg } from './problem.js';

export const MAX_FILE_BYTES = 64 * 1024 * 1024;

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory, not a file',
  ENOTDIR: 'a component of the path is not a directory',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the path is too long',
};

/** Reads a UTF-8 text file of at most MAX_FILE_BYTES; `file` is named in problems as given. */
export async function readTextFile(file: string): Promise<string> {
  let bytes: Buffer;
  try {
    const info = await stat(file);
    if (info.isFile() && info.size > MAX_FILE_BYTES) throw tooLarge(file, info.size);
    bytes = await readFile(file);
  } catch (err) {
    throw unreadable(err, file);
  }
  // The file may have grown between stat and read.
  if (bytes.length > MAX_FILE_BYTES) throw tooLarge(file, bytes.length);
  return decodeUtf8(bytes, file);
}

/** `readTextFile`, synchronously (for `parseJob`, which has no await). */
export function readTextFileSync(file: string): string {
  let bytes: Buffer;
  try {
    const info = statSync(file);
    if (info.isFile() && info.size > MAX_FILE_BYTES) throw tooLarge(file, info.size);
    bytes = readFileSync(file);
  } catch (err) {
    throw unreadable(err, file);
  }
  if (bytes.length > MAX_FILE_BYTES) throw tooLarge(file, bytes.length);
  return decodeUtf8(bytes, file);
}

function unreadable(err: unknown, file: string): InputError {
  if (err instanceof InputError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const why = READ_ERRORS[code] ?? `${code || 'unknown error'}`;
  return new InputError('FILE_UNREADABLE', [{ file, message: `cannot read file: ${why}` }]);
}

function tooLarge(file: string, size: number): InputError {
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return new InputError('FILE_TOO_LARGE', [
    { file, message: `file is too large: ${mib(size)}, the limit is ${mib(MAX_FILE_BYTES)}` },
  ]);
}

/** Decodes strict UTF-8 (a BOM is dropped); on bad bytes names the first one and its position. */
export function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidByte(bytes);
    let lineStart = bytes.lastIndexOf(0x0a, at - 1) + 1;
    if (at === 0) lineStart = 0;
    let line = 1;
    for (let i = bytes.indexOf(0x0a); i !== -1 && i < at; i = bytes.indexOf(0x0a, i + 1)) line++;
    const column = new TextDecoder('utf-8').decode(bytes.subarray(lineStart, at)).length + 1;
    const byte = (bytes[at] ?? 0).toString(16).toUpperCase().padStart(2, '0');
    throw new InputError('FILE_NOT_UTF8', [
      {
        file,
        line,
        column,
        message: `file is not valid UTF-8: unexpected byte 0x${byte}`,
        hint: 'save the file with UTF-8 encoding',
      },
    ]);
  }
}

/** Offset of the byte at which strict decoding fails: chunks first, then byte by byte. */
function firstInvalidByte(bytes: Uint8Array): number {
  const CHUNK = 4096;
  let dec = new TextDecoder('utf-8', { fatal: true });
  let start = 0;
  for (; start < bytes.length; start += CHUNK) {
    try {
      dec.decode(bytes.subarray(start, start + CHUNK), { stream: true });
    } catch {
      break;
    }
  }
  // Replay up to the failing chunk, then feed it one byte at a time.
  dec = new TextDecoder('utf-8', { fatal: true });
  dec.decode(bytes.subarray(0, start), { stream: true });
  for (let i = start; i < bytes.length; i++) {
    try {
      dec.decode(bytes.subarray(i, i + 1), { stream: true });
    } catch {
      return incompleteLead(bytes, i) ?? i;
    }
  }
  return incompleteLead(bytes, bytes.length) ?? bytes.length - 1; // truncated at the very end
}

/** When decoding fails at `at` because a multi-byte sequence before it is cut short: its lead. */
function incompleteLead(bytes: Uint8Array, at: number): number | undefined {
  for (let j = at - 1; j >= 0 && j >= at - 3; j--) {
    const b = bytes[j] as number;
    if (b >= 0x80 && b < 0xc0) continue; // continuation byte
    if (b < 0xc0) return undefined;
    const needed = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
    return at - j < needed ? j : undefined;
  }
  return undefined;
}

/** What the caller reports a duplicate key as, e.g. `duplicate op name "extract"`. */
export type DuplicateMessage = (path: PathSeg[]) => string;

/**
 * Parses one YAML document. Returns undefined for an empty file (only blanks and comments).
 * Syntax errors throw YAML_SYNTAX; duplicate keys throw `invalidCode`, every one of them located.
 */
export function parseYaml(text: string, file: string, invalidCode: ErrorCode, duplicate: DuplicateMessage): unknown {
  try {
    return load(text, { filename: file });
  } catch (err) {
    if (isBlank(text)) return undefined;
    if (!(err instanceof YAMLException)) {
      throw new InputError('YAML_SYNTAX', [{ file, message: `invalid YAML: ${String(err)}` }]);
    }
    if (/duplicate/i.test(err.reason)) throw duplicates(text, file, invalidCode, duplicate, err);
    const problem: Problem = { file, message: `invalid YAML: ${err.reason}` };
    if (/single document/.test(err.reason)) problem.hint = 'keep one document per file: remove the "---" separator';
    if (err.mark) {
      problem.line = err.mark.line + 1;
      problem.column = err.mark.column + 1;
    }
    throw new InputError('YAML_SYNTAX', [problem]);
  }
}

function isBlank(text: string): boolean {
  return /^(?:[ \t\r\n]|#[^\n]*)*$/.test(text.replace(/^\uFEFF/, ''));
}

function duplicates(
  text: string,
  file: string,
  code: ErrorCode,
  describe: DuplicateMessage,
  err: YAMLException,
): InputError {
  const index = new SourceIndex(text);
  const problems: Problem[] = index.duplicates.slice(0, MAX_PROBLEMS).map((d) => ({
    file,
    ...index.lineCol(d.offset),
    path: formatPath(d.path),
    message: describe(d.path),
    hint: `first defined at line ${index.lineCol(d.firstOffset).line}`,
  }));
  if (problems.length > 0) return new InputError(code, problems);
  // Keys that only collide once resolved (e.g. `1` and "1"): js-yaml's mark is all we have.
  const problem: Problem = { file, message: 'duplicate key' };
  if (err.mark) Object.assign(problem, { line: err.mark.line + 1, column: err.mark.column + 1 });
  return new InputError(code, [problem]);
}
