/**
 * Privacy and reversibility: erasing a person, exporting everything held on one, and removing a whole source.
 *
 * Erasure deletes the person's source records (raw, canonical, match keys, interactions, lineage, memberships and
 * quarantine entries go with them), blanks the golden record (status `erased`) and keeps tombstones: SHA-256 hashes of
 * each record's key and content, and of the emails, phones and identifiers it carried. The save boundary
 * (hub/ingest.ts) skips a record whose key or content is tombstoned, so a later sync does not bring the person back.
 * The erasure is not pushed to the sources: write-back is not built yet; the answer lists the records to erase there.
 */
import { createHash } from 'node:crypto';
import type { Pool, PoolClient, Statement } from './db/database.js';
import { inTransaction } from './db/database.js';
import { appendChanges } from '../identity-resolution/change-log.js';
import { lockResolution } from '../identity-resolution/sql.js';
import { resolveAndRefreshValue } from './customer-value.js';
import { HubError } from './errors.js';

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
const recordKey = (source: string, stream: string, externalId: string) => sha256(`${source}\0${stream}\0${externalId}`);
const contentKey = (source: string, contentHash: string) => sha256(`${source}\0${contentHash}`);

// SQL of this module, as named statements.

const lockGolden = (id: string): Statement => ({ text: 'select id, status from golden_record where id = $1 for update', values: [id] });

const memberRecords = (goldenId: string): Statement => ({
  text: `select r.id, r.source, r.stream, r.external_id, r.content_hash from cluster_membership m join raw_record r on r.id = m.raw_record_id
         where m.golden_id = $1 and m.valid_to is null order by r.id`,
  values: [goldenId],
});

/** What an erasure removes, counted before it goes. */
const erasureCounts = (goldenId: string, ids: number[], readRejections: { source: string; stream: string; externalId: string }[]): Statement => ({
  text: `select
           (select count(*) from canonical_record where raw_record_id = any($2::bigint[]))::int as canonical_records,
           (select count(*) from match_key where raw_record_id = any($2::bigint[]))::int as match_keys,
           (select count(*) from interaction where raw_record_id = any($2::bigint[]))::int as interactions,
           (select count(*) from attribute_lineage where golden_id = $1 or raw_record_id = any($2::bigint[]))::int as lineage_entries,
           (select count(*) from cluster_membership where raw_record_id = any($2::bigint[]))::int as memberships,
           (select count(*) from pinned_value where golden_id = $1)::int as pinned_values,
           (select count(*) from quarantine q where q.raw_record_id = any($2::bigint[])
              or (q.raw_record_id is null and (q.source, q.stream, q.external_id) in (select * from unnest($3::text[], $4::text[], $5::text[]))))::int as quarantine_entries`,
  values: [goldenId, ids, readRejections.map((r) => r.source), readRejections.map((r) => r.stream), readRejections.map((r) => r.externalId)],
});

const matchKeysOf = (ids: number[]): Statement => ({
  text: 'select distinct kind, value from match_key where raw_record_id = any($1::bigint[])',
  values: [ids],
});

const insertErasure = (goldenId: string, actor: string, removed: unknown): Statement => ({
  text: 'insert into erasure (golden_id, actor, removed) values ($1, $2, $3) returning id, erased_at',
  values: [goldenId, actor, JSON.stringify(removed)],
});

const insertTombstones = (erasureId: string, rows: { kind: string; hash: string }[]): Statement => ({
  text: `insert into erasure_tombstone (erasure_id, kind, key_hash) select $1, kind, key_hash from unnest($2::text[], $3::text[]) as t(kind, key_hash)
         on conflict do nothing`,
  values: [erasureId, rows.map((row) => row.kind), rows.map((row) => row.hash)],
});

/** Everything personal that is not reached by the raw records' cascades. */
const deleteResidue = (goldenId: string, ids: number[], readRejections: { source: string; stream: string; externalId: string }[]): Statement[] => [
  { text: 'delete from attribute_lineage where golden_id = $1', values: [goldenId] },
  { text: 'delete from pinned_value where golden_id = $1', values: [goldenId] },
  { text: 'delete from customer_value where golden_id = $1', values: [goldenId] },
  // The steward's audit trail keeps who decided what and when, but not the person's values or the reasons given.
  {
    text: `update steward_decision set value = null, reason = case when reason is null then null else '(erased)' end,
                  undo_reason = case when undo_reason is null then null else '(erased)' end
           where $1 = any(golden_ids) or raw_record_ids && $2::bigint[]`,
    values: [goldenId, ids],
  },
  {
    text: `delete from quarantine where raw_record_id is null and (source, stream, external_id) in (select * from unnest($1::text[], $2::text[], $3::text[]))`,
    values: [readRejections.map((r) => r.source), readRejections.map((r) => r.stream), readRejections.map((r) => r.externalId)],
  },
  // Deletes canonical records, match keys, interactions, memberships, lineage, quarantine entries and match constraints with them.
  { text: 'delete from raw_record where id = any($1::bigint[])', values: [ids] },
  { text: "update golden_record set status = 'erased', data = '{}', merged_into = null, updated_at = now() where id = $1", values: [goldenId] },
];

