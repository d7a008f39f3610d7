/**
 * Sync runs: requested (one active run per source, one run per cron tick), then executed by a worker:
 * each page of each stream is stored with its checkpoint in one transaction, so a crash neither skips nor
 * repeats records and a retried job resumes where the last one stopped.
 */
import type PgBoss from 'pg-boss';
import { resolve as resolvePath } from 'node:path';
import type { Pool } from './db/database.js';
import { inTransaction, isDatabaseUnavailable, STORE_ATTEMPTS } from './db/database.js';
import type { LoadedConfig, SourceConfig } from './config.js';
import { findSource } from './config.js';
import type { Logger } from './log.js';
import { findConnector, hubConnector, HUB_SOURCE } from '../connectors/index.js';
import { ConnectorError, type Connector, type PulledConnector, type StreamState } from '../connectors/kit/contract.js';
import { DEFAULT_MAX_PAGES_PER_RUN, DEFAULT_MAX_RUN_MS, withRunLimits, type RunLimits } from '../connectors/kit/run-limits.js';
import { loadCompiledMapping } from '../mapping/engine.js';
import { detectDeletions, mapRawRecords, noCounts, recordDeletions, storePage, type Counts, type SourceMapping } from './ingest.js';
import { sendSyncJob } from './queue.js';
import { resolveAndRefreshValue } from './customer-value.js';
import { recordsQuarantined, recordsRead, resolutionSeconds, syncRuns } from './metrics.js';
import * as sql from './sql.js';

export interface Hub {
  pool: Pool;
  config: LoadedConfig;
  log: Logger;
  boss?: PgBoss;
}

export type RunTrigger = 'schedule' | 'api' | 'cli' | 'start' | 'remap';

export interface RunRow {
  id: string;
  source: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  trigger: RunTrigger;
  read: number;
  created: number;
  updated: number;
  unchanged: number;
  quarantined: number;
  /** Records a completed full sweep no longer found. */
  deleted: number;
  /** Records stored with values an `on_error: omit` rule left out. */
  with_omitted_values: number;
  progress: { done?: number; total?: number; stream?: string };
  error: string | null;
  queued_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

export class UnknownSourceError extends Error {
  constructor(readonly source: string) {
    super(`There is no source named '${source}' in the configuration.`);
  }
}

export function sourceAndConnector(config: LoadedConfig, name: string): { source: SourceConfig; connector: Connector<any> } {
  if (name === HUB_SOURCE) return { source: { name, connector: hubConnector.name, config: {} }, connector: hubConnector };
  const source = findSource(config, name);
  if (!source) throw new UnknownSourceError(name);
  // The configuration was validated against the known connectors when it was loaded.
  return { source, connector: findConnector(source.connector)! };
}

function pulledSource(config: LoadedConfig, name: string): { source: SourceConfig; connector: PulledConnector<any> } {
  const { source, connector } = sourceAndConnector(config, name);
  if (connector.kind !== 'pulled') throw new ConnectorError(`Source '${name}' receives its records by HTTP; it cannot be synced.`, 'config');
  return { source, connector };
}

export async function loadSourceMapping(config: LoadedConfig, name: string): Promise<SourceMapping> {
  const { source, connector } = sourceAndConnector(config, name);
  const path = source.mapping ? resolvePath(config.baseDir, source.mapping) : connector.defaultMappingPath;
  return { source: name, mapping: await loadCompiledMapping(path), defaultRegion: source.default_region };
}

/** Makes the configured sources and the built-in `hub` source known to the database (the source is part of every record key). */
export async function registerSources(pool: Pool, config: LoadedConfig): Promise<void> {
  await pool.query(sql.upsertSource(HUB_SOURCE, hubConnector.name, null));
  for (const source of config.sources) await pool.query(sql.upsertSource(source.name, source.connector, source.schedule ?? null));
}

/**
 * Queues a sync of `source` and its job; if the source already has a queued or running run, returns that
 * one instead. A scheduled request carries its tick, so that several processes firing the same tick queue one run.
 */
export async function requestSync(hub: Hub, source: string, trigger: RunTrigger, scheduledFor: Date | null = null): Promise<{ runId: number; queued: boolean }> {
  pulledSource(hub.config, source);
  if (!hub.boss) throw new Error('The job queue is not running in this process.');
  const boss = hub.boss;
  return inTransaction(hub.pool, async (client) => {
    const { rows } = await client.query<{ id: string; queued: boolean }>(sql.queueRun(source, trigger, scheduledFor));
    if (rows.length === 0) {
      // This tick already had its run, and that run has finished.
      const { rows: tick } = await client.query<{ id: string }>({ text: 'select id from sync_run where source = $1 and scheduled_for = $2', values: [source, scheduledFor] });
      return { runId: Number(tick[0].id), queued: false };
    }
    const runId = Number(rows[0].id);
    if (rows[0].queued) await sendSyncJob(boss, client, { runId }, `sync:${source}:${scheduledFor?.toISOString() ?? runId}`);
    return { runId, queued: rows[0].queued };
  });
}

export async function getRun(pool: Pool, runId: number): Promise<RunRow | undefined> {
  const { rows } = await pool.query<RunRow>(sql.getRun(runId));
  return rows[0];
}

function describeFailure(error: unknown): string {
  if (error instanceof ConnectorError) return error.message;
  return `Internal error: ${(error as Error).message ?? String(error)}`;
}

/** Thrown when a run stops without failing (shutdown, database away): it goes back to the queue and resumes from its checkpoint. */
export class RunInterrupted extends Error {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`Run interrupted (${reason}); it resumes from its last checkpoint.`, options);
    this.name = 'RunInterrupted';
  }
}

