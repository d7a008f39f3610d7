/**
 * Incremental resolution. A new, changed or removed source record recomputes only the connected
 * component it touches: its old cluster and everything linked to it. Golden records are derived from the
 * kept source records and membership rows, never by destroying a record, so any merge can be undone.
 *
 * Rules when the components differ from the current golden records:
 * - an old golden record stays with the component that holds most of its members (ties: a component where
 *   no other old golden record holds more, then the one with the smallest record id); the other components
 *   get new golden records (a split);
 * - a component that holds several old golden records keeps the oldest (smallest seq); the others are
 *   merged into it and answer with `merged_into` (a merge);
 * - a golden record left without members is retired.
 * A steward's pins follow their golden record: on a merge they move to the survivor where it has no pin of
 * that attribute (see sql.movePinsOnMerge); they override survivorship until withdrawn.
 */
import type { Pool, PoolClient } from '../hub/db/database.js';
import { changeRows, type Change, type ChangeCause } from './change-log.js';
import { canonicalReaderOf, type CanonicalRow, type Claims, type Matcher, type MatchResult } from './matcher.js';
import { configuredMatcher, MATCH_CONFIG_HASH, resolutionContextOf, type ResolutionContext, type ResolutionContextRow } from './probabilistic-matcher.js';
import { changedAttributes, survive, type PinnedValue } from './survivorship.js';
import type { SurvivorshipConfig } from '../openapi/generated/hub-config.gen.js';
import { takesPartInResolution } from './match-keys.js';
import { keptClusters } from './clusters.js';
import { resolveOrganisations } from './organisations.js';
import * as sql from './sql.js';

export interface ResolveResult {
  created: string[];
  updated: string[];
  merged: string[];
  split: string[];
  retired: string[];
  /** The golden records the touched records belonged to before the pass and after it. */
  involved: string[];
}

interface Membership {
  goldenId: string;
  seq: number;
}

/**
 * Resolves `touched` and what is linked to them. Passes over unrelated records run side by side (see sql.lockForPass):
 * each claims the golden records it recomputes before it writes, and reads again when a claim shows that another pass
 * changed one of them since it started reading.
 */
