/**
 * The Tryton connector: parties (with their contact mechanisms and addresses) and sales, through
 * `search_read`. A record's change time is its `write_date`, or its `create_date` while `write_date` is
 * still empty (Tryton leaves it NULL until the first edit), and for a party the latest of those over its
 * contact mechanisms and addresses too, since editing an email does not touch the party.
 *
 * A run asks for everything changed at or after the last cursor minus a lookback, in id order, in keyset batches
 * (`id > last id`), and moves the cursor only when the run completes: a change-time order cannot be
 * walked in pages because the time is a COALESCE over several tables. Until then each page's checkpoint
 * carries the run's anchor and the last id, so a crash resumes mid-run. The lookback is there because Tryton dates a
 * change by the start of its transaction (CURRENT_TIMESTAMP): a long one commits changes dated before the cursor.
 */
import { fileURLToPath } from 'node:url';
import { ConnectorError, type CheckResult, type ConnectorContext, type PulledConnector, type RecordPage, type RejectedRecord, type SourceRecord, type StreamState } from '../kit/contract.js';
import { IdSweep, type IdSweepState } from '../kit/id-sweep.js';
import { IncrementalCursor, type IncrementalState } from '../kit/incremental.js';
import type { TrytonConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };
import { createTrytonHttp, createTrytonRpc, plain, trytonDatetime, type TrytonClientOptions, type TrytonRpc } from './rpc.js';
import { trytonStreams, type TrytonStream } from './streams.js';

const recordSchema = { type: 'object', required: ['id', 'create_date'], properties: { id: { type: 'integer' } } };

/** The checkpoint: the cursor and boundary ids, plus, while a run is under way, its anchor and the last id read; the deletion sweep's. */
export interface TrytonState extends IdSweepState {
  cursor?: string;
  seen?: IncrementalState['seen'];
  anchor?: string | null;
  after_id?: number;
}

/** Records changed at or after `at` (create_date covers a NULL write_date), over the record and its children. */
export function changedSince(stream: TrytonStream, at: string): unknown[] {
  const value = trytonDatetime(at);
  const own = [['write_date', '>=', value], ['create_date', '>=', value]];
  const children = stream.children.flatMap((child) => [[`${child.field}.write_date`, '>=', value], [`${child.field}.create_date`, '>=', value]]);
  return ['OR', ...own, ...children];
}

/** The latest change time of a plain record: COALESCE(write_date, create_date), as ISO text. */
function changedAt(record: Record<string, unknown>): string | undefined {
  const value = record.write_date ?? record.create_date;
  return typeof value === 'string' ? value : undefined;
}

// Dotted fields come back under `field.` as an object ({code, id}); the value is lifted to a flat key.
function flatten(record: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    if (!key.endsWith('.')) result[key] = value;
    else if (value && typeof value === 'object') {
      for (const [sub, subValue] of Object.entries(value)) if (sub !== 'id') result[`${key.slice(0, -1)}_${sub}`] = subValue;
    }
  }
  return result;
}

export function createTrytonConnector(options: TrytonClientOptions = {}): PulledConnector<TrytonConfig> {
  const selected = (config: TrytonConfig) => trytonStreams.filter((stream) => !config.streams || config.streams.includes(stream.name));
  const rpcOf = (config: TrytonConfig, ctx: ConnectorContext) => createTrytonRpc(createTrytonHttp(config, { ...options, log: ctx.log }), config);

  async function check(config: TrytonConfig, ctx: ConnectorContext): Promise<CheckResult> {
    try {
      const rpc = rpcOf(config, ctx);
      const user = await rpc.login();
      const parties = await rpc.call<number>('model.party.party.search_count', [[], { active_test: false }]);
      return { ok: true, message: `Signed in to Tryton database ${config.database} as ${config.login} (user ${user}); ${parties} parties` };
    } catch (error) {
      if (error instanceof ConnectorError && error.kind !== 'system') return { ok: false, message: error.message };
      throw error;
    }
  }

  async function* read(name: string, state: StreamState | undefined, config: TrytonConfig, ctx: ConnectorContext): AsyncGenerator<RecordPage> {
    const stream = selected(config).find((candidate) => candidate.name === name);
    if (!stream) throw new ConnectorError(`The Tryton source ${ctx.source} has no stream '${name}'`, 'config');
    yield* readStream(rpcOf(config, ctx), stream, state as TrytonState | undefined, config);
  }

  return {
    kind: 'pulled',
    name: 'tryton',
    configSchema,
    defaultMappingPath: fileURLToPath(new URL('./mapping.yaml', import.meta.url)),
    streams: (config) => selected(config).map((stream) => ({ name: stream.name, recordSchema, primaryKey: ['id'], cursorField: 'write_date' })),
    check,
    read,
  };
}

