import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';

type Schema = { properties: Record<string, Schema>; additionalProperties?: Schema; required?: string[] };

describe('coordinator schema', () => {
  it('prints the run-config schema the Launchpad completes from', async () => {
    const r = await runCli(['schema', 'run-config']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as Schema;
    const executors = schema.properties.execution?.properties.config?.properties ?? {};
    expect(Object.keys(executors)).toEqual(['in_process', 'multiprocess', 'distributed']);
    expect(Object.keys(executors.multiprocess?.properties ?? {})).toContain('tag_concurrency_limits');
  });

  it('prints the job-file schema, ops and the job-level run config included', async () => {
    const r = await runCli(['schema', 'job']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as Schema;
    expect(schema.required).toEqual(['name', 'ops']);
    expect(Object.keys(schema.properties.ops?.additionalProperties?.properties ?? {})).toEqual(expect.arrayContaining(['fn', 'command', 'ins', 'deps', 'retry']));
    expect(Object.keys(schema.properties.run_config?.properties ?? {})).toEqual(['execution', 'ops']);
  });

  it('refuses an unknown kind with exit 2', async () => {
    const r = await runCli(['schema', 'jobs']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('expected job or run-config');
  });
});
