/**
 * The WooCommerce connector. Orders are incremental: `modified_after` + `dates_are_gmt=true`, ordered
 * by `modified` ascending, paged with `page`/`per_page` until `X-WP-TotalPages`. Customers have no
 * modified filter (woocommerce#41371), so each run sweeps them all in id order (by `offset`, safe against
 * customers deleted meanwhile: see sweepCustomers); the hub's content hash finds what changed.
 * https://woocommerce.github.io/woocommerce-rest-api-docs/#list-all-orders
 * https://woocommerce.github.io/woocommerce-rest-api-docs/#list-all-customers
 */
import { fileURLToPath } from 'node:url';
import { ConnectorError, sweepMarks, type CheckResult, type ConnectorContext, type PulledConnector, type RecordPage, type RejectedRecord, type SourceRecord, type StreamState } from '../kit/contract.js';
import type { HttpClient } from '../kit/http.js';
import { IncrementalCursor, utcMs } from '../kit/incremental.js';
import { createWooHttp, type WooClientOptions } from './client.js';
import type { WoocommerceConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };

type StreamName = 'customers' | 'orders';
const streamNames: StreamName[] = ['customers', 'orders'];
const recordSchema = { type: 'object', required: ['id'], properties: { id: { type: 'integer', minimum: 1 } } };

/**
 * The checkpoint of the customers sweep: where the sweep under way has got to (the last id it listed and how many
 * customers came up to it), and whether the last sweep finished.
 */
export interface CustomerSweepState extends StreamState {
  after_id: number;
  position: number;
  complete: boolean;
}

// WooCommerce's `*_gmt` dates are ISO without offset, to the second.
const gmt = (ms: number) => new Date(ms).toISOString().slice(0, 19);
const totalPages = (headers: Record<string, unknown>) => {
  const value = Number(headers['x-wp-totalpages']);
  return Number.isFinite(value) ? value : undefined;
};

function validId(item: unknown): item is Record<string, unknown> & { id: number } {
  return typeof item === 'object' && item !== null && Number.isInteger((item as { id?: unknown }).id) && ((item as { id: number }).id > 0);
}

export function createWooConnector(options: WooClientOptions = {}): PulledConnector<WoocommerceConfig> {
  const selected = (config: WoocommerceConfig) => streamNames.filter((name) => !config.streams || config.streams.includes(name));

  async function check(config: WoocommerceConfig, ctx: ConnectorContext): Promise<CheckResult> {
    try {
      const http = createWooHttp(config, { ...options, log: ctx.log });
      const response = await http.get('/orders', { params: { per_page: 1 } });
      return { ok: true, message: `Connected to the WooCommerce store at ${config.url}: ${response.headers['x-wp-total'] ?? 'an unknown number of'} orders` };
    } catch (error) {
      if (error instanceof ConnectorError && error.kind !== 'system') return { ok: false, message: error.message };
      throw error;
    }
  }

  async function* read(name: string, state: StreamState | undefined, config: WoocommerceConfig, ctx: ConnectorContext): AsyncGenerator<RecordPage> {
    if (!selected(config).includes(name as StreamName)) throw new ConnectorError(`The WooCommerce source ${ctx.source} has no stream '${name}'`, 'config');
    const http = createWooHttp(config, { ...options, log: ctx.log });
    if (name === 'orders') yield* readOrders(http, state, config);
    else yield* sweepCustomers(http, state, config);
  }

  return {
    kind: 'pulled',
    name: 'woocommerce',
    configSchema,
    defaultMappingPath: fileURLToPath(new URL('./mapping.yaml', import.meta.url)),
    streams: (config) =>
      selected(config).map((name) => ({ name, recordSchema, primaryKey: ['id'], ...(name === 'orders' ? { cursorField: 'date_modified_gmt' } : {}) })),
    check,
    read,
  };
}

/**
 * Orders, re-anchored after every page: the next request asks `modified_after` the new cursor (minus
 * the lookback) from page 1. A fixed anchor with growing page numbers would skip orders whenever an
 * order modified during the run moves to the end of the list and shifts the others a place back.
 * When a page brings nothing new (all in the lookback), the same anchor's next page is read instead.
 */
