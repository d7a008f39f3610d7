/**
 * Write-back: golden values sent back to the sources that can store them.
 *
 * A cycle plans each write-back source from the change log (golden records changed after the source's
 * position): for every member record of the source's customer stream, each configured attribute whose golden
 * value differs from the value the record has (its canonical form) is planned. The plan is queued as pg-boss
 * jobs, one per batch of records; a job plans its records again when it runs, so it always sends the current
 * golden values, and records each write in `write_back_log`.
 *
 * Echo suppression: every successful write is remembered as (source, record, attribute, value hash). Until
 * the record is read again, and for values the source's mapping never reads back (the golden id), a value we
 * already wrote is not planned again; once the sync reads it back the record holds the golden value, so
 * nothing differs. Consent is written with the decision's own time, so the echo is the same decision and
 * not a newer one.
 */
import { ensureQueue } from './queue.js';
import type PgBoss from 'pg-boss';
import type { Job } from 'pg-boss';
import type { Pool, PoolClient } from './db/database.js';
import { inTransaction } from './db/database.js';
import type { Hub } from './sync.js';
import type { SourceConfig } from './config.js';
import { findSource } from './config.js';
import { contentHash } from './stable-json.js';
import { ConnectorError } from '../connectors/kit/contract.js';
import { findWriteBack, type WriteAttribute, type WriteBackExecutor, type WriteContext, type WriteValues } from '../connectors/write-back.js';
import { GOLDEN_ID_SCHEME } from '../identity-resolution/match-keys.js';
import type { CanonicalRecord } from '../openapi/generated/canonical-record.gen.js';
import * as sql from './write-back-sql.js';

export const WRITE_BACK_QUEUE = 'write-back';
/** Records per job. */
const BATCH_RECORDS = 50;
/** Golden records planned per step of a cycle. */
const PLAN_GOLDENS = 1_000;
/** Without `attributes`, a source receives the canonical email and the marketing consent. */
const DEFAULT_ATTRIBUTES: WriteAttribute[] = ['email', 'email_marketing'];

type Queryable = Pick<Pool | PoolClient, 'query'>;

export class WriteBackNotConfigured extends Error {
  constructor(readonly source: string, reason: string) {
    super(`Source '${source}' ${reason}.`);
    this.name = 'WriteBackNotConfigured';
  }
}

export interface WriteBackSource {
  source: SourceConfig;
  executor: WriteBackExecutor<any>;
  /** The attributes written: configured and storable by the connector. */
  attributes: WriteAttribute[];
  configured: boolean;
}

/** One value to change in one record. */
export interface PlannedItem {
  goldenId: string;
  rawRecordId: number;
  externalId: string;
  attribute: WriteAttribute;
  from: unknown;
  to: unknown;
}

export interface RecordWrite {
  goldenId: string;
  rawRecordId: number;
  externalId: string;
  values: WriteValues;
  items: PlannedItem[];
}

export interface WriteBackJob {
  source: string;
  /** The source's position before this plan: where planning resumes when the job could not write. */
  fromPosition: number;
  rawRecordIds: number[];
}

export function writeBackSource(hub: Pick<Hub, 'config'>, name: string): WriteBackSource {
  const source = findSource(hub.config, name);
  if (!source) throw new WriteBackNotConfigured(name, 'is not in the configuration');
  const executor = findWriteBack(source.connector);
  if (!source.write_back || !executor) throw new WriteBackNotConfigured(name, executor ? 'has no write_back section in the configuration' : `uses the ${source.connector} connector, which cannot write back`);
  const wanted = source.write_back.attributes
    ? (Object.entries(source.write_back.attributes).filter(([, on]) => on).map(([attribute]) => attribute) as WriteAttribute[])
    : DEFAULT_ATTRIBUTES;
  return { source, executor, attributes: executor.fields.filter((field) => wanted.includes(field)), configured: source.write_back.enabled };
}

