/**
 * Customer value: what a customer is worth and what is open with them, from the interactions of its current source
 * records. The order figures behind the RFM segment are kept per golden record in `customer_value` (so that the list
 * can filter by segment), refreshed in the transaction that changed the interactions or the clusters; the rest is
 * computed on read, from the same rows, for one customer at a time.
 *
 * The rules (also in the README):
 * - an order counts unless its status is cancelled, canceled, refunded, void or failed; amounts add up per currency;
 * - segment (hub_rfm_segment in 0004_privacy.sql): prospect (no order), champion (last order ≤ 90 days, ≥ 3 orders),
 *   new (first order ≤ 90 days), loyal (last ≤ 180 days, ≥ 2), active (last ≤ 180 days), at_risk (last ≤ 365 days,
 *   ≥ 2), else lapsed;
 * - a quote is open unless accepted, won, rejected, lost, declined, expired, cancelled, canceled, closed, converted or ordered;
 * - a ticket is open unless closed, resolved, solved, done, cancelled or canceled;
 * - an email thread awaits a reply when its latest email's status is received, inbound or incoming;
 * - last contact: the latest interaction other than a web event or an internal note; owner: the owner named by the
 *   latest interaction that names one.
 */
import type { Pool, PoolClient, Statement } from './db/database.js';
import type { ChangeCause } from '../identity-resolution/change-log.js';
import { resolveRecords, type ResolveResult } from '../identity-resolution/resolve.js';

export const SEGMENTS = ['prospect', 'new', 'champion', 'loyal', 'active', 'at_risk', 'lapsed'] as const;
export type Segment = (typeof SEGMENTS)[number];

const NOT_REVENUE = ['cancelled', 'canceled', 'refunded', 'void', 'failed'];
const CLOSED_QUOTE = ['accepted', 'won', 'rejected', 'lost', 'declined', 'expired', 'cancelled', 'canceled', 'closed', 'converted', 'ordered'];
const CLOSED_TICKET = ['closed', 'resolved', 'solved', 'done', 'cancelled', 'canceled'];
const INBOUND_EMAIL = ['received', 'inbound', 'incoming'];
/** At most this many open quotes, tickets and waiting threads are listed (the counts are complete). */
export const VALUE_ITEMS = 50;

const status = (alias: string) => `lower(coalesce(${alias}.data ->> 'status', ''))`;

const goldensOfRecords = (ids: number[]): Statement => ({
  text: 'select distinct golden_id from cluster_membership where valid_to is null and raw_record_id = any($1::bigint[])',
  values: [ids],
});

/** Recomputes the order figures of these golden records; records that are not active, or have no order, keep no row. */
export const refreshValues = (goldenIds: string[]): Statement => ({
  text: `with agg as (
           select m.golden_id, min(i.occurred_at) as first_order_at, max(i.occurred_at) as last_order_at, count(*)::int as order_count
           from cluster_membership m join interaction i on i.raw_record_id = m.raw_record_id
           join golden_record g on g.id = m.golden_id and g.status = 'active'
           where m.valid_to is null and m.golden_id = any($1::text[]) and i.kind = 'order' and ${status('i')} <> all($2::text[])
           group by m.golden_id),
         gone as (delete from customer_value where golden_id = any($1::text[]) and golden_id not in (select golden_id from agg))
         insert into customer_value (golden_id, first_order_at, last_order_at, order_count)
         select golden_id, first_order_at, last_order_at, order_count from agg
         on conflict (golden_id) do update set first_order_at = excluded.first_order_at, last_order_at = excluded.last_order_at,
           order_count = excluded.order_count, updated_at = now()`,
  values: [goldenIds, NOT_REVENUE],
});

export async function refreshCustomerValue(client: PoolClient, goldenIds: string[]): Promise<void> {
  const ids = [...new Set(goldenIds)];
  if (ids.length) await client.query(refreshValues(ids));
}

