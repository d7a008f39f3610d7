/**
 * Works sync jobs from the queue: one job is one run, which stores its records page by page. An interrupted
 * run makes its job fail, so pg-boss retries it; a run whose process died is recovered by the next worker.
 */
import { SYNC_QUEUE, type SyncJob } from './queue.js';
import { executeRun, recoverInterruptedRuns, type Hub } from './sync.js';
import { startWriteBack } from './write-back.js';
import { isDatabaseUnavailable } from './db/database.js';

const RECOVERY_INTERVAL_MS = 30_000;

export async function startWorker(hub: Hub, signal: AbortSignal): Promise<void> {
  if (!hub.boss) throw new Error('The job queue is not running in this process.');
  tolerateDatabaseRestarts(hub);
  await hub.boss.work<SyncJob>(SYNC_QUEUE, { batchSize: 1, pollingIntervalSeconds: 0.5 }, async ([job]) => {
    await executeRun(hub, job.data.runId, signal);
  });
  await startWriteBack(hub, signal);
  const recover = () =>
    recoverInterruptedRuns(hub, signal).then(
      (runs) => runs.length && hub.log.info({ runs }, 'recovered interrupted sync runs'),
      (error) => hub.log.warn({ error: (error as Error).message }, 'recovering interrupted sync runs failed'),
    );
  void recover();
  const timer = setInterval(recover, RECOVERY_INTERVAL_MS);
  signal.addEventListener('abort', () => clearInterval(timer), { once: true });
}

let tolerating = false;

/**
 * pg-boss 10 does not await its own `complete`/`fail` after a handler returns: with the database away (a restart)
 * their rejection is unhandled and would end the process. Such a rejection is logged; the job stays active until
 * it expires and the run is recovered from its checkpoint. Any other unhandled rejection still ends the process.
 */
function tolerateDatabaseRestarts(hub: Hub): void {
  if (tolerating) return;
  tolerating = true;
  process.on('unhandledRejection', (reason) => {
    if (!isDatabaseUnavailable(reason)) throw reason;
    hub.log.warn({ error: (reason as Error).message }, 'the database is unavailable; will retry');
  });
}
