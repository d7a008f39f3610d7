/** Every SQL statement of the steward's workspace (hub/steward.ts, hub/overview.ts), as named functions returning {text, values}. */
import type { Statement } from './db/database.js';

export interface DecisionRow {
  id: string;
  kind: string;
  review_item_id: string | null;
  golden_ids: string[];
  raw_record_ids: string[];
  attribute: string | null;
  value: unknown;
  reason: string | null;
  actor: string;
  created_at: Date;
  undone_at: Date | null;
  undone_by: string | null;
  undo_reason: string | null;
}

const DECISION_COLUMNS = 'id, kind, review_item_id, golden_ids, raw_record_ids, attribute, value, reason, actor, created_at, undone_at, undone_by, undo_reason';

export const insertDecision = (decision: {
  kind: string;
  reviewItemId: string | null;
  goldenIds: string[];
  rawRecordIds: number[];
  attribute: string | null;
  value: unknown;
  reason: string | null;
  actor: string;
}): Statement => ({
  text: `insert into steward_decision (kind, review_item_id, golden_ids, raw_record_ids, attribute, value, reason, actor)
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning ${DECISION_COLUMNS}`,
  values: [
    decision.kind,
    decision.reviewItemId,
    decision.goldenIds,
    decision.rawRecordIds,
    decision.attribute,
    decision.value === undefined ? null : JSON.stringify(decision.value),
    decision.reason,
    decision.actor,
  ],
});

export const decisionForUpdate = (id: string): Statement => ({
  text: `select ${DECISION_COLUMNS} from steward_decision where id = $1 for update`,
  values: [id],
});

export const markDecisionUndone = (id: string, actor: string, reason: string | null): Statement => ({
  text: `update steward_decision set undone_at = now(), undone_by = $2, undo_reason = $3 where id = $1 and undone_at is null returning ${DECISION_COLUMNS}`,
  values: [id, actor, reason],
});

/** The decision log, newest first, filtered; `beforeId` is the keyset cursor; no limit: every match (the CSV export). */
export const listDecisions = (filter: { actor?: string; kind?: string; since?: string; until?: string; goldenId?: string; beforeId?: string; limit?: number }): Statement => ({
  text: `select ${DECISION_COLUMNS} from steward_decision
         where ($1::text is null or actor = $1) and ($2::text is null or kind = $2)
           and ($3::timestamptz is null or created_at >= $3) and ($4::timestamptz is null or created_at < $4)
           and ($5::text is null or golden_ids @> array[$5::text]) and ($6::bigint is null or id < $6)
         order by id desc limit $7`,
  values: [filter.actor ?? null, filter.kind ?? null, filter.since ?? null, filter.until ?? null, filter.goldenId ?? null, filter.beforeId ?? null, filter.limit ?? null],
});

// --- Constraints and pins ----------------------------------------------------------------------------------

export const insertConstraints = (decisionId: string, kind: 'must_link' | 'cannot_link', pairs: [number, number][], reason: string | null, actor: string): Statement => ({
  text: `insert into match_constraint (kind, left_raw_record_id, right_raw_record_id, reason, actor, decision_id)
         select $1, least(l, r), greatest(l, r), $4, $5, $6 from unnest($2::bigint[], $3::bigint[]) as t(l, r)`,
  values: [kind, pairs.map((pair) => pair[0]), pairs.map((pair) => pair[1]), reason, actor, decisionId],
});

/** Withdraws the active constraints of `kind` on these pairs (either way round): a later decision replaced them. */
export const supersedeConstraints = (decisionId: string, kind: 'must_link' | 'cannot_link', pairs: [number, number][]): Statement => ({
  text: `update match_constraint c set withdrawn_at = now(), withdrawn_by = $1
         from unnest($3::bigint[], $4::bigint[]) as t(l, r)
         where c.kind = $2 and c.withdrawn_at is null
           and c.left_raw_record_id = least(t.l, t.r) and c.right_raw_record_id = greatest(t.l, t.r)`,
  values: [decisionId, kind, pairs.map((pair) => pair[0]), pairs.map((pair) => pair[1])],
});

/** Active constraints between two sets of records (the crossing ones a split or a merge of customers replaces). */
export const constraintsBetween = (kind: 'must_link' | 'cannot_link', left: number[], right: number[]): Statement => ({
  text: `select left_raw_record_id as left, right_raw_record_id as right from match_constraint
         where kind = $1 and withdrawn_at is null
           and ((left_raw_record_id = any($2::bigint[]) and right_raw_record_id = any($3::bigint[]))
             or (left_raw_record_id = any($3::bigint[]) and right_raw_record_id = any($2::bigint[])))`,
  values: [kind, left, right],
});

