/**
 * The deterministic rules both matchers apply before anything else (hub.config.yaml `resolution.deterministic_rules`):
 * a pair of records that a rule matches is one customer without scoring, unless a steward's cannot-link separates
 * them. Each rule is a kind of shared key (match_key, written by hub/ingest.ts from match-keys.ts):
 * - `verified_email` / `verified_phone`: the same normalised email / phone, verified by the source of both records;
 * - `same_source_id`: the same identifier (scheme and value) on two records of one source, e.g. a shop's customer
 *   and its orders, or one CRM contact read from two streams;
 * - `identifier`: the same identifier on records of different sources (one system storing another's id);
 * - `email` / `phone`: the same normalised email / phone, verified or not (households, role accounts, office lines).
 * Same-source duplicates (`same_source_duplicates`): two records to which their own source gave different ids of one
 * identifier scheme are two customers to that source (a shop can hold one person's two accounts, or two people on
 * one address). With `strong_evidence` (the default) they are joined, directly or through other records, only by a
 * strong rule (every rule but `email` and `phone`), a golden id, a steward's must-link or, in the probabilistic
 * matcher, a score that links without their email and phone; `shared_key` treats them like any other pair.
 */
import type { Pool, PoolClient } from '../hub/db/database.js';
import { pairKey, type JoinStrength } from './clusters.js';
import * as sql from './sql.js';

export type RuleName = 'verified_email' | 'verified_phone' | 'same_source_id' | 'identifier' | 'email' | 'phone';
export type SameSourceDuplicates = 'strong_evidence' | 'shared_key';

/** When several rules match a pair, the first of these names it. */
export const RULES: readonly RuleName[] = ['same_source_id', 'verified_email', 'verified_phone', 'identifier', 'email', 'phone'];

/** The defaults: the probabilistic matcher scores emails and phones; the deterministic one links on every shared key. */
export const DEFAULT_RULES: Record<'probabilistic' | 'deterministic', RuleName[]> = {
  probabilistic: ['verified_email', 'same_source_id', 'identifier'],
  deterministic: ['verified_email', 'verified_phone', 'same_source_id', 'identifier', 'email', 'phone'],
};

export interface RuleSettings {
  rules: RuleName[];
  sameSourceDuplicates: SameSourceDuplicates;
}

/** A pair of records a rule matches, the smaller id first; `key` is the shared `kind:value`. */
export interface RuleEdge {
  a: number;
  b: number;
  rule: RuleName;
  key: string;
}

/** A weak rule's edge may not join records kept apart as same-source duplicates; the others may. */
export const strengthOf = (rule: RuleName | 'golden_id'): JoinStrength => (rule === 'email' || rule === 'phone' ? 'weak' : 'strong');

const kindOf: Record<RuleName, string> = { verified_email: 'email', verified_phone: 'phone', same_source_id: 'identifier', identifier: 'identifier', email: 'email', phone: 'phone' };

/** The strongest enabled rule a shared key satisfies, if any. */
function ruleOf(row: { kind: string; verified: boolean; same_source: boolean }, enabled: ReadonlySet<RuleName>): RuleName | undefined {
  const candidates: RuleName[] =
    row.kind === 'identifier' ? [row.same_source ? 'same_source_id' : 'identifier'] : row.verified ? [`verified_${row.kind}` as RuleName, row.kind as RuleName] : [row.kind as RuleName];
  return candidates.find((rule) => enabled.has(rule));
}

const byRuleOrder = (x: RuleName, y: RuleName) => RULES.indexOf(x) - RULES.indexOf(y);

/** A pair of records sharing a match key, as sql.ruleKeyEdges reads them. */
export interface RuleKeyRow {
  left: string;
  right: string;
  kind: string;
  value: string;
  verified: boolean;
  same_source: boolean;
}

/**
 * The key kinds the rules compare, and those of them (email, phone) that only a verified rule compares: the unverified
 * copies of those need not be read.
 */
export function ruleKeyKinds(rules: readonly RuleName[]): { kinds: string[]; verifiedOnly: string[] } {
  const enabled = new Set(rules);
  return { kinds: [...new Set(rules.map((rule) => kindOf[rule]))], verifiedOnly: (['email', 'phone'] as const).filter((kind) => !enabled.has(kind)) };
}

