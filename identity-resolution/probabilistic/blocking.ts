/**
 * Blocking: only records that share the key of at least one rule are compared. The candidate pairs are
 * the union over the rules; a pair is emitted once (counted as new for the first rule that finds it), with
 * the set of rules whose blocks it shares.
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
  // At most one value per part (most records, most rules): one key, no combinations to build or de-duplicate.
  let key = '';
  for (let p = 0; p < rule.parts.length; p++) {
    const part = KEY_PARTS[rule.parts[p]];
    if (!part) throw new Error(`unknown blocking key part "${rule.parts[p]}"`);
    const values = part.values(record);
    if (values.length === 0) return [];
    if (values.length > 1) return combinedKeys(rule, record);
    key = p === 0 ? values[0] : `${key}\u0001${values[0]}`;
  }
  return [key];
}

function combinedKeys(rule: BlockingRule, record: PreparedRecord): string[] {
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

/** Per rule, the kept blocks (2 to maxBlockSize records) as compressed rows: record → its blocks, block → its records. */
interface RuleBlocks {
  recordStart: Int32Array;
  recordBlocks: Int32Array;
  blockStart: Int32Array;
  members: Int32Array;
}

function ruleBlocks(records: readonly PreparedRecord[], rule: BlockingRule, maxBlockSize: number, stats: BlockingStats['rules'][number]): RuleBlocks {
  const n = records.length;
  // Keys become block numbers here, so no key string outlives its rule (15 rules × 1M records would not fit).
  const ids = new Map<string, number>();
  const sizes: number[] = [];
  const keyStart = new Int32Array(n + 1);
  const keyBlocks: number[] = [];
  for (let i = 0; i < n; i++) {
    keyStart[i] = keyBlocks.length;
    for (const key of ruleKeys(rule, records[i])) {
      let id = ids.get(key);
      if (id === undefined) {
        id = sizes.length;
        ids.set(key, id);
        sizes.push(0);
      }
      sizes[id]++;
      keyBlocks.push(id);
    }
  }
  keyStart[n] = keyBlocks.length;
  // Renumber the kept blocks 0…k-1; -1 for single-record and oversized ones.
  const kept = new Int32Array(sizes.length);
  let blocks = 0;
  for (let id = 0; id < sizes.length; id++) {
    if (sizes[id] > maxBlockSize) {
      stats.oversizedBlocks++;
      stats.recordsInOversizedBlocks += sizes[id];
      kept[id] = -1;
    } else kept[id] = sizes[id] < 2 ? -1 : blocks++;
  }
  stats.blocks = blocks;
  const blockStart = new Int32Array(blocks + 1);
  for (let id = 0; id < sizes.length; id++) if (kept[id] >= 0) blockStart[kept[id] + 1] = sizes[id];
  for (let b = 0; b < blocks; b++) blockStart[b + 1] += blockStart[b];
  const members = new Int32Array(blockStart[blocks]);
  const fill = blockStart.slice(0, blocks);
  const recordStart = new Int32Array(n + 1);
  const recordBlocks: number[] = [];
  for (let i = 0; i < n; i++) {
    recordStart[i] = recordBlocks.length;
    for (let k = keyStart[i]; k < keyStart[i + 1]; k++) {
      const b = kept[keyBlocks[k]];
      if (b < 0) continue;
      recordBlocks.push(b);
      // Records are visited in index order, so each block's members are ascending.
      members[fill[b]++] = i;
    }
  }
  recordStart[n] = recordBlocks.length;
  return { recordStart, recordBlocks: Int32Array.from(recordBlocks), blockStart, members };
}

/** Position of `value` in the ascending `array` between `from` and `to`. */
function positionOf(array: Int32Array, from: number, to: number, value: number): number {
  let [lo, hi] = [from, to - 1];
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (array[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Candidate pairs of `records` (indexed by their `index`), i < j, each once, ordered by i then j.
 * Per record i, the records after it in each of its blocks are gathered once (a stamp per record marks
 * the ones seen for this i), so the cost is one step per pair and block they share, never a set of pairs.
 */
export function candidatePairs(records: readonly PreparedRecord[], rules: readonly BlockingRule[], options: { maxBlockSize: number; linkType: LinkType }): CandidatePairs {
  if (rules.length > 32) throw new Error('at most 32 blocking rules');
  const n = records.length;
  const stats: BlockingStats = { rules: rules.map((rule) => ({ name: rule.name, blocks: 0, oversizedBlocks: 0, recordsInOversizedBlocks: 0, newPairs: 0, pairs: 0 })), pairs: 0 };
  const perRule = rules.map((rule, r) => ruleBlocks(records, rule, options.maxBlockSize, stats.rules[r]));
  const crossOnly = options.linkType === 'link_only';
  const sources = new Map<string, number>();
  const sourceOf = Int32Array.from(records, (record) => {
    if (!sources.has(record.source)) sources.set(record.source, sources.size);
    return sources.get(record.source)!;
  });
  const stamp = new Int32Array(n).fill(-1);
  const mask = new Uint32Array(n);
  const firstRule = new Uint8Array(n);
  const found = new Int32Array(n);
  const out = new PairBuffer();
  for (let i = 0; i < n; i++) {
    let count = 0;
    for (let r = 0; r < rules.length; r++) {
      const { recordStart, recordBlocks, blockStart, members } = perRule[r];
      const bit = 1 << r;
      for (let k = recordStart[i]; k < recordStart[i + 1]; k++) {
        const b = recordBlocks[k];
        const end = blockStart[b + 1];
        for (let x = positionOf(members, blockStart[b], end, i) + 1; x < end; x++) {
          const j = members[x];
          if (crossOnly && sourceOf[i] === sourceOf[j]) continue;
          if (stamp[j] !== i) {
            stamp[j] = i;
            mask[j] = bit;
            firstRule[j] = r;
            found[count++] = j;
          } else mask[j] |= bit;
        }
      }
    }
    const partners = found.subarray(0, count).sort();
    for (const j of partners) {
      out.push(i, j, mask[j] >>> 0);
      stats.rules[firstRule[j]].newPairs++;
    }
  }
  for (let p = 0; p < out.count; p++) for (let r = 0; r < rules.length; r++) if (out.rules[p] & (1 << r)) stats.rules[r].pairs++;
  stats.pairs = out.count;
  return { left: out.left.subarray(0, out.count), right: out.right.subarray(0, out.count), rules: out.rules.subarray(0, out.count), count: out.count, stats };
}