export const insertPin = (decisionId: string, goldenId: string, attribute: string, value: unknown, reason: string | null, actor: string): Statement => ({
  text: `insert into pinned_value (golden_id, attribute, value, reason, actor, decision_id) values ($1, $2, $3, $4, $5, $6)`,
  values: [goldenId, attribute, JSON.stringify(value), reason, actor, decisionId],
});

/** Withdraws the active pins of an attribute of a golden record on behalf of a decision (a new pin, an unpin). */
export const supersedePins = (decisionId: string, goldenId: string, attribute: string): Statement => ({
  text: `update pinned_value set withdrawn_at = now(), withdrawn_by = $1 where golden_id = $2 and attribute = $3 and withdrawn_at is null returning id`,
  values: [decisionId, goldenId, attribute],
});

/** Undo, part one: the decision's own constraints and pins are withdrawn. Returns the golden records of its pins. */
export const withdrawDecisionRows = (decisionId: string): Statement[] => [
  { text: 'update match_constraint set withdrawn_at = now() where decision_id = $1 and withdrawn_at is null', values: [decisionId] },
  { text: 'update pinned_value set withdrawn_at = now() where decision_id = $1 and withdrawn_at is null returning golden_id', values: [decisionId] },
];

/** Undo, part two: what the decision replaced comes back, unless the decision that made it was undone too. */
export const reinstateSuperseded = (decisionId: string): Statement[] =>
  ['match_constraint', 'pinned_value'].map((table) => ({
    text: `update ${table} t set withdrawn_at = null, withdrawn_by = null
           where t.withdrawn_by = $1
             and not exists (select 1 from steward_decision d where d.id = t.decision_id and d.undone_at is not null)
           returning ${table === 'pinned_value' ? 'golden_id' : 'null as golden_id'}`,
    values: [decisionId],
  }));

// --- Golden records and their members ----------------------------------------------------------------------

export const goldenStatus = (id: string): Statement => ({
  text: 'select id, status, merged_into from golden_record where id = $1',
  values: [id],
});

export const currentMembers = (goldenIds: string[]): Statement => ({
  text: 'select raw_record_id as id from cluster_membership where valid_to is null and golden_id = any($1::text[]) order by raw_record_id',
  values: [goldenIds],
});

/** The golden record of each record, golden ids in seq order (the survivor of a merge first). */
export const sourcesOf = (ids: number[]): Statement => ({
  text: 'select id, source from raw_record where id = any($1::bigint[])',
  values: [ids],
});

export const goldensOf = (ids: number[]): Statement => ({
  text: `select m.raw_record_id as id, m.golden_id from cluster_membership m join golden_record g on g.id = m.golden_id
         where m.valid_to is null and m.raw_record_id = any($1::bigint[]) order by g.seq, m.raw_record_id`,
  values: [ids],
});

// --- The review queue --------------------------------------------------------------------------------------

export const reviewItemForUpdate = (id: number): Statement => ({
  text: 'select id, left_raw_record_id as left, right_raw_record_id as right, status from review_item where id = $1 for update',
  values: [id],
});

export const setReviewStatus = (id: number, status: string, onlyIf?: string): Statement => ({
  text: `update review_item set status = $2, updated_at = now() where id = $1 and ($3::text is null or status = $3)`,
  values: [id, status, onlyIf ?? null],
});

/** The latest active decision (not undone) of a review item. */
export const activeDecisionOf = (reviewItemId: string): Statement => ({
  text: `select ${DECISION_COLUMNS} from steward_decision where review_item_id = $1 and undone_at is null order by id desc limit 1`,
  values: [reviewItemId],
});

/** The attributes whose disagreement is a conflict; `phones` lineage is the `phone` attribute. */
export const CONFLICT_ATTRIBUTES = ['given_name', 'family_name', 'full_name', 'birth_date', 'job_title', 'address', 'organisation', 'phone'] as const;

/**
 * Conflicts, as a steward sees them: of an active golden record, each source's current values of the attribute (those
 * of its most recent record); two sources disagree when none of their current values agree (hub_values_agree: the same
 * words in any order, an address or organisation that fills fewer fields is no contradiction). A source contradicting
 * its own older record is an update, not a conflict; a pinned value no source holds takes no part; an attribute with an
 * active pin is settled; a full name is left out where the given or family name already conflicts (it derives from
 * them). `since`: when the later of the two sources said it.
 */
