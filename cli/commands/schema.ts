import { Argument, type Command } from 'commander';
import { jobJsonSchema, runConfigJsonSchema } from '../../src/job/json-schema.js';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of a job file (with its run_config) or of a run-config file, for editors')
    .addArgument(new Argument('<file-kind>', 'job or run-config').choices(['job', 'run-config']))
    .action((kind: 'job' | 'run-config') => {
      const schema = kind === 'job' ? jobJsonSchema() : runConfigJsonSchema();
      process.stdout.write(`${JSON.stringify(schema, null, 2)}\n`);
    });
}
