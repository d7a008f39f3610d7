/** The API's SQL (customers, timeline, change log, quarantine, API keys), as named statements. */
import type { Statement } from './db/database.js';
import { VALUE_COLUMNS, VALUE_PARAMETERS, valueCtes } from './customer-value.js';

/** Builds `where` clauses with numbered parameters, so each query carries only the filters it was given. */
function conditions() {
  const clauses: string[] = [];
  const values: unknown[] = [];
  return {
    add(clause: (param: (value: unknown) => string) => string): void {
      clauses.push(clause((value) => `$${values.push(value)}`));
    },
    param(value: unknown): string {
      return `$${values.push(value)}`;
    },
    where: () => (clauses.length ? `where ${clauses.join(' and ')}` : ''),
    values,
  };
}

export interface CustomerFilter {
  afterSeq?: string;
  email?: string;
  phone?: string;
  updatedSince?: string;
  /** Typo-tolerant name search: ranks the results instead of ordering them by seq. */
  name?: string;
  organisation?: string;
  /** An RFM segment (hub_rfm_segment of 0004_privacy.sql); customers without orders are prospects. */
  segment?: string;
  /** With a search: continue after this rank (score × 10⁶) and seq. */
  afterRank?: { rank: number; seq: string };
}

/** A search's score as an integer, so that a cursor carries it exactly. */
export const SCORE_SCALE = 1_000_000;

/**
 * The relevance of a name: plain trigram similarity; the same on the letters of each word in order, which forgives
 * transposed letters (a little less, so the exact spelling still comes first); word similarity for a part of the name.
 */
const nameScore = (q: string) =>
  `greatest(similarity(search_name, hub_name_norm(${q})),
            0.9 * similarity(search_key, hub_name_key(hub_name_norm(${q}))),
            0.8 * word_similarity(hub_name_norm(${q}), search_name))`;
const organisationScore = (q: string) => `word_similarity(hub_name_norm(${q}), search_organisation)`;

/**
 * Active golden records in `seq` order (stable: seq never changes), or by relevance with a name or organisation
 * search. The gin indexes serve email and phone; the trigram indexes of 0015_search_columns.sql serve the searches (the
 * `%` and `<%` operators, at pg_trgm's default thresholds 0.3 and 0.6).
 */
export const listCustomers = (filter: CustomerFilter, limit: number): Statement => {
  const where = conditions();
  where.add(() => "status = 'active'");
  if (filter.email !== undefined) where.add((p) => `data -> 'emails' @> jsonb_build_array(${p(filter.email)}::text)`);
  if (filter.phone !== undefined) where.add((p) => `data -> 'phones' @> jsonb_build_array(${p(filter.phone)}::text)`);
  if (filter.updatedSince !== undefined) where.add((p) => `updated_at >= ${p(filter.updatedSince)}::timestamptz`);
  if (filter.segment !== undefined) {
    where.add(
      (p) => `coalesce((select hub_rfm_segment(v.first_order_at, v.last_order_at, v.order_count, now()) from customer_value v where v.golden_id = golden_record.id), 'prospect') = ${p(filter.segment)}`,
    );
  }
  const scores: string[] = [];
  if (filter.name !== undefined) {
    const q = where.param(filter.name);
    where.add(
      () => `(search_name % hub_name_norm(${q}) or search_key % hub_name_key(hub_name_norm(${q})) or hub_name_norm(${q}) <% search_name)`,
    );
    scores.push(nameScore(q));
  }
  if (filter.organisation !== undefined) {
    const q = where.param(filter.organisation);
    where.add(() => `hub_name_norm(${q}) <% search_organisation`);
    scores.push(organisationScore(q));
  }
  if (scores.length === 0) {
    if (filter.afterSeq !== undefined) where.add((p) => `seq > ${p(filter.afterSeq)}::bigint`);
    return {
      text: `select id, seq, data, created_at, updated_at from golden_record ${where.where()} order by seq limit ${where.param(limit)}`,
      values: where.values,
    };
  }
  const rank = `round((${scores.join(' + ')}) / ${scores.length} * ${SCORE_SCALE})::int`;
  let after = '';
  if (filter.afterRank) {
    const r = where.param(filter.afterRank.rank);
    after = `where rank < ${r} or (rank = ${r} and seq > ${where.param(filter.afterRank.seq)}::bigint)`;
  }
  return {
    text: `select * from (select id, seq, data, created_at, updated_at, ${rank} as rank from golden_record ${where.where()}) ranked
           ${after} order by rank desc, seq limit ${where.param(limit)}`,
    values: where.values,
  };
};

