/**
 * Customer value: what a customer is worth and what is open with them, from the interactions of its current source
 * records. The order figures behind the RFM segment are kept per golden record in `customer_value` (so that the list
 * can filter by segment), refreshed in the transaction that changed the interactions or the clusters; the rest is
 * computed on read, from the same rows, for one customer at a time.
 *
 * The rules (also in the README):
 * - an order counts unless its status is cancelled, canceled, refunded, void or failed; amounts add up per currency,
 *   and into the configured reporting currency only for currencies with a configured rate (the others listed apart);
 * - segment (hub_rfm_segment in 0004_privacy.sql): prospect (no order), champion (last order ≤ 90 days, ≥ 3 orders),
 *   new (first order ≤ 90 days), loyal (last ≤ 180 days, ≥ 2), active (last ≤ 180 days), at_risk (last ≤ 365 days,
 *   ≥ 2), else lapsed;
 * - a quote is open unless accepted, won, rejected, lost, declined, expired, cancelled, canceled, closed, converted or ordered;
 * - a ticket is open unless closed, resolved, solved, done, cancelled or canceled;
 * - an email thread awaits a reply when its latest email's status is received, inbound or incoming;
 * - last contact: the latest interaction other than a web event or an internal note; owner: the owner named by the
 *   latest interaction that names one.
 */
import type { PoolClient, Statement } from './db/database.js';
import type { ChangeCause } from '../identity-resolution/change-log.js';
import { resolveRecords, type ResolveResult } from '../identity-resolution/resolve.js';

export const SEGMENTS = ['prospect', 'new', 'champion', 'loyal', 'active', 'at_risk', 'lapsed'] as const;
export type Segment = (typeof SEGMENTS)[number];

const NOT_REVENUE = ['cancelled', 'canceled', 'refunded', 'void', 'failed'];
const CLOSED_QUOTE = ['accepted', 'won', 'rejected', 'lost', 'declined', 'expired', 'cancelled', 'canceled', 'closed', 'converted', 'ordered'];
const CLOSED_TICKET = ['closed', 'resolved', 'solved', 'done', 'cancelled', 'canceled'];
/** An inbound email with no reply yet; the IMAP connector marks one left unanswered past its limit `awaiting_reply`. */
const INBOUND_EMAIL = ['received', 'inbound', 'incoming', 'awaiting_reply'];
/** At most this many open quotes, tickets and waiting threads are listed (the counts are complete). */
export const VALUE_ITEMS = 50;

const status = (alias: string) => `lower(coalesce(${alias}.data ->> 'status', ''))`;

/**
 * Recomputes the order figures of these golden records (records that are not active, or have no order, keep no row)
 * and marks their stored API documents stale.
 */
export const refreshValues = (goldenIds: string[]): Statement => ({
  text: `with agg as (
           select m.golden_id, min(i.occurred_at) as first_order_at, max(i.occurred_at) as last_order_at, count(*)::int as order_count
           from cluster_membership m join interaction i on i.raw_record_id = m.raw_record_id
           join golden_record g on g.id = m.golden_id and g.status = 'active'
           where m.valid_to is null and m.golden_id = any($1::text[]) and i.kind = 'order' and ${status('i')} <> all($2::text[])
           group by m.golden_id),
         gone as (delete from customer_value where golden_id = any($1::text[]) and golden_id not in (select golden_id from agg)),
         saved as (
           insert into customer_value (golden_id, first_order_at, last_order_at, order_count)
           select golden_id, first_order_at, last_order_at, order_count from agg
           on conflict (golden_id) do update set first_order_at = excluded.first_order_at, last_order_at = excluded.last_order_at,
             order_count = excluded.order_count, updated_at = now())
         select hub_stale_documents($1::text[])`,
  name: 'hub_refresh_values',
  values: [goldenIds, NOT_REVENUE],
});

/**
 * Refreshes the order figures of these golden records and marks their stored API documents stale (their interactions
 * changed; hub/db/migrations/0013_customer_document.sql).
 */
export async function refreshCustomerValue(client: PoolClient, goldenIds: string[]): Promise<void> {
  const ids = [...new Set(goldenIds)];
  if (ids.length === 0) return;
  await client.query(refreshValues(ids));
}