/** The edges of `ids` under the enabled rules: per pair, the strongest rule that matches it (then the smallest key). */
export async function ruleEdges(db: Pool | PoolClient, ids: number[], rules: readonly RuleName[]): Promise<RuleEdge[]> {
  if (ids.length === 0 || rules.length === 0) return [];
  const { kinds, verifiedOnly } = ruleKeyKinds(rules);
  const { rows } = await db.query<RuleKeyRow>(sql.ruleKeyEdges(ids, kinds, verifiedOnly));
  return ruleEdgesOf(rows, rules);
}

/** ruleEdges from the shared keys read. */
export function ruleEdgesOf(rows: RuleKeyRow[], rules: readonly RuleName[]): RuleEdge[] {
  const enabled = new Set(rules);
  const best = new Map<string, RuleEdge>();
  for (const row of rows) {
    const rule = ruleOf(row, enabled);
    if (!rule) continue;
    const [x, y] = [Number(row.left), Number(row.right)];
    const edge = { a: Math.min(x, y), b: Math.max(x, y), rule, key: `${row.kind}:${row.value}` };
    const known = best.get(pairKey(x, y));
    if (!known || byRuleOrder(rule, known.rule) < 0 || (rule === known.rule && edge.key < known.key)) best.set(pairKey(x, y), edge);
  }
  return [...best.values()].sort((x, y) => x.a - y.a || x.b - y.b);
}

/** An identifier of a record (`scheme=value`) and the record's source, as sql.identifiersOf reads them. */
export interface IdentifierRow {
  id: string;
  source: string;
  value: string;
}

/**
 * Same-source duplicates among each group of records (records in different groups never meet, so their pairs are
 * left out): pairs of one source that hold identifiers of one scheme but share no value of it. Empty with `shared_key`.
 * `identifiers`: those of every record of the groups, when already read.
 */
export async function sameSourceDuplicates(
  db: Pool | PoolClient,
  groups: number[][],
  settings: RuleSettings,
  identifiers?: IdentifierRow[],
): Promise<Set<string>> {
  const pairs = new Set<string>();
  const candidates = groups.filter((group) => group.length > 1);
  if (settings.sameSourceDuplicates === 'shared_key' || candidates.length === 0) return pairs;
  const rows = identifiers ?? (await db.query<IdentifierRow>(sql.identifiersOf(candidates.flat()))).rows;
  // Per record, its ids by `source scheme`.
  const idsOf = new Map<number, Map<string, Set<string>>>();
  for (const row of rows) {
    const at = row.value.indexOf('=');
    const scope = `${row.source}\0${row.value.slice(0, at)}`;
    const own = idsOf.get(Number(row.id)) ?? new Map<string, Set<string>>();
    own.set(scope, (own.get(scope) ?? new Set()).add(row.value.slice(at + 1)));
    idsOf.set(Number(row.id), own);
  }
  const signature = (own: Map<string, Set<string>>) => JSON.stringify([...own].map(([scope, values]) => [scope, [...values].sort()]).sort());
  for (const group of candidates) {
    // Records holding the same ids (a customer and its thousand orders) are compared once, as one class.
    const classes = new Map<string, { own: Map<string, Set<string>>; ids: number[] }>();
    for (const id of group.filter((member) => idsOf.has(member))) {
      const own = idsOf.get(id)!;
      const key = signature(own);
      if (!classes.has(key)) classes.set(key, { own, ids: [] });
      classes.get(key)!.ids.push(id);
    }
    const list = [...classes.values()];
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const [x, y] = [list[i].own, list[j].own];
        const differ = [...x].some(([scope, values]) => y.has(scope) && ![...values].some((value) => y.get(scope)!.has(value)));
        if (differ) for (const a of list[i].ids) for (const b of list[j].ids) pairs.add(pairKey(a, b));
      }
    }
  }
  return pairs;
}

/** The rule that matches two records now, for explanations (`GET /v1/match`); null when none does. */
export async function ruleBetween(db: Pool | PoolClient, left: number, right: number, settings: RuleSettings): Promise<{ rule: RuleName; key: string } | null> {
  const edge = (await ruleEdges(db, [left], settings.rules)).find((found) => found.a === Math.min(left, right) && found.b === Math.max(left, right));
  return edge ? { rule: edge.rule, key: edge.key } : null;
}