async function* readOrders(http: HttpClient, state: StreamState | undefined, config: WoocommerceConfig): AsyncGenerator<RecordPage> {
  const perPage = config.per_page ?? 100;
  const cursor = new IncrementalCursor(state, { windowMs: (config.lookback_seconds ?? 60) * 1000, toMs: utcMs });
  let anchor: string | undefined;
  let page = 0;
  let done = 0;
  for (;;) {
    const from = cursor.from();
    const next = from ? gmt(from.ms) : undefined;
    page = next === anchor && page > 0 ? page + 1 : 1;
    anchor = next;
    const response = await http.get<unknown[]>('/orders', {
      params: { ...(anchor ? { modified_after: anchor } : {}), dates_are_gmt: true, orderby: 'modified', order: 'asc', per_page: perPage, page },
    });
    const items = Array.isArray(response.data) ? response.data : [];
    const records: SourceRecord[] = [];
    const rejected: RejectedRecord[] = [];
    for (const item of items) {
      if (!validId(item)) rejected.push({ reason: `order without a positive integer 'id'`, field: 'id', payload: item });
      else if (!cursor.valid(item.date_modified_gmt)) {
        rejected.push({ externalId: String(item.id), field: 'date_modified_gmt', reason: `'date_modified_gmt' is not a timestamp (${JSON.stringify(item.date_modified_gmt) ?? 'missing'})`, payload: item });
      } else if (cursor.accept(String(item.id), item.date_modified_gmt, item)) records.push({ externalId: String(item.id), data: item });
    }
    done += records.length;
    const last = items.length < perPage || page >= (totalPages(response.headers) ?? Infinity);
    yield { records, ...(rejected.length ? { rejected } : {}), state: cursor.state(), progress: { done } };
    if (last) return;
  }
}

/**
 * Customers, all of them, in id order; a sweep interrupted mid-way resumes after the last id it listed. WooCommerce
 * pages by position only (`offset`), and a customer deleted before that position moves every later one a place back:
 * reading on from the position would skip one, and the hub would take it for deleted. So each request starts a place
 * early, at the last customer listed; when its first id is already past that one, customers went missing before it
 * and the request steps back a page. Every id after the last listed is then in the answer.
 */
async function* sweepCustomers(http: HttpClient, state: StreamState | undefined, config: WoocommerceConfig): AsyncGenerator<RecordPage> {
  // Two at least: each request repeats the last customer listed.
  const perPage = Math.max(2, config.per_page ?? 100);
  const resuming = state?.complete === false && Number.isSafeInteger(state.after_id) && Number.isSafeInteger(state.position);
  let afterId = resuming ? (state.after_id as number) : 0;
  let position = resuming ? (state.position as number) : 0;
  let start = !resuming;
  /** The first id of the answer before, unless the sweep stepped back since. */
  let previousFirstId: number | undefined;
  for (let offset = Math.max(0, position - 1); ; ) {
    const response = await http.get<unknown[]>('/customers', {
      params: { per_page: perPage, offset, orderby: 'id', order: 'asc', role: config.customer_role ?? 'all' },
    });
    const items = Array.isArray(response.data) ? response.data : [];
    const firstId = items.find(validId)?.id;
    // Nothing there (the list got shorter than the position) or only customers after the last listed: step back.
    if (offset > 0 && (items.length === 0 || (firstId !== undefined && firstId > afterId))) {
      offset = Math.max(0, offset - perPage);
      previousFirstId = undefined;
      continue;
    }
    // Consecutive answers overlap by one customer only: the same first one twice means `offset` was not applied.
    if (firstId !== undefined && firstId === previousFirstId) {
      throw new ConnectorError(`woocommerce: the customers list answered offset ${offset} as it did the request before; without \`offset\` a sweep cannot go on`, 'system');
    }
    previousFirstId = firstId;
    const records: SourceRecord[] = [];
    const rejected: RejectedRecord[] = [];
    items.forEach((item, index) => {
      // One without an id has no place in the order: reported where it is first read (not again in the overlap).
      if (!validId(item)) {
        if (offset + index >= position) rejected.push({ reason: `customer without a positive integer 'id'`, field: 'id', payload: item });
      } else if (item.id > afterId) records.push({ externalId: String(item.id), data: item });
    });
    afterId = Math.max(afterId, ...records.map((record) => Number(record.externalId)));
    position = offset + items.length;
    const complete = items.length < perPage;
    const total = Number(response.headers['x-wp-total']);
    const checkpoint: CustomerSweepState = complete ? { after_id: 0, position: 0, complete } : { after_id: afterId, position, complete };
    // A sweep from the first customer that reaches the last tells the hub which customers were deleted.
    yield { records, ...(rejected.length ? { rejected } : {}), state: checkpoint, progress: { done: position, ...(Number.isFinite(total) ? { total } : {}) }, sweep: sweepMarks(start, complete) };
    if (complete) return;
    start = false;
    offset = position - 1;
  }
}

export const connector = createWooConnector();
