import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { febrlSlice } from './blocking.test.js';
import { clusterPairs, type ClusterOptions, type ScoredPair } from './cluster.js';
import { DEFAULT_CONFIG } from './config.js';
import { seededRandom } from './fellegi-sunter.js';
import { resolveBatch } from './index.js';

interface ChainFixture {
  records: string[];
  pairs: { left: string; right: string; probability: number }[];
  expectedClusters: string[][];
  expectedReviews: { left: string; right: string; reason: string }[];
}

const chain: ChainFixture = JSON.parse(readFileSync(new URL('./fixtures/chain.json', import.meta.url), 'utf8'));
const options: ClusterOptions = { ...DEFAULT_CONFIG.thresholds, ...DEFAULT_CONFIG.clustering };

/** Clusters the fixture: candidate pairs are those ≥ review; every pair can be scored on demand (absent = 0). */
function clusterFixture(constraints: { mustLink?: [string, string][]; cannotLink?: [string, string][] } = {}) {
  const index = new Map(chain.records.map((id, i) => [id, i]));
  const probability = new Map<string, number>();
  for (const p of chain.pairs) {
    const [i, j] = [index.get(p.left)!, index.get(p.right)!].sort((a, b) => a - b);
    probability.set(`${i}|${j}`, p.probability);
  }
  const lookup = (a: number, b: number) => probability.get(`${Math.min(a, b)}|${Math.max(a, b)}`) ?? 0;
  const scored: ScoredPair[] = [...probability].flatMap(([key, p]) => {
    const [i, j] = key.split('|').map(Number);
    return p >= options.reviewProbability ? [{ i, j, probability: p, weight: Math.log2(p / (1 - p)) }] : [];
  });
  const toIndex = (pairs: [string, string][] = []) => pairs.map(([a, b]) => [index.get(a)!, index.get(b)!] as [number, number]);
  const result = clusterPairs(chain.records.length, scored, lookup, { mustLink: toIndex(constraints.mustLink), cannotLink: toIndex(constraints.cannotLink) }, options);
  const clusters = new Map<number, string[]>();
  chain.records.forEach((id, i) => clusters.set(result.clusterOf[i], [...(clusters.get(result.clusterOf[i]) ?? []), id]));
  return { clusters: [...clusters.values()], reviews: result.reviews.map((r) => ({ left: chain.records[r.i], right: chain.records[r.j], reason: r.reason })), conflicts: result.conflicts };
}

describe('clustering', () => {
  it('does not chain A~B~C into one person when A≁C, and keeps a true triangle whole', () => {
    const { clusters, reviews } = clusterFixture();
    expect(clusters).toEqual(chain.expectedClusters);
    expect(reviews).toEqual(chain.expectedReviews);
  });

  it('without the guard the same pairs chain (the fixture is a real chain)', () => {
    const saved = options.minMeanCrossProbability;
    options.minMeanCrossProbability = 0;
    try {
      const { clusters } = clusterFixture();
      expect(clusters).toContainEqual(['b1', 'b2', 'c1']);
      expect(clusters).toContainEqual(['d1', 'd2', 'd3', 'd4']);
    } finally {
      options.minMeanCrossProbability = saved;
    }
  });

  it('must-link and cannot-link constraints win over the scores', () => {
    const { clusters, conflicts } = clusterFixture({ mustLink: [['c1', 'b1']], cannotLink: [['a1', 'a3']] });
    // b1 and c1 score 0.001, but the steward said they are one person (the guard does not apply).
    expect(clusters).toContainEqual(['b1', 'b2', 'c1']);
    // a3 links to a2 strongly, but a1 and a3 may never meet: a3 stays apart.
    expect(clusters).toContainEqual(['a1', 'a2']);
    expect(clusters).toContainEqual(['a3']);
    expect(conflicts).toEqual([]);
  });

  it('reports a must-link that overrides a cannot-link', () => {
    const { clusters, conflicts } = clusterFixture({ mustLink: [['b1', 'c1']], cannotLink: [['b1', 'c1']] });
    expect(clusters).toContainEqual(['b1', 'b2', 'c1']);
    expect(conflicts).toHaveLength(1);
  });
});

describe('resolveBatch on the Febrl slice', () => {
  const { records, truth } = febrlSlice();
  const config = { ...DEFAULT_CONFIG, training: { ...DEFAULT_CONFIG.training, uSamplePairs: 20_000 } };

  it('finds the people, unsupervised, with precision', () => {
    const result = resolveBatch(records, { config });
    let predicted = 0;
    let correct = 0;
    for (const cluster of result.clusters) {
      for (let x = 0; x < cluster.length; x++) {
        for (let y = x + 1; y < cluster.length; y++) {
          predicted++;
          if (truth.get(cluster[x]) === truth.get(cluster[y])) correct++;
        }
      }
    }
    expect(correct / predicted).toBeGreaterThan(0.98);
    expect(result.clusters.length).toBeLessThan(90); // 58 people in 195 records
    for (const link of result.links) expect(link.probability).toBeGreaterThanOrEqual(config.thresholds.linkProbability);
  });

  it('is deterministic: shuffled input gives the same clusters, links and reviews', () => {
    const first = resolveBatch(records, { config });
    const random = seededRandom(99);
    const shuffled = [...records].map((r) => [random(), r] as const).sort((a, b) => a[0] - b[0]).map(([, r]) => r);
    const second = resolveBatch(shuffled, { config });
    expect(second.clusters).toEqual(first.clusters);
    expect(second.links).toEqual(first.links);
    expect(second.reviews).toEqual(first.reviews);
    expect(second.model.parameters).toEqual(first.model.parameters);
  });

  it('steward constraints hold in a full run', () => {
    const base = resolveBatch(records, { config });
    const together = base.clusters.find((c) => c.length >= 2)!;
    const apart = [base.clusters[0][0], base.clusters[1][0]] as [string, string];
    const result = resolveBatch(records, { config, constraints: { cannotLink: [[together[0], together[1]]], mustLink: [apart] } });
    const clusterOf = (id: string) => result.clusters.findIndex((c) => c.includes(id));
    expect(clusterOf(together[0])).not.toBe(clusterOf(together[1]));
    expect(clusterOf(apart[0])).toBe(clusterOf(apart[1]));
  });
});
