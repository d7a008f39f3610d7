/**
 * Survivorship: which value of each attribute a golden record shows.
 * - A steward's pinned value always wins, whether a source holds it or not (then the lineage names the pin).
 * - Otherwise the attribute's configured rule (hub.config.yaml `resolution.survivorship`): most recent
 *   (default), source priority, most frequent or most complete. Every rule breaks ties by recency, and
 *   recency by the later record id, so the result never depends on the order the members were read in.
 * - The other values stay as alternates; every candidate keeps its lineage and the survivor its rule.
 * - Consent: the most recent decision; an opt-out beats an opt-in given at the same moment.
 */
import type { CanonicalRecord } from '../openapi/generated/canonical-record.gen.js';
import type { GoldenAttributes } from '../openapi/generated/golden-record.gen.js';
import type { SurvivorshipConfig, SurvivorshipRule } from '../openapi/generated/hub-config.gen.js';
import { GOLDEN_ID_SCHEME } from './match-keys.js';
import { stableStringify } from '../hub/stable-json.js';

export interface MemberRecord {
  rawRecordId: number;
  source: string;
  observedAt: Date;
  record: CanonicalRecord;
}

/** An active steward pin (`pinned_value` row not withdrawn) of a golden record. */
export interface PinnedValue {
  id: number;
  attribute: string;
  value: unknown;
  createdAt: Date;
}

/** The rule that chose a surviving value, as stored in the lineage. */
export type SurvivalRule = SurvivorshipRule['rule'] | 'pinned' | 'consent';

export interface Candidate {
  attribute: string;
  value: unknown;
  /** Null for a pinned value that no source holds. */
  rawRecordId: number | null;
  /** The source, or `steward` for a pinned value that no source holds. */
  source: string;
  observedAt: Date;
  survived: boolean;
  /** For surviving values. */
  rule?: SurvivalRule;
  /** The pin that chose this value. */
  pinnedValueId?: number;
}

export interface Survivorship {
  attributes: GoldenAttributes;
  /** Every candidate value with its lineage; `survived` marks the chosen one. */
  candidates: Candidate[];
}

/** Where a pinned value that no source holds comes from, in the lineage. */
export const STEWARD_SOURCE = 'steward';

type Extract = (record: CanonicalRecord) => unknown[];

function joinedName(record: CanonicalRecord): string | undefined {
  const person = record.person;
  if (person?.full_name) return person.full_name;
  const joined = [person?.given_name, person?.family_name].filter(Boolean).join(' ');
  return joined || undefined;
}

/** Single-valued attributes and how to read each from a canonical record. */
const singleValued: Record<string, Extract> = {
  given_name: (record) => [record.person?.given_name],
  family_name: (record) => [record.person?.family_name],
  full_name: (record) => [joinedName(record)],
  birth_date: (record) => [record.person?.birth_date],
  job_title: (record) => [record.person?.job_title],
  address: (record) => [record.person?.addresses?.[0]],
  organisation: (record) => [record.organisation],
};

/**
 * Multi-valued attributes: the golden record lists every distinct value, in the order of the rule of their
 * singular (`email` for `emails`), whose first value is the preferred one.
 */
const multiValued: Record<string, { singular?: string; extract: Extract }> = {
  emails: { singular: 'email', extract: (record) => (record.person?.emails ?? []).map((email) => email.address) },
  phones: { singular: 'phone', extract: (record) => (record.person?.phones ?? []).map((phone) => phone.number) },
  // A hub record naming its golden record says nothing about the customer.
  identifiers: {
    extract: (record) => (record.identifiers ?? []).filter(({ scheme }) => scheme !== GOLDEN_ID_SCHEME).map(({ scheme, value }) => ({ scheme, value })),
  },
};

/** The attributes a steward can pin: a single value of the golden record. */
export const PINNABLE_ATTRIBUTES: readonly string[] = [
  ...Object.keys(singleValued),
  ...Object.values(multiValued).flatMap(({ singular }) => (singular ? [singular] : [])),
  'email_marketing',
];

