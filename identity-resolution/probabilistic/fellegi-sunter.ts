/**
 * Fellegi–Sunter scoring and its unsupervised training.
 * - u (agreement rates among non-matches) from random pairs: nearly all random pairs are non-matches.
 * - m (agreement rates among matches) by expectation–maximisation on the candidate pairs, once per
 *   training rule (`training.rules`), leaving out the comparisons that rule pre-selects (within a block of
 *   "same email" the email comparison says nothing about matches), then averaged over the rules, each
 *   counting once (as Splink averages its sessions).
 * - λ, the share of matches among all pairs, from a last E-step over every candidate pair.
 * Weights are log2(m/u) per level; an exact level with term frequencies uses the shared value's frequency
 * in place of u. Probability = the posterior from the prior odds λ/(1-λ) and the summed weights.
 */
import type { CandidatePairs, LinkType } from './blocking.js';
import { COMPARISONS, MISSING, type Comparison } from './comparisons.js';
import type { MatchConfig } from './config.js';
import { KEY_PARTS } from './blocking.js';
import type { PreparedRecord } from './match-record.js';

export interface LevelParameters {
  label: string;
  m: number;
  u: number;
}

export interface ModelParameters {
  /** Prior probability that two records, drawn at random, are one person. */
  lambda: number;
  comparisons: { name: string; levels: LevelParameters[] }[];
  /** See MatchConfig.sharedEvidence; absent: every comparison counts on its own. */
  sharedEvidence?: SharedEvidence;
}

/**
 * Attributes people share with their household or office (email, phone, address, …) are one piece of evidence,
 * not several, when the pair looks like two members of one household: then only the strongest of their positive
 * weights counts. `when`: per comparison, the level labels ("missing" too) one of which must hold, for every comparison listed.
 */
export interface SharedEvidence {
  comparisons: string[];
  when: Record<string, string[]>;
}

export interface SerialisedModel {
  parameters: ModelParameters;
  /** Per comparison, the frequency of each value that `byFrequency` does not hold (a model stored before it: all). */
  termFrequencies: Record<string, Record<string, number>>;
  minFrequency: number;
  /**
   * Per comparison, each frequency with its values, sorted and joined by newlines: a table entry per value made a
   * million records' model 70 MB of JSON that took seconds to read, while a few counts (seen once, twice, …) cover
   * most values. Values holding a newline stay in `termFrequencies`.
   */
  byFrequency?: Record<string, [number, string][]>;
}

/** Relative frequency of each value, per comparison with term-frequency adjustment. */
export type TermFrequencies = Record<string, Map<string, number>>;

export interface AttributeExplanation {
  comparison: string;
  /** -1 when a side is missing. */
  level: number;
  label: string;
  /** log2(m/u) of the level; 0 when missing. */
  weight: number;
  /** Added to the weight for an exact match on a value more or less common than average. */
  tfAdjustment: number;
  /** The shared value the adjustment is about. */
  value?: string;
  m?: number;
  u?: number;
  /** False when another attribute a household shares carries this evidence already (ModelParameters.sharedEvidence). */
  counted?: false;
}

export interface PairExplanation {
  left: string;
  right: string;
  attributes: AttributeExplanation[];
  /** log2 of the prior odds λ/(1-λ). */
  priorWeight: number;
  /** Sum of the attribute weights and adjustments (without the prior). */
  matchWeight: number;
  probability: number;
}

const clampLog = (x: number) => Math.log2(Math.min(Math.max(x, 1e-12), 1));

/** A trained model: parameters, term frequencies and the comparisons; scores and explains pairs. */
export class FellegiSunterModel {
  readonly comparisons: Comparison[];
  readonly priorWeight: number;
  private readonly weights: Float64Array[];
  private readonly tfOn: boolean[];
  private readonly shared: boolean[];
  /** Per comparison, the levels sharedEvidence.when allows (undefined: any level). */
  private readonly when: (Set<number> | undefined)[] | undefined;

