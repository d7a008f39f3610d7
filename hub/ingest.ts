/**
 * The save boundary of a sync: one page of records is stored as received, mapped to the canonical
 * model, and resolved into golden records, with the stream's checkpoint, in one transaction.
 */
import type { PoolClient } from './db/database.js';
import type { RecordPage } from '../connectors/kit/contract.js';
import type { CanonicalRecord } from '../openapi/generated/canonical-record.gen.js';
import type { CompiledMapping, FieldError } from '../mapping/engine.js';
import { matchKeys } from '../identity-resolution/match-keys.js';
import { blockKeyRows } from '../identity-resolution/probabilistic-matcher.js';
import type { ChangeCause } from '../identity-resolution/change-log.js';
import { contentHash, stableStringify } from './stable-json.js';
import * as sql from './sql.js';
import { tombstoneKeys } from './privacy.js';
import { resolveAndRefreshValue } from './customer-value.js';
import { screenPage } from './storable.js';

export interface SourceMapping {
  source: string;
  mapping: CompiledMapping;
  defaultRegion?: string;
}

export interface Counts {
  read: number;
  created: number;
  updated: number;
  unchanged: number;
  quarantined: number;
  /** Records not stored because an erasure tombstoned them (see hub/privacy.ts). */
  skipped?: number;
  /** Records stored (or mapped again) with values an `on_error: omit` rule left out; counted for runs, not per pushed delivery. */
  withOmittedValues?: number;
}

export const noCounts = (): Counts => ({ read: 0, created: 0, updated: 0, unchanged: 0, quarantined: 0 });

/** A raw record as stored, as mapping reads it. */
interface RawRow {
  id: string;
  stream: string;
  external_id: string;
  data: Record<string, unknown>;
  changed_at: Date;
}

/**
 * Maps raw records with the source's current mapping. Records whose canonical form changed are returned
 * as touched (they need resolving); a record that does not map is quarantined and leaves its cluster.
 */
export async function mapRawRecords(
  client: PoolClient,
  ids: number[],
  target: SourceMapping,
  runId: number | null,
): Promise<{ touched: number[]; quarantined: number; withOmittedValues: number }> {
  if (ids.length === 0) return { touched: [], quarantined: 0, withOmittedValues: 0 };
  const { rows } = await client.query<RawRow>(sql.rawRecordsForMapping(ids));
  return mapStoredRecords(client, rows, target, runId);
}

/**
 * mapRawRecords for rows in hand (ordered by id), such as those a page has just stored; `inserted`: the ids among them
 * stored for the first time, which have no canonical form nor quarantine entry to look up yet.
 */