async function* readStream(rpc: TrytonRpc, stream: TrytonStream, state: TrytonState | undefined, config: TrytonConfig): AsyncGenerator<RecordPage> {
  const limit = config.page_size ?? 200;
  // The state keeps the versions emitted within the lookback, to skip them when they are read again.
  const cursor = new IncrementalCursor(state, { windowMs: (config.lookback_seconds ?? 300) * 1000 });
  const resuming = typeof state?.after_id === 'number';
  const from = cursor.from();
  const anchor = resuming ? (typeof state?.anchor === 'string' ? state.anchor : undefined) : from && new Date(from.ms).toISOString();
  let afterId = resuming ? (state!.after_id as number) : 0;
  const context = { active_test: false };
  const sweep = new IdSweep(state, config.deletion_sweep_hours ?? 24, `tryton ${stream.model}`);
  // Mid-run, the checkpoint resumes after the last id read, from the run's anchor; at the end of the read it does not.
  const checkpoint = (resumeAfterId?: number): TrytonState => ({
    ...cursor.state(),
    ...(resumeAfterId === undefined ? {} : { anchor: anchor ?? null, after_id: resumeAfterId }),
    ...sweep.checkpoint(),
  });
  let done = 0;
  for (;;) {
    const domain = [['id', '>', afterId], ...(anchor ? [changedSince(stream, anchor)] : [])];
    const batch = await rpc.call<Record<string, unknown>[]>(`model.${stream.model}.search_read`, [domain, 0, limit, [['id', 'ASC']], stream.fields, context]);
    if (!Array.isArray(batch)) throw new ConnectorError(`tryton: search_read on ${stream.model} did not return a list`, 'system');
    const children = await readChildren(rpc, stream, batch.map((item) => item.id).filter(Number.isInteger) as number[]);
    const records: SourceRecord[] = [];
    const rejected: RejectedRecord[] = [];
    for (const raw of batch) {
      const item = flatten(plain(raw) as Record<string, unknown>);
      const id = item.id;
      if (Number.isInteger(id)) afterId = Math.max(afterId, id as number);
      for (const child of stream.children) item[child.field] = children.get(child.field)?.get(id as number) ?? [];
      stream.derive?.(item);
      const times = [item, ...stream.children.flatMap((child) => item[child.field] as Record<string, unknown>[])].map(changedAt).filter((time): time is string => time !== undefined);
      const latest = times.sort().at(-1);
      if (!Number.isInteger(id)) rejected.push({ reason: `${stream.model} record without an integer 'id'`, field: 'id', payload: raw });
      else if (!latest || !cursor.valid(latest)) rejected.push({ externalId: String(id), field: 'create_date', reason: `${stream.model} ${id} has neither write_date nor create_date`, payload: raw });
      else if (cursor.accept(String(id), latest, item)) records.push({ externalId: String(id), data: item });
    }
    done += records.length;
    const complete = batch.length < limit;
    yield { records, ...(rejected.length ? { rejected } : {}), state: checkpoint(complete ? undefined : afterId), progress: { done } };
    if (complete) break;
  }

  // Last, when due, the ids of every record (archived ones too): search_read never shows a deleted one.
  const listIds = (after: number, idsPerPage: number) => rpc.call<number[]>(`model.${stream.model}.search`, [[['id', '>', after]], 0, idsPerPage, [['id', 'ASC']], context]);
  yield* sweep.pages(listIds, limit * 50, () => checkpoint(), { done });
}

/** The contact mechanisms and addresses of a batch of parties, by relation and party id. */
async function readChildren(rpc: TrytonRpc, stream: TrytonStream, ids: number[]): Promise<Map<string, Map<number, Record<string, unknown>[]>>> {
  const result = new Map<string, Map<number, Record<string, unknown>[]>>();
  for (const child of stream.children) {
    const byParent = new Map<number, Record<string, unknown>[]>();
    result.set(child.field, byParent);
    if (!ids.length) continue;
    const rows = await rpc.call<Record<string, unknown>[]>(`model.${child.model}.search_read`, [[['party', 'in', ids]], 0, null, [['id', 'ASC']], child.fields, { active_test: false }]);
    for (const row of rows) {
      const item = flatten(plain(row) as Record<string, unknown>);
      const parent = item.party as number;
      byParent.set(parent, [...(byParent.get(parent) ?? []), item]);
    }
  }
  return result;
}

export const connector = createTrytonConnector();
