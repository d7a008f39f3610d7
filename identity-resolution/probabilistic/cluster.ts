/**
 * Clustering scored pairs into people. Pairs at or above the link threshold are taken strongest first
 * (ties by record index, so the result never depends on input order); each joins two clusters only if
 * - no cannot-link constraint holds between them, and
 * - the clusters agree as wholes: the mean match probability over every pair across them (scored on
 *   demand, blocked or not) reaches `minMeanCrossProbability`. This is the guard against chaining:
 *   A~B and B~C do not pull in C when A and C are clearly different people.
 * Must-link constraints are applied first and always hold. Pairs that would link but are refused by the
 * guard, and pairs between the review and link thresholds that end in different clusters, are returned
 * for review.
 */

export interface ScoredPair {
  i: number;
  j: number;
  weight: number;
  probability: number;
}

export type ReviewReason = 'between_thresholds' | 'chaining_guard';

export interface ClusterOptions {
  linkProbability: number;
  reviewProbability: number;
  minMeanCrossProbability: number;
  maxCrossPairs: number;
}

export interface IndexConstraints {
  mustLink: [number, number][];
  cannotLink: [number, number][];
}

export interface Clustering {
  /** Cluster number per record index: the smallest member index of its cluster. */
  clusterOf: Int32Array;
  /** The pairs that joined clusters (a spanning forest of each cluster). */
  links: ScoredPair[];
  reviews: (ScoredPair & { reason: ReviewReason })[];
  /** Must-link constraints that join records a cannot-link keeps apart: must-link wins, reported here. */
  conflicts: [number, number][];
}

/**
 * `probability(i, j)` scores any pair (0 for pairs that may never match, e.g. one source in link-only
 * runs); `pairs` are the candidate pairs with probability ≥ reviewProbability.
 */
export function clusterPairs(n: number, pairs: readonly ScoredPair[], probability: (i: number, j: number) => number, constraints: IndexConstraints, options: ClusterOptions): Clustering {
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const members: number[][] = Array.from({ length: n }, (_, i) => [i]);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]];
      i = parent[i];
    }
    return i;
  };
  const union = (a: number, b: number) => {
    const [small, large] = members[a].length < members[b].length ? [a, b] : [b, a];
    for (const x of members[small]) members[large].push(x);
    members[small] = [];
    parent[small] = large;
  };
  const cannot = new Map<number, number[]>();
  for (const [a, b] of constraints.cannotLink) {
    cannot.set(a, [...(cannot.get(a) ?? []), b]);
    cannot.set(b, [...(cannot.get(b) ?? []), a]);
  }
  const conflicts: [number, number][] = [];
  const links: ScoredPair[] = [];
  for (const [a, b] of [...constraints.mustLink].sort((x, y) => x[0] - y[0] || x[1] - y[1])) {
    const [ra, rb] = [find(a), find(b)];
    if (ra !== rb) {
      union(ra, rb);
      links.push({ i: Math.min(a, b), j: Math.max(a, b), weight: Infinity, probability: 1 });
    }
  }
  for (const [a, b] of constraints.cannotLink) if (find(a) === find(b)) conflicts.push([a, b]);

  const forbidden = (ra: number, rb: number): boolean => {
    const [small, other] = members[ra].length < members[rb].length ? [ra, rb] : [rb, ra];
    for (const x of members[small]) for (const y of cannot.get(x) ?? []) if (find(y) === other) return true;
    return false;
  };
  const agree = (ra: number, rb: number): boolean => {
    const [A, B] = [members[ra], members[rb]];
    const total = A.length * B.length;
    if (total === 1) return true;
    // Above the cap, every stride-th cross pair (deterministic) stands for the rest.
    const stride = Math.max(1, Math.ceil(total / options.maxCrossPairs));
    let sum = 0;
    let scored = 0;
    for (let t = 0; t < total; t += stride) {
      sum += probability(A[Math.floor(t / B.length)], B[t % B.length]);
      scored++;
    }
    return sum / scored >= options.minMeanCrossProbability;
  };

  const order = (x: ScoredPair, y: ScoredPair) => y.weight - x.weight || x.i - y.i || x.j - y.j;
  const strong = pairs.filter((p) => p.probability >= options.linkProbability).sort(order);
  const reviews: Clustering['reviews'] = [];
  for (const pair of strong) {
    const [ra, rb] = [find(pair.i), find(pair.j)];
    if (ra === rb) continue;
    if (forbidden(ra, rb)) continue;
    if (!agree(ra, rb)) {
      reviews.push({ ...pair, reason: 'chaining_guard' });
      continue;
    }
    union(ra, rb);
    links.push(pair);
  }
  for (const pair of pairs) {
    if (pair.probability >= options.linkProbability || pair.probability < options.reviewProbability) continue;
    if (find(pair.i) !== find(pair.j) && !forbidden(find(pair.i), find(pair.j))) reviews.push({ ...pair, reason: 'between_thresholds' });
  }
  // A review whose records ended up together after all is settled.
  const open = reviews.filter((r) => find(r.i) !== find(r.j)).sort(order);
  const clusterOf = new Int32Array(n);
  const smallest = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const root = find(i);
    if (!smallest.has(root)) smallest.set(root, i);
    clusterOf[i] = smallest.get(root)!;
  }
  return { clusterOf, links, reviews: open, conflicts };
}