/**
 * resolveRecords, then the value of every golden record the touched records left, joined or changed: their
 * interactions moved with them. Call where the records' interactions were rewritten, in the same transaction.
 */
export async function resolveAndRefreshValue(client: PoolClient, touched: number[], cause: ChangeCause): Promise<ResolveResult> {
  return resolveRecords(client, touched, cause, undefined, { afterWrites: (result) => refreshCustomerValue(client, Object.values(result).flat()) });
}

/**
 * The value of one customer, computed now from the interactions of its current source records: common table
 * expressions and select columns that a statement about one customer composes (hub/api-sql.ts' customerResource), so
 * that the customer and its value come in one round trip. `golden` is the SQL expression of the golden id ($1, or a
 * column of the statement's list of ids); parameters: $2 the time (null: now), then VALUE_PARAMETERS from $3.
 */
export const valueCtes = (golden: string) => `ts as (select coalesce($2::timestamptz, now()) as at),
         i as (
           select i.kind, i.occurred_at, i.data, i.raw_record_id, i.ordinal, r.source,
             i.kind = 'order' and ${status('i')} <> all($3::text[]) as is_order,
             i.kind = 'quote' and ${status('i')} <> all($4::text[]) as is_open_quote,
             i.kind = 'ticket' and ${status('i')} <> all($5::text[]) as is_open_ticket
           from cluster_membership m join interaction i on i.raw_record_id = m.raw_record_id join raw_record r on r.id = m.raw_record_id
           where m.golden_id = ${golden} and m.valid_to is null),
         threads as (
           select distinct on (coalesce(data ->> 'thread_id', raw_record_id || ':' || ordinal)) *
           from i where kind = 'email'
           order by coalesce(data ->> 'thread_id', raw_record_id || ':' || ordinal), occurred_at desc, ordinal desc),
         waiting as (select * from threads where ${status('threads')} = any($6::text[])),
         -- Every count in one pass: each subquery is plan nodes to start, which costs more than these few rows.
         stats as (
           select min(occurred_at) filter (where is_order) as first_order_at, max(occurred_at) filter (where is_order) as last_order_at,
             count(*) filter (where is_order)::int as order_count,
             count(*) filter (where is_order and occurred_at >= ts.at - interval '365 days')::int as frequency_365,
             count(*) filter (where is_open_quote)::int as open_quote_count,
             coalesce(jsonb_agg(distinct data ->> 'owner') filter (where is_open_quote and data ? 'owner'), '[]') as salespeople,
             count(*) filter (where is_open_ticket)::int as open_ticket_count,
             count(*) filter (where kind = 'ticket')::int as ticket_total
           from i, ts),
         money as (
           select coalesce(jsonb_object_agg(currency, total), '{}') as revenue,
             coalesce(jsonb_object_agg(currency, total_365) filter (where total_365 is not null), '{}') as monetary_365
           from (
             select upper(data ->> 'currency') as currency, sum((data ->> 'amount')::numeric) as total,
               sum((data ->> 'amount')::numeric) filter (where occurred_at >= ts.at - interval '365 days') as total_365
             from i, ts where is_order and jsonb_typeof(data -> 'amount') = 'number' and data ? 'currency' group by 1) x)`;

