/** Every SQL statement of identity resolution, as named functions returning {text, values}. */
import type { Statement } from '../hub/db/database.js';
import { GOLDEN_ID_SCHEME } from './match-keys.js';
import type { Candidate } from './survivorship.js';

/**
 * The resolution lock. Resolution passes hold it shared and run side by side, each locking the keys of its own records
 * (KEY_LOCKS) and claiming the golden records it recomputes (claimClusters); whatever needs a still view of every
 * cluster (steward decisions, erasure, a full rebuild, organisations changing) holds it exclusively.
 */
export const RESOLVE_LOCK = 7_301_002;
/** The namespace of the locks on blocking and match keys (the two-integer form of advisory locks: namespace, hashtext(key)). */
export const KEY_LOCKS = 7_301_003;
/**
 * A pass with more keys than this holds the resolution lock exclusively instead. A key lock takes a slot of PostgreSQL's
 * lock table, which holds max_locks_per_transaction × max_connections (64 × 100 by default) for all sessions. High
 * enough for the groups of a push lane that fell behind (they grow to hundreds of records, a few keys each), so that
 * they do not hold every other pass up; two such passes at once leave most of the table to the other sessions.
 */
export const MAX_KEY_LOCKS = 2_000;

/**
 * A pass over at most this many records runs its statements on generic plans (plan_cache_mode, for the rest of its
 * transaction): PostgreSQL would otherwise plan each of them again on every pass, and planning took a third of
 * the database's time in a pass of one record (the search step alone about 1.2 ms). Larger passes, such as a sync's
 * pages, keep plans made for their arrays (bench/ingest.ts: a generic plan made passes of 100 records a third slower
 * and bulk ingest 40 % slower; passes of 50 were 10 % faster).
 */
export const MAX_GENERIC_PLAN_SEEDS = 50;

export const lockResolution = (): Statement => ({ text: 'select pg_advisory_xact_lock($1)', values: [RESOLVE_LOCK] });

/**
 * The locks a pass over `seeds` takes before it reads: the resolution lock shared, then the blocking and match keys of
 * the seeds, in hash order (two passes whose records could be each other's candidates or share a rule key take turns,
 * and the later one sees the earlier one's records). Exclusive instead when a seed has an organisation part, or had
 * one (organisations re-cluster across customers), or when the seeds hold more than MAX_KEY_LOCKS keys.
 * In the same round trip, what the pass reads before it starts (resolutionContextColumns, of the matching configuration
 * `configHash`), the plans its statements use (MAX_GENERIC_PLAN_SEEDS) and the snapshot its claims are checked against
 * (see currentSnapshot). That snapshot was taken before the statement waited for its locks, so a pass it waited for
 * counts as a change and the pass reads again: one read more when passes wait for each other, one round trip less
 * for every pass.
 */
export const lockForPass = (seeds: number[], configHash: string): Statement => ({
  text: `with keys as (
           select distinct hashtext(key) as hash from (
             select key from block_key where raw_record_id = any($1::bigint[])
             union all select kind || ':' || value from match_key where raw_record_id = any($1::bigint[])) k),
         mode as (
           select (select count(*) from keys) > $4
             or exists (select 1 from canonical_record where raw_record_id = any($1::bigint[]) and coalesce(data -> 'organisation', '{}') <> '{}')
             or exists (select 1 from organisation_key where raw_record_id = any($1::bigint[]))
             or exists (select 1 from organisation_membership where valid_to is null and raw_record_id = any($1::bigint[])) as exclusive),
         global as (
           select exclusive, case when exclusive then pg_advisory_xact_lock($2) else pg_advisory_xact_lock_shared($2) end as locked from mode)
         select (select exclusive from global) as exclusive,
                (select count(pg_advisory_xact_lock($3, hash)) from (select hash from keys where not (select exclusive from global) order by hash) ordered)::int as keys,
                ${resolutionContextColumns('$5')},
                set_config('plan_cache_mode', case when cardinality($1::bigint[]) <= $6 then 'force_generic_plan'
                                                   else (select reset_val from pg_settings where name = 'plan_cache_mode') end, true) as plan_cache_mode,
                pg_current_snapshot()::text as snapshot`,
  name: 'hub_lock_for_pass',
  values: [seeds, RESOLVE_LOCK, KEY_LOCKS, MAX_KEY_LOCKS, configHash, MAX_GENERIC_PLAN_SEEDS],
});

/**
 * Where a pass starts reading from: a claimant whose transaction this snapshot does not see changed a cluster since.
 * A pass reading again after such a change takes a new one; its first comes with its locks (lockForPass).
 */
export const currentSnapshot = (): Statement => ({ text: 'select pg_current_snapshot()::text as snapshot', name: 'hub_current_snapshot', values: [] });

