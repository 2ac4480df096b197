/**
 * `coordinator schema job|run-config`: JSON Schemas an editor can check files with. zod's own
 * `fromJSONSchema` reads them back here as an independent check that they accept the example
 * files and refuse a misspelt key (it supports neither `not` nor `oneOf` of `required` lists,
 * so those two are asserted as they are written).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { load } from 'js-yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { ROOT, runCli } from './helpers/cli.js';

type Schema = Record<string, unknown> & { properties: Record<string, Schema> };
const example = (name: string): unknown => load(readFileSync(path.join(ROOT, 'examples/nightly_etl', name), 'utf8'));

async function schema(kind: string): Promise<Schema> {
  const r = await runCli(['schema', kind]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Schema;
}

let job: Schema;
let runConfig: Schema;
beforeAll(async () => {
  [job, runConfig] = await Promise.all([schema('job'), schema('run-config')]);
});

describe('coordinator schema', () => {
  it('run-config accepts every example run-config file and refuses max_concurent and two executors', () => {
    const check = z.fromJSONSchema(runConfig);
    for (const file of ['run-config.yaml', 'in-process.yaml', 'forkserver.yaml', 'distributed.yaml']) {
      expect(check.safeParse(example(file)).success, file).toBe(true);
    }
    expect(check.safeParse({ execution: { config: { multiprocess: { start_method: { spawn: null } } } } }).success).toBe(true);
    expect(check.safeParse({ execution: { config: { multiprocess: { max_concurent: 3 } } } }).success).toBe(false);
    expect(check.safeParse({ execution: { config: { multiprocess: {}, in_process: {} } } }).success).toBe(false);
  });

  it('job covers run_config with the run-config schema, and accepts the example job', () => {
    const { $schema: _s, title: _t, ...bare } = runConfig;
    expect(job.properties.run_config).toEqual(bare);
    expect(job.not).toEqual({ required: ['run_config', 'run_config_file'] });
    expect(job.required).toEqual(['name', 'ops']);
    const op = (job.properties.ops as Schema & { additionalProperties: Schema }).additionalProperties;
    expect(op.oneOf).toEqual([{ required: ['fn'] }, { required: ['command'] }]);
    const { not: _not, ...rest } = job;
    const { oneOf: _oneOf, ...opRest } = op;
    const check = z.fromJSONSchema({ ...rest, properties: { ...job.properties, ops: { ...job.properties.ops, additionalProperties: opRest } } });
    const doc = example('job.yaml') as { run_config: { execution: { config: { multiprocess: Record<string, unknown> } } } };
    expect(check.safeParse(doc).success).toBe(true);
    doc.run_config.execution.config.multiprocess.max_concurent = 3;
    expect(check.safeParse(doc).success).toBe(false);
  });

  it('refuses another kind of file', async () => {
    const r = await runCli(['schema', 'worker']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Allowed choices are job, run-config');
  });
});