async function mapStoredRecords(
  client: PoolClient,
  rows: RawRow[],
  target: SourceMapping,
  runId: number | null,
  inserted: ReadonlySet<number> = new Set(),
): Promise<{ touched: number[]; quarantined: number; withOmittedValues: number; unmapped: Set<string> }> {
  if (rows.length === 0) return { touched: [], quarantined: 0, withOmittedValues: 0, unmapped: new Set() };
  const ids = rows.map((row) => Number(row.id)).filter((id) => !inserted.has(id));
  const { rows: previous } = ids.length ? await client.query<{ id: string; data: CanonicalRecord; observed_at: Date; omitted: FieldError[] | null }>(sql.canonicalOf(ids)) : { rows: [] };
  const before = new Map(previous.map((row) => [Number(row.id), row]));
  const { rows: openRows } = ids.length
    ? await client.query<{ raw_record_id: string; reason: string }>({
        text: 'select raw_record_id, reason from quarantine where resolved_at is null and raw_record_id = any($1::bigint[])',
        values: [ids],
      })
    : { rows: [] };
  const openReason = new Map(openRows.map((row) => [Number(row.raw_record_id), row.reason]));

  const mapped: { id: number; source: string; data: CanonicalRecord; observedAt: Date; omitted: FieldError[] }[] = [];
  const failed: sql.QuarantineRow[] = [];
  /** External ids of the records that do not map (quarantined now or before). */
  const unmapped = new Set<string>();
  const closeQuarantine: number[] = [];
  const dropped: number[] = [];
  for (const row of rows) {
    const id = Number(row.id);
    const result = target.mapping.map(row.stream, row.data, { source: target.source, stream: row.stream, defaultRegion: target.defaultRegion });
    if (result.ok) {
      if (openReason.has(id)) closeQuarantine.push(id);
      const observedAt = result.record.observed_at ? new Date(result.record.observed_at) : row.changed_at;
      const old = before.get(id);
      const unchanged =
        old &&
        stableStringify(old.data) === stableStringify(result.record) &&
        old.observed_at.getTime() === observedAt.getTime() &&
        // A changed omission is written too: the customer names what its records left out (and why).
        stableStringify(old.omitted ?? []) === stableStringify(result.omitted);
      if (unchanged) continue;
      mapped.push({ id, source: target.source, data: result.record, observedAt, omitted: result.omitted });
      continue;
    }
    const reason = result.errors.map((error) => `${error.field} (${error.target}): ${error.reason}`).join('; ');
    unmapped.add(row.external_id);
    if (before.has(id)) dropped.push(id);
    if (openReason.get(id) === reason) continue;
    if (openReason.has(id)) closeQuarantine.push(id);
    failed.push({
      source: target.source,
      stream: row.stream,
      externalId: row.external_id,
      line: null,
      field: [...new Set(result.errors.map((error) => error.field))].join(', '),
      reason,
      stage: 'map',
      payload: row.data,
      rawRecordId: id,
      runId,
    });
  }

  if (closeQuarantine.length) await client.query(sql.resolveQuarantine(closeQuarantine));
  if (failed.length) await client.query(sql.insertQuarantine(failed));
  const rewritten = [...mapped.map((row) => row.id), ...dropped];
  // Match keys and interactions belong to a canonical form: a record mapped for the first time has none.
  const replaced = rewritten.filter((id) => before.has(id));
  if (replaced.length) {
    await client.query(sql.deleteMatchKeys(replaced));
    await client.query(sql.deleteInteractions(replaced));
  }
  if (dropped.length) await client.query(sql.deleteCanonical(dropped));
  if (mapped.length) {
    await client.query(sql.writeCanonical(mapped, mapped.flatMap((row) => matchKeys(row.data).map((key) => ({ id: row.id, ...key }))), blockKeyRows(mapped)));
    const interactions = mapped.flatMap((row) =>
      (row.data.interactions ?? []).map((interaction, ordinal) => ({ id: row.id, ordinal, kind: interaction.kind, occurredAt: interaction.occurred_at, data: interaction })),
    );
    if (interactions.length) await client.query(sql.insertInteractions(interactions));
  }
  return { touched: rewritten, quarantined: failed.length, withOmittedValues: mapped.filter((row) => row.omitted.length > 0).length, unmapped };
}