export type LookupKey = { source: string; id: string; stream?: string } | { email: string } | { phone: string };

/** The customers a source record id, an email or a phone number leads to, each with all its current source records. */
export const lookupCustomers = (key: LookupKey, limit: number): Statement => {
  let found: string;
  let values: unknown[];
  if ('source' in key) {
    found = `select m.golden_id from raw_record r join cluster_membership m on m.raw_record_id = r.id and m.valid_to is null
             where r.source = $1 and r.external_id = $2 and ($3::text is null or r.stream = $3)`;
    values = [key.source, key.id, key.stream ?? null];
  } else if ('email' in key) {
    found = `select id from golden_record where status = 'active' and data -> 'emails' @> jsonb_build_array($1::text)`;
    values = [key.email];
  } else {
    found = `select id from golden_record where status = 'active' and data -> 'phones' @> jsonb_build_array($1::text)`;
    values = [key.phone];
  }
  return {
    text: `select g.id, g.data, g.created_at, g.updated_at,
             (select coalesce(jsonb_agg(jsonb_build_object('id', r.id, 'source', r.source, 'stream', r.stream, 'external_id', r.external_id)
                        order by r.source, r.stream, r.external_id), '[]')
              from cluster_membership m join raw_record r on r.id = m.raw_record_id
              where m.golden_id = g.id and m.valid_to is null) as source_records
           from golden_record g where g.id in (${found}) and g.status = 'active' order by g.seq limit ${Number(limit)}`,
    values,
  };
};

/**
 * `target`: the row of `table` (golden records or organisations) the id $1 ends at when following `merged_into`
 * (depth 0: the id itself); empty for an unknown id.
 */
const mergeTargetIn = (table: 'golden_record' | 'organisation', id = '$1') => `recursive chain (id, status, merged_into, depth) as (
           select id, status, merged_into, 0 from ${table} where id = ${id}
           union all
           select t.id, t.status, t.merged_into, c.depth + 1 from ${table} t join chain c on t.id = c.merged_into
           where c.depth < 100),
         target as (select id, status, depth from chain order by depth desc limit 1)`;
const mergeTarget = mergeTargetIn('golden_record');

/** The record an id ends at when following `merged_into` (depth 0: the id itself). No row: unknown id. */
export const resolveCustomerId = (id: string): Statement => ({
  text: `with ${mergeTarget} select id, status, depth from target`,
  values: [id],
});

/** As JavaScript's Date#toISOString, so that times inside JSON read as the API's other times (milliseconds, Z). */
const isoTime = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** Lineage entries per attribute, in attribute order (json keeps it), newest first; rule and pin only when set. */
const lineageJson = (golden: string, survived: boolean) => `(select coalesce(json_object_agg(attribute, entries order by attribute), '{}') from (
             select attribute, json_agg(jsonb_build_object('value', value, 'source', source, 'raw_record_id', raw_record_id, 'observed_at', ${isoTime('observed_at')})
                 || jsonb_strip_nulls(jsonb_build_object('rule', rule, 'pinned_value_id', pinned_value_id))
               order by observed_at desc, raw_record_id desc) as entries
             from attribute_lineage where golden_id = ${golden} and ${survived ? '' : 'not '}survived group by attribute) x)`;

/**
 * Everything `GET /v1/customers/{id}` answers about the golden id `golden` (an SQL expression): where the id leads
 * (id, status, depth: as resolveCustomerId), and the golden record of the id asked for with its lineage, alternates,
 * source records and value (valueCtes and VALUE_COLUMNS of customer-value.ts, $2 to $7). No row: no such id.
 */
const customerResourceQuery = (golden: string) => `with ${mergeTargetIn('golden_record', golden)},
         ${valueCtes(golden)}
         select target.id, target.status, target.depth, g.data, g.created_at, g.updated_at,
           ${lineageJson(golden, true)} as lineage,
           ${lineageJson(golden, false)} as alternates,
           (select coalesce(json_agg(json_build_object('raw_record_id', m.raw_record_id, 'source', r.source, 'stream', r.stream, 'external_id', r.external_id,
                'since', ${isoTime('m.valid_from')}, 'cause', m.cause, 'detail', m.detail, 'omitted_values', coalesce(c.omitted, '[]')) order by m.raw_record_id), '[]')
              from cluster_membership m join raw_record r on r.id = m.raw_record_id left join canonical_record c on c.raw_record_id = m.raw_record_id
              where m.golden_id = ${golden} and m.valid_to is null) as source_records,
           ${VALUE_COLUMNS}
         from target join golden_record g on g.id = ${golden} cross join ts cross join stats cross join money`;