const conflictsCte = `
  latest as (
    select golden_id, attribute, source, value, observed_at from (
      select l.golden_id, case l.attribute when 'phones' then 'phone' else l.attribute end as attribute, l.source, l.value, l.observed_at,
             rank() over (partition by l.golden_id, l.attribute, l.source order by l.observed_at desc) as recency
      from attribute_lineage l join golden_record g on g.id = l.golden_id and g.status = 'active'
      where l.raw_record_id is not null and l.attribute = any($1::text[]) and ($2::text is null or l.golden_id = $2)
    ) ranked where recency = 1
  ),
  source_pair as (
    select a.golden_id, a.attribute, bool_or(hub_values_agree(a.value, b.value)) as agree, max(greatest(a.observed_at, b.observed_at)) as said_at
    from latest a join latest b on b.golden_id = a.golden_id and b.attribute = a.attribute and a.source < b.source
    group by a.golden_id, a.attribute, a.source, b.source
  ),
  disagreement as (
    select golden_id, attribute, min(said_at) as since from source_pair where not agree group by golden_id, attribute
  ),
  conflict as (
    select d.golden_id, d.attribute, d.since,
           case when exists (select 1 from steward_decision s where s.kind = 'defer' and s.undone_at is null
                             and s.review_item_id = 'conflict-' || d.golden_id || '-' || d.attribute) then 'deferred' else 'open' end as status
    from disagreement d
    where not exists (select 1 from pinned_value p where p.golden_id = d.golden_id and p.attribute = d.attribute and p.withdrawn_at is null)
      and not (d.attribute = 'full_name' and exists (select 1 from disagreement n where n.golden_id = d.golden_id and n.attribute in ('given_name', 'family_name')))
  )`;

/** Computing one conflict item needs the lineage of its golden record only. */
const conflictGolden = (itemId: string | undefined) => /^conflict-(cus_[0-9]+)-/.exec(itemId ?? '')?.[1] ?? null;

const lineageAttributes = CONFLICT_ATTRIBUTES.map((attribute) => (attribute === 'phone' ? 'phones' : attribute));

export interface QueueRow {
  id: string;
  kind: 'pair' | 'conflict';
  status: string;
  created_at: Date;
  golden_ids: string[];
  summary: string;
  has_value: number;
  impact: string;
  created_us: string;
}

/**
 * The review queue: pair items and conflicts, by impact — the orders of the customers involved (customer value)
 * where the hub knows any, else the number of their source records — then age, oldest first. Keyset cursor
 * over (has_value desc, impact desc, created_us, id).
 */
export const reviewQueue = (filter: { kind?: 'pair' | 'conflict'; status: 'open' | 'deferred' | 'all'; after?: [number, string, string, string]; limit: number; onlyId?: string }): Statement => ({
  text: `with ${conflictsCte},
  pair_item as (
    select 'pair-' || r.id as id, 'pair' as kind, r.status, r.created_at,
           array_remove(array[ml.golden_id, mr.golden_id], null) as golden_ids,
           format('%s:%s and %s:%s, match probability %s (%s)', rl.source, rl.external_id, rr.source, rr.external_id, round(r.probability::numeric, 2), replace(r.reason, '_', ' ')) as summary
    from review_item r
    join raw_record rl on rl.id = r.left_raw_record_id
    join raw_record rr on rr.id = r.right_raw_record_id
    left join cluster_membership ml on ml.raw_record_id = r.left_raw_record_id and ml.valid_to is null
    left join cluster_membership mr on mr.raw_record_id = r.right_raw_record_id and mr.valid_to is null
    where $3::text is distinct from 'conflict' and ($4 = 'all' or r.status = $4)
  ),
  conflict_item as (
    select 'conflict-' || c.golden_id || '-' || c.attribute as id, 'conflict' as kind, c.status, c.since as created_at, array[c.golden_id] as golden_ids,
           format('%s of %s: the sources disagree', replace(c.attribute, '_', ' '), c.golden_id) as summary
    from conflict c
    where $3::text is distinct from 'pair' and ($4 = 'all' or c.status = $4)
  ),
  item as (
    select i.*, (extract(epoch from i.created_at) * 1000000)::bigint as created_us,
           coalesce((select sum(v.order_count) from customer_value v where v.golden_id = any(i.golden_ids)), 0) as orders,
           (select count(*) from cluster_membership m where m.valid_to is null and m.golden_id = any(i.golden_ids)) as records
    from (select * from pair_item union all select * from conflict_item) i
  ),
  ranked as (
    select id, kind, status, created_at, golden_ids, summary, created_us,
           (orders > 0)::int as has_value, case when orders > 0 then orders else records end as impact
    from item
  )
  select * from ranked
  where ($5::int is null or (-has_value, -impact, created_us, id) > (-$5::int, -$6::bigint, $7::bigint, $8::text))
    and ($10::text is null or id = $10)
  order by -has_value, -impact, created_us, id
  limit $9`,
  values: [lineageAttributes, conflictGolden(filter.onlyId), filter.kind ?? null, filter.status, ...(filter.after ?? [null, null, null, null]), filter.limit, filter.onlyId ?? null],
});