/**
 * Claims the golden records of `ids` and `goldenIds` for this transaction, in id order (cluster_claim,
 * 0018_cluster_claims.sql), and reads the memberships of `ids` (as currentMemberships). `stale` rows: the golden
 * records another transaction claimed that `snapshot` does not see, so what was read of them may be out of date.
 */
export const claimClusters = (ids: number[], goldenIds: string[], snapshot: string): Statement => ({
  text: `with member as (${currentMembershipsOf('$1')}),
         claimed as (
           insert into cluster_claim (golden_id, claimed_by)
           select golden_id, pg_current_xact_id() from (select golden_id from member union select unnest($2::text[])) g order by golden_id
           on conflict (golden_id) do update set previous = cluster_claim.claimed_by, claimed_by = excluded.claimed_by
           returning golden_id, previous)
         select 'stale' as tag, null::bigint as id, golden_id, null::bigint as seq from claimed
           where previous <> pg_current_xact_id() and not pg_visible_in_snapshot(previous, $3::pg_snapshot)
         union all
         select 'member', id, golden_id, seq from member
         union all
         ${previousMergedOf('$1')}`,
  name: 'hub_claim_clusters',
  values: [ids, goldenIds, snapshot],
});

/**
 * The pairs of records of `ids` sharing a key of `kinds` (email, phone, identifier; of `verifiedOnly` kinds only keys
 * both verified), with whether both records verified it and whether both come from one source: the edges of the deterministic rules (deterministic-rules.ts).
 * The keys of `ids` and, per key, the other records holding it: one index probe each. `offset 0` keeps the
 * lookups apart from the join, because on a growing table whose statistics lag (a bulk load) the planner
 * otherwise sorts or hashes all of match_key on every page; the kinds are filtered outside it, so that the probe
 * stays on the record's index instead of walking the primary key of every email (kind leads it).
 */
export const ruleKeyEdges = (ids: number[], kinds: string[], verifiedOnly: string[]): Statement => ({
  text: ruleKeyEdgesQuery('$1', '$2', '$3'),
  values: [ids, kinds, verifiedOnly],
});

/** ruleKeyEdges' query with its parameters at the given placeholders. */
const ruleKeyEdgesQuery = (ids: string, kinds: string, verifiedOnly: string) =>
  `select a.raw_record_id as left, b.raw_record_id as right, a.kind, a.value, a.verified and b.verified as verified, l.source = r.source as same_source
   from unnest(${ids}::bigint[]) as seed(id)
   cross join lateral (select raw_record_id, kind, value, verified from match_key where raw_record_id = seed.id offset 0) a
   cross join lateral (select raw_record_id, verified from match_key m
                       where m.kind = a.kind and m.value = a.value and m.raw_record_id <> a.raw_record_id and (m.verified or m.kind <> all(${verifiedOnly}::text[])) offset 0) b
   join canonical_record l on l.raw_record_id = a.raw_record_id join canonical_record r on r.raw_record_id = b.raw_record_id
   where a.kind = any(${kinds}::text[]) and (a.verified or a.kind <> all(${verifiedOnly}::text[]))`;

/** The identifiers (`scheme=value` keys) of `ids` with their source, except the hub's golden ids (read by record, as above). */
export const identifiersOf = (ids: number[]): Statement => ({
  text: `${identifiersQuery('$1', '$2')} order by m.raw_record_id, m.value`,
  values: [ids, GOLDEN_ID_SCHEME],
});

const identifiersQuery = (ids: string, scheme: string) =>
  `select m.raw_record_id as id, c.source, m.value
   from (select raw_record_id, kind, value from match_key where raw_record_id = any(${ids}::bigint[]) offset 0) m
   join canonical_record c on c.raw_record_id = m.raw_record_id
   where m.kind = 'identifier' and m.value not like ${scheme} || '=%'`;

/**
 * Records that name a golden record (GOLDEN_ID_SCHEME) link to its current members; a merged-away id
 * is followed to the golden record it was merged into.
 */
export const goldenIdEdges = (ids: number[]): Statement => ({
  text: `with recursive ${goldenChainCtes('$1', '$2')}
         select c.raw_record_id as left, m.raw_record_id as right
         from chain c join cluster_membership m on m.golden_id = c.golden_id and m.valid_to is null and m.raw_record_id <> c.raw_record_id`,
  values: [ids, GOLDEN_ID_SCHEME],
});

/** `named`: the golden ids the records of `ids` name; `chain`: those and every golden record they were merged into. */
const goldenChainCtes = (ids: string, scheme: string) =>
  `named as (
     select raw_record_id, substr(value, length(${scheme}) + 2) as golden_id from match_key
     where kind = 'identifier' and value like ${scheme} || '=%' and raw_record_id = any(${ids}::bigint[])
   ), chain as (
     select raw_record_id, golden_id from named
     union all
     select c.raw_record_id, g.merged_into from chain c join golden_record g on g.id = c.golden_id where g.merged_into is not null
   )`;

