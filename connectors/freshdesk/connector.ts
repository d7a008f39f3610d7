/**
 * The Freshdesk connector. Tickets are incremental: `updated_since` with `order_by=updated_at&order_type=asc`
 * and `include=requester`, paged with `page`/`per_page` while the `Link` header has `rel="next"`. After each
 * page the next request is re-anchored on the new cursor from page 1, so a ticket updated during the run
 * (which moves to the end of the list) never shifts another one past the reader, and Freshdesk's cap of
 * 300 pages per listing is never reached except by more tickets in one second than 300 pages hold.
 * Contacts are incremental on `_updated_since`, in Freshdesk's own order, so one walk keeps its anchor and
 * its checkpoint names the page to resume at. A deleted contact or ticket, or a ticket marked spam, drops out of those
 * lists, so once per `deletion_sweep_hours` a run also lists them (`state=deleted`; `filter=deleted`, then
 * `filter=spam`) and reports them deleted.
 * Companies have no change filter: each run sweeps them all.
 * https://developers.freshdesk.com/api/#list_all_tickets
 * https://developers.freshdesk.com/api/#list_all_contacts
 * https://developers.freshdesk.com/api/#list_all_companies
 * https://developers.freshdesk.com/api/#pagination
 */
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../hub/log.js';
import { ConnectorError, sweepMarks, type CheckResult, type ConnectorContext, type PulledConnector, type RecordPage, type RejectedRecord, type SourceRecord, type StreamState } from '../kit/contract.js';
import type { HttpClient } from '../kit/http.js';
import { sweepDue } from '../kit/id-sweep.js';
import { IncrementalCursor, type IncrementalState } from '../kit/incremental.js';
import { parseLinkHeader } from '../kit/paginate.js';
import { createFreshdeskHttp, rateLimitWait, type FreshdeskClientOptions } from './client.js';
import type { FreshdeskConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };

type StreamName = 'contacts' | 'companies' | 'tickets';
const streamNames: StreamName[] = ['contacts', 'companies', 'tickets'];
const recordSchema = { type: 'object', required: ['id'], properties: { id: { type: 'integer', minimum: 1 } } };

export interface FreshdeskConnectorOptions extends FreshdeskClientOptions {
  /** The last page Freshdesk lists for one query (300); tests lower it. */
  maxPage?: number;
}

/**
 * The part of a contacts or tickets checkpoint for deletions: when the last listing of deleted ones ended and, while
 * one is under way, which of its lists it is in (`deleted_list`, from 0; tickets have two: the deleted, then the spam)
 * and that list's next page.
 */
export interface DeletedListingState extends StreamState {
  swept_at?: string;
  deleted_list?: number;
  deleted_next_page?: number;
}

/** The contacts checkpoint: the cursor, and while a walk is unfinished its anchor and next page. */
export interface ContactsState extends DeletedListingState {
  cursor?: string;
  seen?: IncrementalState['seen'];
  anchor?: string;
  next_page?: number;
}

/** The companies sweep checkpoint: the next page, the ids of the page before it as read, whether the last sweep finished. */
export interface CompanySweepState extends StreamState {
  next_page: number;
  /** The ids of page `next_page - 1` (null for an entry without one), to check that it has not moved since. */
  before?: (number | null)[];
  complete: boolean;
}

const defaultStart = '2000-01-01T00:00:00Z';
// `updated_since` is to the second; asking from one second before the cursor re-reads the boundary
// second whatever way Freshdesk compares, and the re-read is de-duplicated.
const lookbackMs = 1000;
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

function validId(item: unknown): item is Record<string, unknown> & { id: number } {
  return typeof item === 'object' && item !== null && Number.isInteger((item as { id?: unknown }).id) && (item as { id: number }).id > 0;
}

/** One list of records that the changes no longer show: `kind` names them in errors ("deleted ticket"). */
interface GoneList {
  kind: string;
  page(page: number): Promise<{ items: unknown[]; hasNext: boolean }>;
}

/** Where a stream's listing of deleted records stands (DeletedListingState), and the pages of one when it is due or under way. */
class DeletedListing {
  private sweptAt: string | undefined;
  private list: number;
  private nextPage: number | undefined;