function isEmpty(value: unknown): boolean {
  return value === undefined || value === null || value === '' || (typeof value === 'object' && Object.keys(value).length === 0);
}

/** Most recent first; ties broken by the higher record id. */
function byRecency(a: MemberRecord, b: MemberRecord): number {
  return b.observedAt.getTime() - a.observedAt.getTime() || b.rawRecordId - a.rawRecordId;
}

interface Entry {
  member: MemberRecord;
  value: unknown;
  key: string;
}

/** Filled parts (non-empty leaf values) and their total length: an address with a street beats one with a city only. */
function completeness(value: unknown): [number, number] {
  if (typeof value === 'string') return value.trim() ? [1, value.trim().length] : [0, 0];
  if (value && typeof value === 'object') {
    return Object.values(value).reduce<[number, number]>(
      ([filled, size], part) => {
        const [partFilled, partSize] = completeness(part);
        return [filled + partFilled, size + partSize];
      },
      [0, 0],
    );
  }
  return isEmpty(value) ? [0, 0] : [1, String(value).length];
}

/**
 * Orders entries by the rule, best first. The entries come most recent first and the sort is stable, so
 * every rule falls back to recency.
 */
function rank(entries: Entry[], rule: SurvivorshipRule): Entry[] {
  switch (rule.rule) {
    case 'most_recent':
      return entries;
    case 'source_priority': {
      const sources: readonly string[] = rule.sources ?? [];
      const position = (entry: Entry) => {
        const index = sources.indexOf(entry.member.source);
        return index < 0 ? sources.length : index;
      };
      return [...entries].sort((a, b) => position(a) - position(b));
    }
    case 'most_frequent': {
      const holders = new Map<string, Set<number>>();
      for (const entry of entries) holders.set(entry.key, (holders.get(entry.key) ?? new Set()).add(entry.member.rawRecordId));
      return [...entries].sort((a, b) => holders.get(b.key)!.size - holders.get(a.key)!.size);
    }
    case 'most_complete': {
      const scores = new Map(entries.map((entry) => [entry, completeness(entry.value)]));
      return [...entries].sort((a, b) => scores.get(b)![0] - scores.get(a)![0] || scores.get(b)![1] - scores.get(a)![1]);
    }
  }
}

