/**
 * The data steward's decisions. Each one is a `steward_decision` row, expressed only through `match_constraint`
 * rows (must-link, cannot-link) and `pinned_value` rows that name it; the records it touches are then re-resolved
 * in the same transaction, so golden records, membership rows and the change log (cause `decision`) follow at once,
 * and every later run respects it. Undo withdraws those rows (and puts back what the decision replaced) and
 * re-resolves the same records: the result is as if the decision had never been taken, also after later syncs.
 *
 * - merge (a pair) = must-link; keep apart = cannot-link; defer = the review item waits, no constraint;
 * - split = cannot-links between each leaving and each staying record, must-links among the leaving ones;
 * - merge two customers = a must-link between one member of each;
 * - choose (a conflict) / pin = a pinned value; unpin = the pin withdrawn.
 * A constraint that contradicts an earlier one on the same pair replaces it (the earlier one is withdrawn on
 * behalf of the new decision), so the newest decision about a pair is the one that holds.
 */
import type { FastifyRequest } from 'fastify';
import { inTransaction, type Pool, type PoolClient } from './db/database.js';
import { HubError, invalidInput } from './errors.js';
import { resolveAndRefreshValue } from './customer-value.js';
import { lockResolution } from '../identity-resolution/sql.js';
import { PINNABLE_ATTRIBUTES } from '../identity-resolution/survivorship.js';
import { stableStringify } from './stable-json.js';
import { validate } from './schema-validation.js';
import goldenRecordSchema from '../openapi/schemas/golden-record.schema.json' with { type: 'json' };
import canonicalRecordSchema from '../openapi/schemas/canonical-record.schema.json' with { type: 'json' };
import type { Hub } from './sync.js';
import { explainRecords } from './routes/match.js';
import { decodeCursor, page as pageOf } from './routes/cursor.js';
import { toMatchRecord, type MatchRecord } from '../identity-resolution/probabilistic/index.js';
import type { CanonicalRecord } from '../openapi/generated/canonical-record.gen.js';
import * as sql from './steward-sql.js';
import type { DecisionRow } from './steward-sql.js';

export const DECISION_KINDS = ['merge', 'keep_apart', 'defer', 'split', 'merge_customers', 'pin', 'unpin', 'choose'] as const;
export type DecisionKind = (typeof DECISION_KINDS)[number];

/** A decision as the API shows it. */
export interface Decision {
  id: string;
  kind: DecisionKind;
  actor: string;
  reason: string | null;
  created_at: string;
  review_item_id: string | null;
  golden_ids: string[];
  raw_record_ids: number[];
  attribute: string | null;
  value: unknown;
  undone_at: string | null;
  undone_by: string | null;
  undo_reason: string | null;
}

export interface Outcome {
  decision: Decision;
  /** The golden records now holding the decision's records. */
  customers: string[];
}

/** Who decides: `user:<name>` (session) or `key:<name>` (API key), as the auth guard sets it. */
export function actorOf(request: FastifyRequest): string {
  if (!request.actor) throw new HubError('HUB_ERR_UNAUTHENTICATED');
  return request.actor;
}

export function decisionJson(row: DecisionRow): Decision {
  return {
    id: row.id,
    kind: row.kind as DecisionKind,
    actor: row.actor,
    reason: row.reason,
    created_at: row.created_at.toISOString(),
    review_item_id: row.review_item_id,
    golden_ids: row.golden_ids,
    raw_record_ids: row.raw_record_ids.map(Number),
    attribute: row.attribute,
    value: row.value ?? null,
    undone_at: row.undone_at?.toISOString() ?? null,
    undone_by: row.undone_by,
    undo_reason: row.undo_reason,
  };
}

interface NewDecision {
  kind: DecisionKind;
  reviewItemId?: string;
  goldenIds: string[];
  rawRecordIds: number[];
  attribute?: string;
  value?: unknown;
  reason?: string;
  actor: string;
}

async function recordDecision(client: PoolClient, decision: NewDecision): Promise<DecisionRow> {
  const { rows } = await client.query<DecisionRow>(
    sql.insertDecision({
      kind: decision.kind,
      reviewItemId: decision.reviewItemId ?? null,
      goldenIds: decision.goldenIds,
      rawRecordIds: decision.rawRecordIds,
      attribute: decision.attribute ?? null,
      value: decision.value,
      reason: decision.reason ?? null,
      actor: decision.actor,
    }),
  );
  return rows[0];
}

