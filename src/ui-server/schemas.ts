/** JSON Schemas of job files and run config, made from the zod schemas that check them. */
import * as z from 'zod';
import type { JobDefinition } from '../core/types.js';
import { NAME_RE, jobSchema, opSchema } from '../job/job-schema.js';
import { runConfigSchema } from '../job/run-config-schema.js';

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

/** The job-file schema; `ops` (checked op by op in code) gets each op's schema. */
export function jobJsonSchema(): JsonSchema {
  const schema = toSchema(jobSchema);
  const props = schema.properties as Record<string, JsonSchema>;
  props.ops = { type: 'object', minProperties: 1, propertyNames: { pattern: NAME_RE.source }, additionalProperties: toSchema(opSchema) };
  return schema;
}
