import type { Command } from 'commander';
import { BatonError } from '../../src/errors.js';
import { openInstance } from '../../src/instance/open-instance.js';
import { startUiServer } from '../../src/ui-server/server.js';
import { collect, jobPathsOf } from '../../common/options.js';
import { redisUrlOf } from '../redis-option.js';

interface UiFlags {
  jobs: string[];
  redis?: string;
  storage?: string;
  host: string;
  port: string;
  basePath: string;
  authToken?: string;
  insecure?: boolean;
}

export function registerUi(program: Command): void {
  program
    .command('ui')
    .description('serve the web UI: jobs, Launchpad, live runs, schedules, sensors, limits and workers; without --redis it also runs the schedules and sensors')
    .option('--jobs <path>', 'a job file, or a directory searched for them (repeatable; default $BATON_JOBS)', collect, [])
    .option('--redis <url>', 'show and launch the runs of this Redis (default: a local instance, no Redis)')
    .option('--storage <dir>', 'local instance directory (default $BATON_HOME, else a fresh temp directory)')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', '3000')
    .option('--base-path <path>', 'path the UI is served under behind a proxy', '/')
    .option('--auth-token <token>', 'bearer token the API requires (default $BATON_UI_TOKEN); needed to bind beyond loopback')
    .option('--insecure', 'allow binding beyond loopback without a token')
    .action(async (flags: UiFlags) => {
      const port = Number(flags.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new BatonError('USAGE', `--port must be an integer 0-65535, got "${flags.port}"`);
      if (flags.redis !== undefined && flags.storage !== undefined) throw new BatonError('USAGE', 'give --redis or --storage, not both');
      const instance = await openInstance(flags.redis !== undefined ? { redis: redisUrlOf(flags.redis) } : flags.storage !== undefined ? { storageDir: flags.storage } : {});
      let ui;
      let automation: Awaited<ReturnType<typeof automationOf>> | undefined;
      try {
        automation = await automationOf(flags.redis !== undefined ? redisUrlOf(flags.redis) : undefined, instance.storageDir);
        ui = await startUiServer({
          instance,
          jobPaths: jobPathsOf(flags.jobs),
          host: flags.host,
          port,
          basePath: flags.basePath,
          ...(flags.authToken ?? process.env.BATON_UI_TOKEN ? { authToken: flags.authToken ?? process.env.BATON_UI_TOKEN } : {}),
          insecure: flags.insecure === true,
          automation,
        });
      } catch (e) {
        await automation?.stores.close();
        await instance.close();
        throw e;
      }
      if (instance.storageDir && flags.redis === undefined) console.log(`baton storage: ${instance.storageDir} (schedules and sensors run here)`);
      console.log(`baton UI: ${ui.url}`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await ui.close();
      await automation.stores.close();
      await instance.close();
    });
}

/**
 * Schedule and sensor state: without Redis, files in the local instance's directory, and this
 * process runs them (like `dagster dev`); with Redis, that Redis's state, run by `serve`.
 */
async function automationOf(redisUrl: string | undefined, storageDir: string | undefined) {
  if (redisUrl === undefined) {
    const { openLocalAutomationStores } = await import('../../src/automation/local-tick-store.js');
    return { stores: openLocalAutomationStores(storageDir as string), run: true };
  }
  const { createRedis } = await import('../../src/distributed/connection.js');
  const { redisAutomationStores } = await import('../../src/distributed/schedule-store.js');
  const redis = createRedis(redisUrl, { onError: () => {} });
  const stores = redisAutomationStores(redis);
  return { stores: { ...stores, close: async () => void (await redis.quit().catch(() => redis.disconnect())) }, run: false };
}
