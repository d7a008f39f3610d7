/**
 * The Zendesk Support connector. Users and tickets come from the cursor-based incremental exports:
 * the first request gives `start_time`, each next one the `after_cursor` of the page before, until
 * `end_of_stream`; the last `after_cursor` is the checkpoint the next run resumes from, so no
 * timestamp tie is ever lost. Organizations only have the time-based export (`start_time` = the
 * `end_time` of the page before), which repeats records at page edges: those are de-duplicated.
 * Every export request waits for the account's rate budget (10 a minute by default).
 * https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/
 * https://developer.zendesk.com/documentation/ticketing/managing-tickets/using-the-incremental-export-api/
 */
import { fileURLToPath } from 'node:url';
import { ConnectorError, type CheckResult, type ConnectorContext, type PulledConnector, type RecordPage, type RejectedRecord, type SourceRecord, type StreamState } from '../kit/contract.js';
import type { HttpClient } from '../kit/http.js';
import { IncrementalCursor, type IncrementalState } from '../kit/incremental.js';
import { paginate } from '../kit/paginate.js';
import { createZendeskHttp, RateBudget, type ZendeskClientOptions } from './client.js';
import type { ZendeskConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };

type StreamName = 'users' | 'organizations' | 'tickets';
const streamNames: StreamName[] = ['users', 'organizations', 'tickets'];
const recordSchema = { type: 'object', required: ['id', 'updated_at'], properties: { id: { type: 'integer', minimum: 1 } } };

/** The checkpoint of a cursor-based export: the opaque cursor, and the versions read near the last `updated_at` (duplicates). */
export interface CursorExportState extends StreamState {
  after_cursor?: string;
  cursor?: string;
  seen?: IncrementalState['seen'];
}

/** The checkpoint of the time-based organizations export: the next `start_time` (epoch seconds). */
export interface TimeExportState extends StreamState {
  start_time?: number;
  cursor?: string;
  seen?: IncrementalState['seen'];
}

// Zendesk leaves out what changed in the last minute and refuses a start_time that is not older.
const minimumAgeSeconds = 60;
// Versions remembered for de-duplication: a duplicate arrives close to the record's first copy.
const dedupWindowMs = 5 * 60_000;

interface CursorPage {
  after_cursor?: string | null;
  end_of_stream?: boolean;
  [key: string]: unknown;
}

interface TimePage {
  end_time?: number | null;
  end_of_stream?: boolean;
  [key: string]: unknown;
}

function validId(item: unknown): item is Record<string, unknown> & { id: number } {
  return typeof item === 'object' && item !== null && Number.isInteger((item as { id?: unknown }).id) && (item as { id: number }).id > 0;
}

/**
 * Puts each user's sideloaded identities on the user, by type, the primary one first: `identities.email.0` is the
 * identity of the user's `email`, and its `verified` says whether Zendesk verified that address.
 * https://developer.zendesk.com/api-reference/ticketing/users/user_identities/#json-format
 */
function withIdentities(users: unknown[], identities: unknown): void {
  if (!Array.isArray(identities)) return;
  const byUser = new Map<unknown, Record<string, unknown>[]>();
  for (const identity of identities) {
    if (!identity || typeof identity !== 'object') continue;
    const { user_id: userId } = identity as Record<string, unknown>;
    byUser.set(userId, [...(byUser.get(userId) ?? []), identity as Record<string, unknown>]);
  }
  for (const user of users) {
    if (!user || typeof user !== 'object') continue;
    const own = byUser.get((user as Record<string, unknown>).id);
    if (!own) continue;
    const ordered = [...own].sort((a, b) => Number(Boolean(b.primary)) - Number(Boolean(a.primary)) || Number(a.id) - Number(b.id));
    const grouped: Record<string, Record<string, unknown>[]> = {};
    for (const identity of ordered) (grouped[String(identity.type)] ??= []).push(identity);
    (user as Record<string, unknown>).identities = grouped;
  }
}

