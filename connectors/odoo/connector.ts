/**
 * The Odoo connector: partners, sale orders and invoices through `search_read`, incremental on
 * `write_date`. Each batch asks for the records after the checkpoint, ordered `write_date asc, id asc`:
 * `write_date > cursor`, or `= cursor` and not one of the ids already emitted at that exact timestamp.
 * The batch is re-anchored on the checkpoint each time (offset 0), so records written during the run
 * never shift a later batch's window and no record is skipped.
 * https://www.odoo.com/documentation/18.0/developer/reference/external_api.html#search-and-read
 */
import { fileURLToPath } from 'node:url';
import { ConnectorError, type CheckResult, type ConnectorContext, type PulledConnector, type RecordPage, type RejectedRecord, type SourceRecord, type StreamState } from '../kit/contract.js';
import { IncrementalCursor, utcMs } from '../kit/incremental.js';
import type { OdooConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };
import { createOdooHttp, createOdooRpc, type OdooClientOptions, type OdooRpc } from './rpc.js';
import { odooStreams, type OdooStream } from './streams.js';

const recordSchema = { type: 'object', required: ['id', 'write_date'], properties: { id: { type: 'integer' }, write_date: { type: 'string' } } };

type Domain = unknown[];

/** The domain of the next batch: the stream's own filter, then what comes after the checkpoint. */
export function batchDomain(fixed: Domain, cursor: string | undefined, boundaryIds: number[]): Domain {
  if (cursor === undefined) return fixed;
  const after = boundaryIds.length
    ? ['|', ['write_date', '>', cursor], '&', ['write_date', '=', cursor], ['id', 'not in', boundaryIds]]
    : [['write_date', '>=', cursor]];
  return [...fixed, ...after];
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
    yield* readStream(rpcOf(config, ctx), stream, state, config);
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

async function* readStream(rpc: OdooRpc, stream: OdooStream, state: StreamState | undefined, config: OdooConfig): AsyncGenerator<RecordPage> {
  const limit = config.page_size ?? 200;
  const fields = [...new Set([...stream.fields, ...(config.extra_fields?.[stream.name] ?? [])])];
  const fixed: Domain = stream.name === 'invoices' ? [['move_type', 'in', config.invoice_move_types ?? ['out_invoice']]] : [];
  // Window 0: the state keeps exactly the ids emitted at the cursor's timestamp.
  const cursor = new IncrementalCursor(state, { toMs: utcMs });
  // Odoo sends `false` for an empty text, date or relation field; only a boolean field's false is a value.
  const types = await rpc.executeKw<Record<string, { type: string }>>(stream.model, 'fields_get', [fields], { attributes: ['type'] });
  const empty = (item: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(item).map(([key, value]) => [key, value === false && types[key]?.type !== 'boolean' ? null : value]));
  let done = 0;
  for (;;) {
    const before = JSON.stringify(cursor.state());
    const boundary = Object.keys(cursor.state().seen ?? {}).map(Number);
    const domain = batchDomain(fixed, cursor.value, boundary);
    const batch = await rpc.executeKw<Record<string, unknown>[]>(stream.model, 'search_read', [domain], {
      fields,
      limit,
      order: 'write_date asc, id asc',
      ...(stream.context ? { context: stream.context } : {}),
    });
    if (!Array.isArray(batch)) throw new ConnectorError(`odoo: search_read on ${stream.model} did not return a list`, 'system');
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
    yield { records, ...(rejected.length ? { rejected } : {}), state: cursor.state(), progress: { done } };
    if (batch.length < limit) return;
    // A full batch that moved nothing forward would be asked for again, forever.
    if (JSON.stringify(cursor.state()) === before) {
      throw new ConnectorError(`odoo: a full batch of ${stream.model} brought nothing past the checkpoint (records without a usable write_date?)`, 'system');
    }
  }
}

export const connector = createOdooConnector();
