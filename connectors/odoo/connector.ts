/**
 * The Odoo connector: partners, sale orders and invoices through `search_read`, incremental on
 * `write_date`. Each batch asks for the records after the checkpoint, ordered `write_date asc, id asc`:
 * written in a later second than the cursor's, or within the cursor's second and not one of the ids already emitted
 * there. The batch is re-anchored on the checkpoint each time (offset 0), so records written during the run
 * never shift a later batch's window and no record is skipped.
 * https://www.odoo.com/documentation/18.0/developer/reference/external_api.html#search-and-read
 */
import { fileURLToPath } from 'node:url';
import { ConnectorError, type CheckResult, type ConnectorContext, type PulledConnector, type RecordPage, type RejectedRecord, type SourceRecord, type StreamState } from '../kit/contract.js';
import { IdSweep, type IdSweepState } from '../kit/id-sweep.js';
import { IncrementalCursor, utcMs, type IncrementalState } from '../kit/incremental.js';
import type { OdooConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };
import { createOdooHttp, createOdooRpc, type OdooClientOptions, type OdooRpc } from './rpc.js';
import { odooStreams, type OdooStream } from './streams.js';

const recordSchema = { type: 'object', required: ['id', 'write_date'], properties: { id: { type: 'integer' }, write_date: { type: 'string' } } };

type Domain = unknown[];

/**
 * The domain of the next batch: the stream's own filter, then what comes after the checkpoint. Odoo sends whole seconds
 * but, before 18.4, stores and compares `write_date` with microseconds (PostgreSQL's now(); odoo/odoo#24102, #203626):
 * there `write_date > '10:15:00'` also matches 10:15:00.48 and `= '10:15:00'` matches nothing, so records emitted in the
 * cursor's second came back in every batch and a mass write of a full batch in one transaction (one write_date) stopped
 * the sync. Bounds on whole seconds (`>=` and `<` only) mean the same on every version.
 */
export function batchDomain(fixed: Domain, cursor: string | undefined, boundaryIds: number[]): Domain {
  if (cursor === undefined) return fixed;
  if (boundaryIds.length === 0) return [...fixed, ['write_date', '>=', cursor]];
  const next = nextSecond(cursor);
  return [...fixed, '|', ['write_date', '>=', next], '&', '&', ['write_date', '>=', cursor], ['write_date', '<', next], ['id', 'not in', boundaryIds]];
}

const wholeSecond = (ms: number) => Math.floor(ms / 1000) * 1000;

/** The second after the one `value` falls in, as Odoo writes a datetime. */
const nextSecond = (value: string) => odooDatetime(wholeSecond(utcMs(value)) + 1000);

/** Epoch milliseconds as Odoo writes a datetime: naive UTC, `YYYY-MM-DD HH:MM:SS` (a fraction of a second dropped). */
function odooDatetime(ms: number): string {
  return new Date(wholeSecond(ms)).toISOString().slice(0, 19).replace('T', ' ');
}

export function createOdooConnector(options: OdooClientOptions = {}): PulledConnector<OdooConfig> {
  const selected = (config: OdooConfig) => odooStreams.filter((stream) => !config.streams || config.streams.includes(stream.name));
  const rpcOf = (config: OdooConfig, ctx: ConnectorContext) => createOdooRpc(createOdooHttp(config, { ...options, log: ctx.log }), config);

  async function check(config: OdooConfig, ctx: ConnectorContext): Promise<CheckResult> {
    try {
      const rpc = rpcOf(config, ctx);
      const uid = await rpc.uid();
      const partners = await rpc.executeKw<number>('res.partner', 'search_count', [[]], { context: { active_test: false } });
      return { ok: true, message: `Signed in to Odoo database ${config.database} as ${config.login} (uid ${uid}); ${partners} partners` };
    } catch (error) {
      if (error instanceof ConnectorError && error.kind !== 'system') return { ok: false, message: error.message };
      throw error;
    }
  }

  async function* read(name: string, state: StreamState | undefined, config: OdooConfig, ctx: ConnectorContext): AsyncGenerator<RecordPage> {
    const stream = selected(config).find((candidate) => candidate.name === name);
    if (!stream) throw new ConnectorError(`The Odoo source ${ctx.source} has no stream '${name}'`, 'config');
    yield* readStream(rpcOf(config, ctx), stream, state as OdooState | undefined, config);
  }

  return {
    kind: 'pulled',
    name: 'odoo',
    configSchema,
    defaultMappingPath: fileURLToPath(new URL('./mapping.yaml', import.meta.url)),
    streams: (config) => selected(config).map((stream) => ({ name: stream.name, recordSchema, primaryKey: ['id'], cursorField: 'write_date' })),
    check,
    read,
  };
}

/** The checkpoint: the incremental cursor and the deletion sweep's. */
type OdooState = IncrementalState & IdSweepState;

