/** Works sync jobs from the queue: one job is one run, which stores its records page by page. */
import { SYNC_QUEUE, type SyncJob } from './queue.js';
import { executeRun, type Hub } from './sync.js';

export async function startWorker(hub: Hub, signal: AbortSignal): Promise<void> {
  if (!hub.boss) throw new Error('The job queue is not running in this process.');
  await hub.boss.work<SyncJob>(SYNC_QUEUE, { batchSize: 1, pollingIntervalSeconds: 0.5 }, async ([job]) => {
    await executeRun(hub, job.data.runId, signal);
  });
}