/** The current members of the golden records of `ids`: recomputed with them, so an old cluster can fall apart. */
export const clusterMates = (ids: number[]): Statement => ({
  text: `select m.raw_record_id as id from cluster_membership m
         where m.valid_to is null and m.golden_id in (select golden_id from cluster_membership where valid_to is null and raw_record_id = any($1::bigint[]))`,
  values: [ids],
});

export const canonicalRecords = (ids: number[]): Statement => ({
  text: `select c.raw_record_id as id, c.source, c.data, c.observed_at from canonical_record c where c.raw_record_id = any($1::bigint[])`,
  name: 'hub_canonical_records',
  values: [ids],
});

/** The current golden record (id, golden_id, seq) of each record of the bigint[] parameter `ids`. */
const currentMembershipsOf = (ids: string) => `select m.raw_record_id as id, m.golden_id, g.seq from cluster_membership m join golden_record g on g.id = m.golden_id
           where m.valid_to is null and m.raw_record_id = any(${ids}::bigint[])`;

/**
 * The memberships of `ids`: `member` rows, the current golden record of a record; `previous` rows, the golden record a
 * record last left if that one was merged away since, which a split-off component may take back (resolve.ts).
 */
export const currentMemberships = (ids: number[]): Statement => ({
  text: `select 'member' as tag, id, golden_id, seq from (${currentMembershipsOf('$1')}) m union all ${previousMergedOf('$1')}`,
  name: 'hub_current_memberships',
  values: [ids],
});

/**
 * What a pass reads of the golden records it writes, in one round trip; `tag` says what a row is:
 * - `golden`: a current golden record of `goldenIds` (id, value: its data), locked, as the pass rewrites it;
 * - `pin`: an active steward pin of a golden record of `pinnedIds` (id, golden_id, attribute, value, created_at),
 *   newest first per golden record and attribute;
 * - `seq`: one of `minted` new golden record numbers (id).
 * In the same round trip, open review items between two records that are now in one component (`settled.clusters`,
 * per record of `settled.ids`) are settled; the pairs are found from the review items of each record, not from every pair.
 */
export const passGoldens = (goldenIds: string[], pinnedIds: string[], minted: number, settled: { ids: number[]; clusters: number[] }): Statement => ({
  text: `with golden as (select id, data from golden_record where id = any($1::text[]) for update),
         cluster as (select * from unnest($4::bigint[], $5::int[]) as t(id, cluster)),
         settled as (
           update review_item r set status = 'settled', updated_at = now()
           from cluster a, cluster b
           where r.left_raw_record_id = a.id and r.right_raw_record_id = b.id and a.cluster = b.cluster and r.status = 'open')
         select 'golden' as tag, null::bigint as id, id as golden_id, null as attribute, data as value, null::timestamptz as created_at from golden
         union all
         select 'pin', id, golden_id, attribute, value, created_at from pinned_value where golden_id = any($2::text[]) and withdrawn_at is null
         union all
         select 'seq', nextval('golden_record_seq'), null, null, null, null from generate_series(1, $3)
         order by tag, golden_id, attribute, created_at desc, id desc`,
  name: 'hub_pass_goldens',
  values: [goldenIds, pinnedIds, minted, settled.ids, settled.clusters],
});

/** A lineage row: a value one golden record's attribute had to choose from. */
export type LineageRow = Candidate & { goldenId: string };

/** What a pass writes (resolve.ts), in one statement (writePass). */
export interface PassWrites {
  /** New golden records. */
  inserted: { id: string; seq: number; data: unknown }[];
  /** Golden records whose status or data change: kept or revived (active), merged (into another) or retired. */
  changed: { id: string; status: 'active' | 'merged' | 'retired'; mergedInto: string | null; data: unknown }[];
  /** Records whose current membership ends. */
  leaving: number[];
  /** Records joining a golden record, with what linked them. */
  joining: { id: number; goldenId: string; detail: unknown }[];
  /** The golden records whose lineage is replaced by `lineage`: rows no longer there are deleted, new ones inserted, the rest left alone. */
  lineageOf: string[];
  lineage: LineageRow[];
  changes: ChangeRow[];
}

/**
 * Everything a pass writes, in one round trip: golden records, memberships, lineage and change rows (as appendChangeRows).
 * Each part runs when the final select first reads it, from left to right: the change log's counter, which stays locked
 * until commit, last. A record has one current membership (cluster_membership_current), so the joining rows are
 * inserted once the leaving ones are closed: `joined` reads `left_cluster` first (an uncorrelated subquery runs before
 * the first row).
 * Lineage: a record joining a customer of three records writes its own values and the flags that moved, not the
 * customer's whole lineage again.
 */
