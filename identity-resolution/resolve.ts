/**
 * Incremental resolution. A new, changed or removed source record recomputes only the connected
 * component it touches: its old cluster and everything linked to it. Golden records are derived from the
 * kept source records and membership rows, never by destroying a record, so any merge can be undone.
 *
 * Rules when the components differ from the current golden records:
 * - an old golden record stays with the component that holds most of its members (ties: the component
 *   with the smallest record id); the other components get new golden records (a split);
 * - a component that holds several old golden records keeps the oldest (smallest seq); the others are
 *   merged into it and answer with `merged_into` (a merge);
 * - a golden record left without members is retired.
 */
import type { PoolClient } from '../hub/db/database.js';
import type { CanonicalRecord } from '../openapi/generated/canonical-record.gen.js';
import { appendChanges, type Change, type ChangeCause } from './change-log.js';
import type { Matcher } from './matcher.js';
import { configuredMatcher } from './probabilistic-matcher.js';
import { changedAttributes, survive } from './survivorship.js';
import { takesPartInResolution } from './match-keys.js';
import * as sql from './sql.js';

export interface ResolveResult {
  created: string[];
  updated: string[];
  merged: string[];
  split: string[];
  retired: string[];
}

interface Membership {
  goldenId: string;
  seq: number;
}