/** Re-resolves `records` on behalf of the decision; answers the golden records that hold the decision's records now. */
async function reResolve(client: PoolClient, decision: DecisionRow, records: number[]): Promise<string[]> {
  await resolveAndRefreshValue(client, [...new Set(records)], { cause: 'decision', causeId: decision.id, actor: decision.actor });
  return goldensHolding(client, decision.raw_record_ids.map(Number));
}

async function goldensHolding(client: PoolClient, records: number[]): Promise<string[]> {
  const { rows } = await client.query<{ golden_id: string }>(sql.goldensOf(records));
  return [...new Set(rows.map((row) => row.golden_id))];
}

async function goldenOfEach(client: PoolClient, records: number[]): Promise<Map<number, string>> {
  const { rows } = await client.query<{ id: string; golden_id: string }>(sql.goldensOf(records));
  return new Map(rows.map((row) => [Number(row.id), row.golden_id]));
}

async function membersOf(client: PoolClient, goldenIds: string[]): Promise<number[]> {
  const { rows } = await client.query<{ id: string }>(sql.currentMembers(goldenIds));
  return rows.map((row) => Number(row.id));
}

/** An active golden record, or the error that says why it cannot be changed (merged: name the survivor). */
async function activeGolden(client: PoolClient, id: string): Promise<string> {
  const { rows } = await client.query<{ id: string; status: string; merged_into: string | null }>(sql.goldenStatus(id));
  const golden = rows[0];
  if (!golden) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'customer', id });
  if (golden.status === 'merged') throw new HubError('HUB_ERR_CONFLICT', { reason: `Customer '${id}' was merged into '${golden.merged_into}'; decide on that customer.` });
  if (golden.status !== 'active') throw new HubError('HUB_ERR_GONE', { id });
  return id;
}

/** Adds constraints of `kind` between pairs, replacing the opposite constraints on the same pairs. */
async function constrain(client: PoolClient, decision: DecisionRow, kind: 'must_link' | 'cannot_link', pairs: [number, number][]): Promise<void> {
  if (pairs.length === 0) return;
  await client.query(sql.supersedeConstraints(decision.id, kind === 'must_link' ? 'cannot_link' : 'must_link', pairs));
  await client.query(sql.insertConstraints(decision.id, kind, pairs, decision.reason, decision.actor));
}

/**
 * The must-links of a steward's merge of two customers through `pair`: the pair itself, and each record of one customer
 * that shares its source with a record of the other to the pair's record on that other side. Two records of one source
 * are joined only by strong evidence (identity-resolution/deterministic-rules.ts), so without these the merge would
 * leave such a record behind; the steward merged the customers whole.
 */
async function mergeLinks(client: PoolClient, left: number[], right: number[], pair: [number, number]): Promise<[number, number][]> {
  const { rows } = await client.query<{ id: string; source: string }>(sql.sourcesOf([...left, ...right]));
  const sourceOf = new Map(rows.map((row) => [Number(row.id), row.source]));
  const sharesSource = (id: number, others: number[]) => others.some((other) => sourceOf.get(other) === sourceOf.get(id));
  return [
    pair,
    ...right.filter((id) => id !== pair[1] && sharesSource(id, left)).map((id): [number, number] => [pair[0], id]),
    ...left.filter((id) => id !== pair[0] && sharesSource(id, right)).map((id): [number, number] => [id, pair[1]]),
  ];
}

/** Replaces the opposite constraints between two sets of records (a chain of them would defeat the decision). */
async function supersedeBetween(client: PoolClient, decision: DecisionRow, kind: 'must_link' | 'cannot_link', left: number[], right: number[]): Promise<void> {
  const { rows } = await client.query<{ left: string; right: string }>(sql.constraintsBetween(kind, left, right));
  if (rows.length) await client.query(sql.supersedeConstraints(decision.id, kind, rows.map((row) => [Number(row.left), Number(row.right)])));
}

function transaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  return inTransaction(pool, async (client) => {
    // One resolver at a time: the memberships read here stay true until the decision is applied.
    await client.query(lockResolution());
    return work(client);
  });
}