/** The conflict of one attribute of a golden record, if there is one now. */
export const conflictOf = (goldenId: string, attribute: string): Statement => ({
  text: `with ${conflictsCte} select golden_id, attribute, since as created_at, status from conflict where attribute = $3`,
  values: [lineageAttributes, goldenId, attribute],
});

/** Every candidate value of an attribute of a golden record, with its lineage. */
export const attributeCandidates = (goldenId: string, attribute: string): Statement => ({
  text: `select value, source, raw_record_id, observed_at, survived from attribute_lineage
         where golden_id = $1 and attribute = $2 order by survived desc, observed_at desc, raw_record_id desc nulls last`,
  values: [goldenId, attribute === 'phone' ? 'phones' : attribute],
});

export const pairItem = (id: number): Statement => ({
  text: `select r.id, r.status, r.created_at, r.probability, r.match_weight, r.reason, r.left_raw_record_id as left, r.right_raw_record_id as right
         from review_item r where r.id = $1`,
  values: [id],
});

export interface SideRow {
  raw_record_id: string;
  source: string;
  stream: string;
  external_id: string;
  golden_id: string | null;
  observed_at: Date | null;
  data: Record<string, unknown> | null;
}

export const sideRecords = (ids: number[]): Statement => ({
  text: `select r.id as raw_record_id, r.source, r.stream, r.external_id, m.golden_id, c.observed_at, c.data
         from raw_record r left join canonical_record c on c.raw_record_id = r.id
         left join cluster_membership m on m.raw_record_id = r.id and m.valid_to is null
         where r.id = any($1::bigint[])`,
  values: [ids],
});

export const activePinsOf = (goldenId: string, attribute: string): Statement => ({
  text: 'select id from pinned_value where golden_id = $1 and attribute = $2 and withdrawn_at is null',
  values: [goldenId, attribute],
});

// --- The overview (hub/overview.ts) -----------------------------------------------------------------------

/** Open review items (pairs and conflicts) and when the oldest one arose. */
export const openReviewSummary = (): Statement => ({
  text: `with ${conflictsCte},
  open_item as (
    select created_at from review_item where status = 'open'
    union all select since from conflict where status = 'open'
  )
  select count(*)::int as open, min(created_at) as oldest from open_item`,
  values: [lineageAttributes, null],
});

export const overviewTotals = (): Statement => ({
  text: `select (select count(*) from golden_record where status = 'active')::int as golden_records,
                coalesce((select jsonb_object_agg(source, n) from (select source, count(*)::int as n from raw_record where deleted_at is null group by source) s), '{}') as source_records,
                coalesce((select sum(quarantined)::float8 / nullif(sum(read), 0) from sync_run where finished_at >= now() - interval '30 days'), 0) as quarantine_rate`,
  values: [],
});

/**
 * Per UTC day of the last 30, oldest first: golden records active at the end of the day (created by then, and still
 * active or merged/retired later), merges by runs and by steward decisions (change-log `merged` rows whose cause is a
 * steward_decision), pair items waiting at the end of the day, records quarantined, and records read by finished runs.
 */
export const overviewSeries = (): Statement => ({
  text: `with day as (
           select d::date as day, d as starts, d + interval '1 day' as ends
           from generate_series(date_trunc('day', now() at time zone 'utc') - interval '29 days', date_trunc('day', now() at time zone 'utc'), interval '1 day') as d
         ), bounds as (select day, starts at time zone 'utc' as starts, ends at time zone 'utc' as ends from day),
         merge as (
           select c.created_at, (c.cause = 'decision' and exists (select 1 from steward_decision s where s.id::text = c.cause_id)) as by_steward
           from change_log c where c.kind = 'merged' and c.created_at >= (select min(starts) from bounds)
         )
         select to_char(b.day, 'YYYY-MM-DD') as day,
           (select count(*) from golden_record g where g.created_at < b.ends and (g.status = 'active' or g.updated_at >= b.ends))::int as golden_records,
           (select count(*) from merge m where not m.by_steward and m.created_at >= b.starts and m.created_at < b.ends)::int as merges_automatic,
           (select count(*) from merge m where m.by_steward and m.created_at >= b.starts and m.created_at < b.ends)::int as merges_steward,
           (select count(*) from review_item r where r.created_at < b.ends and (r.status in ('open', 'deferred') or r.updated_at >= b.ends))::int as review_backlog,
           (select count(*) from quarantine q where q.created_at >= b.starts and q.created_at < b.ends)::int as quarantined,
           (select coalesce(sum(s.read), 0) from sync_run s where s.finished_at >= b.starts and s.finished_at < b.ends)::int as records_read
         from bounds b order by b.day`,
  values: [],
});
