/** Drives the real save boundary (raw → mapped → resolved) without a connector, for resolution tests. */
import { inTransaction, type Pool } from '../../hub/db/database.js';
import { storePage, type Counts } from '../../hub/ingest.js';
import { compileMapping, parseMapping } from '../../mapping/engine.js';
import type { SourceRecord } from '../../connectors/kit/contract.js';

/** A mapping of flat test rows: email, phone, name, city, updated (ISO time), newsletter (opt_in/opt_out), company, website, vat, regno. */
export const testMapping = compileMapping(
  parseMapping(
    `streams:
  people:
    fields:
      - { target: observed_at, from: updated, transforms: [parse_timestamp] }
      - { target: person.email, from: email, transforms: [email] }
      - { target: person.email, from: email2, transforms: [email] }
      - { target: person.phone, from: phone, transforms: [phone] }
      - { target: person.given_name, from: given, transforms: [normalise_text] }
      - { target: person.family_name, from: family, transforms: [normalise_text] }
      - { target: person.address.city, from: city, transforms: [normalise_text] }
      - { target: consent.email_marketing, from: newsletter }
      - { target: consent.email_marketing_at, from: updated, transforms: [parse_timestamp] }
      - { target: organisation.name, from: company, transforms: [normalise_text] }
      - { target: organisation.domain, from: website, transforms: [trim] }
      - { target: organisation.vat_number, from: vat, transforms: [trim] }
      - { target: organisation.registration_number, from: regno, transforms: [trim] }
`,
    'test mapping',
  ),
);


/** Stores rows as one page of stream `people` of `source` (through `mapping`, by default testMapping), inside a sync run, and resolves them. */
export async function ingest(pool: Pool, source: string, rows: Record<string, string>[], mapping = testMapping): Promise<Counts> {
  await pool.query("insert into source (name, connector) values ($1, 'csv') on conflict do nothing", [source]);
  const { rows: run } = await pool.query<{ id: string }>("insert into sync_run (source, trigger, status) values ($1, 'cli', 'succeeded') returning id", [source]);
  const runId = Number(run[0].id);
  const records: SourceRecord[] = rows.map((row) => ({ externalId: row.id, data: row }));
  return inTransaction(pool, (client) =>
    storePage(client, { stream: 'people', runId, target: { source, mapping, defaultRegion: 'DE' }, cause: { cause: 'run', causeId: String(runId), actor: `source:${source}` } }, { records, state: {} }),
  );
}

/** The id of a source record's raw record. */
export async function rawRecordId(pool: Pool, source: string, externalId: string): Promise<number> {
  const { rows } = await pool.query<{ id: string }>('select id from raw_record where source = $1 and external_id = $2', [source, externalId]);
  return Number(rows[0].id);
}

/**
 * Rows derived from source records whose record is gone: match and blocking keys without a canonical form, lineage and
 * memberships without a raw record. The keys and lineage have no foreign key since migration 0020 (triggers delete
 * them); memberships keep theirs, so their count guards the cascade.
 */
export async function orphanedRows(pool: Pool): Promise<{ match_keys: number; block_keys: number; lineage: number; memberships: number }> {
  const { rows } = await pool.query(
    `select (select count(*) from match_key k where not exists (select 1 from canonical_record c where c.raw_record_id = k.raw_record_id))::int as match_keys,
            (select count(*) from block_key k where not exists (select 1 from canonical_record c where c.raw_record_id = k.raw_record_id))::int as block_keys,
            (select count(*) from attribute_lineage l where l.raw_record_id is not null and not exists (select 1 from raw_record r where r.id = l.raw_record_id))::int as lineage,
            (select count(*) from cluster_membership m where not exists (select 1 from raw_record r where r.id = m.raw_record_id))::int as memberships`,
  );
  return rows[0];
}

/** The current golden id of a source record. */
export async function goldenOf(pool: Pool, source: string, externalId: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ golden_id: string }>(
    `select m.golden_id from cluster_membership m join raw_record r on r.id = m.raw_record_id
     where m.valid_to is null and r.source = $1 and r.external_id = $2`,
    [source, externalId],
  );
  return rows[0]?.golden_id;
}

export async function golden(pool: Pool, id: string): Promise<{ status: string; merged_into: string | null; data: Record<string, unknown> }> {
  const { rows } = await pool.query('select status, merged_into, data from golden_record where id = $1', [id]);
  return rows[0];
}

export async function changesAfter(pool: Pool, position: number): Promise<{ position: string; golden_id: string; kind: string; changed: string[]; detail: Record<string, unknown> }[]> {
  const { rows } = await pool.query('select position, golden_id, kind, changed, detail from change_log where position > $1 order by position', [position]);
  return rows;
}

export async function lastPosition(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ position: string }>('select coalesce(max(position), 0) as position from change_log');
  return Number(rows[0].position);
}