/** customerResourceQuery of one id, in one round trip. Named, so that each connection plans it once. */
export const customerResource = (id: string, at: Date | null = null): Statement & { name: string } => ({
  name: 'hub-customer-resource',
  text: customerResourceQuery('$1'),
  values: [id, at, ...VALUE_PARAMETERS],
});

/** customerResourceQuery of several ids in one statement (the document builder's batches); each row has `asked_id`. */
export const customerResources = (ids: string[]): Statement => ({
  text: `select asked.id as asked_id, resource.* from unnest($1::text[]) as asked(id)
         cross join lateral (${customerResourceQuery('asked.id')}) resource`,
  values: [ids, null, ...VALUE_PARAMETERS],
});

/**
 * The stored document of a customer: its generation (0 when there is no row yet) and its body when it can be served
 * (not stale, of this variant, its day-counting figures still as computed).
 */
export const customerDocument = (id: string, variant: string): Statement & { name: string } => ({
  name: 'hub-customer-document',
  text: `select generation, case when variant = $2 and (valid_until is null or valid_until > now()) then body end as body
         from customer_document where golden_id = $1`,
  values: [id, variant],
});

/**
 * Stores documents computed after reading their generations; a document whose generation moved on meanwhile (a write
 * made it stale) is not stored. A golden record that is no longer active loses its row instead.
 */
export const storeCustomerDocuments = (documents: { id: string; generation: string; body: string | null; validUntil: Date | null }[], variant: string): Statement[] => {
  const kept = documents.filter((document) => document.body !== null);
  const gone = documents.filter((document) => document.body === null);
  return [
    ...(kept.length
      ? [
          {
            text: `insert into customer_document as d (golden_id, generation, body, variant, valid_until)
                   select * from unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[])
                   on conflict (golden_id) do update set body = excluded.body, variant = excluded.variant, valid_until = excluded.valid_until
                   where d.generation = excluded.generation`,
            values: [kept.map((d) => d.id), kept.map((d) => d.generation), kept.map((d) => d.body), kept.map(() => variant), kept.map((d) => d.validUntil)],
          },
        ]
      : []),
    ...(gone.length
      ? [
          {
            text: `delete from customer_document d using unnest($1::text[], $2::bigint[]) as g(id, generation)
                   where d.golden_id = g.id and d.generation = g.generation`,
            values: [gone.map((d) => d.id), gone.map((d) => d.generation)],
          },
        ]
      : []),
  ];
};

/** Golden ids whose documents are stale or past their day-counting figures, with their generations, in id order. */
export const staleCustomerDocuments = (limit: number): Statement => ({
  text: `select id, generation from (
           (select golden_id as id, generation from customer_document where body is null order by golden_id limit $1)
           union all
           (select golden_id, generation from customer_document where valid_until <= now() and body is not null order by valid_until limit $1)
         ) due order by id limit $1`,
  values: [limit],
});

/** Documents of another variant (after an upgrade or a change of the reporting currency) are rebuilt. */
export const staleOtherVariants = (variant: string): Statement => ({
  text: 'update customer_document set body = null where body is not null and variant is distinct from $1',
  values: [variant],
});

export interface TimelinePosition {
  /** Microseconds since the epoch: a JavaScript Date would drop PostgreSQL's microseconds and skip rows. */
  occurredUs: string;
  rawRecordId: string;
  ordinal: number;
}

export interface TimelineFilter {
  kinds?: string[];
  /** At or after. */
  since?: string;
  /** Before. */
  until?: string;
}

/**
 * Interactions of the current members, newest first; `before` continues after the last row of a page. An email comes
 * with its thread (per source and thread id, over the customer's emails): the thread awaits a reply when its latest
 * message has status `awaiting_reply`, which the mailbox connector gives only to a thread's last message when it is
 * inbound and older than the source's limit, and takes back when a reply or a newer message arrives.
 */
