/**
 * Boots a hub process: database (DATABASE_URL or the embedded one), migrations, configuration, sources,
 * job queue, and the parts this process runs (API, worker, scheduler). Stops them in reverse order.
 */
import { openDatabase, type Database } from './db/database.js';
import { migrate } from './db/migrate.js';
import { loadConfig } from './config.js';
import { createLogger, type Logger } from './log.js';
import { startQueue } from './queue.js';
import { registerSources, type Hub } from './sync.js';
import { saveResolutionSettings } from '../identity-resolution/probabilistic-matcher.js';
import { saveSurvivorshipSettings } from '../identity-resolution/resolve.js';

export const DEFAULT_CONFIG = process.env.HUB_CONFIG ?? 'hub.config.yaml';
export const HUB_DIR = process.env.HUB_DIR ?? '.hub';

export interface Runtime extends Hub {
  database: Database;
  /** Aborted at shutdown: workers stop at their next page. */
  shutdown: AbortController;
  stop(): Promise<void>;
}

export async function bootHub(options: { configPath: string; log?: Logger; queue?: boolean }): Promise<Runtime> {
  const log = options.log ?? createLogger();
  const config = await loadConfig(options.configPath);
  const database = await openDatabase({ url: process.env.DATABASE_URL ?? config.database?.url, hubDir: HUB_DIR, log: (message) => log.debug({ postgres: message }) });
  const stops: (() => Promise<void>)[] = [() => database.close()];
  try {
    await migrate(database.pool);
    await registerSources(database.pool, config);
    await saveResolutionSettings(database.pool, config.resolution);
    await saveSurvivorshipSettings(database.pool, config.resolution?.survivorship);
    const boss = options.queue === false ? undefined : await startQueue(database.url, (error) => log.error({ error: error.message }, 'job queue error'));
    if (boss) stops.unshift(() => boss.stop({ graceful: true, wait: true, timeout: 20_000 }));
    const shutdown = new AbortController();
    return {
      pool: database.pool,
      config,
      log,
      boss,
      database,
      shutdown,
      stop: async () => {
        shutdown.abort();
        for (const stop of stops) await stop().catch((error) => log.warn({ error: (error as Error).message }, 'error while stopping'));
      },
    };
  } catch (error) {
    for (const stop of stops) await stop().catch(() => undefined);
    throw error;
  }
}