/**
 * Executes a queued or interrupted run. Connector failures fail the run with their message; the next run
 * resumes from the checkpoint. A shutdown or a lost database puts the run back in the queue and throws
 * RunInterrupted, so that the job is retried.
 */
export async function executeRun(hub: Hub, runId: number, signal?: AbortSignal): Promise<RunRow> {
  const run = await getRun(hub.pool, runId);
  if (!run) throw new Error(`Run ${runId} does not exist.`);
  // A session lock on its own connection: one executor per run, released if this process dies.
  const lock = await hub.pool.connect();
  try {
    const { rows } = await lock.query<{ locked: boolean }>(sql.tryLockRun(runId));
    if (!rows[0].locked) return run;
    const started = await hub.pool.query(sql.startRun(runId));
    if (started.rowCount === 0) return run;
    await readStreams(hub, run, signal);
  } finally {
    await lock.query(sql.unlockRun(runId)).catch(() => undefined);
    lock.release();
  }
  return (await getRun(hub.pool, runId))!;
}

/** A source's `limits`: the run's own, and those of its requests (unset ones fall back to the HTTP client's defaults). */
function limitsOf(source: SourceConfig): { maxPages: number; maxRunMs: number; requests: RunLimits } {
  const limits = source.limits ?? {};
  return {
    maxPages: limits.max_pages_per_run ?? DEFAULT_MAX_PAGES_PER_RUN,
    maxRunMs: limits.max_run_minutes === undefined ? DEFAULT_MAX_RUN_MS : limits.max_run_minutes * 60_000,
    requests: {
      requestTimeoutMs: limits.request_timeout_seconds === undefined ? undefined : limits.request_timeout_seconds * 1000,
      maxRetries: limits.max_retries,
      maxResponseBytes: limits.max_response_mb === undefined ? undefined : Math.round(limits.max_response_mb * 1024 * 1024),
    },
  };
}

/** A run stopped by its source's limits: the pages stored so far stay, with their checkpoint. */
const resumeNote = 'the pages stored so far are kept and the next run resumes from the last checkpoint';

async function readStreams(hub: Hub, run: RunRow, signal?: AbortSignal): Promise<void> {
  const runId = Number(run.id);
  const log = hub.log.child({ run: runId, source: run.source });
  let streamName: string | undefined;
  let pages = 0;
  const timeLimit = new AbortController();
  let runTimer: NodeJS.Timeout | undefined;
  let overTime = () => new ConnectorError('the run took longer than its time limit', 'transient');
  try {
    const { source, connector } = pulledSource(hub.config, run.source);
    const target = await loadSourceMapping(hub.config, run.source);
    const limits = limitsOf(source);
    runTimer = setTimeout(() => timeLimit.abort(), limits.maxRunMs);
    overTime = () => new ConnectorError(`the run took longer than its limit of ${limits.maxRunMs / 60_000} minutes (limits.max_run_minutes) after ${pages} pages; ${resumeNote}`, 'transient');
    // Requests in flight and waits between retries end at the time limit or a shutdown, not only the next page.
    const stopReading = signal ? AbortSignal.any([signal, timeLimit.signal]) : timeLimit.signal;
    const context = { source: source.name, log, signal: stopReading, baseDir: hub.config.baseDir };
    const config = { default_region: source.default_region, ...source.config };
    const cause = { cause: 'run' as const, causeId: String(runId), actor: `source:${source.name}` };
    const stopped = () => {
      if (signal?.aborted) throw new RunInterrupted('the hub is shutting down');
      if (timeLimit.signal.aborted) throw overTime();
    };
    await withRunLimits({ ...limits.requests, signal: stopReading }, async () => {
      for (const stream of connector.streams(config)) {
        streamName = stream.name;
        const { rows } = await hub.pool.query<{ state: StreamState }>(sql.getStreamState(source.name, stream.name));
        for await (const page of connector.read(stream.name, rows[0]?.state, config, context)) {
          if (pages === limits.maxPages) {
            throw new ConnectorError(`the source sent more than ${limits.maxPages} pages in one run (limits.max_pages_per_run), as if it had no last page; ${resumeNote}`, 'config');
          }
          pages++;
          const timer = resolutionSeconds.startTimer();
          const counts = await inTransaction(hub.pool, async (client) => {
            const pageCounts = await storePage(client, { stream: stream.name, runId, target, cause }, page);
            await client.query(sql.saveStreamState(source.name, stream.name, page.state, page.sweep?.start));
            // Ids an id sweep lists count as seen, before the sweep's end looks for what was not; then the ids the
            // source reports deleted.
            if (page.present?.length) await client.query(sql.touchPresentRecords(source.name, stream.name, runId, page.present));
            if (page.deleted?.length) await client.query(sql.addDeletedCount(runId, await recordDeletions(client, source.name, stream.name, page.deleted, cause)));
            if (page.sweep?.end) await client.query(sql.addDeletedCount(runId, await detectDeletions(client, source.name, stream.name, cause)));
            await client.query(sql.addRunCounts(runId, pageCounts, { stream: stream.name, ...page.progress }));
            return pageCounts;
          }, { attempts: STORE_ATTEMPTS });
          timer();
          recordsRead.inc({ source: source.name }, counts.read);
          recordsQuarantined.inc({ source: source.name }, counts.quarantined);
          stopped();
        }
        // A connector may end a stream early when asked to stop: that is not a completed run.
        stopped();
      }
    });
    await hub.pool.query(sql.finishRun(runId, 'succeeded', null));
    syncRuns.inc({ source: run.source, status: 'succeeded' });
    log.info('sync run succeeded');
  } catch (caught) {
    // A request cancelled by a shutdown or the time limit: the reason is ours, whatever the connector made of it.
    const error = signal?.aborted && !(caught instanceof RunInterrupted) ? new RunInterrupted('the hub is shutting down', { cause: caught }) : timeLimit.signal.aborted ? overTime() : caught;
    if (error instanceof RunInterrupted || isDatabaseUnavailable(error)) {
      log.warn({ error: (error as Error).message }, 'sync run interrupted');
      await hub.pool.query(sql.requeueRun(runId)).catch(() => undefined);
      throw error instanceof RunInterrupted ? error : new RunInterrupted('the database is unavailable', { cause: error });
    }
    if (error instanceof ConnectorError && error.kind === 'system') log.error({ err: error, stream: streamName }, 'sync run failed');
    else log.warn({ error: describeFailure(error), stream: streamName }, 'sync run failed');
    const where = streamName === undefined ? `source '${run.source}'` : `source '${run.source}', stream '${streamName}'`;
    await hub.pool.query(sql.finishRun(runId, 'failed', `${where}: ${describeFailure(error)}`));
    syncRuns.inc({ source: run.source, status: 'failed' });
  } finally {
    clearTimeout(runTimer);
  }
}

