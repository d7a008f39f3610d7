/**
 * What customers and organisations share: grouping records into components, and deciding which existing
 * cluster ids (golden records, organisations) the new components keep.
 */

/** A record's current cluster: its id and sequence (the smaller sequence is the older cluster). */
export interface ClusterRef {
  id: string;
  seq: number;
}

/** The connected components of `ids` under `edges`, each sorted, in the order of their smallest id. */
export function connectedComponents(ids: number[], edges: [number, number][]): number[][] {
  const parent = new Map(ids.map((id) => [id, id]));
  const find = (id: number): number => {
    let root = id;
    while (parent.get(root) !== root) root = parent.get(root)!;
    parent.set(id, root);
    return root;
  };
  for (const [left, right] of edges) {
    const [a, b] = [find(left), find(right)];
    if (a !== b) parent.set(Math.max(a, b), Math.min(a, b));
  }
  const groups = new Map<number, number[]>();
  for (const id of ids) groups.set(find(id), [...(groups.get(find(id)) ?? []), id]);
  return [...groups.values()].map((group) => group.sort((a, b) => a - b)).sort((a, b) => a[0] - b[0]);
}

/**
 * For each component, the old clusters it keeps, oldest first: an old cluster stays with the component that
 * holds most of its members; on a tie, with one where no other old cluster holds more members (so a tie
 * never makes a merge), then with the earlier component. The first one kept survives; the others are merged
 * into it. A component that keeps none gets a new cluster; an old cluster no component keeps is retired.
 */
export function keptClusters(components: number[][], clusterOf: (id: number) => ClusterRef | undefined): ClusterRef[][] {
  const keeper = new Map<string, { component: number; count: number; dominant: boolean; cluster: ClusterRef }>();
  components.forEach((component, index) => {
    const counts = new Map<string, { count: number; cluster: ClusterRef }>();
    for (const id of component) {
      const cluster = clusterOf(id);
      if (cluster) counts.set(cluster.id, { count: (counts.get(cluster.id)?.count ?? 0) + 1, cluster });
    }
    const largest = Math.max(0, ...[...counts.values()].map((entry) => entry.count));
    for (const [clusterId, { count, cluster }] of counts) {
      const best = keeper.get(clusterId);
      const dominant = count === largest;
      if (!best || count > best.count || (count === best.count && dominant && !best.dominant)) keeper.set(clusterId, { component: index, count, dominant, cluster });
    }
  });
  return components.map((_, index) =>
    [...keeper.values()]
      .filter((entry) => entry.component === index)
      .map((entry) => entry.cluster)
      .sort((a, b) => a.seq - b.seq),
  );
}

/** A pair of records as one key, the smaller id first. */
export const pairKey = (a: number, b: number) => (a < b ? `${a}:${b}` : `${b}:${a}`);

/**
 * How strongly a join is backed: a steward's must-link always joins; a strong rule (deterministic-rules.ts) joins
 * unless a steward's cannot-link keeps the groups apart; a weak one (a shared unverified email or phone, a score)
 * also yields to the pairs kept apart softly (two records their own source holds as different customers).
 */
export type JoinStrength = 'must_link' | 'strong' | 'weak';

/**
 * Groups of records joined pair by pair, where steward cannot-links (`pairKey`s) keep groups apart: a forced join
 * (a must-link) always joins; any other only when no cannot-link pair would end up in one group, and a weak one
 * only when no `softlyApart` pair would either.
 */
export class ConstrainedGroups {
  private readonly groupOf = new Map<number, Set<number>>();

  constructor(
    ids: Iterable<number>,
    private readonly cannotLink: ReadonlySet<string>,
    private readonly softlyApart: ReadonlySet<string> = new Set(),
  ) {
    for (const id of ids) this.groupOf.set(id, new Set([id]));
  }

  group(id: number): ReadonlySet<number> {
    return this.groupOf.get(id)!;
  }

  together(a: number, b: number): boolean {
    return this.groupOf.get(a) === this.groupOf.get(b);
  }

  /** Joins the groups of `a` and `b`; false when they were one already or a constraint keeps them apart. */
  join(a: number, b: number, strength: JoinStrength = 'weak'): boolean {
    const [ga, gb] = [this.groupOf.get(a)!, this.groupOf.get(b)!];
    if (ga === gb) return false;
    if (strength !== 'must_link' && this.separated(ga, gb, this.cannotLink)) return false;
    if (strength === 'weak' && this.separated(ga, gb, this.softlyApart)) return false;
    const [into, from] = ga.size >= gb.size ? [ga, gb] : [gb, ga];
    for (const id of from) {
      into.add(id);
      this.groupOf.set(id, into);
    }
    return true;
  }

  /** The groups, each sorted. */
  components(): number[][] {
    return [...new Set(this.groupOf.values())].map((group) => [...group].sort((x, y) => x - y));
  }

  private separated(ga: Set<number>, gb: Set<number>, pairs: ReadonlySet<string>): boolean {
    if (pairs.size === 0) return false;
    for (const x of ga) for (const y of gb) if (pairs.has(pairKey(x, y))) return true;
    return false;
  }
}