export const writePass = (pass: PassWrites): Statement => ({
  text: `with ${changeRowsCtes('$22', '$23', '$24', '$25', '$26', '$27', '$28')},
         inserted as (insert into golden_record (id, seq, data) select * from unnest($1::text[], $2::bigint[], $3::jsonb[]) returning 1),
         changed as (
           update golden_record g set status = t.status, merged_into = t.merged_into, data = t.data, updated_at = now()
           from unnest($4::text[], $5::text[], $6::text[], $7::jsonb[]) as t(id, status, merged_into, data) where g.id = t.id returning 1),
         left_cluster as (update cluster_membership set valid_to = now() where valid_to is null and raw_record_id = any($8::bigint[]) returning 1),
         joined as (
           insert into cluster_membership (raw_record_id, golden_id, cause, detail)
           select id, golden_id, 'rule', detail from unnest($9::bigint[], $10::text[], $11::jsonb[]) as t(id, golden_id, detail)
           where (select count(*) from left_cluster) >= 0 returning 1),
         wanted as (
           select * from unnest($12::text[], $13::text[], $14::jsonb[], $15::bigint[], $16::text[], $17::timestamptz[], $18::boolean[], $19::text[], $20::bigint[])
             as t(golden_id, attribute, value, raw_record_id, source, observed_at, survived, rule, pinned_value_id)),
         gone as (
           delete from attribute_lineage l where l.golden_id = any($21::text[])
             and not exists (select 1 from wanted w where ${sameLineage('w', 'l')}) returning 1),
         lineage as (
           insert into attribute_lineage (golden_id, attribute, value, raw_record_id, source, observed_at, survived, rule, pinned_value_id)
           select * from wanted w where not exists (select 1 from attribute_lineage l where ${sameLineage('w', 'l')}) returning 1)
         -- In this order: the change log's counter last (appended).
         select (select count(*) from inserted) + (select count(*) from changed) + (select count(*) from joined) + (select count(*) from gone)
                + (select count(*) from lineage) + (select count(*) from appended) as written`,
  name: 'hub_write_pass',
  values: [
    pass.inserted.map((row) => row.id),
    pass.inserted.map((row) => row.seq),
    pass.inserted.map((row) => JSON.stringify(row.data)),
    pass.changed.map((row) => row.id),
    pass.changed.map((row) => row.status),
    pass.changed.map((row) => row.mergedInto),
    pass.changed.map((row) => JSON.stringify(row.data)),
    pass.leaving,
    pass.joining.map((row) => row.id),
    pass.joining.map((row) => row.goldenId),
    pass.joining.map((row) => JSON.stringify(row.detail)),
    pass.lineage.map((row) => row.goldenId),
    pass.lineage.map((row) => row.attribute),
    pass.lineage.map((row) => JSON.stringify(row.value)),
    pass.lineage.map((row) => row.rawRecordId),
    pass.lineage.map((row) => row.source),
    pass.lineage.map((row) => row.observedAt),
    pass.lineage.map((row) => row.survived),
    pass.lineage.map((row) => row.rule ?? null),
    pass.lineage.map((row) => row.pinnedValueId ?? null),
    pass.lineageOf,
    ...changeRowValues(pass.changes),
  ],
});

/** `previous` rows of currentMemberships for the bigint[] parameter `ids`. */
const previousMergedOf = (ids: string) =>
  `select 'previous', last.raw_record_id, g.id, g.seq
   from (select distinct on (raw_record_id) raw_record_id, golden_id from cluster_membership
         where raw_record_id = any(${ids}::bigint[]) and valid_to is not null
         order by raw_record_id, valid_to desc, id desc) last
   join golden_record g on g.id = last.golden_id and g.status = 'merged'`;

/** Two lineage rows alike in every column (the nullable ones compared with `is not distinct from`). */
const sameLineage = (x: string, y: string) =>
  `${y}.golden_id = ${x}.golden_id and ${y}.attribute = ${x}.attribute and ${y}.value = ${x}.value and ${y}.source = ${x}.source
   and ${y}.observed_at = ${x}.observed_at and ${y}.survived = ${x}.survived and ${y}.raw_record_id is not distinct from ${x}.raw_record_id
   and ${y}.rule is not distinct from ${x}.rule and ${y}.pinned_value_id is not distinct from ${x}.pinned_value_id`;

// --- Survivorship (survivorship.ts; tables of 0012_organisations.sql) ---

/**
 * Pins follow a merge: an active pin of a merged-away golden record moves to the survivor unless the survivor
 * has an active pin of that attribute; of several merged-away records' pins of one attribute, the newest moves.
 */
export const movePinsOnMerge = (merges: { from: string; into: string }[]): Statement => ({
  text: `with merge as (select * from unnest($1::text[], $2::text[]) as t(from_id, into_id)),
         moving as (
           select distinct on (m.into_id, p.attribute) p.id, m.into_id from pinned_value p join merge m on m.from_id = p.golden_id
           where p.withdrawn_at is null
             and not exists (select 1 from pinned_value s where s.golden_id = m.into_id and s.attribute = p.attribute and s.withdrawn_at is null)
           order by m.into_id, p.attribute, p.created_at desc, p.id desc)
         update pinned_value p set golden_id = moving.into_id from moving where p.id = moving.id`,
  values: [merges.map((merge) => merge.from), merges.map((merge) => merge.into)],
});

