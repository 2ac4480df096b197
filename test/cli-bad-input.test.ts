/**
 * Every malformed file of test/fixtures/bad, through the built CLI: exit 2, the error code, the
 * README's message fragment right after the file name (with `:line:col` for YAML-located
 * problems), and no stack trace. Job files go through `coordinator validate`, run-config files
 * through `coordinator run --json` against the good job (so only an error object may reach stdout). Files
 * that cannot be committed (missing, a directory, over 64 MiB, Latin-1 run config) are made here.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, parseErrorSummary, runCli, removeTempDirs, tempDir, type CliResult } from './helpers/cli.js';

afterAll(removeTempDirs);

const BAD = 'test/fixtures/bad';
const GOOD_JOB = 'test/fixtures/jobs/etl.yaml';
const SEED = 'test/fixtures/e2e/seed.yaml';
const why = (r: CliResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

interface Row {
  file: string;
  code: string;
  fragment: string;
}

/** The README's table: one row per file, `file | code | fragment` (the fragment may hold " | "). */
function readTable(): Row[] {
  const unquote = (s: string): string => s.trim().replace(/^`(.*)`$/, '$1');
  return readFileSync(path.join(ROOT, BAD, 'README.md'), 'utf8')
    .split('\n')
    .filter((line) => /^\| `[a-z0-9-]+\.yaml`/.test(line))
    .map((line) => {
      const [file, code, ...rest] = line.slice(1, -1).split(' | ');
      return { file: unquote(file ?? ''), code: (code ?? '').trim(), fragment: unquote(rest.join(' | ')) };
    });
}

const rows = readTable();
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** What every refusal looks like: exit 2, the code, `<file><fragment>`, no stack, one error object on stdout. */
function expectRefused(r: CliResult, code: string, file: string, fragment: string, runJson = false): void {
  expect(r.code, why(r)).toBe(2);
  // `run --json`: one error object and no run summary; the other commands: nothing.
  if (runJson) expect(parseErrorSummary(r).error.code, why(r)).toBe(code);
  else expect(r.stdout, why(r)).toBe('');
  expect(r.stderr).toMatch(new RegExp(`^error: (invalid input|\\d+ problems in the input) \\[${code}\\]$`, 'm'));
  expect(r.stderr, why(r)).toContain(`${file}${fragment}`);
  if (/^:\d+:\d+/.test(fragment)) expect(r.stderr).toMatch(new RegExp(`${escape(file)}:\\d+:\\d+`));
  expect(r.stderr).not.toMatch(/\n\s+at .*:\d+:\d+\)?\n|ZodError|"code":|internal error/);
}

describe('the bad-input corpus through the CLI', () => {
  it('has a README row for every file, and a file for every row', () => {
    const files = readdirSync(path.join(ROOT, BAD))
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    expect(rows.map((r) => r.file).sort()).toEqual(files);
    expect(files.length).toBeGreaterThanOrEqual(25);
    expect(new Set(rows.map((r) => r.code)).size).toBeGreaterThanOrEqual(5);
  });

  // Concurrent: each case is a separate CLI process, mostly start-up time.
  it.concurrent.each(rows.filter((r) => r.file.startsWith('job-')))(
    'validate $file: exit 2, $code',
    async ({ file, code, fragment }) => {
      const shown = `${BAD}/${file}`;
      expectRefused(await runCli(['validate', shown]), code, shown, fragment);
    },
  );

  it.concurrent.each(rows.filter((r) => r.file.startsWith('config-')))(
    'run -c $file: exit 2, $code, nothing run',
    async ({ file, code, fragment }) => {
      const shown = `${BAD}/${file}`;
      expectRefused(await runCli(['run', GOOD_JOB, '-c', shown, '--json']), code, shown, fragment, true);
    },
  );

  it('a job file through run and plan is refused the same way', async () => {
    const row = rows.find((r) => r.file === 'job-cycle.yaml');
    expect(row).toBeDefined();
    const { file, code, fragment } = row as Row;
    for (const command of ['run', 'plan']) {
      expectRefused(await runCli([command, `${BAD}/${file}`, '--json']), code, `${BAD}/${file}`, fragment, command === 'run');
    }
  });
});

describe('files that cannot be committed', () => {
  const dir = tempDir('baton-bad-input-');

  it('a missing job file, and a missing run-config file', async () => {
    const missing = path.join(dir, 'missing.yaml');
    expectRefused(await runCli(['validate', missing]), 'FILE_UNREADABLE', missing, ': cannot read file: no such file');
    expectRefused(await runCli(['run', SEED, '-c', missing, '--json']), 'FILE_UNREADABLE', missing, ': cannot read file: no such file', true);
  });

  it('a directory given as the job file', async () => {
    const sub = path.join(dir, 'jobs.yaml');
    mkdirSync(sub);
    expectRefused(await runCli(['validate', sub]), 'FILE_UNREADABLE', sub, ': cannot read file: it is a directory, not a file');
  });

  it('a job file and a run-config file over 64 MiB are refused by size, not parsed', async () => {
    const huge = path.join(dir, 'huge.yaml');
    // A valid job followed by comments up to 65 MiB: only its size is wrong.
    const head = 'name: huge\nops:\n  a: { fn: ./ops.mjs#ok }\n';
    const size = 65 * 1024 * 1024;
    const body = Buffer.alloc(size, '# padding padding padding padding padding padding padding padding\n');
    Buffer.from(head).copy(body);
    body[size - 1] = 0x0a;
    writeFileSync(huge, body);
    const message = ': file is too large: 65.0 MiB, the limit is 64.0 MiB';
    expectRefused(await runCli(['validate', huge]), 'FILE_TOO_LARGE', huge, message);
    expectRefused(await runCli(['run', SEED, '-c', huge, '--json']), 'FILE_TOO_LARGE', huge, message, true);
  });

  it('a run-config file that is not UTF-8 (Latin-1): located at the bad byte', async () => {
    const latin1 = path.join(dir, 'latin1.yaml');
    writeFileSync(latin1, Buffer.concat([Buffer.from('ops:\n  add_nums:\n    config: { day: "caf'), Buffer.from([0xe9]), Buffer.from('" }\n')]));
    expectRefused(
      await runCli(['run', SEED, '-c', latin1, '--json']),
      'FILE_NOT_UTF8',
      latin1,
      ':3:24: file is not valid UTF-8: unexpected byte 0xE9 (save the file with UTF-8 encoding)',
      true,
    );
  });

  it('problems in two run-config files are all listed, each with its own file', async () => {
    const a = path.join(dir, 'a.yaml');
    const b = path.join(dir, 'b.yaml');
    writeFileSync(a, 'ops:\n  add_num: { config: {} }\n');
    writeFileSync(b, 'execution:\n  config:\n    multiprocess: { max_concurent: 2 }\n');
    const r = await runCli(['validate', SEED, '-c', a, '-c', b]);
    expect(r.code, why(r)).toBe(2);
    expect(r.stderr).toContain('2 problems in the input');
    expect(r.stderr).toContain(`${a}:2:3 at ops.add_num: unknown op "add_num" (did you mean "add_nums"?)`);
    expect(r.stderr).toMatch(new RegExp(`${escape(b)}:3:\\d+ at execution\\.config\\.multiprocess\\.max_concurent: unknown key`));
  });
});