/** Sources with a write_back section. */
export function writeBackSources(hub: Pick<Hub, 'config'>): string[] {
  return hub.config.sources.filter((source) => source.write_back && findWriteBack(source.connector)).map((source) => source.name);
}

/** The kill switch: a value set through the API (database) wins over the configuration. */
export async function writeBackStatus(hub: Hub, name: string): Promise<{ source: string; enabled: boolean; configured: boolean; override: boolean | null; position: number }> {
  const target = writeBackSource(hub, name);
  const { rows } = await hub.pool.query<{ position: string; enabled: boolean | null }>(sql.getState(name));
  const override = rows[0]?.enabled ?? null;
  return { source: name, enabled: override ?? target.configured, configured: target.configured, override, position: Number(rows[0]?.position ?? 0) };
}

export async function setWriteBackEnabled(hub: Hub, name: string, enabled: boolean | null, actor: string) {
  writeBackSource(hub, name);
  await hub.pool.query(sql.setEnabled(name, enabled, actor));
  return writeBackStatus(hub, name);
}

// --- values ------------------------------------------------------------------------------------------

interface MemberRow {
  golden_id: string;
  golden: Record<string, any>;
  raw_record_id: string;
  external_id: string;
  changed_at: Date;
  canonical: CanonicalRecord;
}

/** The golden value to send, or undefined when the golden record has none. */
function goldenValue(row: MemberRow, attribute: WriteAttribute): unknown {
  switch (attribute) {
    case 'email':
      return row.golden.email;
    case 'phone':
      return row.golden.phone;
    case 'email_marketing':
      return row.golden.email_marketing ? { status: row.golden.email_marketing.status, at: row.golden.email_marketing.at } : undefined;
    case 'golden_id':
      return row.golden_id;
  }
}

/** The value the record has, as its last sync read it; undefined when its mapping does not read it. */
function recordValue(record: CanonicalRecord, attribute: WriteAttribute): unknown {
  switch (attribute) {
    case 'email':
      return record.person?.emails?.[0]?.address;
    case 'phone':
      return record.person?.phones?.[0]?.number;
    case 'email_marketing':
      return record.consent?.find((consent) => consent.channel === 'email_marketing')?.status;
    case 'golden_id':
      return record.identifiers?.find((identifier) => identifier.scheme === GOLDEN_ID_SCHEME)?.value;
  }
}

/** What is compared (and remembered): consent by its status, the rest as is. */
const comparable = (attribute: WriteAttribute, value: unknown) => (attribute === 'email_marketing' ? (value as { status: string }).status : value);
const valueHash = (attribute: WriteAttribute, value: unknown) => contentHash(comparable(attribute, value));

/** Plans the given members: only differences, and never a value we wrote that has not been read back. */
async function planMembers(db: Queryable, target: WriteBackSource, rows: MemberRow[]): Promise<RecordWrite[]> {
  if (rows.length === 0) return [];
  const name = target.source.name;
  const { rows: written } = await db.query<{ external_id: string; attribute: string; value_hash: string; written_at: Date }>(sql.echoes(name, rows.map((row) => row.external_id)));
  const echo = new Map(written.map((row) => [`${row.external_id}\u0000${row.attribute}`, row]));
  const writes: RecordWrite[] = [];
  for (const row of rows) {
    const items: PlannedItem[] = [];
    const values: WriteValues = {};
    for (const attribute of target.attributes) {
      const to = goldenValue(row, attribute);
      if (to === undefined || to === null || to === '') continue;
      const from = recordValue(row.canonical, attribute);
      const last = echo.get(`${row.external_id}\u0000${attribute}`);
      // Until the record is read again after our write (the golden id: ever), it holds what we wrote, not what the last sync read.
      const unread = last && (attribute === 'golden_id' || row.changed_at <= last.written_at);
      const current = unread ? last.value_hash : from === undefined ? undefined : contentHash(from);
      if (current === valueHash(attribute, to)) continue;
      items.push({ goldenId: row.golden_id, rawRecordId: Number(row.raw_record_id), externalId: row.external_id, attribute, from: from ?? null, to });
      (values as Record<string, unknown>)[attribute] = to;
    }
    if (items.length) writes.push({ goldenId: row.golden_id, rawRecordId: Number(row.raw_record_id), externalId: row.external_id, values, items });
  }
  return writes;
}

