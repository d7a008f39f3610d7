/**
 * The Request Tracker connector (RT 5, REST2). Both streams are incremental on `LastUpdated` (seconds) and
 * paged with `page`/`per_page` while the response has a `next_page`. Tickets are searched with TicketSQL,
 * `LastUpdated >= '…'` (in the user's time zone) ordered by `LastUpdated` then `id`, from the cursor minus
 * the lookback, so the boundary second and late commits are read again and de-duplicated; after each page
 * the search is re-anchored on the new cursor from page 1, so a ticket updated during the run (which moves
 * to the end of the order) never shifts another one past the reader. Users cannot be searched by
 * `LastUpdated` (JSON searches only reach a user's public fields), so each run lists them by id and
 * emits those changed since the cursor minus the lookback.
 * https://docs.bestpractical.com/rt/5.0.3/RT/REST2.html#Tickets
 * https://docs.bestpractical.com/rt/5.0.3/RT/REST2.html#JSON-searches
 * https://docs.bestpractical.com/rt/5.0.3/RT/REST2.html#Paging
 * https://docs.bestpractical.com/rt/5.0.3/RT/REST2.html#Fields
 */
import { fileURLToPath } from 'node:url';
import { ConnectorError, type CheckResult, type ConnectorContext, type PulledConnector, type RecordPage, type RejectedRecord, type SourceRecord, type StreamState } from '../kit/contract.js';
import type { HttpClient } from '../kit/http.js';
import { IdSweep } from '../kit/id-sweep.js';
import { IncrementalCursor, type IncrementalState } from '../kit/incremental.js';
import { createRtHttp, rtApiUrl, ticketSqlLowerBound, ticketSqlTime, type RtClientOptions } from './client.js';
import type { RtConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };

type StreamName = 'users' | 'tickets';
const streamNames: StreamName[] = ['users', 'tickets'];
const recordSchema = { type: 'object', required: ['id', 'LastUpdated'], properties: { id: { type: ['integer', 'string'] }, LastUpdated: { type: 'string' } } };

// Collection items carry only id, type and _url unless `fields` names more; a user's id is its name
// unless `id` is asked for, then its number.
const ticketFields = {
  fields: 'Subject,Status,Priority,InitialPriority,FinalPriority,Created,LastUpdated,Started,Resolved,Due,Queue,Owner,Requestor',
  'fields[Requestor]': 'id,Name,EmailAddress,RealName',
  'fields[Owner]': 'id,Name,EmailAddress,RealName',
  'fields[Queue]': 'Name',
};
const userFields = 'id,Name,EmailAddress,RealName,NickName,Organization,WorkPhone,HomePhone,MobilePhone,Address1,Address2,City,State,Zip,Country,Lang,Created,LastUpdated,Disabled,Privileged';

interface Listing {
  items: unknown[];
  hasNext: boolean;
}

/** Query parameters with repeated names (`orderby=LastUpdated&orderby=id`), which axios would write as `orderby[]`. */
function searchParams(values: Record<string, string | number | string[]>): URLSearchParams {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) for (const one of Array.isArray(value) ? value : [value]) params.append(name, String(one));
  return params;
}

// RT's own users, which are no one's customer.
const internalUsers = new Set(['RT_System', 'Nobody']);

/** The users checkpoint: the cursor, and while a listing is unfinished the time it started from and its next page. */
export interface UsersState extends IncrementalState {
  since?: string;
  next_page?: number;
}

function listing(data: unknown, where: string): Listing {
  const body = data as { items?: unknown; next_page?: unknown } | null;
  if (!body || typeof body !== 'object' || !Array.isArray(body.items)) {
    throw new ConnectorError(`rt: ${where} did not answer with a REST2 collection (is 'url' the address of RT?)`, 'config');
  }
  return { items: body.items, hasNext: typeof body.next_page === 'string' && body.next_page !== '' };
}

function validId(id: unknown): id is number | string {
  return (typeof id === 'number' && Number.isInteger(id) && id > 0) || (typeof id === 'string' && /^[1-9]\d*$/.test(id));
}

