/**
 * The module boundary the matchers plug into: given seed records, return the components (groups of
 * records that are one customer) of everything linked to them, and of everything that shared a golden
 * record with them (so an old cluster can fall apart), and for each record what linked it.
 * This first matcher is deterministic: records that a deterministic rule matches (deterministic-rules.ts: by
 * default a shared normalised email, phone or identifier), that a steward linked (must-link), or that name a golden
 * record (the hub's own records), are one customer, unless a steward kept them apart (cannot-link). Must-links
 * always join; a strong rule's edge joins unless the union would put a cannot-link pair inside one group; a weak
 * one (an unverified email or phone) also not when it would put same-source duplicates together. Edges are joined
 * strong first, then in record-id order, so the same input always gives the same clusters.
 */
import type { PoolClient } from '../hub/db/database.js';
import { ConstrainedGroups, connectedComponents, pairKey, type JoinStrength } from './clusters.js';
import { DEFAULT_RULES, ruleEdges, sameSourceDuplicates, strengthOf, type RuleName, type RuleSettings } from './deterministic-rules.js';
import { canonicalRecords, clusterMates, constraintsOf, goldenIdEdges } from './sql.js';
import type { CanonicalRecord } from '../openapi/generated/canonical-record.gen.js';
import type { ResolutionContext } from './probabilistic-matcher.js';

export interface MatchResult {
  components: number[][];
  /** Per record, the keys it shares with other members (the explanation of its membership). */
  links: Map<number, string[]>;
  /** Per record, the membership detail to store instead of `{ rule: 'shared_key', links }`: each link's rule (and the probabilistic matcher's scores). */
  details?: Map<number, Record<string, unknown>>;
}

/** A canonical record as the resolver reads it. */
export interface CanonicalRow {
  source: string;
  data: CanonicalRecord;
  observed_at: Date;
}

/** Reads canonical records by id; ids without a canonical form are missing from the answer. */
export interface CanonicalReader {
  (ids: number[]): Promise<Map<number, CanonicalRow>>;
  /** What another statement of the pass read of `ids` (`rows`; an id without a row has no canonical form), not read again. */
  remember(ids: number[], rows: Map<number, CanonicalRow>): void;
}

/**
 * A reader for one resolution pass that reads each record once: nothing writes canonical records while the pass holds
 * the resolution lock, and the matcher and the resolver need the same records.
 */
export function canonicalReaderOf(client: PoolClient): CanonicalReader {
  const known = new Map<number, CanonicalRow | null>();
  const remember = (ids: number[], rows: Map<number, CanonicalRow>) => {
    for (const id of ids) known.set(id, rows.get(id) ?? null);
  };
  const read = async (ids: number[]) => {
    const missing = [...new Set(ids.filter((id) => !known.has(id)))];
    if (missing.length) {
      const { rows } = await client.query<CanonicalRow & { id: string }>(canonicalRecords(missing));
      remember(missing, new Map(rows.map((row) => [Number(row.id), { source: row.source, data: row.data, observed_at: row.observed_at }])));
    }
    const found = new Map<number, CanonicalRow>();
    for (const id of ids) {
      const row = known.get(id);
      if (row) found.set(id, row);
    }
    return found;
  };
  return Object.assign(read, { remember });
}

/**
 * Claims the golden records of `ids` (and `goldenIds`) for the pass and answers the current golden record of each of
 * `ids` that has one; throws when one of them changed since the pass started reading (resolve.ts reads it again).
 */
export type Claims = (ids: number[], goldenIds?: string[]) => Promise<Map<number, { goldenId: string; seq: number }>>;

/** What the resolver hands its matcher for one pass: its reader of canonical records, what it read at the start, and its claims. */
export interface ResolutionPass {
  canonical: CanonicalReader;
  context?: ResolutionContext;
  /** A matcher that writes (review items, say) claims the records it reached first: it must not write from a stale view. */
  claim?: Claims;
}

/** Without `pass` (a matcher called on its own), the matcher reads what it needs itself. */
export type Matcher = (client: PoolClient, seed: number[], pass?: ResolutionPass) => Promise<MatchResult>;

