/** The API's SQL (customers, timeline, change log, quarantine, API keys), as named statements. */
import type { Statement } from './db/database.js';

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
}

/** Active golden records in `seq` order (stable: seq never changes). The gin indexes serve email and phone. */
export const listCustomers = (filter: CustomerFilter, limit: number): Statement => {
  const where = conditions();
  where.add(() => "status = 'active'");
  if (filter.afterSeq !== undefined) where.add((p) => `seq > ${p(filter.afterSeq)}::bigint`);
  if (filter.email !== undefined) where.add((p) => `data -> 'emails' @> jsonb_build_array(${p(filter.email)}::text)`);
  if (filter.phone !== undefined) where.add((p) => `data -> 'phones' @> jsonb_build_array(${p(filter.phone)}::text)`);
  if (filter.updatedSince !== undefined) where.add((p) => `updated_at >= ${p(filter.updatedSince)}::timestamptz`);
  return {
    text: `select id, seq, data, created_at, updated_at from golden_record ${where.where()} order by seq limit ${where.param(limit)}`,
    values: where.values,
  };
};

/** The record an id ends at when following `merged_into` (depth 0: the id itself). No row: unknown id. */
export const resolveCustomerId = (id: string): Statement => ({
  text: `with recursive chain (id, status, merged_into, depth) as (
           select id, status, merged_into, 0 from golden_record where id = $1
           union all
           select g.id, g.status, g.merged_into, c.depth + 1 from golden_record g join chain c on g.id = c.merged_into
           where c.depth < 100)
         select id, status, depth from chain order by depth desc limit 1`,
  values: [id],
});

export const getCustomer = (id: string): Statement => ({
  text: 'select id, status, data, created_at, updated_at from golden_record where id = $1',
  values: [id],
});

export const customerLineage = (id: string): Statement => ({
  text: `select attribute, value, survived, raw_record_id, source, observed_at from attribute_lineage
         where golden_id = $1 order by attribute, survived desc, observed_at desc, raw_record_id desc`,
  values: [id],
});

export const customerMembers = (id: string): Statement => ({
  text: `select m.raw_record_id, r.source, r.stream, r.external_id, m.valid_from as since, m.cause, m.detail
         from cluster_membership m join raw_record r on r.id = m.raw_record_id
         where m.golden_id = $1 and m.valid_to is null order by m.raw_record_id`,
  values: [id],
});

export interface TimelinePosition {
  /** Microseconds since the epoch: a JavaScript Date would drop PostgreSQL's microseconds and skip rows. */
  occurredUs: string;
  rawRecordId: string;
  ordinal: number;
}

/** Interactions of the current members, newest first; `before` continues after the last row of a page. */
export const customerTimeline = (id: string, before: TimelinePosition | undefined, limit: number): Statement => {
  const where = conditions();
  where.add((p) => `m.golden_id = ${p(id)}`);
  where.add(() => 'm.valid_to is null');
  if (before) {
    where.add(
      (p) =>
        `(i.occurred_at, i.raw_record_id, i.ordinal) < (timestamptz 'epoch' + ${p(before.occurredUs)}::bigint * interval '1 microsecond', ${p(before.rawRecordId)}::bigint, ${p(before.ordinal)}::int)`,
    );
  }
  return {
    text: `select i.raw_record_id, i.ordinal, i.kind, i.occurred_at, i.data,
             (extract(epoch from i.occurred_at) * 1000000)::bigint::text as occurred_us,
             r.source, r.stream, r.external_id
           from cluster_membership m
           join interaction i on i.raw_record_id = m.raw_record_id
           join raw_record r on r.id = m.raw_record_id
           ${where.where()}
           order by i.occurred_at desc, i.raw_record_id desc, i.ordinal desc
           limit ${where.param(limit)}`,
    values: where.values,
  };
};

export const listChanges = (after: number, limit: number): Statement => ({
  text: `select position, golden_id, kind, changed, detail, cause, cause_id, actor, created_at from change_log
         where position > $1 order by position limit $2`,
  values: [after, limit],
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
  text: 'insert into api_key (name, key_hash, scopes) values ($1, $2, $3::text[])',
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