export const saveSurvivorshipSetting = (rules: unknown): Statement => ({
  text: 'insert into survivorship_setting (id, rules) values (true, $1) on conflict (id) do update set rules = excluded.rules',
  values: [JSON.stringify(rules)],
});

/**
 * Appends changes at the next positions of the change log: the counter row is raised by their number in the same
 * statement (and stays locked until commit, so positions follow commit order); the n-th change gets the n-th position.
 */
export const appendChangeRows = (rows: ChangeRow[]): Statement => ({
  text: `with ${changeRowsCtes('$1', '$2', '$3', '$4', '$5', '$6', '$7')} select count(*) from appended`,
  name: 'hub_append_change_rows',
  values: changeRowValues(rows),
});

export interface ChangeRow {
  goldenId: string;
  kind: string;
  changed: string[];
  detail: unknown;
  cause: string;
  causeId: string | null;
  actor: string;
}

/** appendChangeRows' common table expressions (`reserved`, `appended`), its parameters at the given placeholders; none reserved for no rows. */
const changeRowsCtes = (goldenIds: string, kinds: string, changed: string, details: string, causes: string, causeIds: string, actors: string) =>
  `reserved as (update change_log_counter set position = position + cardinality(${goldenIds}::text[]) where cardinality(${goldenIds}::text[]) > 0 returning position),
   appended as (
     insert into change_log (position, golden_id, kind, changed, detail, cause, cause_id, actor)
     select reserved.position - cardinality(${goldenIds}::text[]) + t.n, t.golden_id, t.kind, t.changed, t.detail, t.cause, t.cause_id, t.actor
     from reserved, unnest(${goldenIds}::text[], ${kinds}::text[], ${changed}::jsonb[], ${details}::jsonb[], ${causes}::text[], ${causeIds}::text[], ${actors}::text[])
       with ordinality as t(golden_id, kind, changed, detail, cause, cause_id, actor, n)
     returning 1)`;

const changeRowValues = (rows: ChangeRow[]) => [
  rows.map((row) => row.goldenId),
  rows.map((row) => row.kind),
  rows.map((row) => JSON.stringify(row.changed)),
  rows.map((row) => JSON.stringify(row.detail)),
  rows.map((row) => row.cause),
  rows.map((row) => row.causeId),
  rows.map((row) => row.actor),
];

// --- Probabilistic matching (probabilistic-matcher.ts, tables of 0008_matching.sql) ---

export const resolutionSetting = (): Statement => ({ text: 'select matcher, settings from resolution_setting', values: [] });

/**
 * What a resolution pass reads before it starts (with its locks, lockForPass): the matcher and its settings, the
 * survivorship rules, and the newest model of the matching configuration (`configHash`); each null when none is stored.
 */
const resolutionContextColumns = (configHash: string) =>
  `(select json_build_object('matcher', matcher, 'settings', settings) from resolution_setting) as resolution,
   (select rules from survivorship_setting) as survivorship,
   (select json_build_object('id', id, 'kind', kind, 'records', records, 'trained_at', trained_at, 'db', current_database())
    from match_model where config_hash = ${configHash} order by id desc limit 1) as model`;

export const saveResolutionSetting = (matcher: string, settings: unknown): Statement => ({
  text: `insert into resolution_setting (id, matcher, settings) values (true, $1, $2)
         on conflict (id) do update set matcher = excluded.matcher, settings = excluded.settings`,
  values: [matcher, JSON.stringify(settings)],
});

/** Replaces the blocking keys of `ids` with `rows`: keys no longer theirs are deleted, new ones inserted. */
export const replaceBlockKeys = (ids: number[], rows: { id: number; key: string }[]): Statement => ({
  text: `with ${blockKeyCtes('$1', '$2', '$3')} select count(*) from written_block_keys`,
  name: 'hub_replace_block_keys',
  values: [rows.map((row) => row.id), rows.map((row) => row.key), ids],
});

/**
 * replaceBlockKeys' common table expressions, its parameters at the given placeholders (the records' keys as two
 * arrays, record ids and keys; the records); for statements that write a record's keys with its canonical form.
 */
export const blockKeyCtes = (keyIds: string, keys: string, ids: string) =>
  `wanted_block_keys as (select * from unnest(${keyIds}::bigint[], ${keys}::text[]) as t(raw_record_id, key)),
   gone_block_keys as (delete from block_key b where b.raw_record_id = any(${ids}::bigint[])
                       and not exists (select 1 from wanted_block_keys w where w.raw_record_id = b.raw_record_id and w.key = b.key)),
   written_block_keys as (insert into block_key (raw_record_id, key) select raw_record_id, key from wanted_block_keys on conflict do nothing returning 1)`;

