/**
 * The matcher's configuration: which comparisons, which blocking rules, how to train, where the
 * thresholds are. One committed configuration serves every data set and the hub (DEFAULT_CONFIG);
 * its hash is printed by the benchmark and stored with each trained model.
 */
import { createHash } from 'node:crypto';
import type { BlockingRule } from './blocking.js';
import type { SharedEvidence } from './fellegi-sunter.js';

export interface MatchConfig {
  /** Names from COMPARISONS. */
  comparisons: string[];
  /**
   * maxBlockSize: a key more records share is skipped (and reported): an office switchboard or "james" in London
   * says little about who is who, and its pairs grow with the square of its size. Each record then has at most
   * rules × maxBlockSize candidates, whatever the size of the data.
   */
  blocking: { rules: BlockingRule[]; maxBlockSize: number };
  training: {
    /**
     * The blocking rules whose pairs train m (Splink's training rules). Only rules that pre-select on a person's own
     * attributes (given name, birth date): members of a household or colleagues of an office share surname, address,
     * email or phone, so EM on those blocks takes them for matches and learns that given names and birth dates differ
     * among matches. The other rules still find candidates.
     */
    rules: string[];
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
  /**
   * Members of one household share its email, address, postcode and city (colleagues an office phone and
   * organisation); scored as independent, five shared attributes outweigh a different given name. When the
   * family names agree, the given names differ and the birth dates do not agree (or are missing), the shared
   * attributes count once: their strongest positive weight.
   */
  sharedEvidence: SharedEvidence;
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
    maxBlockSize: 50,
  },
  training: {
    rules: ['birth_date+given_initial', 'name_codes', 'birth_date+family_initial', 'birth_date+postcode', 'birth_date+city', 'birth_date+house_number', 'given_prefix3+birth_year', 'given_nysiis+city', 'family_nysiis+birth_year'],
    uSamplePairs: 1_000_000,
    emMaxIterations: 40,
    emTolerance: 1e-5,
    minRulePairs: 50,
    seed: 20_240_601,
  },
  termFrequency: {
    comparisons: ['given_name', 'family_name', 'full_name', 'birth_date', 'email', 'phone', 'postcode', 'city', 'organisation', 'job_title'],
    minFrequency: 1e-6,
  },
  sharedEvidence: {
    comparisons: ['email', 'phone', 'address', 'postcode', 'city', 'organisation'],
    when: {
      given_name: ['different'],
      family_name: ['exact', 'one edit or Jaro–Winkler ≥ 0.92'],
      birth_date: ['missing', 'within a year', 'different'],
    },
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