export interface ErasureResult {
  id: string;
  erasure_id: number;
  erased_at: Date;
  erased_by: string;
  removed: {
    raw_records: number;
    canonical_records: number;
    match_keys: number;
    interactions: number;
    lineage_entries: number;
    memberships: number;
    pinned_values: number;
    quarantine_entries: number;
  };
  tombstones: number;
  source_records: { source: string; stream: string; external_id: string }[];
  write_back: string;
}

/** The hashes under which an erasure tombstones `records` of a source's stream: their keys and their contents (hub/sql.ts knownRawRecords). */
export function tombstoneKeys(source: string, stream: string, records: { externalId: string; hash: string }[]): { recordKeys: string[]; contentKeys: string[] } {
  return { recordKeys: records.map((record) => recordKey(source, stream, record.externalId)), contentKeys: records.map((record) => contentKey(source, record.hash)) };
}

/** Erases an active golden record and everything it holds. `actor` is kept in the audit row and the change log. */
export async function eraseCustomer(pool: Pool, goldenId: string, actor: string): Promise<ErasureResult> {
  return inTransaction(pool, async (client) => {
    // The resolver's lock: no sync re-clusters these records meanwhile.
    await client.query(lockResolution());
    const { rows: found } = await client.query<{ status: string }>(lockGolden(goldenId));
    if (!found[0]) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'customer', id: goldenId });
    if (found[0].status !== 'active') throw new HubError('HUB_ERR_CONFLICT', { reason: `Customer '${goldenId}' is ${found[0].status}; only an active customer can be erased.` });

    const { rows: records } = await client.query<{ id: string; source: string; stream: string; external_id: string; content_hash: string }>(memberRecords(goldenId));
    const ids = records.map((record) => Number(record.id));
    const refs = records.map((record) => ({ source: record.source, stream: record.stream, externalId: record.external_id }));
    const { rows: counted } = await client.query<Omit<ErasureResult['removed'], 'raw_records'>>(erasureCounts(goldenId, ids, refs));
    const removed = { raw_records: ids.length, ...counted[0] };
    const { rows: keys } = await client.query<{ kind: string; value: string }>(matchKeysOf(ids));

    const { rows: erasure } = await client.query<{ id: string; erased_at: Date }>(insertErasure(goldenId, actor, removed));
    const tombstones = [
      ...records.map((record) => ({ kind: 'record', hash: recordKey(record.source, record.stream, record.external_id) })),
      ...records.map((record) => ({ kind: 'content', hash: contentKey(record.source, record.content_hash) })),
      ...keys.map((key) => ({ kind: key.kind, hash: sha256(key.value) })),
    ];
    await client.query(insertTombstones(erasure[0].id, tombstones));
    for (const statement of deleteResidue(goldenId, ids, refs)) await client.query(statement);
    await appendChanges(client, [{ goldenId, kind: 'erased', detail: { erasure_id: Number(erasure[0].id), records: ids.length } }], { cause: 'api', actor });
    return {
      id: goldenId,
      erasure_id: Number(erasure[0].id),
      erased_at: erasure[0].erased_at,
      erased_by: actor,
      removed,
      tombstones: tombstones.length,
      source_records: refs.map((ref) => ({ source: ref.source, stream: ref.stream, external_id: ref.externalId })),
      write_back: 'Not pushed to the sources (write-back is not built yet): erase these source records there too.',
    };
  });
}

// Export of one person.

