import { describe, expect, it } from 'vitest';
import { expectationMaximisation, FellegiSunterModel, indexPatterns, seededRandom, termFrequencies, type ModelParameters } from './fellegi-sunter.js';
import { prepareRecord, type MatchRecord } from './match-record.js';

/** Draws levels for `n` pairs: a share λ from the m distributions, the rest from u. */
function synthetic(n: number, lambda: number, m: number[][], u: number[][], seed: number) {
  const random = seededRandom(seed);
  const draw = (p: number[]) => {
    let x = random();
    for (let l = 0; l < p.length; l++) if ((x -= p[l]) < 0) return l;
    return p.length - 1;
  };
  const k = m.length;
  const levels = new Int8Array(n * k);
  for (let i = 0; i < n; i++) {
    const match = random() < lambda;
    for (let c = 0; c < k; c++) levels[i * k + c] = random() < 0.1 ? -1 : draw(match ? m[c] : u[c]);
  }
  const indexed = indexPatterns(levels, k, n);
  const counts = new Float64Array(indexed.size);
  for (const p of indexed.patternOf) counts[p]++;
  return { levels: indexed.levels, counts, size: indexed.size };
}

describe('expectation–maximisation', () => {
  it('recovers known m and λ from unlabelled pairs, u fixed', () => {
    const m = [
      [0.8, 0.15, 0.05],
      [0.7, 0.2, 0.1],
      [0.9, 0.05, 0.05],
      [0.6, 0.3, 0.1],
    ];
    const u = [
      [0.02, 0.08, 0.9],
      [0.05, 0.15, 0.8],
      [0.01, 0.04, 0.95],
      [0.1, 0.2, 0.7],
    ];
    const patterns = synthetic(40_000, 0.2, m, u, 42);
    const start = m.map(() => [0.6, 0.3, 0.1]);
    const result = expectationMaximisation(patterns, u, start, [true, true, true, true], { maxIterations: 200, tolerance: 1e-7, lambdaStart: 0.5 });
    expect(result.lambda).toBeCloseTo(0.2, 1.5);
    result.m.forEach((row, c) => row.forEach((x, l) => expect(Math.abs(x - m[c][l])).toBeLessThan(0.03)));
  });

  it('leaves an inactive comparison (the blocking rule’s own) as it was', () => {
    const u = [[0.1, 0.9], [0.1, 0.9]];
    const patterns = synthetic(2000, 0.3, [[0.9, 0.1], [0.9, 0.1]], u, 7);
    const result = expectationMaximisation(patterns, u, [[0.5, 0.5], [0.5, 0.5]], [true, false], { maxIterations: 50, tolerance: 1e-7 });
    expect(result.m[1]).toEqual([0.5, 0.5]);
    expect(result.m[0][0]).toBeGreaterThan(0.8);
  });
});

const people = (rows: [string, string, string][]): MatchRecord[] => rows.map(([id, givenName, familyName]) => ({ id, givenName, familyName, emails: [], phones: [] }));

describe('term-frequency adjustment and explanation', () => {
  const records = people([
    ['1', 'anna', 'smith'],
    ['2', 'ben', 'smith'],
    ['3', 'carl', 'smith'],
    ['4', 'dora', 'smith'],
    ['5', 'eva', 'zbigniew'],
    ['6', 'fred', 'zbigniew'],
    ['7', 'gus', 'jones'],
    ['8', 'hal', 'brown'],
  ]).map(prepareRecord);
  const tf = termFrequencies(records, ['family_name']);
  const parameters: ModelParameters = {
    lambda: 0.01,
    comparisons: [
      { name: 'given_name', levels: ['exact', 'l1', 'l2', 'l3', 'l4', 'different'].map((label, l) => ({ label, m: l === 0 ? 0.9 : l === 5 ? 0.02 : 0.02, u: l === 0 ? 0.01 : l === 5 ? 0.95 : 0.01 })) },
      { name: 'family_name', levels: ['exact', 'l1', 'l2', 'l3', 'l4', 'l5', 'different'].map((label, l) => ({ label, m: l === 0 ? 0.9 : 0.1 / 6, u: l === 0 ? 0.2 : 0.8 / 6 })) },
    ],
  };
  const model = new FellegiSunterModel(parameters, tf, 1e-6);

  it('a common surname weighs less than a rare one', () => {
    const common = model.explain(records[0], records[1]).attributes[1];
    const rare = model.explain(records[4], records[5]).attributes[1];
    expect(common.level).toBe(0);
    expect(rare.level).toBe(0);
    expect(common.value).toBe('smith');
    expect(common.weight).toBe(rare.weight);
    expect(common.weight + common.tfAdjustment).toBeLessThan(rare.weight + rare.tfAdjustment);
    // smith is half the family names: frequency 0.5 instead of the average u 0.2.
    expect(common.tfAdjustment).toBeCloseTo(Math.log2(0.2 / 0.5), 10);
  });

  it('the explanation adds up to the weight and probability the model scores', () => {
    const explanation = model.explain(records[0], records[1]);
    const sum = explanation.attributes.reduce((s, a) => s + a.weight + a.tfAdjustment, 0);
    expect(explanation.matchWeight).toBeCloseTo(sum, 12);
    expect(explanation.matchWeight).toBeCloseTo(model.weight(records[0], records[1]), 12);
    expect(explanation.probability).toBeCloseTo(1 / (1 + 2 ** -(sum + Math.log2(0.01 / 0.99))), 12);
    expect(explanation.attributes.map((a) => [a.comparison, a.label])).toEqual([
      ['given_name', 'different'],
      ['family_name', 'exact'],
    ]);
  });

  it('survives a JSON round trip', () => {
    const copy = FellegiSunterModel.fromJSON(JSON.parse(JSON.stringify(model)));
    expect(copy.explain(records[0], records[1])).toEqual(model.explain(records[0], records[1]));
  });

  it('a missing attribute contributes nothing', () => {
    const [a, b] = [prepareRecord({ id: 'a', familyName: 'jones', emails: [], phones: [] }, 0), records[6]];
    const given = model.explain(a, b).attributes[0];
    expect(given).toMatchObject({ level: -1, weight: 0, tfAdjustment: 0 });
  });
});