export const customerTimeline = (id: string, before: TimelinePosition | undefined, limit: number, filter: TimelineFilter = {}): Statement => {
  const where = conditions();
  const golden = where.param(id);
  where.add(() => `m.golden_id = ${golden}`);
  where.add(() => 'm.valid_to is null');
  if (filter.kinds !== undefined) where.add((p) => `i.kind = any(${p(filter.kinds)}::text[])`);
  if (filter.since !== undefined) where.add((p) => `i.occurred_at >= ${p(filter.since)}::timestamptz`);
  if (filter.until !== undefined) where.add((p) => `i.occurred_at < ${p(filter.until)}::timestamptz`);
  if (before) {
    where.add(
      (p) =>
        `(i.occurred_at, i.raw_record_id, i.ordinal) < (timestamptz 'epoch' + ${p(before.occurredUs)}::bigint * interval '1 microsecond', ${p(before.rawRecordId)}::bigint, ${p(before.ordinal)}::int)`,
    );
  }
  return {
    text: `with threads as (
             select distinct on (r.source, i.data ->> 'thread_id') r.source, i.data ->> 'thread_id' as id,
               i.data ->> 'status' is not distinct from 'awaiting_reply' as awaiting_reply, i.occurred_at as last_message_at,
               (count(*) over (partition by r.source, i.data ->> 'thread_id'))::int as messages
             from cluster_membership m
             join interaction i on i.raw_record_id = m.raw_record_id
             join raw_record r on r.id = m.raw_record_id
             where m.golden_id = ${golden} and m.valid_to is null and i.kind = 'email' and i.data ? 'thread_id'
             order by r.source, i.data ->> 'thread_id', i.occurred_at desc, i.raw_record_id desc, i.ordinal desc)
           select i.raw_record_id, i.ordinal, i.kind, i.occurred_at, i.data,
             (extract(epoch from i.occurred_at) * 1000000)::bigint::text as occurred_us,
             r.source, r.stream, r.external_id,
             t.id as thread_id, t.awaiting_reply as thread_awaiting_reply, t.messages as thread_messages, t.last_message_at as thread_last_message_at
           from cluster_membership m
           join interaction i on i.raw_record_id = m.raw_record_id
           join raw_record r on r.id = m.raw_record_id
           left join threads t on i.kind = 'email' and t.source = r.source and t.id = i.data ->> 'thread_id'
           ${where.where()}
           order by i.occurred_at desc, i.raw_record_id desc, i.ordinal desc
           limit ${where.param(limit)}`,
    values: where.values,
  };
};

/**
 * A page of the change log after `after`, with the customer of each change as it is now (when still active), and the
 * retention horizon: when `after` is older than it, no rows come back (only the horizon) and the caller answers 410.
 */
export const changesPage = (after: number, limit: number): Statement => ({
  text: `select h.pruned_through, c.* from change_log_horizon h left join lateral (
           select c.position, c.golden_id, c.kind, c.changed, c.detail, c.cause, c.cause_id, c.actor, c.created_at,
             g.data as customer_data, g.created_at as customer_created_at, g.updated_at as customer_updated_at
           from change_log c left join golden_record g on g.id = c.golden_id and g.status = 'active'
           where c.position > $1 and $1 >= h.pruned_through
           order by c.position limit $2) c on true`,
  values: [after, limit],
});

/** The last position of the change log (0 when empty or fully pruned). */
export const changeLogEnd = (): Statement => ({
  text: 'select position from change_log_counter',
  values: [],
});

/**
 * Deletes the changes older than the retention, as a prefix of positions (a late-committing old row never leaves a
 * hole), and no change an active webhook subscription has yet to read. Returns the new horizon.
 */
export const pruneChangeLog = (retentionDays: number): Statement => ({
  text: `with bound as (
           select least(
             coalesce((select min(position) - 1 from change_log where created_at >= now() - make_interval(days => $1)), (select max(position) from change_log)),
             coalesce((select min(change_cursor) from webhook_subscription where status = 'active'), 9223372036854775807)) as through),
         deleted as (delete from change_log where position <= (select through from bound) returning position)
         update change_log_horizon set pruned_through = greatest(pruned_through, coalesce((select max(position) from deleted), 0)),
           pruned_at = now()
         returning pruned_through, (select count(*) from deleted)::int as deleted`,
  values: [retentionDays],
});

