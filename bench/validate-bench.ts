/**
 * Section 2b: `coordinator validate` of a 100,000-op job file against js-yaml's bare parse of the
 * same file, both as whole processes, each minus the same process on a 1-op file (so node's
 * start-up and module loading cancel out), measured interleaved in the same run.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BIG, bigOp, jobYaml, packageRoot, writeJob } from './core-bench.js';
import type { Section } from './report.js';

const run = promisify(execFile);

async function wallMs(args: string[]): Promise<number> {
  const t0 = performance.now();
  await run(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 });
  return performance.now() - t0;
}

export async function benchValidate(tmp: string, rounds = 5): Promise<Section> {
  const root = await packageRoot();
  const big = await writeJob(join(tmp, 'validate-big'), 'job.yaml', jobYaml('big_job', BIG, bigOp));
  const one = await writeJob(join(tmp, 'validate-one'), 'job.yaml', jobYaml('big_job', 1, bigOp));
  const cli = join(root, 'dist', 'cli', 'main.js');
  const parse = join(root, 'dist', 'bench', 'parse-yaml.js');
  const cases = {
    parseBig: [parse, big],
    parseOne: [parse, one],
    validateBig: [cli, 'validate', big],
    validateOne: [cli, 'validate', one],
  };
  const best: Record<keyof typeof cases, number> = { parseBig: Infinity, parseOne: Infinity, validateBig: Infinity, validateOne: Infinity };
  // Interleaved, best of each: a busy moment of the machine hits one round, not one case.
  for (let i = 0; i < rounds; i++) {
    for (const [name, args] of Object.entries(cases) as Array<[keyof typeof cases, string[]]>) best[name] = Math.min(best[name], await wallMs(args));
  }
  const bare = best.parseBig - best.parseOne;
  const validate = best.validateBig - best.validateOne;
  return {
    title: `2b. coordinator validate of a ${BIG.toLocaleString('en-US')}-op job file vs js-yaml's bare parse`,
    short: '2b. validate 100k ops',
    method:
      `Whole processes: \`coordinator validate job.yaml\` and a bare js-yaml load() of the same file, each minus the same\n` +
      `process on a 1-op file; interleaved, best of ${rounds}.`,
    figures: [
      { name: "js-yaml's bare parse", value: bare, unit: 'ms' },
      { name: 'coordinator validate', value: validate, unit: 'ms' },
      { name: 'validate ÷ bare parse', value: validate / bare, unit: '×', target: { cmp: '<=', limit: 1.5 } },
    ],
  };
}