/**
 * resolveRecords, then the value of every golden record the touched records left, joined or changed: their
 * interactions moved with them. Call where the records' interactions were rewritten, in the same transaction.
 */
export async function resolveAndRefreshValue(client: PoolClient, touched: number[], cause: ChangeCause): Promise<ResolveResult> {
  if (touched.length === 0) return resolveRecords(client, touched, cause);
  const before = (await client.query<{ golden_id: string }>(goldensOfRecords(touched))).rows.map((row) => row.golden_id);
  const result = await resolveRecords(client, touched, cause);
  const after = (await client.query<{ golden_id: string }>(goldensOfRecords(touched))).rows.map((row) => row.golden_id);
  await refreshCustomerValue(client, [...before, ...after, ...Object.values(result).flat()]);
  return result;
}

/** The value of one customer, computed now from the interactions of its current source records. */
export const customerValue = (goldenId: string, at: Date | null = null): Statement => ({
  text: `with ts as (select coalesce($2::timestamptz, now()) as at),
         i as (
           select i.kind, i.occurred_at, i.data, i.raw_record_id, i.ordinal, r.source
           from cluster_membership m join interaction i on i.raw_record_id = m.raw_record_id join raw_record r on r.id = m.raw_record_id
           where m.golden_id = $1 and m.valid_to is null),
         orders as (select * from i where kind = 'order' and ${status('i')} <> all($3::text[])),
         quotes as (select * from i where kind = 'quote' and ${status('i')} <> all($4::text[])),
         tickets as (select * from i where kind = 'ticket' and ${status('i')} <> all($5::text[])),
         threads as (
           select distinct on (coalesce(data ->> 'thread_id', raw_record_id || ':' || ordinal)) *
           from i where kind = 'email'
           order by coalesce(data ->> 'thread_id', raw_record_id || ':' || ordinal), occurred_at desc, ordinal desc),
         waiting as (select * from threads where ${status('threads')} = any($6::text[])),
         stats as (select min(occurred_at) as first_order_at, max(occurred_at) as last_order_at, count(*)::int as order_count from orders)
         select ts.at, stats.*,
           hub_rfm_segment(stats.first_order_at, stats.last_order_at, stats.order_count, ts.at) as segment,
           floor(extract(epoch from ts.at - stats.last_order_at) / 86400)::int as recency_days,
           (select count(*)::int from orders where occurred_at >= ts.at - interval '365 days') as frequency_365,
           (select coalesce(jsonb_object_agg(currency, total), '{}') from (
              select upper(data ->> 'currency') as currency, sum((data ->> 'amount')::numeric) as total from orders
              where occurred_at >= ts.at - interval '365 days' and jsonb_typeof(data -> 'amount') = 'number' and data ? 'currency' group by 1) x) as monetary_365,
           (select coalesce(jsonb_object_agg(currency, total), '{}') from (
              select upper(data ->> 'currency') as currency, sum((data ->> 'amount')::numeric) as total from orders
              where jsonb_typeof(data -> 'amount') = 'number' and data ? 'currency' group by 1) x) as revenue,
           (select count(*)::int from quotes) as open_quote_count,
           (select coalesce(jsonb_agg(q order by q.occurred_at desc), '[]') from (
              select data ->> 'external_id' as external_id, occurred_at, data -> 'amount' as amount, data ->> 'currency' as currency,
                data ->> 'owner' as owner, data ->> 'status' as status, raw_record_id, source
              from quotes order by occurred_at desc limit $7) q) as open_quotes,
           (select coalesce(jsonb_agg(distinct data ->> 'owner'), '[]') from quotes where data ? 'owner') as salespeople,
           (select count(*)::int from tickets) as open_ticket_count,
           (select coalesce(jsonb_agg(t order by t.opened_at), '[]') from (
              select data ->> 'external_id' as external_id, occurred_at as opened_at,
                floor(extract(epoch from ts.at - occurred_at) / 86400)::int as age_days, data ->> 'status' as status, data ->> 'owner' as owner, raw_record_id, source
              from tickets order by occurred_at limit $7) t) as open_tickets,
           (select count(*)::int from waiting) as waiting_count,
           (select coalesce(jsonb_agg(w order by w.received_at), '[]') from (
              select data ->> 'thread_id' as thread_id, occurred_at as received_at, floor(extract(epoch from ts.at - occurred_at) / 86400)::int as waiting_days,
                data ->> 'owner' as owner, raw_record_id, source
              from waiting order by occurred_at limit $7) w) as awaiting_reply,
           (select jsonb_build_object('at', occurred_at, 'kind', kind, 'owner', data ->> 'owner', 'source', source) from i
              where kind not in ('web_event', 'note') order by occurred_at desc, raw_record_id desc, ordinal desc limit 1) as last_contact,
           (select data ->> 'owner' from i where coalesce(data ->> 'owner', '') <> '' order by occurred_at desc, raw_record_id desc, ordinal desc limit 1) as owner,
           (select count(*)::int from i where kind = 'ticket') as ticket_total
         from ts, stats`,
  values: [goldenId, at, NOT_REVENUE, CLOSED_QUOTE, CLOSED_TICKET, INBOUND_EMAIL, VALUE_ITEMS],
});

