/**
 * The matcher's configuration: which comparisons, which blocking rules, how to train, where the
 * thresholds are. One committed configuration serves every data set and the hub (DEFAULT_CONFIG);
 * its hash is printed by the benchmark and stored with each trained model.
 */
import { createHash } from 'node:crypto';
import type { BlockingRule } from './blocking.js';

export interface MatchConfig {
  /** Names from COMPARISONS. */
  comparisons: string[];
  blocking: { rules: BlockingRule[]; maxBlockSize: number };
  training: {
    /** Random pairs drawn to estimate u (non-match agreement rates). */
    uSamplePairs: number;
    emMaxIterations: number;
    /** Stop when no m moves by more than this. */
    emTolerance: number;
    /** A rule trains m only when it yields at least this many pairs. */
    minRulePairs: number;
    seed: number;
  };
  termFrequency: {
    /** Comparisons whose exact level is adjusted by the frequency of the shared value. */
    comparisons: string[];
    /** Floor of a value's frequency, so one typo-unique value cannot dominate. */
    minFrequency: number;
  };
  thresholds: {
    /** A pair at or above links (subject to the chaining guard). */
    linkProbability: number;
    /** A pair at or above, not linked, goes to the steward's review queue. */
    reviewProbability: number;
  };
  clustering: {
    /** Two clusters merge only if the mean match probability over all pairs across them reaches this (average linkage). */
    minMeanCrossProbability: number;
    /** Above this many cross pairs, an evenly spread subset is scored. */
    maxCrossPairs: number;
  };
}

const rule = (...parts: string[]): BlockingRule => ({ name: parts.join('+'), parts });

export const DEFAULT_CONFIG: MatchConfig = {
  comparisons: ['given_name', 'family_name', 'full_name', 'birth_date', 'email', 'phone', 'postcode', 'city', 'address', 'organisation', 'job_title'],
  blocking: {
    rules: [
      rule('email'),
      rule('phone'),
      rule('family_nysiis', 'postcode'),
      rule('birth_date', 'given_initial'),
      rule('name_codes'),
      rule('birth_date', 'family_initial'),
      rule('birth_date', 'postcode'),
      rule('birth_date', 'city'),
      rule('birth_date', 'house_number'),
      rule('given_prefix3', 'birth_year'),
      rule('email_user'),
      rule('house_number', 'postcode'),
      rule('family_nysiis', 'city'),
      rule('given_nysiis', 'city'),
      rule('family_nysiis', 'birth_year'),
    ],
    maxBlockSize: 1000,
  },
  training: { uSamplePairs: 1_000_000, emMaxIterations: 40, emTolerance: 1e-5, minRulePairs: 50, seed: 20_240_601 },
  termFrequency: {
    comparisons: ['given_name', 'family_name', 'full_name', 'birth_date', 'email', 'phone', 'postcode', 'city', 'organisation', 'job_title'],
    minFrequency: 1e-6,
  },
  thresholds: { linkProbability: 0.9, reviewProbability: 0.3 },
  clustering: { minMeanCrossProbability: 0.5, maxCrossPairs: 10_000 },
};

/** Canonical JSON (sorted keys), so the hash names the configuration whatever the key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

export function configHash(config: MatchConfig): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex').slice(0, 12);
}