/** Plans the golden records changed after `position` (one step of at most PLAN_GOLDENS of them). */
async function planStep(db: Queryable, target: WriteBackSource, position: number): Promise<{ upTo: number; writes: RecordWrite[]; done: boolean }> {
  const { rows: changed } = await db.query<{ golden_id: string; position: string }>(sql.changedGoldens(position, PLAN_GOLDENS));
  if (changed.length === 0) return { upTo: position, writes: [], done: true };
  const upTo = Number(changed[changed.length - 1].position);
  const { rows } = await db.query<MemberRow>(sql.members(target.source.name, target.executor.stream, { goldenIds: changed.map((row) => row.golden_id) }));
  return { upTo, writes: await planMembers(db, target, rows), done: changed.length < PLAN_GOLDENS };
}

/** The dry run: everything a cycle would write now, without writing or moving the position. */
export async function planWriteBack(hub: Hub, name: string): Promise<{ status: Awaited<ReturnType<typeof writeBackStatus>>; writes: RecordWrite[] }> {
  const target = writeBackSource(hub, name);
  const status = await writeBackStatus(hub, name);
  const writes: RecordWrite[] = [];
  for (let position = status.position; ; ) {
    const step = await planStep(hub.pool, target, position);
    writes.push(...step.writes);
    position = step.upTo;
    if (step.done) break;
  }
  return { status, writes };
}

// --- cycle and jobs ----------------------------------------------------------------------------------

const queues = new WeakSet<PgBoss>();

/** pg-boss 10 wants a queue created before the first `send` or `work`. */
export async function ensureWriteBackQueue(boss: PgBoss): Promise<void> {
  if (queues.has(boss)) return;
  // Writes that failed are planned again by a later cycle, so pg-boss retries only a crashed worker's job.
  await ensureQueue(boss, { name: WRITE_BACK_QUEUE, retryLimit: 2, retryDelay: 10, retryBackoff: true, expireInSeconds: 15 * 60 });
  queues.add(boss);
}

export interface CycleResult {
  source: string;
  enabled: boolean;
  jobs: number;
  records: number;
  position: number;
}

/**
 * Plans one source and queues its writes, one job per batch of records, moving its position in the same
 * transaction. With the kill switch off nothing is planned: the changes wait after the position.
 */
export async function runWriteBackCycle(hub: Hub, name: string): Promise<CycleResult> {
  const target = writeBackSource(hub, name);
  if (!hub.boss) throw new Error('The job queue is not running in this process.');
  const boss = hub.boss;
  await ensureWriteBackQueue(boss);
  await hub.pool.query(sql.ensureState(name));
  return inTransaction(hub.pool, async (client) => {
    const { rows } = await client.query<{ position: string; enabled: boolean | null }>(sql.lockState(name));
    const start = Number(rows[0].position);
    const result = { source: name, enabled: rows[0].enabled ?? target.configured, jobs: 0, records: 0, position: start };
    if (!result.enabled) return result;
    let position = start;
    for (;;) {
      const step = await planStep(client, target, position);
      for (let index = 0; index < step.writes.length; index += BATCH_RECORDS) {
        const batch = step.writes.slice(index, index + BATCH_RECORDS);
        const job: WriteBackJob = { source: name, fromPosition: start, rawRecordIds: batch.map((write) => write.rawRecordId) };
        // Sent in this transaction: a job exists exactly when the position moved past its changes.
        await boss.send(WRITE_BACK_QUEUE, job, { db: { executeSql: (text: string, values: unknown[]) => client.query(text, values) } });
        result.jobs += 1;
        result.records += batch.length;
      }
      position = step.upTo;
      if (step.done) break;
    }
    await client.query(sql.setPosition(name, position));
    return { ...result, position };
  });
}

