/**
 * Blocking: only records that share the key of at least one rule are compared. The candidate pairs are
 * the union over the rules; a pair is emitted once, by the first rule that finds it (later rules re-check
 * the earlier ones' keys instead of keeping a set of seen pairs, which would not fit 16M entries).
 * A block larger than `maxBlockSize` is skipped and reported: a shared office phone or "john smith" in a
 * million records says little and would cost millions of comparisons.
 */
import type { PreparedRecord } from './match-record.js';

export interface KeyPart {
  /** The comparison this key part pre-selects; EM does not learn that comparison's m from this rule's pairs. */
  comparison: string;
  values(record: PreparedRecord): readonly string[];
}

const one = (value: string | undefined): string[] => (value ? [value] : []);

export const KEY_PARTS: Record<string, KeyPart> = {
  email: { comparison: 'email', values: (r) => r.emails },
  email_user: { comparison: 'email', values: (r) => r.emailLocals.filter((local) => local.length >= 4) },
  phone: { comparison: 'phone', values: (r) => r.phones },
  given_initial: { comparison: 'given_name', values: (r) => one(r.given?.[0]) },
  given_prefix3: { comparison: 'given_name', values: (r) => one(r.given?.slice(0, 3)) },
  given_nysiis: { comparison: 'given_name', values: (r) => one(r.givenCode) },
  family: { comparison: 'family_name', values: (r) => one(r.family) },
  family_initial: { comparison: 'family_name', values: (r) => one(r.family?.[0]) },
  // Both names' codes in either order, so "dent bailee" and "bailee dent" share a block.
  name_codes: { comparison: 'family_name', values: (r) => (r.givenCode && r.familyCode ? [[r.givenCode, r.familyCode].sort().join(' ')] : []) },
  family_prefix3: { comparison: 'family_name', values: (r) => one(r.family?.slice(0, 3)) },
  family_nysiis: { comparison: 'family_name', values: (r) => one(r.familyCode) },
  full_name: { comparison: 'full_name', values: (r) => one(r.full) },
  birth_date: { comparison: 'birth_date', values: (r) => one(r.birth?.iso) },
  birth_year: { comparison: 'birth_date', values: (r) => one(r.birth ? String(r.birth.year) : undefined) },
  postcode: { comparison: 'postcode', values: (r) => one(r.postcode) },
  city: { comparison: 'city', values: (r) => one(r.city) },
  house_number: { comparison: 'address', values: (r) => one(r.houseNumber) },
  organisation: { comparison: 'organisation', values: (r) => one(r.organisation) },
};

export interface BlockingRule {
  name: string;
  /** Names of KEY_PARTS; the key is their values joined (every combination for multi-valued parts). */
  parts: string[];
}

/** The keys one record has under a rule (none when a part is missing). */
export function ruleKeys(rule: BlockingRule, record: PreparedRecord): string[] {
  let keys = [''];
  for (const name of rule.parts) {
    const part = KEY_PARTS[name];
    if (!part) throw new Error(`unknown blocking key part "${name}"`);
    const values = part.values(record);
    if (values.length === 0) return [];
    keys = keys.flatMap((key) => values.map((value) => (key ? `${key}\u0001${value}` : value)));
  }
  return [...new Set(keys)].sort();
}

/** The keys a record is filed under, one string per rule and key ("rule:key"): what the hub stores for incremental matching. */
export function blockingKeys(rules: readonly BlockingRule[], record: PreparedRecord): string[] {
  return rules.flatMap((rule) => ruleKeys(rule, record).map((key) => `${rule.name}:${key}`));
}

export type LinkType = 'dedupe' | 'link_only' | 'link_and_dedupe';

export interface CandidatePairs {
  left: Int32Array;
  right: Int32Array;
  /** Bit r set: the pair shares a (not oversized) key of rule r. EM trains per rule on these. */
  rules: Uint32Array;
  count: number;
  stats: BlockingStats;
}