const exportStatements = (goldenId: string): Record<string, Statement> => ({
  sourceRecords: {
    text: `select r.id as raw_record_id, r.source, r.stream, r.external_id, r.data as raw, r.content_hash, r.first_seen_at, r.last_seen_at, r.changed_at,
             c.data as canonical, c.observed_at, c.mapped_at,
             (select coalesce(jsonb_agg(jsonb_build_object('ordinal', i.ordinal, 'kind', i.kind, 'occurred_at', i.occurred_at, 'data', i.data) order by i.ordinal), '[]')
                from interaction i where i.raw_record_id = r.id) as interactions
           from cluster_membership m join raw_record r on r.id = m.raw_record_id left join canonical_record c on c.raw_record_id = r.id
           where m.golden_id = $1 and m.valid_to is null order by r.id`,
    values: [goldenId],
  },
  memberships: {
    text: `select m.raw_record_id, m.golden_id, m.valid_from, m.valid_to, m.cause, m.detail from cluster_membership m
           where m.golden_id = $1 or m.raw_record_id in (select raw_record_id from cluster_membership where golden_id = $1 and valid_to is null)
           order by m.id`,
    values: [goldenId],
  },
  // The change log of this id and of every id merged into it.
  changes: {
    text: `with recursive ids (id) as (select $1::text union select g.id from golden_record g join ids on g.merged_into = ids.id)
           select position, golden_id, kind, changed, detail, cause, cause_id, actor, created_at from change_log
           where golden_id in (select id from ids) order by position`,
    values: [goldenId],
  },
  quarantine: {
    text: `select q.id, q.source, q.stream, q.external_id, q.line, q.field, q.reason, q.stage, q.payload, q.raw_record_id, q.run_id, q.created_at, q.resolved_at
           from quarantine q where q.raw_record_id in (select raw_record_id from cluster_membership where golden_id = $1 and valid_to is null)
              or (q.raw_record_id is null and (q.source, q.stream, q.external_id) in (
                select r.source, r.stream, r.external_id from cluster_membership m join raw_record r on r.id = m.raw_record_id
                where m.golden_id = $1 and m.valid_to is null))
           order by q.id`,
    values: [goldenId],
  },
  pinned: {
    text: 'select attribute, value, reason, actor, created_at, withdrawn_at from pinned_value where golden_id = $1 order by id',
    values: [goldenId],
  },
});

/** Everything held on one person, apart from the golden record itself (the caller adds it). */
export async function exportPerson(pool: Pool, goldenId: string): Promise<Record<string, unknown[]>> {
  const statements = exportStatements(goldenId);
  const [sourceRecords, memberships, changes, quarantine, pinned] = await Promise.all(
    [statements.sourceRecords, statements.memberships, statements.changes, statements.quarantine, statements.pinned].map((statement) => pool.query(statement)),
  );
  return {
    source_records: sourceRecords.rows.map((row) => ({ ...row, raw_record_id: Number(row.raw_record_id) })),
    memberships: memberships.rows.map((row) => ({ ...row, raw_record_id: Number(row.raw_record_id) })),
    changes: changes.rows.map((row) => ({ ...row, position: Number(row.position) })),
    quarantine: quarantine.rows.map((row) => ({ ...row, id: Number(row.id), raw_record_id: row.raw_record_id === null ? null : Number(row.raw_record_id), run_id: row.run_id === null ? null : Number(row.run_id) })),
    pinned_values: pinned.rows,
  };
}

// Removing a source.

export interface SourceRemoval {
  source: string;
  raw_records: number;
  golden: { updated: number; created: number; split: number; merged: number; retired: number };
}

/**
 * Takes a source's records out of every golden record, in batches: their canonical forms go, the resolver recomputes
 * their clusters (memberships closed, golden records updated or retired, with cause `source_removal` in the change log),
 * then the raw records, the stream checkpoints and the source's read rejections are deleted and `source.removed_at`
 * set. Safe to run again after an interruption. Records of other sources are untouched, but for being re-clustered.
 */
export async function removeSource(pool: Pool, source: string, actor: string, onProgress?: (done: number) => void): Promise<SourceRemoval> {
  const { rows } = await pool.query<{ name: string }>({ text: 'select name from source where name = $1', values: [source] });
  if (!rows[0]) throw new Error(`There is no source named '${source}' in the database.`);
  const result: SourceRemoval = { source, raw_records: 0, golden: { updated: 0, created: 0, split: 0, merged: 0, retired: 0 } };
  const cause = { cause: 'source_removal' as const, causeId: source, actor };
  for (;;) {
    const done = await inTransaction(pool, async (client) => {
      const { rows: batch } = await client.query<{ id: string }>({ text: 'select id from raw_record where source = $1 order by id limit 500', values: [source] });
      const ids = batch.map((row) => Number(row.id));
      if (ids.length === 0) return true;
      await client.query({ text: 'delete from canonical_record where raw_record_id = any($1::bigint[])', values: [ids] });
      const resolved = await resolveAndRefreshValue(client, ids, cause);
      for (const key of Object.keys(result.golden) as (keyof SourceRemoval['golden'])[]) result.golden[key] += resolved[key].length;
      await client.query({ text: 'delete from raw_record where id = any($1::bigint[])', values: [ids] });
      result.raw_records += ids.length;
      return false;
    });
    if (done) break;
    onProgress?.(result.raw_records);
  }
  await inTransaction(pool, async (client) => {
    await client.query({ text: 'delete from quarantine where source = $1', values: [source] });
    await client.query({ text: 'delete from stream_state where source = $1', values: [source] });
    await client.query({ text: 'update source set removed_at = now() where name = $1', values: [source] });
  });
  return result;
}
