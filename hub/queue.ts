/** Jobs on pg-boss, in the hub's own database, so several hub processes share the work. */
import PgBoss from 'pg-boss';
import type { PoolClient } from './db/database.js';
import { retentionSettings } from './retention.js';

export const SYNC_QUEUE = 'sync';

export interface SyncJob {
  runId: number;
}

export async function startQueue(url: string, onError: (error: Error) => void): Promise<PgBoss> {
  // pg-boss's maintenance deletes archived jobs after the hub's job archive retention (hub/retention.ts).
  const boss = new PgBoss({ connectionString: url, schema: 'pgboss', max: 4, deleteAfterDays: Math.max(1, Math.round(retentionSettings().jobArchiveDays)) });
  boss.on('error', onError);
  await boss.start();
  // A crashed worker's job comes back after it expires; the run then resumes from its last checkpoint.
  await ensureQueue(boss, { name: SYNC_QUEUE, retryLimit: 3, retryDelay: 5, retryBackoff: true, expireInSeconds: 15 * 60 });
  return boss;
}

/**
 * Creates a queue unless it exists. pg-boss 10's create_queue can deadlock when several hub processes start
 * together and create the same queue; the loser of such a deadlock tries again.
 */
export async function ensureQueue(boss: PgBoss, queue: PgBoss.Queue): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if (await boss.getQueue(queue.name)) return;
    try {
      await boss.createQueue(queue.name, queue);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== '40P01' || attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 200));
    }
  }
}

/** Sends the job inside the caller's transaction, so a run row never exists without its job. */
export async function sendSyncJob(boss: PgBoss, client: PoolClient, job: SyncJob, singletonKey: string): Promise<void> {
  await boss.send(SYNC_QUEUE, job, {
    singletonKey,
    db: { executeSql: (text: string, values: unknown[]) => client.query(text, values) },
  });
}