export function createRtConnector(options: RtClientOptions = {}): PulledConnector<RtConfig> {
  const selected = (config: RtConfig) => streamNames.filter((name) => !config.streams || config.streams.includes(name));
  const timeZone = (config: RtConfig) => config.timezone ?? 'UTC';
  const withQuery = (config: RtConfig, condition: string) => (config.query ? `(${config.query}) AND ${condition}` : condition);

  /** https://docs.bestpractical.com/rt/5.0.3/RT/REST2.html#Tickets (`GET /tickets?query=<TicketSQL>`) */
  async function ticketsPage(http: HttpClient, config: RtConfig, anchorMs: number | undefined, page: number): Promise<Listing> {
    const query = anchorMs === undefined ? (config.query ?? 'id > 0') : withQuery(config, `LastUpdated >= '${ticketSqlLowerBound(anchorMs, timeZone(config))}'`);
    const params = searchParams({ query, orderby: ['LastUpdated', 'id'], order: ['ASC', 'ASC'], page, per_page: config.per_page ?? 100, ...ticketFields });
    return listing((await http.get('/tickets', { params })).data, 'GET /tickets');
  }

  /**
   * Checks that RT reads TicketSQL dates in the configured zone: the last updated ticket must be found by
   * its own `LastUpdated` second written in that zone. A wrong zone would move the cursor by hours, and
   * a later one would skip every change in between. Returns the id of the ticket checked on, if any.
   */
  async function verifyTimeZone(http: HttpClient, config: RtConfig): Promise<string | undefined> {
    const latest = listing((await http.get('/tickets', { params: searchParams({ query: config.query ?? 'id > 0', orderby: ['LastUpdated', 'id'], order: ['DESC', 'DESC'], per_page: 1, fields: 'LastUpdated' }) })).data, 'GET /tickets');
    const ticket = latest.items[0] as { id?: unknown; LastUpdated?: unknown } | undefined;
    if (!ticket || !validId(ticket.id) || typeof ticket.LastUpdated !== 'string' || Number.isNaN(Date.parse(ticket.LastUpdated))) return undefined;
    const ms = Date.parse(ticket.LastUpdated);
    const zone = timeZone(config);
    const query = `id = ${ticket.id} AND LastUpdated >= '${ticketSqlTime(ms, zone)}' AND LastUpdated < '${ticketSqlTime(ms + 1000, zone)}'`;
    const probe = listing((await http.get('/tickets', { params: searchParams({ query, per_page: 1 }) })).data, 'GET /tickets');
    if (probe.items.length !== 1) {
      throw new ConnectorError(
        `rt: RT does not read TicketSQL dates in the time zone '${zone}': ticket ${ticket.id}, last updated ${ticket.LastUpdated}, is not found at that time. ` +
          "Set 'timezone' to the Timezone preference of the RT user the hub signs in as, else RT's $Timezone",
        'config',
      );
    }
    return String(ticket.id);
  }

  /** Quarantines an item without a valid id or `LastUpdated`; true when it can be read. */
  function valid(item: unknown, kind: string, cursor: IncrementalCursor, rejected: RejectedRecord[]): item is Record<string, unknown> & { id: number | string; LastUpdated: string } {
    const data = item as Record<string, unknown>;
    if (typeof item !== 'object' || item === null || !validId(data.id)) rejected.push({ reason: `${kind} without a positive integer 'id'`, field: 'id', payload: item });
    else if (!cursor.valid(data.LastUpdated)) {
      rejected.push({ externalId: String(data.id), field: 'LastUpdated', reason: `'LastUpdated' is not a timestamp (${JSON.stringify(data.LastUpdated) ?? 'missing'})`, payload: item });
    } else return true;
    return false;
  }

  async function* readTickets(http: HttpClient, state: StreamState | undefined, config: RtConfig): AsyncGenerator<RecordPage> {
    const cursor = new IncrementalCursor(state, { windowMs: (config.lookback_seconds ?? 60) * 1000 });
    const sweep = new IdSweep(state, config.deletion_sweep_hours ?? 24, 'rt tickets');
    const checkpoint = () => ({ ...cursor.state(), ...sweep.checkpoint() });
    let anchorMs = cursor.from()?.ms;
    let page = 1;
    let done = 0;
    for (;;) {
      const { items, hasNext } = await ticketsPage(http, config, anchorMs, page);
      const records: SourceRecord[] = [];
      const rejected: RejectedRecord[] = [];
      for (const item of items) if (valid(item, 'ticket', cursor, rejected) && cursor.accept(String(item.id), item.LastUpdated, item)) records.push({ externalId: String(item.id), data: item });
      done += records.length;
      yield { records, ...(rejected.length ? { rejected } : {}), state: checkpoint(), progress: { done } };
      if (!hasNext) break;
      const nextMs = cursor.from()?.ms;
      // A page that brought nothing newer (all within the lookback) leaves the anchor: its next page follows.
      if (nextMs !== anchorMs) {
        anchorMs = nextMs;
        page = 1;
      } else page++;
    }
    // Last, when due, the ids of every ticket (REST2 searches never show a deleted one), 100 (REST2's most) per request.
    const listIds = async (afterId: number, perPage: number) => {
      const params = searchParams({ query: withQuery(config, `id > ${afterId}`), orderby: 'id', order: 'ASC', per_page: perPage, fields: 'id' });
      const { items } = listing((await http.get('/tickets', { params })).data, 'GET /tickets');
      return items.map((item) => Number((item as { id?: unknown })?.id));
    };
    yield* sweep.pages(listIds, 100, checkpoint, { done });
  }

  /** https://docs.bestpractical.com/rt/5.0.3/RT/REST2.html#Users (`GET /users`, every user by id, disabled ones too) */
  async function* readUsers(http: HttpClient, state: StreamState | undefined, config: RtConfig): AsyncGenerator<RecordPage> {
    const cursor = new IncrementalCursor(state, { windowMs: (config.lookback_seconds ?? 60) * 1000 });
    // An unfinished listing resumes with the time it started from: the cursor may have moved past
    // changes on the pages not read yet.
    const resuming = Number.isInteger(state?.next_page);
    const sinceMs = resuming ? (typeof state!.since === 'string' ? Date.parse(state!.since) : -Infinity) : (cursor.from()?.ms ?? -Infinity);
    let done = 0;
    for (let page = resuming ? (state!.next_page as number) : 1; ; page++) {
      const params = searchParams({ orderby: 'id', page, per_page: config.per_page ?? 100, fields: userFields, find_disabled_rows: 1 });
      const { items, hasNext } = listing((await http.get('/users', { params })).data, 'GET /users');
      const records: SourceRecord[] = [];
      const rejected: RejectedRecord[] = [];
      for (const item of items) {
        if (!valid(item, 'user', cursor, rejected) || internalUsers.has(item.Name as string) || Date.parse(item.LastUpdated) < sinceMs) continue;
        if (cursor.accept(String(item.id), item.LastUpdated, item)) records.push({ externalId: String(item.id), data: item });
      }
      done += records.length;
      // Until the listing ends, the versions the last run left at or after `since` are kept: the later pages
      // hold some of them again. (A listing by id meets each user once, so a first run keeps nothing more.)
      const since = Number.isFinite(sinceMs) ? { since: new Date(sinceMs).toISOString() } : {};
      const checkpoint: UsersState = hasNext ? { ...cursor.state(Number.isFinite(sinceMs) ? sinceMs : undefined), next_page: page + 1, ...since } : cursor.state();
      yield { records, ...(rejected.length ? { rejected } : {}), state: checkpoint, progress: { done } };
      if (!hasNext) return;
    }
  }

  /** https://docs.bestpractical.com/rt/5.0.3/RT/REST2.html (`GET /rt`: the version) */
  async function check(config: RtConfig, ctx: ConnectorContext): Promise<CheckResult> {
    try {
      const http = createRtHttp(config, { ...options, log: ctx.log });
      const version = ((await http.get<{ Version?: string }>('/rt')).data?.Version ?? 'unknown version');
      const verified = selected(config).includes('tickets') ? await verifyTimeZone(http, config) : undefined;
      const zone = verified ? `; TicketSQL dates in ${timeZone(config)} (checked on ticket ${verified})` : '';
      return { ok: true, message: `Connected to RT ${version} at ${rtApiUrl(config)}${zone}` };
    } catch (error) {
      if (error instanceof ConnectorError && error.kind !== 'system') return { ok: false, message: error.message };
      throw error;
    }
  }

  async function* read(name: string, state: StreamState | undefined, config: RtConfig, ctx: ConnectorContext): AsyncGenerator<RecordPage> {
    if (!selected(config).includes(name as StreamName)) throw new ConnectorError(`The RT source ${ctx.source} has no stream '${name}'`, 'config');
    const http = createRtHttp(config, { ...options, log: ctx.log });
    if (name === 'tickets') {
      await verifyTimeZone(http, config);
      yield* readTickets(http, state, config);
    } else yield* readUsers(http, state, config);
  }

  return {
    kind: 'pulled',
    name: 'rt',
    configSchema,
    defaultMappingPath: fileURLToPath(new URL('./mapping.yaml', import.meta.url)),
    streams: (config) => selected(config).map((name) => ({ name, recordSchema, primaryKey: ['id'], cursorField: 'LastUpdated' })),
    check,
    read,
  };
}

export const connector = createRtConnector();