/** Failed sync runs after a run-event position, shaped like `GET /v1/runs/{id}`. */
export const runEventsPage = (after: number, limit: number): Statement => ({
  text: `select e.position, e.kind, e.created_at as event_created_at, r.id, r.source, r.status, r.trigger, r.read, r.created, r.updated,
           r.unchanged, r.quarantined, r.progress, r.error, r.queued_at, r.started_at, r.finished_at
         from run_event e join sync_run r on r.id = e.run_id where e.position > $1 order by e.position limit $2`,
  values: [after, limit],
});

export const runEventEnd = (): Statement => ({ text: 'select position from run_event_counter', values: [] });

export const pruneIdempotencyKeys = (hours: number): Statement => ({
  text: 'delete from idempotency_key where created_at < now() - make_interval(hours => $1)',
  values: [hours],
});

export const pruneDeliveries = (days: number): Statement => ({
  text: "delete from webhook_delivery where status = 'succeeded' and created_at < now() - make_interval(days => $1)",
  values: [days],
});

export interface QuarantineFilter {
  source?: string;
  stage?: 'read' | 'map';
  open?: boolean;
  beforeId?: number;
}

/** Newest first. */
export const listQuarantine = (filter: QuarantineFilter, limit: number): Statement => {
  const where = conditions();
  if (filter.source !== undefined) where.add((p) => `source = ${p(filter.source)}`);
  if (filter.stage !== undefined) where.add((p) => `stage = ${p(filter.stage)}`);
  if (filter.open !== undefined) where.add(() => (filter.open ? 'resolved_at is null' : 'resolved_at is not null'));
  if (filter.beforeId !== undefined) where.add((p) => `id < ${p(filter.beforeId)}`);
  return {
    text: `select id, source, stream, external_id, line, field, reason, stage, payload, raw_record_id, run_id, created_at, resolved_at
           from quarantine ${where.where()} order by id desc limit ${where.param(limit)}`,
    values: where.values,
  };
};

export const findApiKey = (keyHash: string): Statement => ({
  text: 'select id, name, scopes, last_used_at from api_key where key_hash = $1 and revoked_at is null',
  values: [keyHash],
});

export const touchApiKey = (id: string): Statement => ({
  text: 'update api_key set last_used_at = now() where id = $1',
  values: [id],
});

export const insertApiKey = (name: string, keyHash: string, scopes: string[]): Statement => ({
  text: 'insert into api_key (name, key_hash, scopes) values ($1, $2, $3::text[]) returning id',
  values: [name, keyHash, scopes],
});

export const anyApiKey = (): Statement => ({
  text: 'select exists (select 1 from api_key) as any',
  values: [],
});

/** `created` is true when the row is new (xmax = 0 on an inserted row). */
export const upsertAdminKey = (name: string, keyHash: string): Statement => ({
  text: `insert into api_key (name, key_hash, scopes) values ($1, $2, '{admin}')
         on conflict (key_hash) do update
           set scopes = case when 'admin' = any(api_key.scopes) then api_key.scopes else array_append(api_key.scopes, 'admin') end,
               revoked_at = null
         returning (xmax = 0) as created`,
  values: [name, keyHash],
});

export const revokeApiKeys = (ids: string[]): Statement => ({
  text: 'update api_key set revoked_at = now() where id = any($1::bigint[]) and revoked_at is null returning id, name',
  values: [ids],
});

/** Unrevoked keys with this id (when it is all digits) or name. */
export const findActiveKeys = (idOrName: string): Statement => ({
  text: `select id, name, scopes from api_key where revoked_at is null and (name = $1 or ($1 ~ '^[0-9]{1,18}$' and id = $1::bigint)) order by id`,
  values: [idOrName],
});

// Idempotency keys.

/** Claims a key for a request: a row comes back when this request is the first to use it. */
export const claimIdempotencyKey = (apiKeyId: string, key: string, fingerprint: string): Statement => ({
  text: `insert into idempotency_key (api_key_id, key, fingerprint) values ($1, $2, $3) on conflict do nothing returning key`,
  values: [apiKeyId, key, fingerprint],
});

export const findIdempotencyKey = (apiKeyId: string, key: string): Statement => ({
  text: 'select fingerprint, status_code, headers, body from idempotency_key where api_key_id = $1 and key = $2',
  values: [apiKeyId, key],
});

