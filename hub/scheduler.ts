/**
 * Fires each source's cron schedule. Every hub process runs the same schedules; each tick queues one run
 * because the run carries the tick (unique per source and tick) and its job a singleton key of both.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { requestSync, type Hub } from './sync.js';

export function startScheduler(hub: Hub): { stop(): Promise<void> } {
  const tasks: ScheduledTask[] = [];
  for (const source of hub.config.sources) {
    if (!source.schedule) continue;
    const task = cron.schedule(source.schedule, async (context) => {
      // The tick to the second: every process computes the same one.
      const tick = new Date(Math.floor(context.date.getTime() / 1000) * 1000);
      try {
        const { runId, queued } = await requestSync(hub, source.name, 'schedule', tick);
        hub.log.info({ source: source.name, run: runId, tick, queued }, queued ? 'scheduled sync queued' : 'scheduled sync already queued');
      } catch (error) {
        hub.log.error({ source: source.name, error: (error as Error).message }, 'scheduled sync could not be queued');
      }
    }, { name: `sync:${source.name}` });
    tasks.push(task);
  }
  return {
    stop: async () => {
      await Promise.all(tasks.map((task) => task.destroy()));
    },
  };
}

/** The next tick of a cron expression, as the scheduler computes it (node-cron, the process's time zone). */
export async function nextScheduledRun(expression: string): Promise<Date | null> {
  // A task never started fires nothing; it is only asked for its next match.
  const task = cron.createTask(expression, () => undefined);
  try {
    return task.getNextRuns(1)[0] ?? null;
  } finally {
    await task.destroy();
  }
}