// --- Review items --------------------------------------------------------------------------------------------

export type ReviewItemId = { kind: 'pair'; reviewItemId: number } | { kind: 'conflict'; goldenId: string; attribute: string };

/** `pair-<n>` or `conflict-<golden id>-<attribute>`. */
export function parseReviewItemId(id: string): ReviewItemId {
  const pair = /^pair-([1-9][0-9]{0,17})$/.exec(id);
  if (pair) return { kind: 'pair', reviewItemId: Number(pair[1]) };
  const conflict = /^conflict-(cus_[0-9]{1,18})-([a-z_]+)$/.exec(id);
  if (conflict && (sql.CONFLICT_ATTRIBUTES as readonly string[]).includes(conflict[2])) return { kind: 'conflict', goldenId: conflict[1], attribute: conflict[2] };
  throw new HubError('HUB_ERR_NOT_FOUND', { what: 'review item', id });
}

export const reviewItemIdOf = (item: ReviewItemId): string => (item.kind === 'pair' ? `pair-${item.reviewItemId}` : `conflict-${item.goldenId}-${item.attribute}`);

/** What each pair action leaves as the review item's status. */
const PAIR_STATUS: Record<'merge' | 'keep_apart' | 'defer', string> = { merge: 'linked', keep_apart: 'rejected', defer: 'deferred' };

export async function decidePair(pool: Pool, reviewItemId: number, action: 'merge' | 'keep_apart' | 'defer', reason: string | undefined, actor: string): Promise<Outcome> {
  const id = reviewItemIdOf({ kind: 'pair', reviewItemId });
  return transaction(pool, async (client) => {
    const { rows } = await client.query<{ id: string; left: string; right: string; status: string }>(sql.reviewItemForUpdate(reviewItemId));
    const item = rows[0];
    if (!item) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'review item', id });
    const { rows: decided } = await client.query<DecisionRow>(sql.activeDecisionOf(id));
    if (action === 'defer' && item.status === 'deferred') throw new HubError('HUB_ERR_CONFLICT', { reason: `Review item '${id}' is deferred already.` });
    if (decided[0] && decided[0].kind !== 'defer') {
      throw new HubError('HUB_ERR_CONFLICT', { reason: `Review item '${id}' was decided already (decision ${decided[0].id}, ${decided[0].kind}); undo that decision first.` });
    }
    const pair: [number, number] = [Number(item.left), Number(item.right)];
    const before = await goldenOfEach(client, pair);
    const decision = await recordDecision(client, {
      kind: action,
      reviewItemId: id,
      goldenIds: [...new Set(before.values())],
      rawRecordIds: pair,
      reason,
      actor,
    });
    await client.query(sql.setReviewStatus(reviewItemId, PAIR_STATUS[action]));
    if (action === 'defer') return { decision: decisionJson(decision), customers: await goldensHolding(client, pair) };
    const [leftGolden, rightGolden] = [before.get(pair[0]), before.get(pair[1])];
    const links =
      action === 'merge' && leftGolden && rightGolden && leftGolden !== rightGolden
        ? await mergeLinks(client, await membersOf(client, [leftGolden]), await membersOf(client, [rightGolden]), pair)
        : [pair];
    await constrain(client, decision, action === 'merge' ? 'must_link' : 'cannot_link', links);
    const customers = await reResolve(client, decision, links.flat());
    if (action === 'keep_apart') await mustBeApart(client, [pair[0]], [pair[1]]);
    return { decision: decisionJson(decision), customers };
  });
}

/** Rolls the decision back when other steward must-links still hold the records together. */
async function mustBeApart(client: PoolClient, left: number[], right: number[]): Promise<void> {
  const golden = await goldenOfEach(client, [...left, ...right]);
  const together = left.filter((id) => golden.has(id) && right.some((other) => golden.get(other) === golden.get(id)));
  if (together.length) {
    throw new HubError('HUB_ERR_CONFLICT', {
      reason: `Other steward decisions (must-links) still hold record ${together[0]} together with the records it should leave; undo those decisions first.`,
    });
  }
}

