/**
 * The module boundary the matchers plug into: given seed records, return the components (groups of
 * records that are one customer) of everything linked to them, and of everything that shared a golden
 * record with them (so an old cluster can fall apart), and for each record what linked it.
 * This first matcher is deterministic: records that share a normalised email, phone or identifier, that
 * a steward linked (must-link), or that name a golden record (the hub's own records), are one customer.
 */
import type { PoolClient } from '../hub/db/database.js';
import { clusterMates, goldenIdEdges, mustLinkEdges, sharedKeyEdges } from './sql.js';

export interface MatchResult {
  components: number[][];
  /** Per record, the keys it shares with other members (the explanation of its membership). */
  links: Map<number, string[]>;
  /** Per record, the membership detail to store instead of `{ rule: 'shared_key', links }` (the probabilistic matcher's scores). */
  details?: Map<number, Record<string, unknown>>;
}

export type Matcher = (client: PoolClient, seed: number[]) => Promise<MatchResult>;

export const linkedComponents: Matcher = async (client, seed) => {
  const parent = new Map<number, number>();
  const find = (id: number): number => {
    let root = id;
    while (parent.get(root) !== root) root = parent.get(root)!;
    parent.set(id, root);
    return root;
  };
  const union = (a: number, b: number) => {
    const [rootA, rootB] = [find(a), find(b)];
    if (rootA !== rootB) parent.set(Math.max(rootA, rootB), Math.min(rootA, rootB));
  };
  const links = new Map<number, Set<string>>();
  let frontier = seed;
  for (const id of seed) parent.set(id, id);
  // Breadth-first over the match graph until no new record turns up.
  while (frontier.length > 0) {
    const next: number[] = [];
    const reach = (id: number) => {
      if (!parent.has(id)) {
        parent.set(id, id);
        next.push(id);
      }
    };
    const { rows: keyEdges } = await client.query<{ left: string; right: string; kind: string; value: string }>(sharedKeyEdges(frontier));
    for (const edge of keyEdges) {
      const [left, right] = [Number(edge.left), Number(edge.right)];
      reach(right);
      union(left, right);
      for (const id of [left, right]) {
        if (!links.has(id)) links.set(id, new Set());
        links.get(id)!.add(`${edge.kind}:${edge.value}`);
      }
    }
    for (const statement of [mustLinkEdges(frontier), goldenIdEdges(frontier)]) {
      const { rows: edges } = await client.query<{ left: string; right: string }>(statement);
      for (const edge of edges) {
        const [left, right] = [Number(edge.left), Number(edge.right)];
        reach(left);
        reach(right);
        union(left, right);
      }
    }
    // Former cluster mates are recomputed too, but only edges join them.
    const { rows: mates } = await client.query<{ id: string }>(clusterMates(frontier));
    for (const mate of mates) reach(Number(mate.id));
    frontier = next;
  }
  const groups = new Map<number, number[]>();
  for (const id of parent.keys()) {
    const root = find(id);
    if (!groups.has(root)) groups.set(root, []);
    groups.get(root)!.push(id);
  }
  return {
    components: [...groups.values()],
    links: new Map([...links].map(([id, keys]) => [id, [...keys].sort()])),
  };
};