export const saveIdempotentResponse = (apiKeyId: string, key: string, status: number, headers: Record<string, string>, body: string): Statement => ({
  text: 'update idempotency_key set status_code = $3, headers = $4, body = $5 where api_key_id = $1 and key = $2',
  values: [apiKeyId, key, status, JSON.stringify(headers), body],
});

export const releaseIdempotencyKey = (apiKeyId: string, key: string): Statement => ({
  text: 'delete from idempotency_key where api_key_id = $1 and key = $2 and status_code is null',
  values: [apiKeyId, key],
});

// Webhooks.

const subscriptionColumns = `s.id, s.url, s.events, s.description, s.status, s.created_at, s.paused_at, s.change_cursor, s.run_cursor,
  (select row_to_json(d) from (select ${'id, status, attempts, event_count, first_position, last_position, response_status, error, created_at, last_attempt_at, next_attempt_at, delivered_at'}
     from webhook_delivery where subscription_id = s.id and status = 'failed' order by id limit 1) d) as failed_delivery`;

export const deliveryColumns = 'id, subscription_id, stream, status, attempts, event_count, first_position, last_position, response_status, error, created_at, last_attempt_at, next_attempt_at, delivered_at';

/** A new subscription starts at the current end of the change log and of the run events. */
export const insertSubscription = (subscription: { url: string; events: string[]; description: string | null; secret: string; createdBy: string }): Statement => ({
  text: `insert into webhook_subscription (url, events, description, secret, created_by, change_cursor, run_cursor)
         values ($1, $2::text[], $3, $4, $5, (select position from change_log_counter), (select position from run_event_counter))
         returning id`,
  values: [subscription.url, subscription.events, subscription.description, subscription.secret, subscription.createdBy],
});

export const listSubscriptions = (): Statement => ({
  text: `select ${subscriptionColumns} from webhook_subscription s order by s.id`,
  values: [],
});

export const getSubscription = (id: number): Statement => ({
  text: `select ${subscriptionColumns} from webhook_subscription s where s.id = $1`,
  values: [id],
});

export const deleteSubscription = (id: number): Statement => ({
  text: 'delete from webhook_subscription where id = $1 returning id',
  values: [id],
});

/** Resumes a paused subscription: its failed delivery is tried again first, with a fresh count of attempts. */
export const resumeSubscription = (id: number): Statement => ({
  text: `with resumed as (update webhook_subscription set status = 'active', paused_at = null where id = $1 returning id)
         update webhook_delivery set status = 'pending', attempts = 0, next_attempt_at = now()
         where subscription_id = (select id from resumed) and status = 'failed'`,
  values: [id],
});

export const activeSubscriptionIds = (): Statement => ({
  text: "select id from webhook_subscription where status = 'active' order by id",
  values: [],
});

/** The last change-log position handed out by a committed transaction: one row, read often to notice new changes. */
export const changeLogPosition = (): Statement => ({ text: 'select position from change_log_counter', values: [] });

/** Takes the subscription's lease unless another process holds a live one. */
export const leaseSubscription = (id: number, owner: string, seconds: number): Statement => ({
  text: `update webhook_subscription set lease_owner = $2, lease_until = now() + make_interval(secs => $3)
         where id = $1 and status = 'active' and (lease_until is null or lease_until < now() or lease_owner = $2)
         returning id, url, events, secret, change_cursor, run_cursor`,
  values: [id, owner, seconds],
});

export const releaseSubscription = (id: number, owner: string): Statement => ({
  text: 'update webhook_subscription set lease_owner = null, lease_until = null where id = $1 and lease_owner = $2',
  values: [id, owner],
});

/** The oldest delivery not yet succeeded: it blocks the next ones, so that they arrive in order. */
export const openDelivery = (subscriptionId: number): Statement => ({
  text: `select ${deliveryColumns}, body, next_attempt_at <= now() as due from webhook_delivery
         where subscription_id = $1 and status <> 'succeeded' order by id limit 1`,
  values: [subscriptionId],
});

export const getDelivery = (subscriptionId: number, id: number): Statement => ({
  text: `select ${deliveryColumns}, body from webhook_delivery where subscription_id = $1 and id = $2`,
  values: [subscriptionId, id],
});

export const listDeliveries = (subscriptionId: number, limit: number): Statement => ({
  text: `select ${deliveryColumns} from webhook_delivery where subscription_id = $1 order by id desc limit $2`,
  values: [subscriptionId, limit],
});