  constructor(state: StreamState | undefined) {
    this.sweptAt = typeof state?.swept_at === 'string' ? state.swept_at : undefined;
    this.list = Number.isInteger(state?.deleted_list) ? (state!.deleted_list as number) : 0;
    this.nextPage = Number.isInteger(state?.deleted_next_page) ? (state!.deleted_next_page as number) : undefined;
  }

  checkpoint(): DeletedListingState {
    return {
      ...(this.sweptAt ? { swept_at: this.sweptAt } : {}),
      ...(this.list ? { deleted_list: this.list } : {}),
      ...(this.nextPage ? { deleted_next_page: this.nextPage } : {}),
    };
  }

  /**
   * Read after the changes, so that a record deleted and restored since the last run is read back, not taken for
   * deleted. Walks `lists` one after the other, page by page, and reports every record in them deleted;
   * `checkpoint()` is the stream's whole checkpoint.
   */
  async *pages(lists: GoneList[], everyHours: number, checkpoint: () => StreamState, done: number): AsyncGenerator<RecordPage> {
    if (this.nextPage === undefined && !sweepDue(this.sweptAt, everyHours)) return;
    // A checkpoint naming a list this stream does not have starts over.
    if (this.list >= lists.length) [this.list, this.nextPage] = [0, undefined];
    for (;;) {
      const page = this.nextPage ?? 1;
      const { kind } = lists[this.list];
      const { items, hasNext } = await lists[this.list].page(page);
      const deleted: string[] = [];
      const rejected: RejectedRecord[] = [];
      for (const item of items) {
        if (validId(item)) deleted.push(String(item.id));
        else rejected.push({ reason: `${kind} without a positive integer 'id'`, field: 'id', payload: item });
      }
      const finished = !hasNext && this.list === lists.length - 1;
      if (hasNext) this.nextPage = page + 1;
      else if (!finished) [this.list, this.nextPage] = [this.list + 1, 1];
      else [this.list, this.nextPage, this.sweptAt] = [0, undefined, new Date().toISOString()];
      yield { records: [], ...(rejected.length ? { rejected } : {}), ...(deleted.length ? { deleted } : {}), state: checkpoint(), progress: { done } };
      if (finished) return;
    }
  }
}

