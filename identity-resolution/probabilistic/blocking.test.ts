import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { blockingKeys, candidatePairs, ruleKeys } from './blocking.js';
import { DEFAULT_CONFIG } from './config.js';
import { prepareRecord, type MatchRecord } from './match-record.js';

/** The committed Febrl slice, mapped as the benchmark maps Febrl (soc_sec_id is not in the slice). */
export function febrlSlice(): { records: MatchRecord[]; truth: Map<string, string> } {
  const [header, ...lines] = readFileSync(new URL('./fixtures/febrl3-slice.csv', import.meta.url), 'utf8').trim().split('\n');
  const columns = header.split(',');
  const rows = lines.map((line) => Object.fromEntries(line.split(',').map((v, i) => [columns[i], v])));
  return {
    records: rows.map((row) => ({
      id: row.rec_id,
      source: 'febrl',
      givenName: row.given_name || undefined,
      familyName: row.surname || undefined,
      birthDate: row.date_of_birth || undefined,
      emails: [],
      phones: [],
      postcode: row.postcode || undefined,
      city: row.suburb || undefined,
      address: [row.street_number, row.address_1, row.address_2].filter(Boolean).join(' ') || undefined,
    })),
    truth: new Map(rows.map((row) => [row.rec_id, row.rec_id.split('-')[1]])),
  };
}

describe('blocking', () => {
  it('keeps nearly every true pair of the Febrl slice and few others', () => {
    const { records, truth } = febrlSlice();
    const prepared = records.map(prepareRecord);
    const pairs = candidatePairs(prepared, DEFAULT_CONFIG.blocking.rules, { maxBlockSize: DEFAULT_CONFIG.blocking.maxBlockSize, linkType: 'dedupe' });
    const seen = new Set<string>();
    let kept = 0;
    for (let p = 0; p < pairs.count; p++) {
      const [a, b] = [prepared[pairs.left[p]].id, prepared[pairs.right[p]].id];
      const key = `${a}|${b}`;
      expect(seen.has(key)).toBe(false); // each pair once
      seen.add(key);
      if (truth.get(a) === truth.get(b)) kept++;
    }
    let truePairs = 0;
    const sizes = new Map<string, number>();
    for (const t of truth.values()) sizes.set(t, (sizes.get(t) ?? 0) + 1);
    for (const n of sizes.values()) truePairs += (n * (n - 1)) / 2;
    expect(truePairs).toBeGreaterThan(150);
    // 0.834 when written (these 58 people have more, and noisier, duplicates than the whole file: 0.971 there);
    // clustering recovers most of the rest transitively.
    expect(kept / truePairs).toBeGreaterThan(0.82);
    // Far fewer than all 18,915 pairs.
    expect(pairs.count).toBeLessThan(truePairs * 1.5);
    expect(pairs.stats.pairs).toBe(pairs.count);
  });

  it('skips oversized blocks and reports them', () => {
    const records = Array.from({ length: 30 }, (_, i) => prepareRecord({ id: String(i), emails: ['office@example.com'], phones: [] }, i));
    const capped = candidatePairs(records, [{ name: 'email', parts: ['email'] }], { maxBlockSize: 20, linkType: 'dedupe' });
    expect(capped.count).toBe(0);
    expect(capped.stats.rules[0]).toMatchObject({ oversizedBlocks: 1, recordsInOversizedBlocks: 30 });
    const open = candidatePairs(records, [{ name: 'email', parts: ['email'] }], { maxBlockSize: 30, linkType: 'dedupe' });
    expect(open.count).toBe(435);
  });

  it('gives exactly the pairs that share a kept block, with the rules they share (against a brute-force count)', () => {
    const { records } = febrlSlice();
    const prepared = records.map(prepareRecord);
    const { rules } = DEFAULT_CONFIG.blocking;
    const maxBlockSize = 3; // small enough that some blocks of the slice are oversized
    const pairs = candidatePairs(prepared, rules, { maxBlockSize, linkType: 'dedupe' });
    const expected = new Map<string, number>();
    rules.forEach((rule, r) => {
      const blocks = new Map<string, number[]>();
      prepared.forEach((record, i) => ruleKeys(rule, record).forEach((key) => blocks.set(key, [...(blocks.get(key) ?? []), i])));
      for (const block of blocks.values()) {
        if (block.length > maxBlockSize) continue;
        for (let x = 0; x < block.length; x++) for (let y = x + 1; y < block.length; y++) expected.set(`${block[x]}|${block[y]}`, (expected.get(`${block[x]}|${block[y]}`) ?? 0) | (1 << r));
      }
    });
    expect(pairs.stats.rules.some((rule) => rule.oversizedBlocks > 0)).toBe(true);
    const actual = new Map<string, number>();
    for (let p = 0; p < pairs.count; p++) actual.set(`${pairs.left[p]}|${pairs.right[p]}`, pairs.rules[p]);
    expect(actual).toEqual(expected);
    expect(pairs.stats.rules.reduce((sum, rule) => sum + rule.newPairs, 0)).toBe(pairs.count);
  });

  it('a shared office phone over the block cap brings no pairs, while a personal one does', () => {
    const staff = Array.from({ length: 60 }, (_, i) => prepareRecord({ id: `s${i}`, givenName: `name${i}`, familyName: `family${i}`, emails: [], phones: ['+44 20 7946 0000'] }, i));
    const pair = [60, 61].map((i) => prepareRecord({ id: `p${i}`, emails: [], phones: ['+44 7700 900123'] }, i));
    const pairs = candidatePairs([...staff, ...pair], [{ name: 'phone', parts: ['phone'] }], { maxBlockSize: DEFAULT_CONFIG.blocking.maxBlockSize, linkType: 'dedupe' });
    expect(DEFAULT_CONFIG.blocking.maxBlockSize).toBeLessThan(60);
    expect([...pairs.left].map((i, p) => [i, pairs.right[p]])).toEqual([[60, 61]]);
    expect(pairs.stats.rules[0]).toMatchObject({ oversizedBlocks: 1, recordsInOversizedBlocks: 60, blocks: 1 });
  });

  it('link_only compares records of different sources only', () => {
    const records = ['a', 'a', 'b'].map((source, i) => prepareRecord({ id: String(i), source, emails: ['x@example.com'], phones: [] }, i));
    const pairs = candidatePairs(records, [{ name: 'email', parts: ['email'] }], { maxBlockSize: 10, linkType: 'link_only' });
    expect(Array.from(pairs.left)).toEqual([0, 1]);
    expect(Array.from(pairs.right)).toEqual([2, 2]);
  });

  it('gives the keys a record is filed under, for incremental matching', () => {
    const record = prepareRecord({ id: '1', givenName: 'Anna', familyName: 'Berg', birthDate: '1980-01-02', postcode: '10115', emails: ['anna@example.com'], phones: [] }, 0);
    const keys = blockingKeys(DEFAULT_CONFIG.blocking.rules, record);
    expect(keys).toContain('email:anna@example.com');
    expect(keys).toContain('birth_date+given_initial:1980-01-02\u0001a');
  });
});
