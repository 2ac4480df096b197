/**
 * The job file's schema. Zod is the source of truth; `isPlainValidOp` is a hand-written mirror
 * for the common case, because running zod on each of 100,000 ops costs ~0.35 s of a 1 s budget.
 */
import * as z from 'zod';
import { isPlainMap } from './problem.js';

export const NAME_RE = /^[A-Za-z0-9_]+$/;
const EXPORT_RE = /^[A-Za-z_$][\w$]*$/;
/** Stricter than `fnRefProblem` (no `#` in the module path, no surrounding blanks). */
const FAST_FN_RE = /^[^#\s](?:[^#]*[^#\s])?(?:#[A-Za-z_$][\w$]*)?$/;

/** `nightly-etl` -> `nightly_etl`: a hint for a name with forbidden characters. */
export function nameHint(name: string): string | undefined {
  const fixed = name.trim().replace(/[^A-Za-z0-9_]+/g, '_');
  return fixed && fixed !== name ? `try "${fixed}"` : undefined;
}

export function nameSchema(what: string) {
  return z.string({ error: `expected ${what}` }).superRefine((s, ctx) => {
    if (NAME_RE.test(s)) return;
    const hint = nameHint(s);
    ctx.addIssue({
      code: 'custom',
      message: `expected ${what} made of letters, digits and underscores, got ${JSON.stringify(s)}`,
      params: hint ? { hint } : {},
    });
  });
}

/** `./ops/etl.mjs#extract` -> module and export ('default' without `#`). Split at the last `#`. */
export function parseFnRef(ref: string): { module: string; exportName: string } {
  const i = ref.lastIndexOf('#');
  return i < 0 ? { module: ref, exportName: 'default' } : { module: ref.slice(0, i), exportName: ref.slice(i + 1) };
}

function fnRefProblem(ref: string): { message: string; hint?: string } | undefined {
  const example = 'e.g. ./ops/etl.mjs#extract';
  if (ref.trim() === '') return { message: `expected a module reference, got an empty string`, hint: example };
  const { module, exportName } = parseFnRef(ref);
  const q = JSON.stringify(ref);
  if (module.trim() === '') return { message: `missing the module path before "#" in ${q}`, hint: example };
  if (module !== module.trim()) return { message: `unexpected blanks around the module path in ${q}` };
  if (ref.endsWith('#')) {
    return { message: `missing the export name after "#" in ${q}`, hint: 'omit "#" to use the default export' };
  }
  if (!EXPORT_RE.test(exportName)) {
    return { message: `invalid export name ${JSON.stringify(exportName)} in ${q}: expected a JavaScript identifier` };
  }
  return undefined;
}

export const fnSchema = z.string({ error: 'expected a module reference like "./ops/etl.mjs#extract"' }).superRefine((s, ctx) => {
  const p = fnRefProblem(s);
  if (p) ctx.addIssue({ code: 'custom', message: p.message, params: p.hint ? { hint: p.hint } : {} });
});

const commandSchema = z
  .array(z.string({ error: 'expected a string' }), {
    error: 'expected a list of strings (the program and its arguments)',
  })
  .min(1, { error: 'expected a non-empty list: the program, then its arguments' })
  .superRefine((argv, ctx) => {
    if (argv[0] === '') ctx.addIssue({ code: 'custom', path: [0], message: 'expected the program to run, got an empty string' });
  });

export const tagsSchema = z.record(z.string(), z.string({ error: 'expected a string tag value' }), {
  error: 'expected a map of tag name -> string value',
});

const nonNegInt = 'expected an integer >= 0';
export const retrySchema = z.strictObject(
  {
    max_retries: z.int({ error: nonNegInt }).min(0, { error: nonNegInt }),
    delay: z
      .number({ error: 'expected a number of seconds >= 0' })
      .min(0, { error: 'expected a number of seconds >= 0' })
      .optional(),
    backoff: z.enum(['linear', 'exponential'], { error: 'expected "linear" or "exponential"' }).optional(),
    jitter: z.enum(['full', 'plus_minus'], { error: 'expected "full" or "plus_minus"' }).optional(),
  },
  { error: 'expected a retry policy map like { max_retries: 2 }' },
);

const opName = z.string({ error: 'expected an op name' });
export const insSchema = z.union([z.array(opName), z.record(z.string(), opName)], {
  error: 'expected a list of op names, or a map of input name -> op name',
});

export const depsSchema = z.array(opName, { error: 'expected a list of op names' });

export const opSchema = z
  .strictObject(
    {
      fn: fnSchema.optional(),
      command: commandSchema.optional(),
      description: z.string().optional(),
      tags: tagsSchema.optional(),
      config: z.record(z.string(), z.unknown(), { error: 'expected a map of config values' }).optional(),
      retry: retrySchema.optional(),
      timeout_seconds: z
        .number({ error: 'expected a number of seconds > 0' })
        .positive({ error: 'expected a number of seconds > 0' })
        .optional(),
      ins: insSchema.optional(),
      deps: depsSchema.optional(),
    },
    { error: 'expected a map defining the op (with fn or command)' },
  )
  .superRefine(
    (op, ctx) => {
      const hasFn = op.fn !== undefined;
      const hasCommand = op.command !== undefined;
      if (hasFn && hasCommand) {
        const hint = 'an op is either a JS/TS function (fn) or an argv (command)';
        ctx.addIssue({ code: 'custom', message: 'expected "fn" or "command", got both', params: { hint, atKey: true } });
      } else if (!hasFn && !hasCommand) {
        const hint = 'add fn: ./ops.mjs#name or command: [program, args...]';
        ctx.addIssue({ code: 'custom', message: 'expected "fn" or "command", got neither', params: { hint, atKey: true } });
      }
    },
    { when: (payload) => isPlainMap(payload.value) },
  );

export const jobSchema = z.strictObject(
  {
    name: nameSchema('a job name'),
    description: z.string().optional(),
    tags: tagsSchema.optional(),
    // Each op is checked on its own (fast path or opSchema), and non-emptiness with them.
    ops: z.custom<Record<string, unknown>>(isPlainMap, { error: 'expected a map of op name -> op definition' }),
    // Checked on its own against the run config's schema (job-run-config.ts).
    run_config: z.unknown().optional(),
    run_config_file: z
      .string({ error: 'expected the path of a run-config file, relative to this job file' })
      .min(1, { error: 'expected the path of a run-config file, relative to this job file' })
      .optional(),
    // Checked on their own (schedules.ts, sensors.ts).
    schedules: z.unknown().optional(),
    sensors: z.unknown().optional(),
  },
  { error: 'expected a map with "name" and "ops" at the top level' },
);

export type RawOp = z.output<typeof opSchema>;
export type RawJob = z.output<typeof jobSchema>;

// Plain loops: no closure per call on a path taken 100,000 times.
function isStringList(v: unknown): v is string[] {
  if (!Array.isArray(v)) return false;
  for (const x of v) if (typeof x !== 'string') return false;
  return true;
}
function isStringMap(v: unknown): v is Record<string, string> {
  if (!isPlainMap(v)) return false;
  for (const k in v) if (typeof v[k] !== 'string') return false;
  return true;
}

/**
 * True only for ops that `opSchema` accepts too (test/load-job.test.ts checks the two agree);
 * anything unusual (a retry policy, an odd fn reference) returns false and goes through zod.
 */
export function isPlainValidOp(op: unknown): op is RawOp {
  if (!isPlainMap(op)) return false;
  let impls = 0;
  for (const k in op) {
    const v = op[k];
    switch (k) {
      case 'fn':
        if (typeof v !== 'string' || !FAST_FN_RE.test(v)) return false;
        impls++;
        break;
      case 'command':
        if (!isStringList(v) || v.length === 0 || v[0] === '') return false;
        impls++;
        break;
      case 'ins':
        if (!isStringList(v) && !isStringMap(v)) return false;
        break;
      case 'deps':
        if (!isStringList(v)) return false;
        break;
      case 'tags':
        if (!isStringMap(v)) return false;
        break;
      case 'config':
        if (!isPlainMap(v)) return false;
        break;
      case 'description':
        if (typeof v !== 'string') return false;
        break;
      default:
        return false;
    }
  }
  return impls === 1;
}