/** Creates a delivery and moves the subscription's cursor past the events it carries, in one statement. */
export const insertDelivery = (delivery: { subscriptionId: number; stream: 'changes' | 'runs'; first: number; last: number; count: number; body: string }): Statement => ({
  text: `with moved as (update webhook_subscription set ${delivery.stream === 'changes' ? 'change_cursor' : 'run_cursor'} = $4 where id = $1 returning id)
         insert into webhook_delivery (subscription_id, stream, first_position, last_position, event_count, body)
         select id, $2, $3, $4, $5, $6 from moved returning id`,
  values: [delivery.subscriptionId, delivery.stream, delivery.first, delivery.last, delivery.count, delivery.body],
});

/** Moves a cursor past events the subscription does not want. */
export const skipEvents = (subscriptionId: number, stream: 'changes' | 'runs', position: number): Statement => ({
  text: `update webhook_subscription set ${stream === 'changes' ? 'change_cursor' : 'run_cursor'} = greatest(${stream === 'changes' ? 'change_cursor' : 'run_cursor'}, $2) where id = $1`,
  values: [subscriptionId, position],
});

export const deliverySucceeded = (id: number, responseStatus: number): Statement => ({
  text: `update webhook_delivery set status = 'succeeded', attempts = attempts + 1, last_attempt_at = now(), delivered_at = now(),
           response_status = $2, error = null where id = $1 returning ${deliveryColumns}`,
  values: [id, responseStatus],
});

/** A failed attempt: retried after `retryInMs`, or, with none left (null), failed for good and its subscription paused. */
export const deliveryFailed = (id: number, responseStatus: number | null, error: string, retryInMs: number | null): Statement => ({
  text: `with updated as (
           update webhook_delivery set attempts = attempts + 1, last_attempt_at = now(), response_status = $2, error = $3,
             status = case when $4::int is null then 'failed' else 'pending' end,
             next_attempt_at = case when $4::int is null then next_attempt_at else now() + make_interval(secs => $4::int / 1000.0) end
           where id = $1 returning ${deliveryColumns}),
         paused as (update webhook_subscription set status = 'paused', paused_at = now()
           where $4::int is null and id = (select subscription_id from updated))
         select * from updated`,
  values: [id, responseStatus, error, retryInMs],
});

/** A manual redelivery of a failed delivery that succeeded: the subscription goes on from there. */
export const resumeAfterRedelivery = (subscriptionId: number): Statement => ({
  text: "update webhook_subscription set status = 'active', paused_at = null where id = $1 and status = 'paused'",
  values: [subscriptionId],
});

/**
 * `GET /v1/organisations/{id}`: where the id leads (following `merged_into`: id, status, depth) and the organisation
 * asked for, with the people (active golden records) who work for it, oldest first, at most `peopleLimit`.
 */
export const organisationResource = (id: string, peopleLimit: number): Statement => ({
  text: `with ${mergeTargetIn('organisation')},
         people as (select g.seq, g.id, g.data from golden_record g where g.status = 'active' and g.data ->> 'organisation_id' = $1)
         select target.id, target.status, target.depth, o.data, o.created_at, o.updated_at,
           (select count(*)::int from people) as people_count,
           (select coalesce(json_agg(p.person order by p.seq), '[]') from (
              select seq, jsonb_build_object('id', id) || jsonb_strip_nulls(jsonb_build_object('full_name', data ->> 'full_name', 'email', data ->> 'email', 'job_title', data ->> 'job_title')) as person
              from people order by seq limit $2) p) as people
         from target join organisation o on o.id = $1`,
  values: [id, peopleLimit],
});

/** Active organisations, oldest first, or with `name` those with a name that holds it (typo-tolerant), most similar first. */
export const listOrganisations = (name: string | undefined, limit: number): Statement => ({
  text: `select o.id, o.data, o.created_at, o.updated_at, s.score
         from organisation o
         left join lateral (select max(word_similarity(hub_name_norm($1), hub_name_norm(n))) as score
                            from jsonb_array_elements_text(o.data -> 'names') n where hub_name_norm($1) <% hub_name_norm(n)) s on $1::text is not null
         where o.status = 'active' and ($1::text is null or s.score is not null)
         order by s.score desc nulls last, o.seq limit $2`,
  values: [name ?? null, limit],
});