/** The columns of ValueRow, over `ts`, `stats` and `money` of valueCtes (one row each). */
export const VALUE_COLUMNS = `ts.at, stats.*, money.*,
           hub_rfm_segment(stats.first_order_at, stats.last_order_at, stats.order_count, ts.at) as segment,
           floor(extract(epoch from ts.at - stats.last_order_at) / 86400)::int as recency_days,
           (select coalesce(jsonb_agg(q order by q.occurred_at desc), '[]') from (
              select data ->> 'external_id' as external_id, occurred_at, data -> 'amount' as amount, data ->> 'currency' as currency,
                data ->> 'owner' as owner, data ->> 'status' as status, raw_record_id, source
              from i where is_open_quote order by occurred_at desc limit $7) q) as open_quotes,
           (select coalesce(jsonb_agg(t order by t.opened_at), '[]') from (
              select data ->> 'external_id' as external_id, occurred_at as opened_at,
                floor(extract(epoch from ts.at - occurred_at) / 86400)::int as age_days, data ->> 'status' as status, data ->> 'owner' as owner, raw_record_id, source
              from i where is_open_ticket order by occurred_at limit $7) t) as open_tickets,
           (select count(*)::int from waiting) as waiting_count,
           (select coalesce(jsonb_agg(w order by w.received_at), '[]') from (
              select data ->> 'thread_id' as thread_id, occurred_at as received_at, floor(extract(epoch from ts.at - occurred_at) / 86400)::int as waiting_days,
                data ->> 'owner' as owner, raw_record_id, source
              from waiting order by occurred_at limit $7) w) as awaiting_reply,
           (select jsonb_build_object('at', occurred_at, 'kind', kind, 'owner', data ->> 'owner', 'source', source) from i
              where kind not in ('web_event', 'note') order by occurred_at desc, raw_record_id desc, ordinal desc limit 1) as last_contact,
           (select data ->> 'owner' from i where coalesce(data ->> 'owner', '') <> '' order by occurred_at desc, raw_record_id desc, ordinal desc limit 1) as owner,
           -- The figures that count days (recency, segment, the 365-day window, ages of open tickets and waiting
           -- threads) each change a whole number of days after a time they count from: the first such change.
           (select min(t + (floor(extract(epoch from ts.at - t) / 86400) + 1) * interval '1 day') from (
              select first_order_at as t from stats union all select last_order_at from stats
              union all select occurred_at from i where (is_order and occurred_at > ts.at - interval '366 days') or is_open_ticket
              union all select occurred_at from waiting) counted) as valid_until`;

/** $3 to $7 of valueCtes and VALUE_COLUMNS. */
export const VALUE_PARAMETERS = [NOT_REVENUE, CLOSED_QUOTE, CLOSED_TICKET, INBOUND_EMAIL, VALUE_ITEMS];

export interface ValueRow {
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
  /** Until when the figures that count days stay as computed (null: none counts days). */
  valid_until: Date | null;
}

/** numeric sums arrive as JSON numbers already; amounts are rounded to cents against float noise. */
const money = (totals: Record<string, string | number>) => Object.fromEntries(Object.entries(totals).map(([currency, total]) => [currency, Math.round(Number(total) * 100) / 100]));

const sourceRecordOf = <T extends Record<string, unknown>>({ raw_record_id, source, ...rest }: T) => ({ ...rest, raw_record_id: Number(raw_record_id), source });

/** Where the config gives one: the reporting currency and the rates into it (units of it per unit of another currency). */
export interface Reporting {
  currency: string;
  exchange_rates?: Record<string, number>;
}

/**
 * Amounts per currency as one total in the reporting currency. A currency without a rate is not guessed: it is listed
 * apart, with its amount, and left out of the total.
 */
export function inReportingCurrency(totals: Record<string, number>, reporting: Reporting): { total: number; not_converted: Record<string, number> } {
  let total = 0;
  const notConverted: Record<string, number> = {};
  for (const [currency, amount] of Object.entries(totals)) {
    const rate = currency === reporting.currency ? 1 : reporting.exchange_rates?.[currency];
    if (rate === undefined) notConverted[currency] = amount;
    else total += amount * rate;
  }
  return { total: Math.round(total * 100) / 100, not_converted: notConverted };
}

/** The `value` object of the customer resource (schema `CustomerValue`), from the columns of VALUE_COLUMNS. */
export function customerValueOf(row: ValueRow, reporting?: Reporting): object {
  const revenue = money(row.revenue);
  const monetary = money(row.monetary_365);
  return {
    computed_at: row.at,
    segment: row.segment,
    rfm: {
      recency_days: row.recency_days,
      frequency: row.order_count,
      frequency_365_days: row.frequency_365,
      monetary_365_days: monetary,
      first_order_at: row.first_order_at,
      last_order_at: row.last_order_at,
    },
    revenue,
    ...(reporting && { reporting: reportingFigures(reporting, revenue, monetary) }),
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

function reportingFigures(reporting: Reporting, revenue: Record<string, number>, monetary: Record<string, number>) {
  const ever = inReportingCurrency(revenue, reporting);
  const lastYear = inReportingCurrency(monetary, reporting);
  return {
    currency: reporting.currency,
    revenue: ever.total,
    monetary_365_days: lastYear.total,
    complete: Object.keys(ever.not_converted).length === 0,
    not_converted: { revenue: ever.not_converted, monetary_365_days: lastYear.not_converted },
  };
}