export const insertBlockKeys = (rows: { id: number; key: string }[]): Statement => ({
  text: 'insert into block_key (raw_record_id, key) select * from unnest($1::bigint[], $2::text[]) on conflict do nothing',
  values: [rows.map((row) => row.id), rows.map((row) => row.key)],
});

/**
 * Candidate pairs of `ids`: records sharing a blocking key whose block holds at most `maxBlock` records. Each block is
 * read through the key's index, at most `maxBlock` + 1 rows (an array subquery, so the planner cannot choose to scan
 * the whole table and hash it, as it did with a join when its statistics lagged behind a growing table).
 */
export const blockCandidates = (ids: number[], maxBlock: number): Statement => ({
  text: `with ${blockCtes('$1', '$2')} ${candidatesQuery('$2')}`,
  name: 'hub_block_candidates',
  values: [ids, maxBlock],
});

/** The block candidates of `ids` (as blockCandidates) that are among `among`: the pairs inside a group of records. */
export const blockCandidatesAmong = (ids: number[], among: number[], maxBlock: number): Statement => ({
  text: `with ${blockCtes('$1', '$2')} select p.left, p.right from (${candidatesQuery('$2')}) p where p.right = any($3::bigint[])`,
  name: 'hub_block_candidates_among',
  values: [ids, maxBlock, among],
});

/** `seeds`: the blocking keys of `ids`; `blocks`: per key, at most `maxBlock` + 1 of its records. */
const blockCtes = (ids: string, maxBlock: string) =>
  `seeds as (select raw_record_id, key from block_key where raw_record_id = any(${ids}::bigint[])),
   blocks as materialized (select k.key, array(select b.raw_record_id from block_key b where b.key = k.key limit ${maxBlock}::int + 1) as members
                           from (select distinct key from seeds) k)`;

const candidatesQuery = (maxBlock: string) =>
  `select distinct s.raw_record_id as left, m.id as right
   from seeds s join blocks on blocks.key = s.key and cardinality(blocks.members) <= ${maxBlock}::int
   cross join lateral unnest(blocks.members) as m(id)
   where m.id <> s.raw_record_id`;

/**
 * What the probabilistic matcher reads about one step of its search, in one round trip; `tag` says what a row is:
 * - `keyless`: a record of `frontier` (left) without blocking keys (stored before they were);
 * - `rule`: a key of `kinds` that a record of `frontier` shares (as ruleKeyEdges: left, right, kind, value, verified, same_source);
 * - `golden`: a golden-id edge of `frontier` (as goldenIdEdges);
 * - `must_link`, `cannot_link`: a steward constraint touching `frontier` (`ord`: its id);
 * - `candidate`: a block candidate of `searching` (as blockCandidates);
 * - `member`: the golden record (value) of a record of `frontier` (left); `mate`: a current member (left) of one of those (value);
 * - `identifier`: an identifier (value) of a record of `frontier` (left) and its source (kind), as identifiersOf;
 * - `canonical`: the canonical form (source in kind, data, observed_at) of a record of `frontier` or a candidate (left)
 *   that is not among `known`, the records the pass has read already: the matcher compares them next, and reading them
 *   here saves a round trip.
 */
export const searchStep = (frontier: number[], searching: number[], maxBlock: number, kinds: string[], verifiedOnly: string[], known: number[]): Statement => ({
  text: `with recursive ${goldenChainCtes('$1', '$4')}, ${blockCtes('$2', '$3')},
         member as (select raw_record_id, golden_id from cluster_membership where valid_to is null and raw_record_id = any($1::bigint[])),
         candidate as (${candidatesQuery('$3')})
         select 'keyless' as tag, c.raw_record_id as left, null::bigint as right, null as kind, null as value, null::boolean as verified, null::boolean as same_source, null::bigint as ord,
                null::jsonb as data, null::timestamptz as observed_at
           from canonical_record c where c.raw_record_id = any($1::bigint[]) and not exists (select 1 from block_key b where b.raw_record_id = c.raw_record_id)
         union all
         select 'rule', e.left, e.right, e.kind, e.value, e.verified, e.same_source, null, null, null from (${ruleKeyEdgesQuery('$1', '$5', '$6')}) e
         union all
         select 'golden', c.raw_record_id, m.raw_record_id, null, null, null, null, null, null, null
           from chain c join cluster_membership m on m.golden_id = c.golden_id and m.valid_to is null and m.raw_record_id <> c.raw_record_id
         union all
         select kind, left_raw_record_id, right_raw_record_id, null, null, null, null, id, null, null from match_constraint
           where withdrawn_at is null and (left_raw_record_id = any($1::bigint[]) or right_raw_record_id = any($1::bigint[]))
         union all
         select 'candidate', p.left, p.right, null, null, null, null, null, null, null from candidate p
         union all
         select 'member', raw_record_id, null, null, golden_id, null, null, null, null, null from member
         union all
         select 'mate', m.raw_record_id, null, null, m.golden_id, null, null, null, null, null
           from cluster_membership m where m.valid_to is null and m.golden_id in (select golden_id from member)
         union all
         select 'identifier', i.id, null, i.source, i.value, null, null, null, null, null from (${identifiersQuery('$1', '$4')}) i
         union all
         select 'canonical', c.raw_record_id, null, c.source, null, null, null, null, c.data, c.observed_at from canonical_record c
           where c.raw_record_id in (select unnest($1::bigint[]) union select p.right from candidate p except select unnest($7::bigint[]))`,
  name: 'hub_search_step',
  values: [frontier, searching, maxBlock, GOLDEN_ID_SCHEME, kinds, verifiedOnly, known],
});

