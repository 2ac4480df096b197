import type { Command } from 'commander';
import { BatonError } from '../../src/errors.js';
import { jobJsonSchema, runConfigJsonSchema } from '../../src/job/json-schema.js';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of job files (job) or run-config files (run-config), for editors')
    .argument('<kind>', 'job or run-config')
    .action((kind: string) => {
      const schemas: Record<string, () => Record<string, unknown>> = { job: jobJsonSchema, 'run-config': () => runConfigJsonSchema() };
      const make = schemas[kind];
      if (!make) throw new BatonError('USAGE', `unknown schema "${kind}": expected job or run-config`);
      const { $schema, ...schema } = make();
      process.stdout.write(`${JSON.stringify({ $schema, title: `baton ${kind}`, ...schema }, null, 2)}\n`);
    });
}