export interface BlockingStats {
  rules: { name: string; blocks: number; oversizedBlocks: number; recordsInOversizedBlocks: number; newPairs: number; pairs: number }[];
  pairs: number;
}

class PairBuffer {
  left = new Int32Array(1024);
  right = new Int32Array(1024);
  rules = new Uint32Array(1024);
  count = 0;
  push(i: number, j: number, mask: number) {
    if (this.count === this.left.length) {
      const grow = <T extends Int32Array | Uint32Array>(array: T, make: (n: number) => T): T => {
        const next = make(array.length * 2);
        next.set(array);
        return next;
      };
      this.left = grow(this.left, (n) => new Int32Array(n));
      this.right = grow(this.right, (n) => new Int32Array(n));
      this.rules = grow(this.rules, (n) => new Uint32Array(n));
    }
    this.left[this.count] = i;
    this.right[this.count] = j;
    this.rules[this.count] = mask;
    this.count++;
  }
}

/** Candidate pairs of `records` (indexed by their `index`), i < j, each once. */
export function candidatePairs(records: readonly PreparedRecord[], rules: readonly BlockingRule[], options: { maxBlockSize: number; linkType: LinkType }): CandidatePairs {
  if (rules.length > 32) throw new Error('at most 32 blocking rules');
  // keys[r][i]: record i's keys under rule r, without the oversized ones.
  const keys: string[][][] = [];
  const stats: BlockingStats = { rules: [], pairs: 0 };
  const blocksPerRule: Map<string, number[]>[] = [];
  for (const rule of rules) {
    const blocks = new Map<string, number[]>();
    const perRecord = records.map((record) => ruleKeys(rule, record));
    perRecord.forEach((list, i) => {
      for (const key of list) {
        const block = blocks.get(key);
        if (block) block.push(i);
        else blocks.set(key, [i]);
      }
    });
    let oversizedBlocks = 0;
    let recordsInOversizedBlocks = 0;
    for (const [key, block] of blocks) {
      if (block.length > options.maxBlockSize) {
        oversizedBlocks++;
        recordsInOversizedBlocks += block.length;
        blocks.delete(key);
      } else if (block.length < 2) blocks.delete(key);
    }
    keys.push(perRecord.map((list) => list.filter((key) => blocks.has(key))));
    blocksPerRule.push(blocks);
    stats.rules.push({ name: rule.name, blocks: blocks.size, oversizedBlocks, recordsInOversizedBlocks, newPairs: 0, pairs: 0 });
  }
  const shareKey = (r: number, i: number, j: number, before?: string): boolean => {
    const [a, b] = [keys[r][i], keys[r][j]];
    for (const key of a) {
      if (before !== undefined && key >= before) break;
      if (b.includes(key)) return true;
    }
    return false;
  };
  const crossOnly = options.linkType === 'link_only';
  const out = new PairBuffer();
  for (let r = 0; r < rules.length; r++) {
    for (const [key, block] of blocksPerRule[r]) {
      for (let x = 0; x < block.length; x++) {
        const i = block[x];
        for (let y = x + 1; y < block.length; y++) {
          const j = block[y];
          if (crossOnly && records[i].source === records[j].source) continue;
          // Emitted already by an earlier rule, or by an earlier key of this rule?
          let seen = shareKey(r, i, j, key);
          for (let q = 0; q < r && !seen; q++) seen = shareKey(q, i, j);
          if (seen) continue;
          let mask = 1 << r;
          for (let q = r + 1; q < rules.length; q++) if (shareKey(q, i, j)) mask |= 1 << q;
          out.push(i, j, mask >>> 0);
          stats.rules[r].newPairs++;
        }
      }
    }
  }
  for (let p = 0; p < out.count; p++) for (let r = 0; r < rules.length; r++) if (out.rules[p] & (1 << r)) stats.rules[r].pairs++;
  stats.pairs = out.count;
  return { left: out.left.subarray(0, out.count), right: out.right.subarray(0, out.count), rules: out.rules.subarray(0, out.count), count: out.count, stats };
}