  constructor(
    readonly parameters: ModelParameters,
    readonly termFrequencies: TermFrequencies,
    readonly minFrequency: number,
  ) {
    this.comparisons = parameters.comparisons.map((c) => COMPARISONS[c.name]);
    this.weights = parameters.comparisons.map((c) => Float64Array.from(c.levels, (level) => clampLog(level.m) - clampLog(level.u)));
    this.tfOn = parameters.comparisons.map((c) => c.name in termFrequencies);
    const shared = parameters.sharedEvidence;
    this.shared = parameters.comparisons.map((c) => shared?.comparisons.includes(c.name) ?? false);
    if (shared) {
      for (const name of [...shared.comparisons, ...Object.keys(shared.when)]) {
        if (!parameters.comparisons.some((c) => c.name === name)) throw new Error(`sharedEvidence names comparison "${name}", which the model does not have`);
      }
    }
    this.when = shared && Object.keys(shared.when).length > 0
      ? parameters.comparisons.map((c) => {
          const labels = shared.when[c.name];
          if (!labels) return undefined;
          return new Set(labels.map((label) => {
            if (label === 'missing') return MISSING;
            const level = c.levels.findIndex((l) => l.label === label);
            if (level < 0) throw new Error(`sharedEvidence: comparison "${c.name}" has no level "${label}"`);
            return level;
          }));
        })
      : undefined;
    this.priorWeight = Math.log2(parameters.lambda / (1 - parameters.lambda));
  }

  /** Plain JSON (parameters and frequency tables), for storing a trained model beside its configuration hash. */
  toJSON(): SerialisedModel {
    const termFrequencies: SerialisedModel['termFrequencies'] = {};
    const byFrequency: NonNullable<SerialisedModel['byFrequency']> = {};
    for (const [name, table] of Object.entries(this.termFrequencies)) {
      const groups = new Map<number, string[]>();
      const apart: [string, number][] = [];
      for (const [value, frequency] of [...table].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
        if (value.includes('\n')) apart.push([value, frequency]);
        else if (groups.has(frequency)) groups.get(frequency)!.push(value);
        else groups.set(frequency, [value]);
      }
      termFrequencies[name] = Object.fromEntries(apart);
      byFrequency[name] = [...groups].sort((a, b) => a[0] - b[0]).map(([frequency, values]) => [frequency, values.join('\n')]);
    }
    return { parameters: this.parameters, termFrequencies, minFrequency: this.minFrequency, byFrequency };
  }

  static fromJSON(json: SerialisedModel): FellegiSunterModel {
    const tf: TermFrequencies = {};
    for (const [name, table] of Object.entries(json.termFrequencies)) {
      const frequencies = new Map(Object.entries(table));
      for (const [frequency, values] of json.byFrequency?.[name] ?? []) for (const value of values.split('\n')) frequencies.set(value, frequency);
      tf[name] = frequencies;
    }
    return new FellegiSunterModel(json.parameters, tf, json.minFrequency);
  }

  /** The level of each comparison for a pair, into `out`. */
  levels(a: PreparedRecord, b: PreparedRecord, out: Int8Array): void {
    for (let c = 0; c < this.comparisons.length; c++) out[c] = this.comparisons[c].compare(a, b);
  }

  private tfAdjustment(c: number, a: PreparedRecord, b: PreparedRecord): { value?: string; adjustment: number } {
    const value = this.comparisons[c].termFrequency?.shared(a, b);
    return value === undefined ? { adjustment: 0 } : { value, adjustment: this.tfWeight(c, value) };
  }

  /** log2(u / frequency of the shared value): what an exact match on this value weighs more (or less) than the average. */
  private tfWeight(c: number, value: string): number {
    const frequency = Math.max(this.termFrequencies[this.comparisons[c].name].get(value) ?? this.minFrequency, this.minFrequency);
    return Math.log2(this.parameters.comparisons[c].levels[0].u / frequency);
  }