/** Steward constraints (both kinds) touching `ids`. */
export const constraintsOf = (ids: number[]): Statement => ({
  text: `select kind, left_raw_record_id as left, right_raw_record_id as right from match_constraint
         where withdrawn_at is null and (left_raw_record_id = any($1::bigint[]) or right_raw_record_id = any($1::bigint[]))
         order by id`,
  values: [ids],
});

export const latestModel = (configHash: string): Statement => ({
  text: 'select id, kind, model, records from match_model where config_hash = $1 order by id desc limit 1',
  values: [configHash],
});

export const insertModel = (row: { configHash: string; kind: string; model: unknown; records: number; report: unknown }): Statement => ({
  text: 'insert into match_model (config_hash, kind, model, records, report) values ($1, $2, $3, $4, $5) returning id',
  values: [row.configHash, row.kind, JSON.stringify(row.model), row.records, JSON.stringify(row.report)],
});

export const canonicalRecordsAfter = (afterId: number, limit: number): Statement => ({
  text: 'select raw_record_id as id, source, data from canonical_record where raw_record_id > $1 order by raw_record_id limit $2',
  values: [afterId, limit],
});

export const countCanonicalRecords = (): Statement => ({ text: 'select count(*)::int as count from canonical_record', values: [] });

/** Opens review items (or refreshes open ones); a decided item keeps its status. */
export const upsertReviewItems = (rows: { left: number; right: number; probability: number; weight: number; reason: string; explanation: unknown }[]): Statement => ({
  text: `insert into review_item (left_raw_record_id, right_raw_record_id, probability, match_weight, reason, explanation)
         select * from unnest($1::bigint[], $2::bigint[], $3::float8[], $4::float8[], $5::text[], $6::jsonb[])
         on conflict (left_raw_record_id, right_raw_record_id) do update
           set probability = excluded.probability, match_weight = excluded.match_weight, reason = excluded.reason,
               explanation = excluded.explanation, updated_at = now(),
               status = case when review_item.status = 'settled' then 'open' else review_item.status end`,
  values: [
    rows.map((row) => row.left),
    rows.map((row) => row.right),
    rows.map((row) => row.probability),
    rows.map((row) => row.weight),
    rows.map((row) => row.reason),
    rows.map((row) => JSON.stringify(row.explanation)),
  ],
});

// --- Organisations (organisations.ts; tables of 0012_organisations.sql) ---

export const deleteOrganisationKeys = (ids: number[]): Statement => ({ text: 'delete from organisation_key where raw_record_id = any($1::bigint[])', values: [ids] });

export const insertOrganisationKeys = (rows: { id: number; kind: string; value: string }[]): Statement => ({
  text: 'insert into organisation_key (raw_record_id, kind, value) select * from unnest($1::bigint[], $2::text[], $3::text[]) on conflict do nothing',
  values: [rows.map((row) => row.id), rows.map((row) => row.kind), rows.map((row) => row.value)],
});

/**
 * Records sharing an organisation key with `ids`, and the other current members of their organisations. Keys and
 * organisations are made distinct first, so a large organisation is read once, not once per record of `ids`.
 */
export const organisationNeighbours = (ids: number[]): Statement => ({
  text: `with keys as (select distinct kind, value from organisation_key where raw_record_id = any($1::bigint[])),
         organisations as (select distinct organisation_id from organisation_membership where valid_to is null and raw_record_id = any($1::bigint[]))
         select h.raw_record_id as id from keys k join organisation_key h on h.kind = k.kind and h.value = k.value
         union
         select m.raw_record_id from organisations o join organisation_membership m on m.organisation_id = o.organisation_id and m.valid_to is null`,
  values: [ids],
});

/** For each key, the organisations of the records holding it and, for a domain, the names those records give. */
export const organisationKeyHolders = (keys: { kind: string; value: string }[]): Statement => ({
  text: `select k.kind, k.value,
           coalesce(array_agg(distinct m.organisation_id) filter (where m.organisation_id is not null), '{}') as organisations,
           coalesce(array_agg(distinct n.value) filter (where n.value is not null), '{}') as names
         from unnest($1::text[], $2::text[]) as k(kind, value)
         join organisation_key h on h.kind = k.kind and h.value = k.value
         left join organisation_membership m on m.raw_record_id = h.raw_record_id and m.valid_to is null
         left join organisation_key n on k.kind = 'domain' and n.raw_record_id = h.raw_record_id and n.kind = 'name'
         group by k.kind, k.value`,
  values: [keys.map((key) => key.kind), keys.map((key) => key.value)],
});