interface ValueRow {
  at: Date;
  first_order_at: Date | null;
  last_order_at: Date | null;
  order_count: number;
  segment: Segment;
  recency_days: number | null;
  frequency_365: number;
  monetary_365: Record<string, string | number>;
  revenue: Record<string, string | number>;
  open_quote_count: number;
  open_quotes: Record<string, unknown>[];
  salespeople: string[];
  open_ticket_count: number;
  open_tickets: Record<string, unknown>[];
  waiting_count: number;
  awaiting_reply: Record<string, unknown>[];
  last_contact: { at: string; kind: string; owner: string | null; source: string } | null;
  owner: string | null;
  ticket_total: number;
}

/** numeric sums arrive as JSON numbers already; amounts are rounded to cents against float noise. */
const money = (totals: Record<string, string | number>) => Object.fromEntries(Object.entries(totals).map(([currency, total]) => [currency, Math.round(Number(total) * 100) / 100]));

const sourceRecordOf = <T extends Record<string, unknown>>({ raw_record_id, source, ...rest }: T) => ({ ...rest, raw_record_id: Number(raw_record_id), source });

/** The `value` object of the customer resource (schema `CustomerValue`). */
export async function loadCustomerValue(pool: Pool, goldenId: string, at?: Date): Promise<object> {
  const { rows } = await pool.query<ValueRow>(customerValue(goldenId, at ?? null));
  const row = rows[0];
  return {
    computed_at: row.at,
    segment: row.segment,
    rfm: {
      recency_days: row.recency_days,
      frequency: row.order_count,
      frequency_365_days: row.frequency_365,
      monetary_365_days: money(row.monetary_365),
      first_order_at: row.first_order_at,
      last_order_at: row.last_order_at,
    },
    revenue: money(row.revenue),
    open_quotes: { count: row.open_quote_count, salespeople: [...row.salespeople].sort(), items: row.open_quotes.map(sourceRecordOf) },
    open_tickets: {
      count: row.open_ticket_count,
      oldest_age_days: row.open_tickets.length ? (row.open_tickets[0].age_days as number) : null,
      items: row.open_tickets.map(sourceRecordOf),
    },
    emails_awaiting_reply: { count: row.waiting_count, items: row.awaiting_reply.map(sourceRecordOf) },
    last_contact: row.last_contact,
    owner: row.owner,
    service_load: {
      tickets: row.ticket_total,
      orders: row.order_count,
      tickets_per_order: row.order_count > 0 ? Math.round((row.ticket_total / row.order_count) * 100) / 100 : null,
    },
  };
}
