/**
 * JSON Schemas of job files and run config, made from the zod schemas that check them: for
 * editors (`coordinator schema`, the `# yaml-language-server: $schema=` line) and the UI's completion.
 */
import * as z from 'zod';
import type { JobDefinition } from '../core/types.js';
import { NAME_RE, jobSchema, opSchema } from './job-schema.js';
import { runConfigSchema } from './run-config-schema.js';

type JsonSchema = Record<string, unknown>;

const toSchema = (schema: z.ZodType): JsonSchema => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;

/** The run-config schema; for a job, `ops` lists its op names, so an editor can complete them. */
export function runConfigJsonSchema(job?: JobDefinition): JsonSchema {
  const schema = toSchema(runConfigSchema);
  if (!job) return schema;
  const ops = (schema.properties as Record<string, JsonSchema>).ops as JsonSchema;
  const opSchema = ops.additionalProperties as JsonSchema;
  ops.properties = Object.fromEntries([...job.ops.keys()].map((name) => [name, opSchema]));
  ops.additionalProperties = false;
  return schema;
}

/** The job-file schema: `ops` (checked op by op in code) gets each op's schema, `run_config` the run config's. */
export function jobJsonSchema(): JsonSchema {
  const schema = toSchema(jobSchema);
  const props = schema.properties as Record<string, JsonSchema>;
  props.ops = { type: 'object', minProperties: 1, propertyNames: { pattern: NAME_RE.source }, additionalProperties: bare(toSchema(opSchema)) };
  if ('run_config' in props) props.run_config = bare(toSchema(runConfigSchema));
  return schema;
}

/** A schema nested in another drops its own `$schema`. */
function bare(schema: JsonSchema): JsonSchema {
  const { $schema: _, ...rest } = schema;
  return rest;
}