  /**
   * For a batch: per comparison whose records hold at most one value, each record's term-frequency weight (by its
   * `index`; NaN without a value), so scoring a million pairs reads an array instead of a frequency table per pair.
   * Valid because an exact match on such a comparison shares the left record's own value.
   */
  recordTfWeights(records: readonly PreparedRecord[]): (Float64Array | undefined)[] {
    return this.comparisons.map((comparison, c) => {
      const tf = comparison.termFrequency;
      if (!this.tfOn[c] || !tf || records.some((record) => tf.values(record).length > 1)) return undefined;
      const out = new Float64Array(records.length).fill(NaN);
      for (const record of records) {
        const [value] = tf.values(record);
        if (value !== undefined) out[record.index] = this.tfWeight(c, value);
      }
      return out;
    });
  }

  /**
   * Match weight of a pair whose levels are known: `levels[at]…` (from `levels`); `tfByRecord` from recordTfWeights
   * of the same records. A batch passes one array of every pair's levels and an offset, not a view per pair.
   */
  weightOf(a: PreparedRecord, b: PreparedRecord, levels: ArrayLike<number>, tfByRecord?: readonly (Float64Array | undefined)[], at = 0): number {
    const household = this.sharedOnce(levels, at);
    let total = 0;
    let strongestShared = 0;
    for (let c = 0; c < this.comparisons.length; c++) {
      const level = levels[at + c];
      if (level === MISSING) continue;
      let weight = this.weights[c][level];
      if (level === 0 && this.tfOn[c]) {
        const value = this.comparisons[c].termFrequency?.shared(a, b);
        const known = tfByRecord?.[c];
        if (value !== undefined) weight += known ? known[a.index] : this.tfWeight(c, value);
      }
      if (household && this.shared[c] && weight > 0) strongestShared = Math.max(strongestShared, weight);
      else total += weight;
    }
    return total + strongestShared;
  }

  /** Whether the pair's levels are those of two members of one household (`parameters.sharedEvidence.when`). */
  private sharedOnce(levels: ArrayLike<number>, at = 0): boolean {
    if (!this.when) return false;
    for (let c = 0; c < this.comparisons.length; c++) if (this.when[c] && !this.when[c]!.has(levels[at + c])) return false;
    return true;
  }

  private scratch = new Int8Array(32);
  /** Match weight of a pair (without the prior). */
  weight(a: PreparedRecord, b: PreparedRecord): number {
    const levels = this.scratch.subarray(0, this.comparisons.length);
    this.levels(a, b, levels);
    return this.weightOf(a, b, levels);
  }

  probability(matchWeight: number): number {
    return 1 / (1 + 2 ** -(matchWeight + this.priorWeight));
  }

  explain(a: PreparedRecord, b: PreparedRecord): PairExplanation {
    const levels = new Int8Array(this.comparisons.length);
    this.levels(a, b, levels);
    const attributes = this.comparisons.map((comparison, c): AttributeExplanation => {
      const level = levels[c];
      if (level === MISSING) return { comparison: comparison.name, level, label: 'missing', weight: 0, tfAdjustment: 0 };
      const params = this.parameters.comparisons[c].levels[level];
      const tf = level === 0 && this.tfOn[c] ? this.tfAdjustment(c, a, b) : { adjustment: 0 };
      return { comparison: comparison.name, level, label: params.label, weight: this.weights[c][level], tfAdjustment: tf.adjustment, value: tf.value, m: params.m, u: params.u };
    });
    if (this.sharedOnce(levels)) {
      // Household evidence: the strongest shared attribute counts, the others are marked as not counted.
      const positive = attributes.filter((x, c) => this.shared[c] && x.weight + x.tfAdjustment > 0);
      const strongest = positive.reduce<AttributeExplanation | undefined>((best, x) => (!best || x.weight + x.tfAdjustment > best.weight + best.tfAdjustment ? x : best), undefined);
      for (const x of positive) if (x !== strongest) x.counted = false;
    }
    const matchWeight = attributes.reduce((sum, a) => sum + (a.counted === false ? 0 : a.weight + a.tfAdjustment), 0);
    return { left: a.id, right: b.id, attributes, priorWeight: this.priorWeight, matchWeight, probability: this.probability(matchWeight) };
  }
}