export async function resolveRecords(
  client: PoolClient,
  touched: number[],
  cause: ChangeCause,
  matcher: Matcher = configuredMatcher,
  options: { afterWrites?: (result: ResolveResult) => Promise<void> } = {},
): Promise<ResolveResult> {
  const result: ResolveResult = { created: [], updated: [], merged: [], split: [], retired: [], involved: [] };
  if (touched.length === 0) return result;
  const seed = [...new Set(touched)];
  const { rows: locked } = await client.query<{ exclusive: boolean; snapshot: string } & ResolutionContextRow>(sql.lockForPass(seed, MATCH_CONFIG_HASH));
  const { exclusive } = locked[0];
  const context = resolutionContextOf(locked[0]);
  // Exclusively, nothing changes under the pass: it claims nothing.
  let snapshot = exclusive ? null : locked[0].snapshot;
  let read: PassRead | undefined;
  while (!read) {
    try {
      read = await readPass(client, seed, matcher, context, claimsOf(client, snapshot));
    } catch (error) {
      if (!(error instanceof ClustersChanged)) throw error;
      snapshot = (await client.query<{ snapshot: string }>(sql.currentSnapshot())).rows[0].snapshot;
    }
  }
  const { canonical, membership, everyone, components, participating, keptBy, revived, links, details } = read;

  const oldGoldens = [...new Set([...membership.values()].map((entry) => entry.goldenId))];

  // A component keeping several golden records merges the others into the first; pins follow (sql.movePinsOnMerge).
  const merges = participating.flatMap((_, index) => keptBy[index].slice(1).map((from) => ({ from, into: keptBy[index][0] })));
  if (merges.length) await client.query(sql.movePinsOnMerge(merges));
  // Ids for new golden records, in component order, so they follow the smallest record id.
  const minted = keptBy.filter((kept, index) => kept.length === 0 && !revived.has(index)).length;
  const pinned = participating.flatMap((_, index) => keptBy[index][0] ?? revived.get(index)?.id ?? []);
  const { before, pins, newSeqs } = await readGoldens(client, oldGoldens, pinned, minted, components);

  const changes: Change[] = [];
  const assigned = new Map<number, string>();
  const componentOf = new Map<string, number[]>();
  const createdFrom = new Map<string, string[]>();
  const newGoldens: { id: string; seq: number; data: unknown; revived: boolean }[] = [];
  for (const [index, component] of participating.entries()) {
    const kept = keptBy[index];
    let goldenId: string;
    if (kept.length === 0) {
      const previous = revived.get(index);
      const seq = previous?.seq ?? newSeqs[newGoldens.filter((golden) => !golden.revived).length];
      goldenId = previous?.id ?? `cus_${seq}`;
      newGoldens.push({ id: goldenId, seq, data: {}, revived: Boolean(previous) });
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

  const mergedInto = new Map<string, string[]>();
  for (const merge of merges) mergedInto.set(merge.into, [...(mergedInto.get(merge.into) ?? []), merge.from]);
  const organisations = await resolveOrganisations(client, everyone, canonical, { recluster: exclusive });
  const rules = context.survivorship;

  // Survivorship in memory first, so each golden record is written once, with its values.
  const lineage: sql.LineageRow[] = [];
  const updatedGoldens: { id: string; data: unknown }[] = [];
  const newById = new Map(newGoldens.map((golden) => [golden.id, golden]));
  for (const [goldenId, members] of [...componentOf].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const { attributes, candidates } = survive(
      members.map((id) => {
        const row = canonical.get(id)!;
        return { rawRecordId: id, source: row.source, observedAt: row.observed_at, record: row.data };
      }),
      { pins: pins.get(goldenId), rules },
    );
    for (const candidate of candidates) lineage.push({ goldenId, ...candidate });
    // The person works for the organisation of the record whose organisation value survived.
    const organisationSource = candidates.find((candidate) => candidate.attribute === 'organisation' && candidate.survived)?.rawRecordId;
    const organisationId = organisationSource == null ? undefined : organisations.organisationOf.get(organisationSource);
    if (organisationId) attributes.organisation_id = organisationId;
    const changed = changedAttributes(before.get(goldenId) ?? {}, attributes as Record<string, unknown>);
    const mergedIn = mergedInto.get(goldenId) ?? [];
    const fresh = newById.get(goldenId);
    if (fresh) {
      fresh.data = attributes;
      const from = createdFrom.get(goldenId) ?? [];
      changes.push({ goldenId, kind: 'created', changed, detail: { ...(from.length ? { split_from: from } : {}), ...(fresh.revived ? { restored: true } : {}) } });
    } else if (changed.length > 0 || mergedIn.length > 0) {
      // An untouched golden record keeps its updated_at, so `updated_since` readers see only real changes.
      if (changed.length > 0) updatedGoldens.push({ id: goldenId, data: attributes });
      changes.push({ goldenId, kind: 'updated', changed, detail: mergedIn.length ? { merged: mergedIn } : {} });
      result.updated.push(goldenId);
    }
  }
  const mergedAway = new Set(result.merged);
  const retired = oldGoldens.filter((goldenId) => !componentOf.has(goldenId) && !mergedAway.has(goldenId));

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
  // People outside this pass whose organisation was merged or split follow it.
  if (organisations.moved.length) {
    const { rows: relinked } = await client.query<{ id: string }>(sql.relinkPeopleToOrganisations(organisations.moved, [...componentOf.keys()]));
    for (const { id } of relinked.sort((a, b) => (a.id < b.id ? -1 : 1))) {
      result.updated.push(id);
      changes.push({ goldenId: id, kind: 'updated', changed: ['organisation_id'] });
    }
  }

  // Membership rows: close the ones that change, open the new ones with what linked each record.
  const moving = everyone.filter((id) => membership.get(id)?.goldenId !== assigned.get(id));
  const joining = moving.filter((id) => assigned.has(id));
  // One statement writes it all; the change log's counter in it stays locked until commit, as every pass takes it.
  await client.query(
    sql.writePass({
      inserted: newGoldens.filter((golden) => !golden.revived),
      changed: [
        ...newGoldens.filter((golden) => golden.revived).map((golden) => ({ id: golden.id, status: 'active' as const, mergedInto: null, data: golden.data })),
        ...updatedGoldens.map((golden) => ({ id: golden.id, status: 'active' as const, mergedInto: null, data: golden.data })),
        ...merges.map((merge) => ({ id: merge.from, status: 'merged' as const, mergedInto: merge.into, data: {} })),
        ...retired.map((id) => ({ id, status: 'retired' as const, mergedInto: null, data: {} })),
      ],
      leaving: moving.filter((id) => membership.has(id)),
      joining: joining.map((id) => ({ id, goldenId: assigned.get(id)!, detail: details?.get(id) ?? { rule: 'shared_key', links: links.get(id) ?? [] } })),
      lineageOf: oldGoldens,
      lineage,
      changes: changeRows(changes, cause),
    }),
  );
  result.involved = [...new Set(seed.flatMap((id) => [membership.get(id)?.goldenId, assigned.get(id)]).filter((id): id is string => Boolean(id)))];
  await options.afterWrites?.(result);
  return result;
}

/** What a pass read before it writes: the components, their records and current golden records, the ids to revive. */
interface PassRead {
  canonical: Map<number, CanonicalRow>;
  membership: Map<number, Membership>;
  /** The records whose cluster is recomputed (the seeds included). */
  everyone: number[];
  /** The matcher's components, every record it reached. */
  components: number[][];
  /** Components of records that take part in resolution, each sorted, in order of their smallest id. */
  participating: number[][];
  /** Per component, the current golden records it keeps (the first survives; see clusters.ts). */
  keptBy: string[][];
  revived: Map<number, { id: string; seq: number }>;
  links: MatchResult['links'];
  details: MatchResult['details'];
}

/** A claim found a golden record changed by another pass since this one started reading. */
class ClustersChanged extends Error {}

/**
 * The claims of one attempt to read a pass (see sql.claimClusters): `claim` claims the golden records of `ids` and
 * `goldenIds` not claimed yet and answers the current memberships of `ids`; it throws ClustersChanged when one was
 * changed by another pass since `snapshot`. Without a snapshot (an exclusive pass) it only reads memberships.
 * `previous`: for the records read so far, the merged-away golden record each last left (see revivedGoldens).
 */
function claimsOf(client: PoolClient, snapshot: string | null): { claim: Claims; previous: Map<number, { id: string; seq: number }> } {
  const membership = new Map<number, Membership>();
  const previous = new Map<number, { id: string; seq: number }>();
  const read = new Set<number>();
  const claimed = new Set<string>();
  const claim: Claims = async (ids, goldenIds = []) => {
    const unread = [...new Set(ids.filter((id) => !read.has(id)))];
    const unclaimed = snapshot === null ? [] : [...new Set(goldenIds.filter((id) => !claimed.has(id)))];
    if (unread.length || unclaimed.length) {
      const { rows } = await client.query<{ tag: 'member' | 'previous' | 'stale'; id: string; golden_id: string; seq: string }>(
        snapshot === null ? sql.currentMemberships(unread) : sql.claimClusters(unread, unclaimed, snapshot),
      );
      if (rows.some((row) => row.tag === 'stale')) throw new ClustersChanged();
      for (const id of unread) read.add(id);
      for (const id of unclaimed) claimed.add(id);
      for (const row of rows) {
        if (row.tag === 'previous') {
          previous.set(Number(row.id), { id: row.golden_id, seq: Number(row.seq) });
          continue;
        }
        membership.set(Number(row.id), { goldenId: row.golden_id, seq: Number(row.seq) });
        claimed.add(row.golden_id);
      }
    }
    return new Map(ids.flatMap((id) => (membership.has(id) ? [[id, membership.get(id)!] as const] : [])));
  };
  return { claim, previous };
}

/** Matches the seeds, claims the golden records of everything reached and reads what the pass writes from. */
async function readPass(client: PoolClient, seed: number[], matcher: Matcher, context: ResolutionContext, { claim, previous }: ReturnType<typeof claimsOf>): Promise<PassRead> {
  const readCanonical = canonicalReaderOf(client);
  const { components, links, details } = await matcher(client, seed, { canonical: readCanonical, context, claim });
  const allIds = components.flat();
  const canonical = await readCanonical(allIds);
  // Records without a canonical form any more (now quarantined) or without customer data leave their cluster.
  const participating = components
    .map((component) => component.filter((id) => canonical.has(id) && takesPartInResolution(canonical.get(id)!.data)).sort((a, b) => a - b))
    .filter((component) => component.length > 0)
    .sort((a, b) => a[0] - b[0]);
  const everyone = [...new Set([...allIds, ...seed])];
  const membership = await claim(everyone);
  const keptBy = keptClusters(participating, (id) => {
    const current = membership.get(id);
    return current && { id: current.goldenId, seq: current.seq };
  }).map((kept) => kept.map((cluster) => cluster.id));
  const revived = revivedGoldens(participating, keptBy, previous);
  await claim([], [...revived.values()].map((golden) => golden.id));
  return { canonical, membership, everyone, components, participating, keptBy, revived, links, details };
}

/**
 * A component that keeps no current golden record takes back the id its members had before they were merged
 * away, if they had one (`previous`; most members, then the oldest): undoing a merge, or a record leaving again,
 * restores the customer id other systems already stored instead of minting a new one.
 */
function revivedGoldens(components: number[][], keptBy: string[][], previous: Map<number, { id: string; seq: number }>): Map<number, { id: string; seq: number }> {
  const orphans = components.map((component, index) => ({ component, index })).filter(({ index }) => keptBy[index].length === 0);
  const revived = new Map<number, { id: string; seq: number }>();
  const taken = new Set<string>();
  for (const { component, index } of orphans) {
    const counts = new Map<string, { cluster: { id: string; seq: number }; count: number }>();
    for (const cluster of component.map((id) => previous.get(id))) {
      if (cluster && !taken.has(cluster.id)) counts.set(cluster.id, { cluster, count: (counts.get(cluster.id)?.count ?? 0) + 1 });
    }
    const [best] = [...counts.values()].sort((a, b) => b.count - a.count || a.cluster.seq - b.cluster.seq).map((entry) => entry.cluster);
    if (!best) continue;
    taken.add(best.id);
    revived.set(index, best);
  }
  return revived;
}

/**
 * The current data of `goldenIds`, the active pins of `pinnedIds` and `minted` new golden record numbers; open review
 * items between two records of one of `components` are settled (sql.passGoldens).
 */
async function readGoldens(client: PoolClient, goldenIds: string[], pinnedIds: string[], minted: number, components: number[][]) {
  const before = new Map<string, Record<string, unknown>>();
  const pins = new Map<string, PinnedValue[]>();
  const newSeqs: number[] = [];
  const { rows } = await client.query<{ tag: 'golden' | 'pin' | 'seq'; id: string; golden_id: string; attribute: string; value: Record<string, unknown>; created_at: Date }>(
    sql.passGoldens(goldenIds, pinnedIds, minted, { ids: components.flat(), clusters: components.flatMap((component, index) => component.map(() => index)) }),
  );
  for (const row of rows) {
    if (row.tag === 'golden') before.set(row.golden_id, row.value);
    else if (row.tag === 'seq') newSeqs.push(Number(row.id));
    else {
      const ofGolden = pins.get(row.golden_id) ?? [];
      // Rows come newest first per attribute: should two pins of one attribute be active, the newest counts.
      if (!ofGolden.some((pin) => pin.attribute === row.attribute)) ofGolden.push({ id: Number(row.id), attribute: row.attribute, value: row.value, createdAt: row.created_at });
      pins.set(row.golden_id, ofGolden);
    }
  }
  return { before, pins, newSeqs: newSeqs.sort((a, b) => a - b) };
}

/** Stores hub.config.yaml `resolution.survivorship` where every process's resolver reads it (called at boot). */
export async function saveSurvivorshipSettings(db: Pool | PoolClient, rules: SurvivorshipConfig = {}): Promise<void> {
  await db.query(sql.saveSurvivorshipSetting(rules));
}
