/** Every malformed fixture in test/fixtures/bad is refused with the code and message of its README row. */
import { mkdtempSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { JobDefinition } from '../src/core/types.js';
import { InputError, type Problem } from '../src/errors.js';
import { loadJob } from '../src/job/load-job.js';
import { loadRunConfig } from '../src/job/run-config.js';

const dir = fileURLToPath(new URL('./fixtures/bad/', import.meta.url));
const goodJob = fileURLToPath(new URL('./fixtures/jobs/etl.yaml', import.meta.url));

interface Row {
  file: string;
  code: string;
  fragment: string;
}

function readTable(): Row[] {
  const unquote = (s: string) => s.trim().replace(/^`(.*)`$/, '$1');
  return readFileSync(`${dir}README.md`, 'utf8')
    .split('\n')
    .filter((line) => /^\| `[a-z0-9-]+\.yaml`/.test(line))
    .map((line) => {
      const cells = line.slice(1, -1).split(' | ');
      const [file, code, ...rest] = cells;
      return { file: unquote(file ?? ''), code: (code ?? '').trim(), fragment: unquote(rest.join(' | ')) };
    });
}

const rows = readTable();
const tmp = () => mkdtempSync(join(tmpdir(), 'baton-bad-'));

async function failure(run: () => unknown): Promise<{ code: string; problems: Problem[]; message: string }> {
  try {
    await run();
  } catch (err) {
    if (err instanceof InputError) return { code: err.code, problems: err.problems, message: err.message };
    throw err;
  }
  throw new Error('expected an InputError');
}
let job: JobDefinition;
beforeAll(async () => {
  job = await loadJob(goodJob);
});

describe('bad fixtures corpus', () => {
  it('lists every file of the directory, and at least 25', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
    expect(rows.map((r) => r.file).sort()).toEqual(files);
    expect(files.length).toBeGreaterThanOrEqual(25);
  });

  it.each(rows)('$file: $code', async ({ file, code, fragment }) => {
    const path = `${dir}${file}`;
    const load = file.startsWith('job-') ? loadJob(path) : loadRunConfig([path], job);
    const err = await load.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InputError);
    const e = err as InputError;
    expect(e.code).toBe(code);
    expect(e.message).toContain(`${path}${fragment}`);
    expect(e.message).not.toMatch(/\n\s+at |ZodError|"code":/); // no stack trace, no zod JSON
  });
});

describe('bad files that cannot be fixtures', () => {
  it('a missing file, a directory', async () => {
    expect(await failure(() => loadJob('/nonexistent/job.yaml'))).toMatchObject({
      code: 'FILE_UNREADABLE',
      problems: [{ file: '/nonexistent/job.yaml', message: 'cannot read file: no such file' }],
    });
    const dir = tmp();
    expect((await failure(() => loadJob(dir))).message).toBe(`${dir}: cannot read file: it is a directory, not a file`);
  });

  it('a file over 64 MiB, refused before it is read', async () => {
    const path = join(tmp(), 'huge.yaml');
    writeFileSync(path, '');
    truncateSync(path, 65 * 1024 * 1024); // sparse: costs no disk
    expect(await failure(() => loadJob(path))).toEqual({
      code: 'FILE_TOO_LARGE',
      problems: [{ file: path, message: 'file is too large: 65.0 MiB, the limit is 64.0 MiB' }],
      message: `${path}: file is too large: 65.0 MiB, the limit is 64.0 MiB`,
    });
  });

  it('bytes that are not UTF-8, located', async () => {
    const path = join(tmp(), 'latin1.yaml');
    writeFileSync(path, Buffer.from('name: j\nops:\n  a: { fn: ./x.mjs, description: "caf\xe9" }\n', 'latin1'));
    const { code, problems } = await failure(() => loadJob(path));
    expect(code).toBe('FILE_NOT_UTF8');
    expect(problems).toEqual([
      { file: path, line: 3, column: 38, message: 'file is not valid UTF-8: unexpected byte 0xE9', hint: 'save the file with UTF-8 encoding' },
    ]);
  });
});