export async function decideConflict(
  pool: Pool,
  goldenId: string,
  attribute: string,
  action: { action: 'choose'; value: unknown } | { action: 'defer' },
  reason: string | undefined,
  actor: string,
): Promise<Outcome> {
  const id = reviewItemIdOf({ kind: 'conflict', goldenId, attribute });
  return transaction(pool, async (client) => {
    await activeGolden(client, goldenId);
    const { rows: conflicts } = await client.query<{ status: string }>(sql.conflictOf(goldenId, attribute));
    if (!conflicts[0]) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'open conflict', id });
    const members = await membersOf(client, [goldenId]);
    if (action.action === 'defer') {
      if (conflicts[0].status === 'deferred') throw new HubError('HUB_ERR_CONFLICT', { reason: `Conflict '${id}' is deferred already.` });
      const decision = await recordDecision(client, { kind: 'defer', reviewItemId: id, goldenIds: [goldenId], rawRecordIds: members, attribute, reason, actor });
      return { decision: decisionJson(decision), customers: [goldenId] };
    }
    const { rows: candidates } = await client.query<{ value: unknown }>(sql.attributeCandidates(goldenId, attribute));
    const chosen = stableStringify(action.value);
    if (!candidates.some((candidate) => stableStringify(candidate.value) === chosen)) {
      throw invalidInput('body/value', `is not one of the values the sources hold for ${attribute} of ${goldenId}`);
    }
    const decision = await recordDecision(client, { kind: 'choose', reviewItemId: id, goldenIds: [goldenId], rawRecordIds: members, attribute, value: action.value, reason, actor });
    return { decision: decisionJson(decision), customers: await pinAndResolve(client, decision, goldenId, attribute, action.value, members) };
  });
}

async function pinAndResolve(client: PoolClient, decision: DecisionRow, goldenId: string, attribute: string, value: unknown, members: number[]): Promise<string[]> {
  await client.query(sql.supersedePins(decision.id, goldenId, attribute));
  await client.query(sql.insertPin(decision.id, goldenId, attribute, value, decision.reason, decision.actor));
  return reResolve(client, decision, members);
}

// --- Corrections of a golden record ----------------------------------------------------------------------

export async function splitCustomer(pool: Pool, goldenId: string, leaving: number[], reason: string | undefined, actor: string): Promise<Outcome> {
  return transaction(pool, async (client) => {
    await activeGolden(client, goldenId);
    const members = await membersOf(client, [goldenId]);
    const leave = [...new Set(leaving)].sort((a, b) => a - b);
    const stranger = leave.find((id) => !members.includes(id));
    if (stranger !== undefined) throw invalidInput('body/raw_record_ids', `names record ${stranger}, which is not a source record of ${goldenId}`);
    const stay = members.filter((id) => !leave.includes(id));
    if (stay.length === 0) throw invalidInput('body/raw_record_ids', `names every source record of ${goldenId}; at least one must stay`);
    const decision = await recordDecision(client, { kind: 'split', goldenIds: [goldenId], rawRecordIds: members, reason, actor });
    await supersedeBetween(client, decision, 'must_link', leave, stay);
    await constrain(client, decision, 'cannot_link', leave.flatMap((a) => stay.map((b): [number, number] => [a, b])));
    await constrain(client, decision, 'must_link', leave.slice(1).map((id): [number, number] => [leave[0], id]));
    await reResolve(client, decision, members);
    await mustBeApart(client, leave, stay);
    const golden = await goldenOfEach(client, members);
    const kept = [...new Set(stay.map((id) => golden.get(id)).filter((id): id is string => Boolean(id)))];
    // The original id first when it kept records (it does: the larger part, or the smaller record id, keeps it).
    kept.sort((a, b) => Number(b === goldenId) - Number(a === goldenId));
    const created = golden.get(leave[0]);
    return { decision: decisionJson(decision), customers: created ? [...kept, created] : kept };
  });
}