/**
 * Runs left running by a process that died (its session lock is gone), and queued runs whose job never
 * came, are executed here: they resume from their checkpoints. A run that another process executes is skipped.
 */
export async function recoverInterruptedRuns(hub: Hub, signal?: AbortSignal): Promise<number[]> {
  const { rows } = await hub.pool.query<{ id: string }>(sql.interruptedRuns(STALE_QUEUED_SECONDS));
  const recovered: number[] = [];
  for (const { id } of rows) {
    if (signal?.aborted) break;
    // A run that another process executes comes back unfinished.
    const run = await executeRun(hub, Number(id), signal);
    if (run.status === 'succeeded' || run.status === 'failed') recovered.push(Number(id));
  }
  return recovered;
}

/** A queued run older than this has lost its job (or every worker was busy that long): any worker may take it. */
const STALE_QUEUED_SECONDS = 120;

/** Replays the kept raw records of a source through its current mapping (after a mapping fix). */
export async function remapSource(hub: Hub, source: string, onProgress?: (done: number) => void): Promise<Counts & { runId: number }> {
  const target = await loadSourceMapping(hub.config, source);
  const { rows } = await hub.pool.query<{ id: string; queued: boolean }>(sql.queueRun(source, 'remap', null));
  if (rows.length === 0 || !rows[0].queued) throw new Error(`Source '${source}' has a sync run in progress; remap it when that run has finished.`);
  const runId = Number(rows[0].id);
  await hub.pool.query(sql.startRun(runId));
  const counts = { ...noCounts(), withOmittedValues: 0 };
  const cause = { cause: 'run' as const, causeId: String(runId), actor: `remap:${source}` };
  try {
    let after = 0;
    for (;;) {
      const { rows: batch } = await hub.pool.query<{ id: string }>(sql.rawRecordIdsOfSource(source, after, 500));
      if (batch.length === 0) break;
      const ids = batch.map((row) => Number(row.id));
      after = ids[ids.length - 1];
      await inTransaction(hub.pool, async (client) => {
        const { touched, quarantined, withOmittedValues } = await mapRawRecords(client, ids, target, runId);
        await resolveAndRefreshValue(client, touched, cause);
        const pageCounts = { read: ids.length, created: 0, updated: touched.length, unchanged: ids.length - touched.length, quarantined, withOmittedValues };
        for (const key of Object.keys(pageCounts) as (keyof typeof pageCounts)[]) counts[key] += pageCounts[key];
        await client.query(sql.addRunCounts(runId, pageCounts, { done: counts.read }));
      });
      onProgress?.(counts.read);
    }
    await hub.pool.query(sql.finishRun(runId, 'succeeded', null));
  } catch (error) {
    await hub.pool.query(sql.finishRun(runId, 'failed', describeFailure(error)));
    throw error;
  }
  return { ...counts, runId };
}
