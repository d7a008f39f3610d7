/**
 * The module boundary the matchers plug into: given seed records, return the components (groups of
 * records that are one customer) of everything linked to them, and of everything that shared a golden
 * record with them (so an old cluster can fall apart), and for each record what linked it.
 * This first matcher is deterministic: records that share a normalised email, phone or identifier, that
 * a steward linked (must-link), or that name a golden record (the hub's own records), are one customer,
 * unless a steward kept them apart (cannot-link). Must-links always join; every other edge joins unless the
 * union would put a cannot-link pair inside one group. Edges are joined in record-id order, so the same
 * input always gives the same clusters.
 */
import type { PoolClient } from '../hub/db/database.js';
import { ConstrainedGroups, pairKey } from './clusters.js';
import { clusterMates, constraintsOf, goldenIdEdges, sharedKeyEdges } from './sql.js';

export interface MatchResult {
  components: number[][];
  /** Per record, the keys it shares with other members (the explanation of its membership). */
  links: Map<number, string[]>;
  /** Per record, the membership detail to store instead of `{ rule: 'shared_key', links }` (the probabilistic matcher's scores). */
  details?: Map<number, Record<string, unknown>>;
}

export type Matcher = (client: PoolClient, seed: number[]) => Promise<MatchResult>;

interface Edge {
  a: number;
  b: number;
  /** `kind:value` of a shared key; undefined for golden-id edges. */
  key?: string;
}

const edge = (left: string, right: string, key?: string): Edge => {
  const [x, y] = [Number(left), Number(right)];
  return { a: Math.min(x, y), b: Math.max(x, y), key };
};
const byRecords = (x: Edge, y: Edge) => x.a - y.a || x.b - y.b || (x.key ?? '').localeCompare(y.key ?? '');

export const linkedComponents: Matcher = async (client, seed) => {
  const members = new Set<number>(seed);
  const edges: Edge[] = [];
  const mustLinks: Edge[] = [];
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
    const { rows: keyEdges } = await client.query<{ left: string; right: string; kind: string; value: string }>(sharedKeyEdges(frontier));
    for (const row of keyEdges) edges.push(edge(row.left, row.right, `${row.kind}:${row.value}`));
    const { rows: goldenEdges } = await client.query<{ left: string; right: string }>(goldenIdEdges(frontier));
    for (const row of goldenEdges) edges.push(edge(row.left, row.right));
    const { rows: constraints } = await client.query<{ kind: string; left: string; right: string }>(constraintsOf(frontier));
    for (const row of constraints) {
      if (row.kind === 'must_link') mustLinks.push(edge(row.left, row.right));
      else cannotLink.add(pairKey(Number(row.left), Number(row.right)));
    }
    // A kept-apart record is recomputed too: it may have to leave the cluster of the record it was kept apart from.
    for (const found of [...keyEdges, ...goldenEdges, ...constraints]) {
      reach(Number(found.left));
      reach(Number(found.right));
    }
    // Former cluster mates are recomputed too, but only edges join them.
    const { rows: mates } = await client.query<{ id: string }>(clusterMates(frontier));
    for (const mate of mates) reach(Number(mate.id));
    frontier = next;
  }

  const groups = new ConstrainedGroups(members, cannotLink);
  for (const must of mustLinks.sort(byRecords)) groups.join(must.a, must.b, true);
  const links = new Map<number, Set<string>>();
  for (const { a, b, key } of edges.sort(byRecords)) {
    if (!groups.together(a, b) && !groups.join(a, b)) continue;
    if (!key) continue;
    for (const id of [a, b]) {
      if (!links.has(id)) links.set(id, new Set());
      links.get(id)!.add(key);
    }
  }
  return {
    components: groups.components(),
    links: new Map([...links].map(([id, keys]) => [id, [...keys].sort()])),
  };
};