export async function mergeCustomers(pool: Pool, ids: [string, string], reason: string | undefined, actor: string): Promise<Outcome> {
  if (ids[0] === ids[1]) throw invalidInput('body/ids', 'must name two different customers');
  return transaction(pool, async (client) => {
    for (const id of ids) await activeGolden(client, id);
    const [left, right] = [await membersOf(client, [ids[0]]), await membersOf(client, [ids[1]])];
    if (left.length === 0 || right.length === 0) throw new HubError('HUB_ERR_CONFLICT', { reason: 'A customer without source records cannot be merged.' });
    const decision = await recordDecision(client, { kind: 'merge_customers', goldenIds: [...ids], rawRecordIds: [...left, ...right], reason, actor });
    await supersedeBetween(client, decision, 'cannot_link', left, right);
    await constrain(client, decision, 'must_link', await mergeLinks(client, left, right, [left[0], right[0]]));
    return { decision: decisionJson(decision), customers: await reResolve(client, decision, [...left, ...right]) };
  });
}

/** The pinnable attributes and the schema of each one's value (as in GoldenAttributes). */
const canonicalDefs = canonicalRecordSchema.$defs;
const goldenProperties = goldenRecordSchema.properties as Record<string, object>;
const pinSchemas = new Map(
  PINNABLE_ATTRIBUTES.map((attribute) => [
    attribute,
    { $defs: canonicalDefs, ...JSON.parse(JSON.stringify(goldenProperties[attribute]).replaceAll('canonical-record.schema.json#', '#')) } as Record<string, unknown>,
  ]),
);

export function checkPinnable(attribute: string, value: unknown): void {
  const schema = pinSchemas.get(attribute);
  if (!schema) throw invalidInput('params/attribute', `must be one of ${PINNABLE_ATTRIBUTES.join(', ')}`);
  const problems = validate(schema, value, 'body.value');
  if (problems.length) throw invalidInput('body/value', `is not a valid ${attribute}: ${problems[0]}`);
  if (value === '' || (typeof value === 'string' && value.trim() === '')) throw invalidInput('body/value', 'must not be empty');
}

export async function pinValue(pool: Pool, goldenId: string, attribute: string, value: unknown, reason: string | undefined, actor: string): Promise<Outcome> {
  checkPinnable(attribute, value);
  return transaction(pool, async (client) => {
    await activeGolden(client, goldenId);
    const members = await membersOf(client, [goldenId]);
    const decision = await recordDecision(client, { kind: 'pin', goldenIds: [goldenId], rawRecordIds: members, attribute, value, reason, actor });
    return { decision: decisionJson(decision), customers: await pinAndResolve(client, decision, goldenId, attribute, value, members) };
  });
}

export async function unpinValue(pool: Pool, goldenId: string, attribute: string, reason: string | undefined, actor: string): Promise<Outcome> {
  return transaction(pool, async (client) => {
    await activeGolden(client, goldenId);
    const { rows: pins } = await client.query(sql.activePinsOf(goldenId, attribute));
    if (pins.length === 0) throw new HubError('HUB_ERR_NOT_FOUND', { what: `pin of ${attribute} on customer`, id: goldenId });
    const members = await membersOf(client, [goldenId]);
    const decision = await recordDecision(client, { kind: 'unpin', goldenIds: [goldenId], rawRecordIds: members, attribute, reason, actor });
    await client.query(sql.supersedePins(decision.id, goldenId, attribute));
    return { decision: decisionJson(decision), customers: await reResolve(client, decision, members) };
  });
}

// --- Undo ------------------------------------------------------------------------------------------------------

export async function undoDecision(pool: Pool, id: string, reason: string | undefined, actor: string): Promise<Outcome> {
  return transaction(pool, async (client) => {
    const { rows } = await client.query<DecisionRow>(sql.decisionForUpdate(id));
    if (!rows[0]) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'decision', id });
    const { rows: undone } = await client.query<DecisionRow>(sql.markDecisionUndone(id, actor, reason ?? null));
    const decision = undone[0];
    if (!decision) throw new HubError('HUB_ERR_CONFLICT', { reason: `Decision ${id} was undone already (${rows[0].undone_at!.toISOString()} by ${rows[0].undone_by}).` });
    const pinnedGoldens = new Set<string>();
    for (const statement of [...sql.withdrawDecisionRows(id), ...sql.reinstateSuperseded(id)]) {
      const { rows: touched } = await client.query<{ golden_id: string | null }>(statement);
      for (const row of touched) if (row.golden_id) pinnedGoldens.add(row.golden_id);
    }
    const item = decision.review_item_id ? parseReviewItemId(decision.review_item_id) : undefined;
    if (item?.kind === 'pair' && decision.kind in PAIR_STATUS) {
      await client.query(sql.setReviewStatus(item.reviewItemId, 'open', PAIR_STATUS[decision.kind as keyof typeof PAIR_STATUS]));
    }
    if (decision.kind === 'defer') return { decision: decisionJson(decision), customers: await goldensHolding(client, decision.raw_record_ids.map(Number)) };
    // A pin may have moved to the survivor of a merge since: its members are recomputed too.
    const records = [...decision.raw_record_ids.map(Number), ...(await membersOf(client, [...pinnedGoldens]))];
    return { decision: decisionJson(decision), customers: await reResolve(client, decision, records) };
  });
}