export function createZendeskConnector(options: ZendeskClientOptions = {}): PulledConnector<ZendeskConfig> {
  const now = options.now ?? Date.now;
  // One budget per account, shared by its streams (the limit is the account's, not the request's).
  const budgets = new Map<string, RateBudget>();
  const budgetOf = (config: ZendeskConfig) => {
    const key = `${config.subdomain}:${config.requests_per_minute ?? 10}`;
    let budget = budgets.get(key);
    if (!budget) budgets.set(key, (budget = new RateBudget(config.requests_per_minute ?? 10, 60_000, now, options.sleep)));
    return budget;
  };
  const selected = (config: ZendeskConfig) => streamNames.filter((name) => !config.streams || config.streams.includes(name));

  /** The first run's start_time: the configured date or 0, never less than a minute old. */
  function startTime(config: ZendeskConfig, fromState?: number): number {
    const configured = config.start_date ? Math.floor(Date.parse(config.start_date) / 1000) : 0;
    return Math.max(0, Math.min(fromState ?? configured, Math.floor(now() / 1000) - minimumAgeSeconds));
  }

  /** One page's outcome: records, rejections, and the ids Zendesk reports deleted. */
  interface Taken {
    records: SourceRecord[];
    rejected: RejectedRecord[];
    deleted: string[];
  }

  /** Checks one record: accepted for the page (or as a deletion), rejected with a reason, or dropped as a duplicate. */
  function take(item: unknown, kind: string, cursor: IncrementalCursor, taken: Taken) {
    if (!validId(item)) taken.rejected.push({ reason: `${kind} without a positive integer 'id'`, field: 'id', payload: item });
    else if (!cursor.valid(item.updated_at)) {
      taken.rejected.push({ externalId: String(item.id), field: 'updated_at', reason: `'updated_at' is not a timestamp (${JSON.stringify(item.updated_at) ?? 'missing'})`, payload: item });
    } else if (cursor.accept(String(item.id), item.updated_at, item)) {
      if (isDeletion(kind, item)) taken.deleted.push(String(item.id));
      else taken.records.push({ externalId: String(item.id), data: item });
    }
  }

  /** How the exports show a deletion: a deleted user is no longer active, a deleted ticket has the status `deleted`. */
  function isDeletion(kind: string, item: Record<string, unknown>): boolean {
    return (kind === 'user' && item.active === false) || (kind === 'ticket' && item.status === 'deleted');
  }

  /** A page of what was taken; the deletions only where there are some. */
  function pageOf({ records, rejected, deleted }: Taken, state: StreamState, done: number): RecordPage {
    return { records, ...(rejected.length ? { rejected } : {}), ...(deleted.length ? { deleted } : {}), state, progress: { done } };
  }

  /**
   * Users and tickets, cursor-based.
   * https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/#incremental-user-export-cursor-based
   * https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/#incremental-ticket-export-cursor-based
   */
  async function* readCursorExport(http: HttpClient, name: 'users' | 'tickets', state: StreamState | undefined, config: ZendeskConfig): AsyncGenerator<RecordPage> {
    const cursor = new IncrementalCursor(state, { windowMs: dedupWindowMs });
    const saved = typeof state?.after_cursor === 'string' && state.after_cursor ? state.after_cursor : undefined;
    // Users come with their identities sideloaded: only an identity says whether its email was verified. Deleted
    // tickets are not excluded: they come with the status `deleted`, the only sign that one was deleted.
    const fixed = { per_page: config.per_page ?? 1000, ...(name === 'users' ? { include: 'identities' } : {}) };
    const budget = budgetOf(config);
    const kind = name === 'users' ? 'user' : 'ticket';
    let afterCursor = saved;
    let done = 0;
    const walk = paginate<unknown, Record<string, unknown>>({
      connector: 'zendesk',
      first: saved ? { cursor: saved, ...fixed } : { start_time: startTime(config), ...fixed },
      fetch: async (params) => {
        await budget.take();
        const response = await http.get<CursorPage>(`/api/v2/incremental/${name}/cursor.json`, { params });
        const body = response.data ?? {};
        const items = Array.isArray(body[name]) ? (body[name] as unknown[]) : [];
        if (name === 'users') withIdentities(items, body.identities);
        if (body.after_cursor) afterCursor = body.after_cursor;
        return { items, next: body.end_of_stream === false && body.after_cursor ? { cursor: body.after_cursor, ...fixed } : undefined };
      },
    });
    for await (const page of walk) {
      const taken: Taken = { records: [], rejected: [], deleted: [] };
      for (const item of page.items) take(item, kind, cursor, taken);
      done += taken.records.length;
      const checkpoint: CursorExportState = { ...cursor.state(), ...(afterCursor ? { after_cursor: afterCursor } : {}) };
      yield pageOf(taken, checkpoint, done);
    }
  }

  /**
   * Organizations, time-based: the next request starts at the page's `end_time`; the record at the
   * edge comes again and is dropped as a duplicate.
   * https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/#incremental-organization-export
   */
  async function* readOrganizations(http: HttpClient, state: StreamState | undefined, config: ZendeskConfig): AsyncGenerator<RecordPage> {
    const cursor = new IncrementalCursor(state, { windowMs: dedupWindowMs });
    const budget = budgetOf(config);
    const resume = Number.isInteger(state?.start_time) ? (state!.start_time as number) : undefined;
    let next = startTime(config, resume);
    let done = 0;
    const walk = paginate<unknown, number>({
      connector: 'zendesk',
      first: next,
      fetch: async (start) => {
        await budget.take();
        const response = await http.get<TimePage>('/api/v2/incremental/organizations.json', { params: { start_time: start } });
        const body = response.data ?? {};
        const items = Array.isArray(body.organizations) ? body.organizations : [];
        if (Number.isInteger(body.end_time)) next = body.end_time as number;
        return { items, next: body.end_of_stream === false && Number.isInteger(body.end_time) ? (body.end_time as number) : undefined };
      },
    });
    for await (const page of walk) {
      const taken: Taken = { records: [], rejected: [], deleted: [] };
      for (const item of page.items) take(item, 'organization', cursor, taken);
      done += taken.records.length;
      const checkpoint: TimeExportState = { ...cursor.state(), start_time: next };
      yield pageOf(taken, checkpoint, done);
    }
  }

  /** https://developer.zendesk.com/api-reference/ticketing/users/users/#show-the-currently-authenticated-user */
  async function check(config: ZendeskConfig, ctx: ConnectorContext): Promise<CheckResult> {
    try {
      const http = createZendeskHttp(config, { ...options, log: ctx.log });
      const response = await http.get<{ user?: { id?: number | null; role?: string; email?: string } }>('/api/v2/users/me.json');
      const user = response.data?.user;
      // Zendesk answers an unauthenticated request with the anonymous user (id null) rather than 401.
      if (!user?.id) return { ok: false, message: `Zendesk ${config.subdomain} did not accept the API token of ${config.email}` };
      return { ok: true, message: `Connected to Zendesk ${config.subdomain} as ${user.email ?? config.email} (${user.role ?? 'unknown role'})` };
    } catch (error) {
      if (error instanceof ConnectorError && error.kind !== 'system') return { ok: false, message: error.message };
      throw error;
    }
  }

  async function* read(name: string, state: StreamState | undefined, config: ZendeskConfig, ctx: ConnectorContext): AsyncGenerator<RecordPage> {
    if (!selected(config).includes(name as StreamName)) throw new ConnectorError(`The Zendesk source ${ctx.source} has no stream '${name}'`, 'config');
    const http = createZendeskHttp(config, { ...options, log: ctx.log });
    if (name === 'organizations') yield* readOrganizations(http, state, config);
    else yield* readCursorExport(http, name as 'users' | 'tickets', state, config);
  }

  return {
    kind: 'pulled',
    name: 'zendesk',
    configSchema,
    defaultMappingPath: fileURLToPath(new URL('./mapping.yaml', import.meta.url)),
    streams: (config) => selected(config).map((name) => ({ name, recordSchema, primaryKey: ['id'], cursorField: 'updated_at' })),
    check,
    read,
  };
}

export const connector = createZendeskConnector();