export async function resolveRecords(client: PoolClient, touched: number[], cause: ChangeCause, matcher: Matcher = configuredMatcher): Promise<ResolveResult> {
  const result: ResolveResult = { created: [], updated: [], merged: [], split: [], retired: [] };
  if (touched.length === 0) return result;
  await client.query(sql.lockResolution());

  const seed = [...new Set(touched)];
  const { components, links, details } = await matcher(client, seed);

  const allIds = components.flat();
  const { rows: canonicalRows } = await client.query<{ id: string; source: string; data: CanonicalRecord; observed_at: Date }>(sql.canonicalRecords(allIds));
  const canonical = new Map(canonicalRows.map((row) => [Number(row.id), row]));
  // Records without a canonical form any more (now quarantined) or without customer data leave their cluster.
  const participating = components
    .map((component) => component.filter((id) => canonical.has(id) && takesPartInResolution(canonical.get(id)!.data)).sort((a, b) => a - b))
    .filter((component) => component.length > 0)
    .sort((a, b) => a[0] - b[0]);

  const everyone = [...new Set([...allIds, ...seed])];
  const { rows: membershipRows } = await client.query<{ id: string; golden_id: string; seq: string }>(sql.currentMemberships(everyone));
  const membership = new Map<number, Membership>(membershipRows.map((row) => [Number(row.id), { goldenId: row.golden_id, seq: Number(row.seq) }]));

  // Which component keeps each old golden record: the one with most of its members.
  const keeper = new Map<string, { component: number; count: number }>();
  participating.forEach((component, index) => {
    const counts = new Map<string, number>();
    for (const id of component) {
      const current = membership.get(id);
      if (current) counts.set(current.goldenId, (counts.get(current.goldenId) ?? 0) + 1);
    }
    for (const [goldenId, count] of counts) {
      const best = keeper.get(goldenId);
      if (!best || count > best.count) keeper.set(goldenId, { component: index, count });
    }
  });
  const seqOf = new Map([...membership.values()].map((entry) => [entry.goldenId, entry.seq]));
  const oldGoldens = [...seqOf.keys()];

  const changes: Change[] = [];
  const assigned = new Map<number, string>();
  const componentOf = new Map<string, number[]>();
  const createdFrom = new Map<string, string[]>();
  const keptBy = participating.map((_, index) =>
    oldGoldens.filter((goldenId) => keeper.get(goldenId)?.component === index).sort((a, b) => seqOf.get(a)! - seqOf.get(b)!),
  );
  // Ids for new golden records, in component order, so they follow the smallest record id.
  const { rows: allocated } = await client.query<{ seq: string }>(sql.allocateGoldenSeqs(keptBy.filter((kept) => kept.length === 0).length));
  const newSeqs = allocated.map((row) => Number(row.seq)).sort((a, b) => a - b);
  const newGoldens: { id: string; seq: number; data: unknown }[] = [];
  for (const [index, component] of participating.entries()) {
    const kept = keptBy[index];
    let goldenId: string;
    if (kept.length === 0) {
      const seq = newSeqs[newGoldens.length];
      goldenId = `cus_${seq}`;
      newGoldens.push({ id: goldenId, seq, data: {} });
      result.created.push(goldenId);
      // A new golden record that took members of old ones is a split from them.
      const from = [...new Set(component.map((id) => membership.get(id)?.goldenId).filter((id): id is string => Boolean(id)))];
      createdFrom.set(goldenId, from);
    } else {
      goldenId = kept[0];
      for (const mergedAway of kept.slice(1)) {
        result.merged.push(mergedAway);
        changes.push({ goldenId: mergedAway, kind: 'merged', detail: { into: goldenId } });
      }
    }
    componentOf.set(goldenId, component);
    for (const id of component) assigned.set(id, goldenId);
  }

  // Survivorship in memory first, so each golden record is written once, with its values.
  const { rows: goldenRows } = await client.query<{ id: string; data: Record<string, unknown> }>(sql.goldenRecords(oldGoldens));
  const before = new Map(goldenRows.map((row) => [row.id, row.data]));
  const lineage: Parameters<typeof sql.insertLineage>[0] = [];
  const updatedGoldens: { id: string; data: unknown }[] = [];
  const newById = new Map(newGoldens.map((golden) => [golden.id, golden]));
  for (const [goldenId, members] of [...componentOf].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const { attributes, candidates } = survive(
      members.map((id) => {
        const row = canonical.get(id)!;
        return { rawRecordId: id, source: row.source, observedAt: row.observed_at, record: row.data };
      }),
    );
    for (const candidate of candidates) lineage.push({ goldenId, ...candidate });
    const changed = changedAttributes(before.get(goldenId) ?? {}, attributes as Record<string, unknown>);
    const mergedIn = changes.filter((change) => change.kind === 'merged' && change.detail?.into === goldenId).map((change) => change.goldenId);
    const fresh = newById.get(goldenId);
    if (fresh) {
      fresh.data = attributes;
      const from = createdFrom.get(goldenId) ?? [];
      changes.push({ goldenId, kind: 'created', changed, detail: from.length ? { split_from: from } : {} });
    } else if (changed.length > 0 || mergedIn.length > 0) {
      // An untouched golden record keeps its updated_at, so `updated_since` readers see only real changes.
      if (changed.length > 0) updatedGoldens.push({ id: goldenId, data: attributes });
      changes.push({ goldenId, kind: 'updated', changed, detail: mergedIn.length ? { merged: mergedIn } : {} });
      result.updated.push(goldenId);
    }
  }
  const retired = oldGoldens.filter((goldenId) => !componentOf.has(goldenId) && !result.merged.includes(goldenId));

  await client.query(sql.insertGoldenRecords(newGoldens));
  for (const change of changes.filter((change) => change.kind === 'merged')) await client.query(sql.markMerged(change.goldenId, String(change.detail!.into)));
  if (retired.length) await client.query(sql.markRetired(retired));
  await client.query(sql.saveGoldenRecords(updatedGoldens));

  // Membership rows: close the ones that change, open the new ones with what linked each record.
  const moving = everyone.filter((id) => membership.get(id)?.goldenId !== assigned.get(id));
  await client.query(sql.closeMemberships(moving));
  const joining = moving.filter((id) => assigned.has(id));
  await client.query(sql.openMemberships(joining, joining.map((id) => assigned.get(id)!), joining.map((id) => details?.get(id) ?? { rule: 'shared_key', links: links.get(id) ?? [] })));

  await client.query(sql.deleteLineage(oldGoldens));
  await client.query(sql.insertLineage(lineage));

  // Old golden records that lost members to new ones were split; those left empty are retired.
  for (const goldenId of retired) {
    result.retired.push(goldenId);
    changes.push({ goldenId, kind: 'retired' });
  }
  for (const [created, from] of createdFrom) {
    for (const goldenId of from.filter((id) => componentOf.has(id))) {
      if (!result.split.includes(goldenId)) result.split.push(goldenId);
      changes.push({ goldenId, kind: 'split', detail: { into: created } });
    }
  }
  await appendChanges(client, changes, cause);
  return result;
}