export function createFreshdeskConnector(options: FreshdeskConnectorOptions = {}): PulledConnector<FreshdeskConfig> {
  const maxPage = options.maxPage ?? 300;
  const sleep = options.sleep;
  const selected = (config: FreshdeskConfig) => streamNames.filter((name) => !config.streams || config.streams.includes(name));

  /** One GET; when the minute's allowance is nearly spent, waits for the next before returning. */
  async function get(http: HttpClient, config: FreshdeskConfig, log: Logger, path: string, params: Record<string, unknown>) {
    const response = await http.get<unknown>(path, { params });
    const waitMs = rateLimitWait(response.headers as Record<string, unknown>, config.rate_limit_reserve ?? 5);
    if (waitMs) {
      log.info({ connector: 'freshdesk', remaining: response.headers['x-ratelimit-remaining'], waitMs }, 'rate limit nearly spent, waiting');
      await (sleep ?? ((ms: number) => delay(ms)))(waitMs);
    }
    const items = Array.isArray(response.data) ? (response.data as unknown[]) : [];
    return { items, hasNext: 'next' in parseLinkHeader(response.headers.link as string | undefined) };
  }

  function take(item: unknown, kind: string, cursor: IncrementalCursor, records: SourceRecord[], rejected: RejectedRecord[]) {
    if (!validId(item)) rejected.push({ reason: `${kind} without a positive integer 'id'`, field: 'id', payload: item });
    else if (!cursor.valid(item.updated_at)) {
      rejected.push({ externalId: String(item.id), field: 'updated_at', reason: `'updated_at' is not a timestamp (${JSON.stringify(item.updated_at) ?? 'missing'})`, payload: item });
    } else if (cursor.accept(String(item.id), item.updated_at, item)) records.push({ externalId: String(item.id), data: item });
  }

  /** https://developers.freshdesk.com/api/#list_all_tickets (the `updated_since`, `order_by`, `include` filters; 300-page cap; `filter=deleted`, `filter=spam`) */
  async function* readTickets(http: HttpClient, state: StreamState | undefined, config: FreshdeskConfig, log: Logger): AsyncGenerator<RecordPage> {
    const cursor = new IncrementalCursor(state, { windowMs: lookbackMs });
    const deletions = new DeletedListing(state);
    const checkpoint = () => ({ ...cursor.state(), ...deletions.checkpoint() });
    const perPage = config.per_page ?? 100;
    const startMs = Date.parse(config.start_date ?? defaultStart);
    // Anchors never go below this: raised only when one anchor filled every page Freshdesk lists.
    let floorMs = -Infinity;
    let anchorMs = cursor.from()?.ms ?? startMs;
    let page = 1;
    let done = 0;
    for (;;) {
      const { items, hasNext } = await get(http, config, log, '/tickets', {
        updated_since: iso(anchorMs), order_by: 'updated_at', order_type: 'asc', include: 'requester', per_page: perPage, page,
      });
      const records: SourceRecord[] = [];
      const rejected: RejectedRecord[] = [];
      for (const item of items) take(item, 'ticket', cursor, records, rejected);
      done += records.length;
      yield { records, ...(rejected.length ? { rejected } : {}), state: checkpoint(), progress: { done } };
      if (!hasNext) break;
      const nextMs = Math.max(cursor.from()?.ms ?? anchorMs, floorMs);
      if (nextMs !== anchorMs) {
        anchorMs = nextMs;
        page = 1;
      } else if (page < maxPage) page++;
      else {
        // "You cannot access tickets beyond the 300th page": the listing is restarted past this second.
        floorMs = anchorMs + 1000;
        log.warn({ connector: 'freshdesk', updated_since: iso(anchorMs), pages: maxPage }, 'ticket listing capped: more tickets share one second than Freshdesk lists; restarting one second later');
        anchorMs = floorMs;
        page = 1;
      }
    }
    // A ticket marked spam drops out of the changes as a deleted one does; both leave the customer's timeline.
    const listed = (filter: 'deleted' | 'spam'): GoneList => ({
      kind: `${filter} ticket`,
      page: async (page) => {
        const listing = await get(http, config, log, '/tickets', { filter, per_page: perPage, page });
        if (page < maxPage || !listing.hasNext) return listing;
        // The 300-page cap holds here too: the tickets past it are found by later listings, once Freshdesk purges the first ones.
        log.warn({ connector: 'freshdesk', filter, pages: maxPage }, `listing of ${filter} tickets capped: more than Freshdesk lists`);
        return { ...listing, hasNext: false };
      },
    });
    yield* deletions.pages([listed('deleted'), listed('spam')], config.deletion_sweep_hours ?? 24, checkpoint, done);
  }

  /** https://developers.freshdesk.com/api/#list_all_contacts (`_updated_since`; `state=deleted` for the deleted ones) */
  async function* readContacts(http: HttpClient, state: StreamState | undefined, config: FreshdeskConfig, log: Logger): AsyncGenerator<RecordPage> {
    const cursor = new IncrementalCursor(state, { windowMs: lookbackMs });
    const perPage = config.per_page ?? 100;
    const deletions = new DeletedListing(state);
    const checkpoint = (walk?: { anchor: string; next_page: number }): ContactsState => ({ ...cursor.state(), ...walk, ...deletions.checkpoint() });
    const unfinished = typeof state?.anchor === 'string' && Number.isInteger(state.next_page);
    const anchor = unfinished ? (state!.anchor as string) : iso(cursor.from()?.ms ?? Date.parse(config.start_date ?? defaultStart));
    let done = 0;
    for (let page = unfinished ? (state!.next_page as number) : 1; ; page++) {
      const { items, hasNext } = await get(http, config, log, '/contacts', { _updated_since: anchor, per_page: perPage, page });
      const records: SourceRecord[] = [];
      const rejected: RejectedRecord[] = [];
      for (const item of items) take(item, 'contact', cursor, records, rejected);
      done += records.length;
      yield { records, ...(rejected.length ? { rejected } : {}), state: checkpoint(hasNext ? { anchor, next_page: page + 1 } : undefined), progress: { done } };
      if (!hasNext) break;
    }
    const deleted: GoneList = { kind: 'deleted contact', page: (page) => get(http, config, log, '/contacts', { state: 'deleted', per_page: perPage, page }) };
    yield* deletions.pages([deleted], config.deletion_sweep_hours ?? 24, checkpoint, done);
  }

  /**
   * https://developers.freshdesk.com/api/#list_all_companies (no change filter: a sweep). Freshdesk pages by page
   * number only: a company deleted (or added) before a page moves the later ones across its edge, and one that moved
   * back over an edge already passed would not be listed, so the hub would take it for deleted. So after each page the
   * page before it is read again: if it changed, companies moved, and the sweep starts again from the first page.
   */
  async function* sweepCompanies(http: HttpClient, state: StreamState | undefined, config: FreshdeskConfig, log: Logger): AsyncGenerator<RecordPage> {
    const perPage = config.per_page ?? 100;
    const idsOf = (items: unknown[]) => items.map((item) => (validId(item) ? item.id : null));
    const resuming = state?.complete === false && Number.isInteger(state.next_page) && Array.isArray(state.before);
    let page = resuming ? (state.next_page as number) : 1;
    let before = resuming ? (state.before as (number | null)[]) : [];
    let done = 0;
    for (;;) {
      const { items, hasNext } = await get(http, config, log, '/companies', { per_page: perPage, page });
      if (page > 1) {
        const again = await get(http, config, log, '/companies', { per_page: perPage, page: page - 1 });
        if (JSON.stringify(idsOf(again.items)) !== JSON.stringify(before)) {
          log.info({ connector: 'freshdesk', page: page - 1 }, 'companies moved between pages during the sweep; it starts again from the first page');
          [page, before, done] = [1, [], 0];
          continue;
        }
      }
      const records: SourceRecord[] = [];
      const rejected: RejectedRecord[] = [];
      for (const item of items) {
        if (!validId(item)) rejected.push({ reason: `company without a positive integer 'id'`, field: 'id', payload: item });
        else records.push({ externalId: String(item.id), data: item });
      }
      done += records.length;
      before = idsOf(items);
      const checkpoint: CompanySweepState = hasNext ? { next_page: page + 1, before, complete: false } : { next_page: 1, complete: true };
      yield { records, ...(rejected.length ? { rejected } : {}), state: checkpoint, progress: { done }, sweep: sweepMarks(page === 1, !hasNext) };
      if (!hasNext) return;
      page++;
    }
  }

  /** https://developers.freshdesk.com/api/#me */
  async function check(config: FreshdeskConfig, ctx: ConnectorContext): Promise<CheckResult> {
    try {
      const http = createFreshdeskHttp(config, { ...options, log: ctx.log });
      const response = await http.get<{ contact?: { email?: string; name?: string } }>('/agents/me');
      const who = response.data?.contact?.email ?? response.data?.contact?.name ?? 'an agent';
      return { ok: true, message: `Connected to Freshdesk ${config.domain} as ${who}` };
    } catch (error) {
      if (error instanceof ConnectorError && error.kind !== 'system') return { ok: false, message: error.message };
      throw error;
    }
  }

  async function* read(name: string, state: StreamState | undefined, config: FreshdeskConfig, ctx: ConnectorContext): AsyncGenerator<RecordPage> {
    if (!selected(config).includes(name as StreamName)) throw new ConnectorError(`The Freshdesk source ${ctx.source} has no stream '${name}'`, 'config');
    const http = createFreshdeskHttp(config, { ...options, log: ctx.log });
    if (name === 'tickets') yield* readTickets(http, state, config, ctx.log);
    else if (name === 'contacts') yield* readContacts(http, state, config, ctx.log);
    else yield* sweepCompanies(http, state, config, ctx.log);
  }

  return {
    kind: 'pulled',
    name: 'freshdesk',
    configSchema,
    defaultMappingPath: fileURLToPath(new URL('./mapping.yaml', import.meta.url)),
    streams: (config) => selected(config).map((name) => ({ name, recordSchema, primaryKey: ['id'], ...(name === 'companies' ? {} : { cursorField: 'updated_at' }) })),
    check,
    read,
  };
}

export const connector = createFreshdeskConnector();
