/** A hub on a test database: the example configuration (or another), a real job queue, no HTTP server. */
import type PgBoss from 'pg-boss';
import { loadConfig, type LoadedConfig } from '../../hub/config.js';
import { saveResolutionSettings } from '../../identity-resolution/probabilistic-matcher.js';
import { silentLogger } from '../../hub/log.js';
import { startQueue } from '../../hub/queue.js';
import { executeRun, registerSources, requestSync, type Hub, type RunRow } from '../../hub/sync.js';
import type { TestDatabase } from './db.js';

export interface TestHub extends Hub {
  boss: PgBoss;
  stop(): Promise<void>;
}

export async function startTestHub(db: TestDatabase, configPath = 'examples/hub.config.yaml', config?: LoadedConfig): Promise<TestHub> {
  const loaded = config ?? (await loadConfig(configPath));
  await registerSources(db.pool, loaded);
  // As the hub's runtime does at boot: the configured matcher is where every resolver reads it.
  await saveResolutionSettings(db.pool, loaded.resolution);
  const boss = await startQueue(db.url, () => undefined);
  return { pool: db.pool, config: loaded, log: silentLogger, boss, stop: () => boss.stop({ graceful: false, wait: true }) };
}

/** Queues a sync as the API would and executes it here, as a worker would. */
export async function syncNow(hub: Hub, source: string): Promise<RunRow> {
  const { runId } = await requestSync(hub, source, 'api');
  return executeRun(hub, runId);
}
