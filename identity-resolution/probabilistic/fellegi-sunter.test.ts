import { describe, expect, it } from 'vitest';
import { expectationMaximisation, FellegiSunterModel, indexPatterns, seededRandom, termFrequencies, type ModelParameters } from './fellegi-sunter.js';
import { prepareRecord, type MatchRecord } from './match-record.js';
import { COMPARISONS } from './comparisons.js';
import { DEFAULT_CONFIG } from './config.js';

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

  it('is stored with the values of each frequency in one string and read back with the same frequencies', () => {
    // A value holding a newline (the separator) stays in the table.
    const frequencies = { family_name: new Map([...tf.family_name, ['o\nbrien', tf.family_name.get('jones')!]]) };
    const json = new FellegiSunterModel(parameters, frequencies, 1e-6).toJSON();
    expect(json.byFrequency).toEqual({ family_name: [[1 / 8, 'brown\njones'], [1 / 4, 'zbigniew'], [1 / 2, 'smith']] });
    expect(json.termFrequencies).toEqual({ family_name: { 'o\nbrien': 1 / 8 } });
    const restored = FellegiSunterModel.fromJSON(JSON.parse(JSON.stringify(json)));
    expect(restored.termFrequencies.family_name).toEqual(frequencies.family_name);
    expect(restored.weight(records[6], records[7])).toBe(model.weight(records[6], records[7]));
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

  it('a batch scores with per-record term-frequency weights exactly as pair by pair', () => {
    // With given and family names swapped in one record: an exact given name that shares no value.
    const batch = [...records, prepareRecord({ id: '9', givenName: 'smith', familyName: 'anna', emails: [], phones: [] }, 8)];
    const both = new FellegiSunterModel(parameters, termFrequencies(batch, ['given_name', 'family_name']), 1e-6);
    const weights = both.recordTfWeights(batch);
    expect(weights.map((w) => w !== undefined)).toEqual([true, true]);
    const levels = new Int8Array(2 * batch.length * batch.length);
    let checked = 0;
    for (const a of batch) {
      for (const b of batch) {
        const at = 2 * (a.index * batch.length + b.index);
        both.levels(a, b, levels.subarray(at, at + 2));
        expect(both.weightOf(a, b, levels, weights, at)).toBeCloseTo(both.weight(a, b), 12);
        checked++;
      }
    }
    expect(checked).toBe(81);
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

/** m and u per level of the real comparisons: most m on the first level, most u on the last. */
function parametersOf(names: string[], lambda: number, sharedEvidence?: ModelParameters['sharedEvidence']): ModelParameters {
  return {
    lambda,
    sharedEvidence,
    comparisons: names.map((name) => {
      const labels = COMPARISONS[name].levels;
      const last = labels.length - 1;
      const m = labels.map((_, l) => (l === 0 ? 0.9 : l === last ? 0.02 : 0.08 / (last - 1)));
      const u = labels.map((_, l) => (l === 0 ? 0.001 : l === last ? 0.97 : 0.029 / (last - 1)));
      return { name, levels: labels.map((label, l) => ({ label, m: m[l], u: u[l] })) };
    }),
  };
}

describe('a value many records share is weak evidence', () => {
  // 300 colleagues behind one office line, one person's mobile in two records, and 4,000 other numbers.
  const only = (id: string, phone: string) => ({ id, emails: [], phones: [phone] });
  const office = Array.from({ length: 300 }, (_, i) => only(`staff${i}`, '+44 20 7946 0000'));
  const mobile = [only('call', '+44 7700 900123'), only('shop', '+44 7700 900123')];
  const others = Array.from({ length: 4000 }, (_, i) => only(`other${i}`, `+44 7700 ${String(100000 + i)}`));
  const records = [...office, ...mobile, ...others].map(prepareRecord);
  // Prior odds 1:64: a shared number has to say more than that.
  const model = new FellegiSunterModel(parametersOf(['phone'], 1 / 65), termFrequencies(records, ['phone']), 1e-6);

  it('a shared office phone does not link two colleagues; a personal mobile links its two records', () => {
    const colleagues = model.explain(records[0], records[1]);
    const person = model.explain(records[300], records[301]);
    expect(colleagues.attributes[0]).toMatchObject({ label: 'exact', value: '442079460000' });
    expect(colleagues.attributes[0].tfAdjustment).toBeCloseTo(Math.log2(0.001 / (300 / 4302)), 10);
    expect(colleagues.probability).toBeLessThan(DEFAULT_CONFIG.thresholds.reviewProbability);
    expect(person.probability).toBeGreaterThanOrEqual(DEFAULT_CONFIG.thresholds.linkProbability);
    // Without the adjustment the office line would link them.
    const plain = new FellegiSunterModel(parametersOf(['phone'], 1 / 65), {}, 1e-6);
    expect(plain.explain(records[0], records[1]).probability).toBeGreaterThanOrEqual(DEFAULT_CONFIG.thresholds.linkProbability);
  });
});

describe('household evidence counts once', () => {
  const names = ['given_name', 'family_name', 'birth_date', 'email', 'address', 'postcode', 'city'];
  const shared = { comparisons: ['email', 'address', 'postcode', 'city'], when: DEFAULT_CONFIG.sharedEvidence.when };
  const home = { familyName: 'Berg', emails: ['berg.family@example.com'], phones: [], address: '12 High Street', postcode: 'AB1 2CD', city: 'York' };
  const [anna, carl, annaAgain] = [
    prepareRecord({ id: 'anna', givenName: 'Anna', ...home }, 0),
    prepareRecord({ id: 'carl', givenName: 'Carl', ...home }, 1),
    prepareRecord({ id: 'anna2', givenName: 'Anna', ...home }, 2),
  ];
  const model = new FellegiSunterModel(parametersOf(names, 1e-4, shared), {}, 1e-6);
  const independent = new FellegiSunterModel(parametersOf(names, 1e-4), {}, 1e-6);

  it('two members of one household (same surname and home, different given names) do not link', () => {
    const household = model.explain(anna, carl);
    const exact = Math.log2(0.9 / 0.001);
    // Given name different, family name exact, and one of the four shared attributes.
    expect(household.matchWeight).toBeCloseTo(Math.log2(0.02 / 0.97) + exact + exact, 10);
    expect(household.attributes.filter((a) => a.counted === false).map((a) => a.comparison)).toEqual(['address', 'postcode', 'city']);
    expect(household.matchWeight).toBeCloseTo(model.weight(anna, carl), 12);
    expect(household.probability).toBeLessThan(DEFAULT_CONFIG.thresholds.linkProbability);
    // Scored as independent, the four shared attributes would outweigh the different given name.
    expect(independent.explain(anna, carl).probability).toBeGreaterThanOrEqual(DEFAULT_CONFIG.thresholds.linkProbability);
  });

  it('the same given name, or a birth date that agrees, counts every attribute', () => {
    const same = model.explain(anna, annaAgain);
    expect(same.attributes.some((a) => a.counted === false)).toBe(false);
    expect(same.matchWeight).toBeCloseTo(independent.weight(anna, annaAgain), 12);
    const born = (record: typeof anna, birthDate: string) => prepareRecord({ id: record.id, givenName: record.given, ...home, birthDate }, 0);
    expect(model.weight(born(anna, '1980-01-02'), born(carl, '1980-01-02'))).toBeCloseTo(independent.weight(born(anna, '1980-01-02'), born(carl, '1980-01-02')), 12);
  });

  it('names the level a configuration gets wrong', () => {
    expect(() => new FellegiSunterModel(parametersOf(names, 1e-4, { comparisons: ['email'], when: { given_name: ['nope'] } }), {}, 1e-6)).toThrow(/given_name.*nope/);
    expect(() => new FellegiSunterModel(parametersOf(names, 1e-4, { comparisons: ['phone'], when: {} }), {}, 1e-6)).toThrow(/phone/);
  });
});