// --- Reading: the queue, one item, the decision log ---------------------------------------------------------

export interface ReviewItem {
  id: string;
  kind: 'pair' | 'conflict';
  status: string;
  created_at: string;
  impact: number;
  summary: string;
  golden_ids: string[];
}

export async function reviewQueue(
  pool: Pool,
  query: { kind?: 'pair' | 'conflict'; status: 'open' | 'deferred' | 'all'; limit: number; cursor?: string },
): Promise<{ items: ReviewItem[]; next_cursor: string | null }> {
  const after = query.cursor ? (decodeCursor(query.cursor, ['integer', 'digits', 'digits', 'text']) as [number, string, string, string]) : undefined;
  const { rows } = await pool.query<sql.QueueRow>(sql.reviewQueue({ kind: query.kind, status: query.status, after, limit: query.limit + 1 }));
  const { items, next_cursor } = pageOf(rows, query.limit, (last) => [last.has_value, last.impact, last.created_us, last.id]);
  return { items: items.map(queueItem), next_cursor };
}

const queueItem = (row: sql.QueueRow): ReviewItem => ({
  id: row.id,
  kind: row.kind,
  status: row.status,
  created_at: row.created_at.toISOString(),
  impact: Number(row.impact),
  summary: row.summary,
  golden_ids: row.golden_ids,
});

/** The compared value of each attribute of the probabilistic model, as the steward reads it side by side. */
const COMPARED_VALUE: Record<string, (record: MatchRecord) => string | undefined> = {
  given_name: (record) => record.givenName,
  family_name: (record) => record.familyName,
  full_name: (record) => record.fullName,
  birth_date: (record) => record.birthDate,
  email: (record) => record.emails.join(', ') || undefined,
  phone: (record) => record.phones.join(', ') || undefined,
  postcode: (record) => record.postcode,
  city: (record) => record.city,
  address: (record) => record.address,
  organisation: (record) => record.organisation,
  job_title: (record) => record.jobTitle,
};

function sideRecord(row: sql.SideRow) {
  return {
    raw_record_id: Number(row.raw_record_id),
    source: row.source,
    stream: row.stream,
    external_id: row.external_id,
    golden_id: row.golden_id,
    observed_at: row.observed_at?.toISOString() ?? null,
    data: row.data ?? {},
  };
}

/** One review item with what the steward needs to decide it; undefined when there is none by that id. */
export async function reviewItemDetail(hub: Hub, id: string): Promise<object | undefined> {
  const item = parseReviewItemId(id);
  return item.kind === 'pair' ? pairDetail(hub, item.reviewItemId) : conflictDetail(hub.pool, item.goldenId, item.attribute);
}