export const organisationData = (ids: string[]): Statement => ({ text: 'select id, data from organisation where id = any($1::text[])', values: [ids] });

/** The organisation keys of `ids` (`tag` key; by record, kind, value) and their current organisations (`tag` member). */
export const organisationKeysAndMemberships = (ids: number[]): Statement => ({
  text: `select 'key' as tag, raw_record_id as id, kind, value, null as organisation_id, null::bigint as seq
         from organisation_key where raw_record_id = any($1::bigint[])
         union all
         select 'member', m.id, null, null, m.organisation_id, m.seq from (${currentOrganisationMembershipsQuery('$1')}) m
         order by tag, id, kind, value`,
  name: 'hub_organisation_keys_and_memberships',
  values: [ids],
});

const currentOrganisationMembershipsQuery = (ids: string) =>
  `select m.raw_record_id as id, m.organisation_id, o.seq from organisation_membership m join organisation o on o.id = m.organisation_id
   where m.valid_to is null and m.raw_record_id = any(${ids}::bigint[])`;

export const currentOrganisationMemberships = (ids: number[]): Statement => ({
  text: currentOrganisationMembershipsQuery('$1'),
  name: 'hub_current_organisation_memberships',
  values: [ids],
});

export const allocateOrganisationSeqs = (count: number): Statement => ({
  text: "select nextval('organisation_seq') as seq from generate_series(1, $1)",
  values: [count],
});

export const insertOrganisations = (rows: { id: string; seq: number; data: unknown }[]): Statement => ({
  text: 'insert into organisation (id, seq, data) select * from unnest($1::text[], $2::bigint[], $3::jsonb[])',
  values: [rows.map((row) => row.id), rows.map((row) => row.seq), rows.map((row) => JSON.stringify(row.data))],
});

/** New data for kept organisations; one whose data did not change keeps its updated_at. */
export const saveOrganisations = (rows: { id: string; data: unknown }[]): Statement => ({
  text: `update organisation o set data = t.data, status = 'active', merged_into = null, updated_at = now()
         from unnest($1::text[], $2::jsonb[]) as t(id, data) where o.id = t.id and (o.data <> t.data or o.status <> 'active')`,
  values: [rows.map((row) => row.id), rows.map((row) => JSON.stringify(row.data))],
});

export const markOrganisationsMerged = (merges: { from: string; into: string }[]): Statement => ({
  text: `update organisation o set status = 'merged', merged_into = t.into_id, data = '{}', updated_at = now()
         from unnest($1::text[], $2::text[]) as t(from_id, into_id) where o.id = t.from_id`,
  values: [merges.map((merge) => merge.from), merges.map((merge) => merge.into)],
});

export const markOrganisationsRetired = (ids: string[]): Statement => ({
  text: "update organisation set status = 'retired', data = '{}', updated_at = now() where id = any($1::text[])",
  values: [ids],
});

export const closeOrganisationMemberships = (ids: number[]): Statement => ({
  text: 'update organisation_membership set valid_to = now() where valid_to is null and raw_record_id = any($1::bigint[])',
  values: [ids],
});

export const openOrganisationMemberships = (rows: { id: number; organisationId: string; keys: string[] }[]): Statement => ({
  text: `insert into organisation_membership (raw_record_id, organisation_id, detail)
         select id, organisation_id, jsonb_build_object('keys', keys) from unnest($1::bigint[], $2::text[], $3::jsonb[]) as t(id, organisation_id, keys)`,
  values: [rows.map((row) => row.id), rows.map((row) => row.organisationId), rows.map((row) => JSON.stringify(row.keys))],
});

/**
 * Golden person records outside `resolved` whose surviving organisation value comes from one of `ids`, and
 * whose organisation changed with that record's (a merge or split of organisations): the new link. Answers
 * the records changed.
 */
export const relinkPeopleToOrganisations = (ids: number[], resolved: string[]): Statement => ({
  text: `update golden_record g set data = case when m.organisation_id is null then g.data - 'organisation_id'
                                                else jsonb_set(g.data, '{organisation_id}', to_jsonb(m.organisation_id)) end,
                                    updated_at = now()
         from attribute_lineage l left join organisation_membership m on m.raw_record_id = l.raw_record_id and m.valid_to is null
         where l.golden_id = g.id and l.attribute = 'organisation' and l.survived and l.raw_record_id = any($1::bigint[])
           and g.status = 'active' and g.id <> all($2::text[]) and g.data ->> 'organisation_id' is distinct from m.organisation_id
         returning g.id`,
  values: [ids, resolved],
});
