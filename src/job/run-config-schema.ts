/** The run config's schema: Dagster's `execution.config.<executor>` and `ops.<op>` shapes. */
import * as z from 'zod';
import { exactlyOneKey } from './zod-problems.js';

const nonNegInt = 'expected an integer >= 0';
const intMin0 = z.int({ error: nonNegInt }).min(0, { error: nonNegInt });

/** `spawn:` with nothing after it means `spawn: {}`, as in Dagster's YAML. */
function emptyable<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? {} : v), schema);
}

/** A selector map: exactly one of `options` (e.g. `retries: { enabled: {} }`). */
function oneOf<T extends Record<string, z.ZodType>>(label: string, options: T) {
  const allowed = Object.keys(options);
  const shape = Object.fromEntries(allowed.map((k) => [k, (options[k] as z.ZodType).optional()])) as {
    [K in keyof T]: z.ZodOptional<T[K]>;
  };
  const error = `expected a map with one ${label}: ${allowed.join(', ')}`;
  // The count itself is checked by selectorProblems (see zod-problems.ts).
  return exactlyOneKey(z.strictObject(shape, { error }), label);
}

const emptyMap = emptyable(z.strictObject({}, { error: 'expected an empty map {}' }));

const retries = oneOf('retries mode', { enabled: emptyMap, disabled: emptyMap });

const tagValue = z.union(
  [
    z.string(),
    z.strictObject({
      applyLimitPerUniqueValue: z.literal(true, { error: 'expected true' }),
    }),
  ],
  { error: 'expected a tag value (a string) or { applyLimitPerUniqueValue: true }' },
);

const tagConcurrencyLimits = z.array(
  z.strictObject(
    {
      key: z.string({ error: 'expected a tag name' }).min(1, { error: 'expected a non-empty tag name' }),
      value: tagValue.optional(),
      limit: intMin0,
    },
    { error: 'expected a map like { key: database, value: redshift, limit: 2 }' },
  ),
  { error: 'expected a list of { key, value, limit } maps' },
);

const startMethod = oneOf('start method', {
  spawn: emptyMap,
  forkserver: emptyable(
    z.strictObject({
      preload_modules: z
        .array(z.string().min(1, { error: 'expected a module path' }), { error: 'expected a list of module paths' })
        .optional(),
    }),
  ),
});

const inProcess = emptyable(z.strictObject({ retries: retries.optional() }));

const multiprocess = emptyable(
  z.strictObject({
    max_concurrent: intMin0.optional(),
    start_method: startMethod.optional(),
    tag_concurrency_limits: tagConcurrencyLimits.optional(),
    retries: retries.optional(),
  }),
);

export const REDIS_URL_RE = /^rediss?(\+cluster)?:\/\/\S+$/;
export const QUEUE_RE = /^[A-Za-z0-9_.-]+$/;
const queueName = z
  .string({ error: 'expected a queue name' })
  .regex(QUEUE_RE, { error: 'expected a queue name of letters, digits, "_", "." and "-"' });

const outputStorage = oneOf('output storage', {
  redis: emptyable(
    z.strictObject({
      max_bytes: z.int({ error: 'expected an integer >= 1' }).min(1, { error: 'expected an integer >= 1' }).optional(),
    }),
  ),
  filesystem: z.strictObject(
    { base_dir: z.string({ error: 'expected a directory path' }).min(1, { error: 'expected a directory path' }) },
    { error: 'expected a map like { base_dir: /shared/baton-outputs }' },
  ),
});

const distributed = emptyable(
  z.strictObject({
    redis: z
      .string({ error: 'expected a Redis URL like redis://127.0.0.1:6379' })
      .regex(REDIS_URL_RE, { error: 'expected a Redis URL starting with redis:// or rediss://' })
      .optional(),
    // One queue, or several: steps spread over them (src/distributed/queues.ts).
    queue: z
      .union([queueName, z.array(queueName, { error: 'expected a queue name or a list of them' }).min(1, { error: 'expected at least one queue' })], {
        error: 'expected a queue name or a list of them',
      })
      .optional(),
    max_concurrent: intMin0.optional(),
    tag_concurrency_limits: tagConcurrencyLimits.optional(),
    retries: retries.optional(),
    output_storage: outputStorage.optional(),
    retention_days: z
      .number({ error: 'expected a number of days > 0' })
      .positive({ error: 'expected a number of days > 0' })
      .optional(),
  }),
);

export const executorSchema = oneOf('executor', { in_process: inProcess, multiprocess, distributed });

const configMap = z.record(z.string(), z.unknown(), { error: 'expected a map' });

export const opRunConfigSchema = emptyable(
  z.strictObject(
    { config: configMap.optional(), inputs: configMap.optional() },
    { error: 'expected a map with config and/or inputs' },
  ),
);

export const runConfigSchema = z.strictObject(
  {
    execution: emptyable(z.strictObject({ config: executorSchema.optional() })).optional(),
    ops: emptyable(z.record(z.string(), opRunConfigSchema, { error: 'expected a map of op name -> op config' })).optional(),
    max_runtime_seconds: z
      .number({ error: 'expected a number of seconds > 0' })
      .positive({ error: 'expected a number of seconds > 0' })
      .optional(),
  },
  { error: 'expected a map at the top level (with execution and/or ops)' },
);

export type RawRunConfig = z.output<typeof runConfigSchema>;