/** Value frequencies per comparison, over the records that have a value. */
export function termFrequencies(records: readonly PreparedRecord[], comparisonNames: readonly string[]): TermFrequencies {
  const out: TermFrequencies = {};
  for (const name of comparisonNames) {
    const comparison = COMPARISONS[name];
    if (!comparison?.termFrequency) continue;
    const counts = new Map<string, number>();
    let total = 0;
    for (const record of records) {
      for (const value of comparison.termFrequency.values(record)) {
        counts.set(value, (counts.get(value) ?? 0) + 1);
        total++;
      }
    }
    for (const [value, count] of counts) counts.set(value, count / total);
    out[name] = counts;
  }
  return out;
}

/** Mulberry32: a small seeded generator, so training is repeatable. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Number of pairs a run compares in principle (before blocking). */
export function totalPairs(records: readonly PreparedRecord[], linkType: LinkType): number {
  const n = records.length;
  if (linkType !== 'link_only') return (n * (n - 1)) / 2;
  const perSource = new Map<string, number>();
  for (const r of records) perSource.set(r.source, (perSource.get(r.source) ?? 0) + 1);
  let same = 0;
  for (const count of perSource.values()) same += (count * (count - 1)) / 2;
  return (n * (n - 1)) / 2 - same;
}

/** u per comparison level: level frequencies among random pairs (add-one smoothed). */
export function estimateU(records: readonly PreparedRecord[], comparisons: readonly Comparison[], linkType: LinkType, samplePairs: number, seed: number): number[][] {
  const counts = comparisons.map((c) => new Float64Array(c.levels.length).fill(1));
  const n = records.length;
  const add = (a: PreparedRecord, b: PreparedRecord) => {
    if (linkType === 'link_only' && a.source === b.source) return;
    for (let c = 0; c < comparisons.length; c++) {
      const level = comparisons[c].compare(a, b);
      if (level !== MISSING) counts[c][level]++;
    }
  };
  if ((n * (n - 1)) / 2 <= samplePairs) {
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) add(records[i], records[j]);
  } else {
    const random = seededRandom(seed);
    for (let s = 0; s < samplePairs; s++) {
      const i = Math.floor(random() * n);
      let j = Math.floor(random() * (n - 1));
      if (j >= i) j++;
      add(records[i], records[j]);
    }
  }
  return counts.map((row) => {
    const total = row.reduce((a, b) => a + b, 0);
    return Array.from(row, (count) => count / total);
  });
}

export interface Patterns {
  /** levels per pattern, K per row */
  levels: Int8Array;
  counts: Float64Array;
  size: number;
}

/** Distinct level vectors and, per pair, which one it has: EM then costs per pattern, not per pair. */
export function indexPatterns(levels: Int8Array, k: number, count: number): { patternOf: Int32Array; levels: Int8Array; size: number } {
  const index = new Map<number, number>();
  const rows: number[] = [];
  if (k > 12) throw new Error("at most 12 comparisons");
  const patternOf = new Int32Array(count);
  for (let p = 0; p < count; p++) {
    // Mixed-radix key: up to 16 levels per comparison and 12 comparisons fit a double exactly.
    let key = 0;
    for (let c = 0; c < k; c++) key = key * 17 + (levels[p * k + c] + 1);
    let at = index.get(key);
    if (at === undefined) {
      at = index.size;
      index.set(key, at);
      for (let c = 0; c < k; c++) rows.push(levels[p * k + c]);
    }
    patternOf[p] = at;
  }
  return { patternOf, levels: Int8Array.from(rows), size: index.size };
}

function countPatterns(indexed: { patternOf: Int32Array; levels: Int8Array; size: number }, include: (p: number) => boolean): Patterns {
  const counts = new Float64Array(indexed.size);
  for (let p = 0; p < indexed.patternOf.length; p++) if (include(p)) counts[indexed.patternOf[p]]++;
  return { levels: indexed.levels, counts, size: indexed.size };
}

interface EmResult {
  m: number[][];
  lambda: number;
  /** Expected matches with a value, per comparison (the weight of this rule's m in the average). */
  support: number[];
  iterations: number;
}

