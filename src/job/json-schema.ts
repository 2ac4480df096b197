/**
 * JSON Schemas of the job file and the run-config file (`coordinator schema job|run-config`), for
 * editors and other tools, made from the same zod schemas that check the files. What JSON Schema
 * cannot say is added by hand: a selector holds exactly one key, `spawn:` with nothing after it
 * is `spawn: {}`, an op has `fn` or `command`. The messages and checks baton gives remain the
 * reference: a file this schema accepts may still be refused (an `ins` naming no op, a cycle).
 */
import * as z from 'zod';
import type { JobDefinition } from '../core/types.js';
import { NAME_RE, jobSchema, opSchema } from './job-schema.js';
import { runConfigSchema } from './run-config-schema.js';
import { scheduleSchema } from './schedules.js';
import { sensorSchema } from './sensors.js';
import { isChoice } from './zod-problems.js';

type JsonSchema = Record<string, unknown>;

/** The job file as one schema: ops as a map of op definitions, run_config as a run config. */
const jobDocument = jobSchema.extend({
  name: z.string().regex(NAME_RE),
  ops: z.record(z.string().regex(NAME_RE), opSchema),
  run_config: runConfigSchema.optional(),
  schedules: z.record(z.string().regex(NAME_RE), scheduleSchema.extend({ run_config: runConfigSchema.optional() })).optional(),
  sensors: z.record(z.string().regex(NAME_RE), sensorSchema.extend({ run_config: runConfigSchema.optional() })).optional(),
});

export function jobJsonSchema(): JsonSchema {
  // run_config or run_config_file, not both.
  return { ...toJsonSchema(jobDocument, 'baton job file (job.yaml)'), not: { required: ['run_config', 'run_config_file'] } };
}

/** The run-config schema; given a job, `ops` lists that job's op names, so an editor can complete them. */
export function runConfigJsonSchema(job?: JobDefinition): JsonSchema {
  const schema = toJsonSchema(runConfigSchema, 'baton run config (-c FILE, or run_config in a job file)');
  const ops = (schema.properties as Record<string, JsonSchema> | undefined)?.ops;
  const opConfig = ops?.additionalProperties;
  if (job && ops && opConfig && typeof opConfig === 'object') {
    ops.properties = Object.fromEntries([...job.ops.keys()].map((name) => [name, opConfig]));
    ops.additionalProperties = false;
  }
  return schema;
}

function toJsonSchema(schema: z.ZodType, title: string): JsonSchema {
  const out = z.toJSONSchema(schema, {
    unrepresentable: 'any',
    override: ({ zodSchema, jsonSchema }) => {
      const js = jsonSchema as JsonSchema;
      if (isChoice(zodSchema)) Object.assign(js, { minProperties: 1, maxProperties: 1 });
      if (zodSchema === opSchema) js.oneOf = [{ required: ['fn'] }, { required: ['command'] }];
      const def = zodSchema._zod.def as { type: string; in?: { _zod: { def: { type: string } } } };
      // `emptyable` (z.preprocess): an empty value stands for an empty map.
      if (def.type === 'pipe' && def.in?._zod.def.type === 'transform') {
        const inner = { ...js };
        for (const key of Object.keys(js)) delete js[key];
        js.anyOf = [{ type: 'null' }, inner];
      }
    },
  }) as JsonSchema;
  return { $schema: out.$schema, title, ...out };
}