export function survive(members: MemberRecord[], options: { pins?: PinnedValue[]; rules?: SurvivorshipConfig } = {}): Survivorship {
  const ordered = [...members].sort(byRecency);
  const pins = new Map((options.pins ?? []).map((pin) => [pin.attribute, pin]));
  const ruleOf = (attribute: string | undefined): SurvivorshipRule =>
    options.rules?.attributes?.[attribute as keyof NonNullable<SurvivorshipConfig['attributes']>] ?? { rule: options.rules?.default ?? 'most_recent' };
  const attributes: Record<string, unknown> = {};
  const candidates: Candidate[] = [];
  const entriesOf = (extract: Extract): Entry[] =>
    ordered.flatMap((member) => extract(member.record).filter((value) => !isEmpty(value)).map((value) => ({ member, value, key: stableStringify(value) })));
  const lineage = (attribute: string, entry: Entry, rule?: SurvivalRule, pin?: PinnedValue): Candidate => ({
    attribute,
    value: entry.value,
    rawRecordId: entry.member.rawRecordId,
    source: entry.member.source,
    observedAt: entry.member.observedAt,
    survived: rule !== undefined,
    ...(rule && { rule }),
    ...(pin && { pinnedValueId: pin.id }),
  });
  const fromSteward = (attribute: string, pin: PinnedValue): Candidate => ({
    attribute,
    value: pin.value,
    rawRecordId: null,
    source: STEWARD_SOURCE,
    observedAt: pin.createdAt,
    survived: true,
    rule: 'pinned',
    pinnedValueId: pin.id,
  });

  for (const [attribute, extract] of Object.entries(singleValued)) {
    const rule = ruleOf(attribute);
    const ranked = rank(entriesOf(extract), rule);
    const pin = pins.get(attribute);
    const winner = pin ? ranked.find((entry) => entry.key === stableStringify(pin.value)) : ranked[0];
    if (pin) {
      attributes[attribute] = pin.value;
      if (!winner) candidates.push(fromSteward(attribute, pin));
    } else if (winner) attributes[attribute] = winner.value;
    for (const entry of ranked) candidates.push(lineage(attribute, entry, entry === winner ? (pin ? 'pinned' : rule.rule) : undefined, entry === winner ? pin : undefined));
  }

  for (const [attribute, { singular, extract }] of Object.entries(multiValued)) {
    const rule = ruleOf(singular);
    const ranked = rank(entriesOf(extract), rule);
    const pin = singular ? pins.get(singular) : undefined;
    const pinnedKey = pin && stableStringify(pin.value);
    // Each distinct value survives once, by its best-ranked record; a pinned value goes first.
    const representatives = new Map<string, Entry>();
    for (const entry of ranked) if (!representatives.has(entry.key)) representatives.set(entry.key, entry);
    const values = [...representatives.values()].map((entry) => entry.value);
    if (pin) {
      if (!representatives.has(pinnedKey!)) candidates.push(fromSteward(attribute, pin));
      values.splice(0, values.length, pin.value, ...values.filter((value) => stableStringify(value) !== pinnedKey));
    }
    for (const entry of ranked) {
      const survivor = representatives.get(entry.key) === entry;
      const pinned = survivor && entry.key === pinnedKey;
      candidates.push(lineage(attribute, entry, survivor ? (pinned ? 'pinned' : rule.rule) : undefined, pinned ? pin : undefined));
    }
    if (values.length > 0) {
      attributes[attribute] = values;
      if (singular) attributes[singular] = values[0];
    }
  }

  const consent = emailMarketing(ordered);
  const consentPin = pins.get('email_marketing');
  if (consentPin) attributes.email_marketing = consentPin.value;
  else if (consent) attributes.email_marketing = consent.winner.value;
  const pinnedConsent = consentPin && consent?.all.find((entry) => entry.key === stableStringify(consentPin.value));
  if (consentPin && !pinnedConsent) candidates.push(fromSteward('email_marketing', consentPin));
  for (const entry of consent?.all ?? []) {
    const rule: SurvivalRule | undefined = consentPin ? (entry === pinnedConsent ? 'pinned' : undefined) : entry === consent!.winner ? 'consent' : undefined;
    candidates.push(lineage('email_marketing', entry, rule, rule === 'pinned' ? consentPin : undefined));
  }
  return { attributes: attributes as GoldenAttributes, candidates };
}

/** Every email-marketing decision of the members; the winner is the most recent, an opt-out on a tie. */
function emailMarketing(members: MemberRecord[]) {
  const all = members.flatMap((member) =>
    (member.record.consent ?? [])
      .filter((consent) => consent.channel === 'email_marketing')
      .map((consent) => {
        const at = consent.at ?? member.observedAt.toISOString();
        const value = { status: consent.status, at, source: member.source };
        return { member, value, key: stableStringify(value), time: new Date(at).getTime() };
      }),
  );
  if (all.length === 0) return undefined;
  const winner = [...all].sort(
    (a, b) => b.time - a.time || Number(b.value.status === 'opt_out') - Number(a.value.status === 'opt_out') || b.member.rawRecordId - a.member.rawRecordId,
  )[0];
  return { all, winner };
}

/** The top-level attributes whose values differ between two versions of a golden record. */
export function changedAttributes(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  // Values read back from jsonb have their keys in another order: compare them key-sorted.
  return [...keys].filter((key) => stableStringify(before[key]) !== stableStringify(after[key])).sort();
}