/**
 * EM for m and λ with u fixed. `active[c]` false leaves comparison c out (the blocking rule's own).
 * Exported for the tests, which check it recovers known m on synthetic data.
 */
export function expectationMaximisation(patterns: Patterns, u: number[][], mStart: number[][], active: boolean[], options: { maxIterations: number; tolerance: number; lambdaStart?: number }): EmResult {
  const k = u.length;
  let m = mStart.map((row) => [...row]);
  let lambda = options.lambdaStart ?? 0.1;
  let support = new Array<number>(k).fill(0);
  let iterations = 0;
  for (; iterations < options.maxIterations; iterations++) {
    const sums = u.map((row) => new Float64Array(row.length));
    const logM = m.map((row) => row.map((x) => Math.log(Math.max(x, 1e-12))));
    const logU = u.map((row) => row.map((x) => Math.log(Math.max(x, 1e-12))));
    let matches = 0;
    let total = 0;
    for (let p = 0; p < patterns.size; p++) {
      let lm = Math.log(lambda);
      let lu = Math.log(1 - lambda);
      for (let c = 0; c < k; c++) {
        const level = patterns.levels[p * k + c];
        if (level === MISSING || !active[c]) continue;
        lm += logM[c][level];
        lu += logU[c][level];
      }
      const posterior = 1 / (1 + Math.exp(lu - lm));
      const weight = posterior * patterns.counts[p];
      matches += weight;
      total += patterns.counts[p];
      for (let c = 0; c < k; c++) {
        const level = patterns.levels[p * k + c];
        if (level !== MISSING && active[c]) sums[c][level] += weight;
      }
    }
    let change = 0;
    const next = m.map((row, c) => {
      if (!active[c]) return row;
      const sum = sums[c].reduce((a, b) => a + b, 0);
      support[c] = sum;
      if (sum <= 0) return row;
      // A tiny pseudo-count keeps a level never seen among matches from weighing minus infinity.
      const fresh = Array.from(sums[c], (s) => (s + 1e-3) / (sum + 1e-3 * row.length));
      fresh.forEach((x, l) => (change = Math.max(change, Math.abs(x - row[l]))));
      return fresh;
    });
    const nextLambda = Math.min(Math.max(matches / total, 1e-9), 1 - 1e-9);
    change = Math.max(change, Math.abs(nextLambda - lambda));
    m = next;
    lambda = nextLambda;
    if (change < options.tolerance) {
      iterations++;
      break;
    }
  }
  support = support.map((s, c) => (active[c] ? s : 0));
  return { m, lambda, support, iterations };
}

/** Starting m: most of the mass on the first level, falling geometrically, so EM starts on the "match" side. */
function startingM(levelCount: number): number[] {
  const raw = Array.from({ length: levelCount }, (_, l) => (l === levelCount - 1 ? 0.05 : 0.9 * 0.25 ** l));
  const sum = raw.reduce((a, b) => a + b, 0);
  return raw.map((x) => x / sum);
}

export interface TrainingReport {
  rules: { name: string; pairs: number; patterns: number; lambda: number; iterations: number; trained: string[] }[];
  candidateLambda: number;
}