async function pairDetail(hub: Hub, reviewItemId: number): Promise<object | undefined> {
  const { rows } = await hub.pool.query<{ id: string; status: string; created_at: Date; probability: number; match_weight: number; reason: string; left: string; right: string }>(
    sql.pairItem(reviewItemId),
  );
  const item = rows[0];
  if (!item) return undefined;
  const ids = [Number(item.left), Number(item.right)];
  const { rows: sides } = await hub.pool.query<sql.SideRow>(sql.sideRecords(ids));
  const [left, right] = ids.map((id) => sides.find((side) => Number(side.raw_record_id) === id)!);
  const { rows: queued } = await hub.pool.query<sql.QueueRow>(sql.reviewQueue({ kind: 'pair', status: 'all', limit: 1, after: undefined, onlyId: `pair-${reviewItemId}` }));
  const compared = await explainRecords(hub, ids[0], ids[1]);
  const values = [left, right].map((side) => toMatchRecord(side.raw_record_id, side.source, (side.data ?? {}) as CanonicalRecord));
  const explanation = compared && {
    prior_weight: compared.explanation.prior_weight,
    total_weight: compared.explanation.prior_weight + compared.explanation.match_weight,
    probability: compared.explanation.probability,
    attributes: compared.explanation.attributes.map((attribute) => ({
      attribute: attribute.comparison,
      level: attribute.level,
      label: attribute.label,
      // The term-frequency adjustment belongs to the attribute's bar of the waterfall.
      weight: attribute.weight + attribute.tf_adjustment,
      left: COMPARED_VALUE[attribute.comparison]?.(values[0]) ?? null,
      right: COMPARED_VALUE[attribute.comparison]?.(values[1]) ?? null,
    })),
  };
  return {
    ...queueItem(queued[0]),
    probability: item.probability,
    match_weight: item.match_weight,
    reason: item.reason,
    records: [sideRecord(left), sideRecord(right)],
    explanation: explanation ?? null,
  };
}

async function conflictDetail(pool: Pool, goldenId: string, attribute: string): Promise<object | undefined> {
  const { rows } = await pool.query<sql.QueueRow>(sql.reviewQueue({ kind: 'conflict', status: 'all', limit: 1, after: undefined, onlyId: `conflict-${goldenId}-${attribute}` }));
  if (!rows[0]) return undefined;
  const { rows: candidates } = await pool.query<{ value: unknown; source: string; raw_record_id: string | null; observed_at: Date; survived: boolean }>(sql.attributeCandidates(goldenId, attribute));
  return {
    ...queueItem(rows[0]),
    golden_id: goldenId,
    attribute,
    candidates: candidates.map((candidate) => ({
      value: candidate.value,
      source: candidate.source,
      raw_record_id: candidate.raw_record_id === null ? null : Number(candidate.raw_record_id),
      observed_at: candidate.observed_at.toISOString(),
      survived: candidate.survived,
    })),
  };
}

export interface DecisionFilter {
  actor?: string;
  kind?: DecisionKind;
  since?: string;
  until?: string;
  golden_id?: string;
}

export async function listDecisions(pool: Pool, filter: DecisionFilter, page: { limit: number; cursor?: string }): Promise<{ items: Decision[]; next_cursor: string | null }> {
  const beforeId = page.cursor ? String(decodeCursor(page.cursor, ['digits'])[0]) : undefined;
  const { rows } = await pool.query<DecisionRow>(sql.listDecisions({ ...filter, goldenId: filter.golden_id, beforeId, limit: page.limit + 1 }));
  const { items, next_cursor } = pageOf(rows, page.limit, (last) => [last.id]);
  return { items: items.map(decisionJson), next_cursor };
}

export const CSV_COLUMNS = ['id', 'kind', 'actor', 'reason', 'created_at', 'review_item_id', 'golden_ids', 'raw_record_ids', 'attribute', 'value', 'undone_at', 'undone_by', 'undo_reason'] as const;

/** RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** Free text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a leading `'` (OWASP's advice). */
const FREE_TEXT_COLUMNS = new Set<string>(['reason', 'undo_reason']);
const asSpreadsheetText = (value: string) => (/^[=+\-@\t\r]/.test(value) ? `'${value}` : value);

/** Every decision matching the filter as CSV (header row; lists space-separated, values as JSON), CRLF line ends. */
export async function decisionsCsv(pool: Pool, filter: DecisionFilter): Promise<string> {
  const { rows } = await pool.query<DecisionRow>(sql.listDecisions({ ...filter, goldenId: filter.golden_id }));
  const lines = [CSV_COLUMNS.join(',')];
  for (const decision of rows.map(decisionJson)) {
    const cells = CSV_COLUMNS.map((column) => {
      const value = decision[column];
      if (value === null || value === undefined) return '';
      if (Array.isArray(value)) return value.join(' ');
      if (column === 'value') return JSON.stringify(value);
      return FREE_TEXT_COLUMNS.has(column) ? asSpreadsheetText(String(value)) : String(value);
    });
    lines.push(cells.map(csvField).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
