/** Prometheus metrics (prom-client), served at /metrics with the admin scope. One registry per process. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type PgBoss from 'pg-boss';
import { SYNC_QUEUE } from './queue.js';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const syncRuns = new Counter({ name: 'hub_sync_runs_total', help: 'Finished sync runs', labelNames: ['source', 'status'], registers: [registry] });
export const recordsRead = new Counter({ name: 'hub_records_read_total', help: 'Source records read by sync runs', labelNames: ['source'], registers: [registry] });
export const recordsQuarantined = new Counter({ name: 'hub_records_quarantined_total', help: 'Records quarantined by sync runs', labelNames: ['source'], registers: [registry] });
export const resolutionSeconds = new Histogram({
  name: 'hub_resolution_seconds',
  help: 'Time to store, map and resolve one page of records',
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});
export const webhookFailures = new Counter({ name: 'hub_webhook_failures_total', help: 'Webhook delivery attempts that failed', registers: [registry] });
export const httpSeconds = new Histogram({
  name: 'hub_http_request_seconds',
  help: 'API latency by route and status',
  labelNames: ['method', 'route', 'status'],
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  registers: [registry],
});
const queueDepth = new Gauge({ name: 'hub_queue_depth', help: 'Sync jobs waiting in the queue', registers: [registry] });

/** The metrics text; the queue depth is read at scrape time. */
export async function metricsText(boss: PgBoss | undefined): Promise<string> {
  if (boss) queueDepth.set(await boss.getQueueSize(SYNC_QUEUE));
  return registry.metrics();
}