/** Fits m, u and λ on the candidate pairs, without labels. `levels` holds K levels per candidate pair. */
export function trainModel(
  records: readonly PreparedRecord[],
  pairs: CandidatePairs,
  levels: Int8Array,
  config: MatchConfig,
  linkType: LinkType,
): { model: FellegiSunterModel; report: TrainingReport } {
  const comparisons = config.comparisons.map((name) => {
    const comparison = COMPARISONS[name];
    if (!comparison) throw new Error(`unknown comparison "${name}"`);
    return comparison;
  });
  for (const name of config.training.rules) if (!config.blocking.rules.some((rule) => rule.name === name)) throw new Error(`training rule "${name}" is not a blocking rule`);
  const k = comparisons.length;
  const u = estimateU(records, comparisons, linkType, config.training.uSamplePairs, config.training.seed);
  const mSum = comparisons.map((c) => new Float64Array(c.levels.length));
  const mSessions = new Float64Array(k);
  const report: TrainingReport = { rules: [], candidateLambda: 0 };
  const indexed = indexPatterns(levels, k, pairs.count);
  config.blocking.rules.forEach((rule, r) => {
    const bit = 1 << r;
    const patterns = countPatterns(indexed, (p) => (pairs.rules[p] & bit) !== 0);
    const pairCount = patterns.counts.reduce((a, b) => a + b, 0);
    const excluded = new Set(rule.parts.map((part) => KEY_PARTS[part].comparison));
    const active = comparisons.map((c) => !excluded.has(c.name));
    if (pairCount < config.training.minRulePairs || !config.training.rules.includes(rule.name)) {
      report.rules.push({ name: rule.name, pairs: pairCount, patterns: patterns.size, lambda: NaN, iterations: 0, trained: [] });
      return;
    }
    const result = expectationMaximisation(patterns, u, comparisons.map((c) => startingM(c.levels.length)), active, {
      maxIterations: config.training.emMaxIterations,
      tolerance: config.training.emTolerance,
      lambdaStart: 0.3,
    });
    result.m.forEach((row, c) => {
      // A rule that found next to no matches with a value of c says nothing about c.
      if (!active[c] || result.support[c] < 1) return;
      // Each rule's estimate counts once (as Splink averages its sessions): weighted by expected matches, a rule with
      // large loose blocks, whose EM takes look-alikes for matches, would outvote the rest as the data grows.
      row.forEach((x, l) => (mSum[c][l] += x));
      mSessions[c] += 1;
    });
    report.rules.push({ name: rule.name, pairs: pairCount, patterns: patterns.size, lambda: result.lambda, iterations: result.iterations, trained: comparisons.filter((_, c) => active[c] && result.support[c] > 0).map((c) => c.name) });
  });
  const m = comparisons.map((c, i) => (mSessions[i] > 0 ? Array.from(mSum[i], (x) => x / mSessions[i]) : startingM(c.levels.length)));

  // λ among candidates with m and u fixed, then scaled to all pairs.
  const all = countPatterns(indexed, () => true);
  const fixed = expectationMaximisation(all, u, m, comparisons.map(() => true), { maxIterations: 1, tolerance: 0, lambdaStart: 0.5 });
  let candidateLambda = fixed.lambda;
  for (let i = 0; i < 100; i++) {
    const step = lambdaStep(all, u, m, candidateLambda);
    if (Math.abs(step - candidateLambda) < 1e-9) break;
    candidateLambda = step;
  }
  report.candidateLambda = candidateLambda;
  const lambda = Math.min(Math.max((candidateLambda * pairs.count) / Math.max(totalPairs(records, linkType), 1), 1e-12), 0.5);
  const parameters: ModelParameters = {
    lambda,
    comparisons: comparisons.map((c, i) => ({ name: c.name, levels: c.levels.map((label, l) => ({ label, m: m[i][l], u: u[i][l] })) })),
    sharedEvidence: config.sharedEvidence,
  };
  const tf = termFrequencies(records, config.termFrequency.comparisons.filter((name) => config.comparisons.includes(name)));
  return { model: new FellegiSunterModel(parameters, tf, config.termFrequency.minFrequency), report };
}

function lambdaStep(patterns: Patterns, u: number[][], m: number[][], lambda: number): number {
  const k = u.length;
  let matches = 0;
  let total = 0;
  for (let p = 0; p < patterns.size; p++) {
    let lr = 0;
    for (let c = 0; c < k; c++) {
      const level = patterns.levels[p * k + c];
      if (level !== MISSING) lr += Math.log(Math.max(m[c][level], 1e-12)) - Math.log(Math.max(u[c][level], 1e-12));
    }
    const posterior = 1 / (1 + Math.exp(-(lr + Math.log(lambda / (1 - lambda)))));
    matches += posterior * patterns.counts[p];
    total += patterns.counts[p];
  }
  return Math.min(Math.max(matches / total, 1e-9), 1 - 1e-9);
}