interface Edge {
  a: number;
  b: number;
  rule: RuleName | 'golden_id' | 'must_link';
  /** `kind:value` of a shared key; undefined for golden-id edges and must-links. */
  key?: string;
  strength: JoinStrength;
}

const edge = (left: string, right: string): { a: number; b: number } => {
  const [x, y] = [Number(left), Number(right)];
  return { a: Math.min(x, y), b: Math.max(x, y) };
};
const byRecords = (x: { a: number; b: number }, y: { a: number; b: number }) => x.a - y.a || x.b - y.b;
const strongFirst = (x: Edge, y: Edge) => Number(x.strength === 'weak') - Number(y.strength === 'weak') || byRecords(x, y) || (x.key ?? '').localeCompare(y.key ?? '');

export const deterministicMatcher = (settings: RuleSettings): Matcher => async (client, seed) => {
  const members = new Set<number>(seed);
  const edges: Edge[] = [];
  const mustLinks: { a: number; b: number }[] = [];
  const cannotLink = new Set<string>();
  let frontier = seed;
  // Breadth-first over the match graph until no new record turns up.
  while (frontier.length > 0) {
    const next: number[] = [];
    const reach = (id: number) => {
      if (!members.has(id)) {
        members.add(id);
        next.push(id);
      }
    };
    for (const found of await ruleEdges(client, frontier, settings.rules)) {
      edges.push({ ...found, strength: strengthOf(found.rule) });
      reach(found.a);
      reach(found.b);
    }
    const { rows: goldenEdges } = await client.query<{ left: string; right: string }>(goldenIdEdges(frontier));
    for (const row of goldenEdges) edges.push({ ...edge(row.left, row.right), rule: 'golden_id', strength: strengthOf('golden_id') });
    const { rows: constraints } = await client.query<{ kind: string; left: string; right: string }>(constraintsOf(frontier));
    for (const row of constraints) {
      if (row.kind === 'must_link') mustLinks.push(edge(row.left, row.right));
      else cannotLink.add(pairKey(Number(row.left), Number(row.right)));
    }
    // A kept-apart record is recomputed too: it may have to leave the cluster of the record it was kept apart from.
    for (const found of [...goldenEdges, ...constraints]) {
      reach(Number(found.left));
      reach(Number(found.right));
    }
    // Former cluster mates are recomputed too, but only edges join them.
    const { rows: mates } = await client.query<{ id: string }>(clusterMates(frontier));
    for (const mate of mates) reach(Number(mate.id));
    frontier = next;
  }

  const ids = [...members];
  const reachable = connectedComponents(ids, [...edges, ...mustLinks].map(({ a, b }) => [a, b]));
  const groups = new ConstrainedGroups(members, cannotLink, await sameSourceDuplicates(client, reachable, settings));
  const links = new Map<number, Map<number, Edge>>();
  const musts: Edge[] = mustLinks.sort(byRecords).map((must) => ({ ...must, rule: 'must_link', strength: 'must_link' }));
  for (const found of [...musts, ...edges.sort(strongFirst)]) {
    const { a, b } = found;
    if (!groups.join(a, b, found.strength)) continue;
    // What linked each record: the edges that joined (a spanning forest, so a large cluster stores few).
    for (const [self, other] of [[a, b], [b, a]]) links.set(self, (links.get(self) ?? new Map<number, Edge>()).set(other, found));
  }
  const partners = (id: number) => [...(links.get(id) ?? new Map<number, Edge>())].sort(([x], [y]) => x - y);
  return {
    components: groups.components(),
    links: new Map(ids.map((id) => [id, [...new Set(partners(id).flatMap(([, found]) => (found.key ? [found.key] : [])))].sort()])),
    details: new Map(ids.map((id) => [id, { rule: 'deterministic', links: partners(id).map(([other, found]) => ({ with: other, rule: found.rule, ...(found.key ? { key: found.key } : {}) })) }])),
  };
};

/** The deterministic matcher with its default rules. */
export const linkedComponents: Matcher = deterministicMatcher({ rules: DEFAULT_RULES.deterministic, sameSourceDuplicates: 'strong_evidence' });
