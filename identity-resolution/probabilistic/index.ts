/**
 * The probabilistic matcher's public surface: match records in, clusters, review pairs and explanations
 * out. Pure and synchronous; the hub wraps it behind its `Matcher` boundary (identity-resolution/matcher.ts).
 * Deterministic: records are ordered by id first, training draws from a seeded generator, and clustering
 * breaks ties by record order, so the same records give the same clusters whatever their input order.
 */
import { candidatePairs, type BlockingStats, type CandidatePairs, type LinkType } from './blocking.js';
import { clusterPairs, type ReviewReason, type ScoredPair } from './cluster.js';
import { DEFAULT_CONFIG, configHash, type MatchConfig } from './config.js';
import { trainModel, FellegiSunterModel, type PairExplanation, type TrainingReport } from './fellegi-sunter.js';
import { prepareRecord, type MatchRecord, type PreparedRecord } from './match-record.js';
import { COMPARISONS } from './comparisons.js';

export { blockingKeys, candidatePairs, type BlockingRule, type LinkType } from './blocking.js';
export { clusterPairs } from './cluster.js';
export { COMPARISONS, type Comparison } from './comparisons.js';
export { DEFAULT_CONFIG, configHash, type MatchConfig } from './config.js';
export { FellegiSunterModel, trainModel, type PairExplanation, type ModelParameters, type SerialisedModel } from './fellegi-sunter.js';
export { prepareRecord, toMatchRecord, type MatchRecord, type PreparedRecord } from './match-record.js';

/** Steward decisions by record id; they always win over the scores. */
export interface Constraints {
  mustLink?: [string, string][];
  cannotLink?: [string, string][];
}

export interface BatchOptions {
  config?: MatchConfig;
  /** `link_only`: records of one source are different people (linking two clean files). Default `link_and_dedupe`. */
  linkType?: LinkType;
  constraints?: Constraints;
  /** A model trained before (e.g. on the whole hub): scores with it instead of training on these records. */
  model?: FellegiSunterModel;
  /** For benchmarks: called after each phase, and with the candidate pairs (to measure blocking recall). */
  hooks?: { phase?(name: string): void; candidates?(pairs: CandidatePairs, records: readonly PreparedRecord[]): void };
}

export interface PairResult {
  left: string;
  right: string;
  weight: number;
  probability: number;
}

export interface BatchResult {
  configHash: string;
  /** Record ids per cluster, each sorted; clusters ordered by their first id. Singletons included. */
  clusters: string[][];
  /** The pairs that joined each cluster: the explanation of membership. */
  links: PairResult[];
  /** For the steward: pairs between the thresholds in different clusters, and pairs the chaining guard refused. */
  reviews: (PairResult & { reason: ReviewReason })[];
  /** Must-links that override a cannot-link. */
  conflicts: [string, string][];
  model: FellegiSunterModel;
  stats: { records: number; blocking: BlockingStats; training: TrainingReport; pairsAboveReview: number; millis: Record<string, number> };
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Trains on `records` (unsupervised; unless `options.model` is given), scores their candidate pairs and clusters them. */
export function resolveBatch(input: readonly MatchRecord[], options: BatchOptions = {}): BatchResult {
  const config = options.config ?? DEFAULT_CONFIG;
  const linkType = options.linkType ?? 'link_and_dedupe';
  const millis: Record<string, number> = {};
  let clock = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    millis[name] = Math.round(now - clock);
    clock = now;
    options.hooks?.phase?.(name);
  };
  const sorted = [...input].sort(byId);
  for (let i = 1; i < sorted.length; i++) if (sorted[i].id === sorted[i - 1].id) throw new Error(`duplicate record id "${sorted[i].id}"`);
  const records = sorted.map(prepareRecord);
  lap('prepare');
  const pairs = candidatePairs(records, config.blocking.rules, { maxBlockSize: config.blocking.maxBlockSize, linkType });
  lap('blocking');
  options.hooks?.candidates?.(pairs, records);
  const k = config.comparisons.length;
  const levels = new Int8Array(pairs.count * k);
  // Levels once per candidate pair; training and scoring both read them.
  const comparisons = config.comparisons.map((name) => COMPARISONS[name]);
  for (let p = 0; p < pairs.count; p++) {
    const a = records[pairs.left[p]];
    const b = records[pairs.right[p]];
    for (let c = 0; c < k; c++) levels[p * k + c] = comparisons[c].compare(a, b);
  }
  lap('compare');
  const { model, report } = options.model ? { model: options.model, report: { rules: [], candidateLambda: NaN } } : trainModel(records, pairs, levels, config, linkType);
  lap('train');
  const scored: ScoredPair[] = [];
  const tfByRecord = model.recordTfWeights(records);
  for (let p = 0; p < pairs.count; p++) {
    const i = pairs.left[p];
    const j = pairs.right[p];
    const weight = model.weightOf(records[i], records[j], levels, tfByRecord, p * k);
    const probability = model.probability(weight);
    if (probability >= config.thresholds.reviewProbability) scored.push({ i, j, weight, probability });
  }
  lap('score');
  const index = new Map(records.map((r) => [r.id, r.index]));
  const toIndex = (pairsById: [string, string][] | undefined): [number, number][] =>
    (pairsById ?? []).flatMap(([a, b]) => (index.has(a) && index.has(b) && a !== b ? [[index.get(a)!, index.get(b)!] as [number, number]] : []));
  const sameSourceNever = linkType === 'link_only';
  const clustering = clusterPairs(
    records.length,
    scored,
    (i, j) => (sameSourceNever && records[i].source === records[j].source ? 0 : model.probability(model.weight(records[i], records[j]))),
    { mustLink: toIndex(options.constraints?.mustLink), cannotLink: toIndex(options.constraints?.cannotLink) },
    { ...config.thresholds, ...config.clustering },
  );
  lap('cluster');
  const groups = new Map<number, string[]>();
  for (let i = 0; i < records.length; i++) {
    const at = clustering.clusterOf[i];
    const group = groups.get(at);
    if (group) group.push(records[i].id);
    else groups.set(at, [records[i].id]);
  }
  const idOf = (pair: ScoredPair): PairResult => ({ left: records[pair.i].id, right: records[pair.j].id, weight: pair.weight, probability: pair.probability });
  return {
    configHash: configHash(config),
    clusters: [...groups.values()],
    links: clustering.links.map(idOf),
    reviews: clustering.reviews.map((r) => ({ ...idOf(r), reason: r.reason })),
    conflicts: clustering.conflicts.map(([a, b]) => [records[a].id, records[b].id]),
    model,
    stats: { records: records.length, blocking: pairs.stats, training: report, pairsAboveReview: scored.length, millis },
  };
}

/** Per attribute the level, its weight and term-frequency adjustment, and the total weight and probability of two records. */
export function explainPair(model: FellegiSunterModel, left: MatchRecord, right: MatchRecord): PairExplanation {
  return model.explain(prepareRecord(left, 0), prepareRecord(right, 1));
}

/** Match probability of two prepared records under a trained model (for incremental matching against candidates). */
export function matchProbability(model: FellegiSunterModel, left: PreparedRecord, right: PreparedRecord): number {
  return model.probability(model.weight(left, right));
}