export interface JobResult {
  written: number;
  failed: number;
  /** The kill switch was off when the job ran: nothing was written and the changes are planned again. */
  disabled: boolean;
}

/**
 * Executes one job: plans its records again (the values are current, not those of queue time) and writes
 * each record, logging the request and the outcome. A failure does not stop the batch; the position goes
 * back so the failed records are planned again by the next cycle (the written ones are not: echo memory).
 */
export async function executeWriteBackJob(hub: Hub, job: WriteBackJob, jobId: string | null = null, ctx: WriteContext = {}): Promise<JobResult> {
  const target = writeBackSource(hub, job.source);
  const result: JobResult = { written: 0, failed: 0, disabled: false };
  if (!(await writeBackStatus(hub, job.source)).enabled) {
    await hub.pool.query(sql.rewindPosition(job.source, job.fromPosition));
    return { ...result, disabled: true };
  }
  const { rows } = await hub.pool.query<MemberRow>(sql.members(job.source, target.executor.stream, { rawRecordIds: job.rawRecordIds }));
  const writes = await planMembers(hub.pool, target, rows);
  const config = { default_region: target.source.default_region, ...target.source.config };
  const log = hub.log.child({ source: job.source, job: jobId });
  for (const write of writes) {
    try {
      const outcome = await target.executor.write(config, write.externalId, write.values, { log, ...ctx });
      await inTransaction(hub.pool, async (client) => {
        await client.query(sql.insertLog({ source: job.source, externalId: write.externalId, goldenId: write.goldenId, jobId, request: write.values, outcome: 'ok', error: null, response: outcome.detail }));
        await client.query(sql.rememberWrites(job.source, write.externalId, write.items.map((item) => ({ attribute: item.attribute, hash: valueHash(item.attribute, item.to) }))));
      });
      result.written += 1;
    } catch (error) {
      // ConnectorError messages name the system's refusal; anything else is our bug and goes to the log in full.
      const message = error instanceof ConnectorError || error instanceof TypeError ? error.message : `Internal error: ${(error as Error).message}`;
      if (!(error instanceof ConnectorError)) log.error({ err: error }, 'write-back failed');
      else log.warn({ error: message, record: write.externalId }, 'write-back failed');
      await hub.pool.query(sql.insertLog({ source: job.source, externalId: write.externalId, goldenId: write.goldenId, jobId, request: write.values, outcome: 'error', error: message, response: null }));
      result.failed += 1;
    }
  }
  if (result.failed) await hub.pool.query(sql.rewindPosition(job.source, job.fromPosition));
  return result;
}

export interface WriteBackOptions {
  /** How often each write-back source is planned (ms). */
  intervalMs?: number;
}

/** Works write-back jobs, and plans every write-back source on an interval (the worker's part). */
export async function startWriteBack(hub: Hub, signal: AbortSignal, options: WriteBackOptions = {}): Promise<void> {
  if (!hub.boss) throw new Error('The job queue is not running in this process.');
  const sources = writeBackSources(hub);
  if (sources.length === 0) return;
  await ensureWriteBackQueue(hub.boss);
  await hub.boss.work<WriteBackJob>(WRITE_BACK_QUEUE, { batchSize: 1, pollingIntervalSeconds: 1 }, async ([job]: Job<WriteBackJob>[]) => {
    await executeWriteBackJob(hub, job.data, job.id);
  });
  let running = false;
  const cycle = async () => {
    if (running || signal.aborted) return;
    running = true;
    for (const source of sources) {
      await runWriteBackCycle(hub, source).catch((error) => hub.log.warn({ source, error: (error as Error).message }, 'write-back planning failed'));
    }
    running = false;
  };
  const timer = setInterval(cycle, options.intervalMs ?? 5_000);
  signal.addEventListener('abort', () => clearInterval(timer), { once: true });
}