async function* readStream(rpc: OdooRpc, stream: OdooStream, state: OdooState | undefined, config: OdooConfig): AsyncGenerator<RecordPage> {
  const limit = config.page_size ?? 200;
  const fields = [...new Set([...stream.fields, ...(config.extra_fields?.[stream.name] ?? [])])];
  const fixed: Domain = stream.name === 'invoices' ? [['move_type', 'in', config.invoice_move_types ?? ['out_invoice']]] : [];
  // The state keeps the versions emitted within the lookback, to skip them when they are read again.
  const cursor = new IncrementalCursor(state, { toMs: utcMs, windowMs: (config.lookback_seconds ?? 300) * 1000 });
  // Odoo sends `false` for an empty text, date or relation field; only a boolean field's false is a value.
  const types = await rpc.executeKw<Record<string, { type: string }>>(stream.model, 'fields_get', [fields], { attributes: ['type'] });
  const empty = (item: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(item).map(([key, value]) => [key, value === false && types[key]?.type !== 'boolean' ? null : value]));
  const context = stream.context ? { context: stream.context } : {};
  const search = async (domain: Domain, order: string) => {
    const batch = await rpc.executeKw<Record<string, unknown>[]>(stream.model, 'search_read', [domain], { fields, limit, order, ...context });
    if (!Array.isArray(batch)) throw new ConnectorError(`odoo: search_read on ${stream.model} did not return a list`, 'system');
    return batch;
  };
  const sweep = new IdSweep(state, config.deletion_sweep_hours ?? 24, `odoo ${stream.model}`);
  const checkpoint = (): OdooState => ({ ...cursor.state(), ...sweep.checkpoint() });
  let done = 0;
  const pageOf = (batch: Record<string, unknown>[]): RecordPage => {
    const records: SourceRecord[] = [];
    const rejected: RejectedRecord[] = [];
    for (const item of batch) {
      const id = item?.id;
      if (!Number.isInteger(id)) rejected.push({ reason: `${stream.model} record without an integer 'id'`, field: 'id', payload: item });
      else if (!cursor.valid(item.write_date)) {
        rejected.push({ externalId: String(id), field: 'write_date', reason: `'write_date' is not a timestamp (${JSON.stringify(item.write_date) ?? 'missing'})`, payload: item });
      } else if (cursor.accept(String(id), item.write_date, item)) records.push({ externalId: String(id), data: empty(item) });
    }
    done += records.length;
    return { records, ...(rejected.length ? { rejected } : {}), state: checkpoint(), progress: { done } };
  };

  // First the lookback: the records dated from lookback_seconds before the cursor up to its second, walked by id
  // (ordered by date, more than a batch of one second would never be passed). Only new versions are emitted.
  const lookback = cursor.from();
  if (lookback && cursor.value !== undefined) {
    const window = [['write_date', '>=', odooDatetime(lookback.ms)], ['write_date', '<', nextSecond(cursor.value)]];
    for (let afterId = 0; ; ) {
      const batch = await search([...fixed, ...window, ['id', '>', afterId]], 'id asc');
      yield pageOf(batch);
      const lastId = Math.max(afterId, ...batch.map((item) => item?.id).filter(Number.isInteger).map(Number));
      if (batch.length < limit || lastId === afterId) break;
      afterId = lastId;
    }
  }

  // Then on from the cursor, in write_date order.
  for (;;) {
    const before = JSON.stringify(cursor.state());
    const batch = await search(batchDomain(fixed, cursor.value, idsInCursorSecond(cursor)), 'write_date asc, id asc');
    yield pageOf(batch);
    if (batch.length < limit) break;
    // A full batch that moved nothing forward would be asked for again, forever.
    if (JSON.stringify(cursor.state()) === before) {
      throw new ConnectorError(`odoo: a full batch of ${stream.model} brought nothing past the checkpoint (records without a usable write_date?)`, 'system');
    }
  }

  // Last, when due, the ids of every record (search_read never shows a deleted one), 50 batches' worth per call.
  const listIds = (afterId: number, idsPerPage: number) =>
    rpc.executeKw<number[]>(stream.model, 'search', [[...fixed, ['id', '>', afterId]]], { limit: idsPerPage, order: 'id asc', ...context });
  yield* sweep.pages(listIds, limit * 50, checkpoint, { done });
}

/** The ids emitted within the cursor's second (the state also keeps those of the lookback before it). */
function idsInCursorSecond(cursor: IncrementalCursor): number[] {
  if (cursor.value === undefined) return [];
  const second = wholeSecond(utcMs(cursor.value));
  return Object.entries(cursor.state().seen ?? {})
    .filter(([, entry]) => utcMs(typeof entry === 'string' ? entry : entry[0]) >= second)
    .map(([id]) => Number(id));
}

export const connector = createOdooConnector();