/** Stores one page (raw records, rejected input), maps and resolves what changed. Call inside a transaction. Pushed records have no run. */
export async function storePage(
  client: PoolClient,
  options: { stream: string; runId: number | null; target: SourceMapping; cause: ChangeCause },
  received: RecordPage,
): Promise<Counts & { outcomes: Map<string, RecordOutcome> }> {
  const { stream, runId, target } = options;
  // A record PostgreSQL cannot store (NUL, invalid Unicode, a huge field) is quarantined instead of failing the page.
  const page = screenPage(received);
  const source = target.source;
  const counts = noCounts();
  // The last of several records with one id in a page wins, as it would over two pages.
  const unique = [...new Map(page.records.map((record) => [record.externalId, record])).values()];
  counts.read = page.records.length + (page.rejected?.length ?? 0);
  const hashOf = new Map(unique.map((record) => [record.externalId, contentHash(record.data)]));
  const { rows: knownRows } = await client.query<{ tag: 'stored' | 'tombstoned'; id: string; external_id: string; content_hash: string; deleted_at: Date | null }>(
    sql.knownRawRecords(source, stream, [...hashOf.keys()], tombstoneKeys(source, stream, [...hashOf].map(([externalId, hash]) => ({ externalId, hash })))),
  );
  // An erased person's records do not come back as new: they are counted and dropped here, before anything is stored.
  const erased = new Set(knownRows.filter((row) => row.tag === 'tombstoned').map((row) => row.external_id));
  const records = erased.size ? unique.filter((record) => !erased.has(record.externalId)) : unique;
  counts.skipped = unique.length - records.length;
  const existing = knownRows.filter((row) => row.tag === 'stored' && !erased.has(row.external_id));
  const known = new Map(existing.map((row) => [row.external_id, row]));
  const inserts: { externalId: string; data: unknown; hash: string }[] = [];
  const updates: { id: number; externalId: string; data: unknown; hash: string }[] = [];
  const unchanged: number[] = [];
  for (const record of records) {
    const hash = hashOf.get(record.externalId)!;
    const found = known.get(record.externalId);
    if (!found) inserts.push({ externalId: record.externalId, data: record.data, hash });
    // A record seen again after a sweep found it deleted comes back, even with the same content.
    else if (found.content_hash !== hash || found.deleted_at) updates.push({ id: Number(found.id), externalId: record.externalId, data: record.data, hash });
    else unchanged.push(Number(found.id));
  }
  counts.created = inserts.length;
  counts.updated = updates.length;
  counts.unchanged = unchanged.length + (page.records.length - unique.length);

  // The records just stored are mapped from memory, as jsonb gives them back (through JSON), not read again.
  const stored: RawRow[] = [];
  const insertedIds = new Set<number>();
  const asStored = (data: unknown) => JSON.parse(JSON.stringify(data)) as Record<string, unknown>;
  if (inserts.length) {
    const { rows } = await client.query<{ id: string; external_id: string; changed_at: Date }>(sql.insertRawRecords(source, stream, runId, inserts));
    const dataOf = new Map(inserts.map((insert) => [insert.externalId, insert.data]));
    for (const row of rows) {
      stored.push({ ...row, stream, data: asStored(dataOf.get(row.external_id)) });
      insertedIds.add(Number(row.id));
    }
  }
  if (updates.length) {
    const { rows } = await client.query<{ id: string; changed_at: Date }>(sql.updateRawRecords(runId, updates));
    const updateOf = new Map(updates.map((update) => [update.id, update]));
    for (const row of rows) {
      const update = updateOf.get(Number(row.id))!;
      stored.push({ ...row, stream, external_id: update.externalId, data: asStored(update.data) });
    }
  }
  if (unchanged.length) await client.query(sql.touchRawRecords(runId, unchanged));

  let newlyRejected = 0;
  if (page.rejected?.length) {
    newlyRejected = (await client.query(
      sql.insertNewReadRejections(
        page.rejected.map((rejected) => ({
          source,
          stream,
          externalId: rejected.externalId ?? null,
          line: rejected.line ?? null,
          field: rejected.field ?? null,
          reason: rejected.reason,
          stage: 'read' as const,
          payload: rejected.payload,
          rawRecordId: null,
          runId,
        })),
      ),
    )).rowCount ?? 0;
  }
  const { touched, quarantined, withOmittedValues, unmapped } = await mapStoredRecords(client, stored.sort((a, b) => Number(a.id) - Number(b.id)), target, runId, insertedIds);
  counts.quarantined = newlyRejected + quarantined;
  counts.withOmittedValues = withOmittedValues;
  await resolveAndRefreshValue(client, touched, options.cause);
  const outcomes = new Map<string, RecordOutcome>();
  for (const record of inserts) outcomes.set(record.externalId, 'created');
  for (const record of updates) outcomes.set(record.externalId, 'updated');
  for (const row of existing) if (!outcomes.has(row.external_id)) outcomes.set(row.external_id, 'unchanged');
  for (const externalId of erased) outcomes.set(externalId, 'skipped');
  for (const externalId of unmapped) outcomes.set(externalId, 'quarantined');
  return { ...counts, outcomes };
}

/** What became of one record of a page; a record with no outcome was refused before storing (quarantined). */
export type RecordOutcome = 'created' | 'updated' | 'unchanged' | 'skipped' | 'quarantined';

/**
 * At the end of a full sweep, the records of the stream it did not see were deleted at the source: they are
 * marked deleted (kept as received) and leave their golden records. Call in the transaction of the sweep's last page.
 */
export async function detectDeletions(client: PoolClient, source: string, stream: string, cause: ChangeCause): Promise<number> {
  const { rows } = await client.query<{ id: string }>(sql.markUnseenDeleted(source, stream));
  await client.query(sql.endSweep(source, stream));
  return leaveGoldenRecords(client, rows, cause);
}

/** Records the source reported deleted (RecordPage.deleted): marked deleted (kept as received), they leave their golden records. */
export async function recordDeletions(client: PoolClient, source: string, stream: string, externalIds: string[], cause: ChangeCause): Promise<number> {
  const { rows } = await client.query<{ id: string }>(sql.markReportedDeleted(source, stream, externalIds));
  return leaveGoldenRecords(client, rows, cause);
}

/** Records just marked deleted lose their canonical form (with its match keys and interactions); resolution then drops them from their clusters. */
async function leaveGoldenRecords(client: PoolClient, rows: { id: string }[], cause: ChangeCause): Promise<number> {
  const ids = rows.map((row) => Number(row.id));
  if (ids.length === 0) return 0;
  await client.query(sql.deleteCanonical(ids));
  await resolveAndRefreshValue(client, ids, cause);
  return ids.length;
}
