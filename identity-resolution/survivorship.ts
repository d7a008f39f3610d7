/**
 * Survivorship: which value of each attribute a golden record shows. First version: the most recent
 * non-empty value wins (ties: the later record id, so the result never depends on query order); the
 * others are kept as alternates; every candidate keeps its lineage. Consent: the most recent decision,
 * and an opt-out beats an opt-in given at the same moment.
 */
import type { CanonicalRecord } from '../openapi/generated/canonical-record.gen.js';
import type { GoldenAttributes } from '../openapi/generated/golden-record.gen.js';
import { GOLDEN_ID_SCHEME } from './match-keys.js';
import { stableStringify } from '../hub/stable-json.js';

export interface MemberRecord {
  rawRecordId: number;
  source: string;
  observedAt: Date;
  record: CanonicalRecord;
}

export interface Candidate {
  attribute: string;
  value: unknown;
  rawRecordId: number;
  source: string;
  observedAt: Date;
  survived: boolean;
}

export interface Survivorship {
  attributes: GoldenAttributes;
  /** Every candidate value with its lineage; `survived` marks the chosen one. */
  candidates: Candidate[];
}

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

/** Multi-valued attributes: the golden record lists every distinct value, most recent first. */
const multiValued: Record<string, { singular: string; extract: Extract }> = {
  emails: { singular: 'email', extract: (record) => (record.person?.emails ?? []).map((email) => email.address) },
  phones: { singular: 'phone', extract: (record) => (record.person?.phones ?? []).map((phone) => phone.number) },
  // A hub record naming its golden record says nothing about the customer.
  identifiers: {
    singular: '',
    extract: (record) => (record.identifiers ?? []).filter(({ scheme }) => scheme !== GOLDEN_ID_SCHEME).map(({ scheme, value }) => ({ scheme, value })),
  },
};

function isEmpty(value: unknown): boolean {
  return value === undefined || value === null || value === '' || (typeof value === 'object' && Object.keys(value).length === 0);
}

/** Most recent first; ties broken by the higher record id. */
function byRecency(a: MemberRecord, b: MemberRecord): number {
  return b.observedAt.getTime() - a.observedAt.getTime() || b.rawRecordId - a.rawRecordId;
}

export function survive(members: MemberRecord[]): Survivorship {
  const ordered = [...members].sort(byRecency);
  const attributes: Record<string, unknown> = {};
  const candidates: Candidate[] = [];
  const lineage = (member: MemberRecord, attribute: string, value: unknown, survived: boolean): Candidate => ({
    attribute,
    value,
    rawRecordId: member.rawRecordId,
    source: member.source,
    observedAt: member.observedAt,
    survived,
  });

  for (const [attribute, extract] of Object.entries(singleValued)) {
    for (const member of ordered) {
      for (const value of extract(member.record)) {
        if (isEmpty(value)) continue;
        const survived = !(attribute in attributes);
        if (survived) attributes[attribute] = value;
        candidates.push(lineage(member, attribute, value, survived));
      }
    }
  }

  for (const [attribute, { singular, extract }] of Object.entries(multiValued)) {
    const seen = new Map<string, unknown>();
    for (const member of ordered) {
      for (const value of extract(member.record)) {
        const key = JSON.stringify(value);
        const first = !seen.has(key);
        if (first) seen.set(key, value);
        candidates.push(lineage(member, attribute, value, first));
      }
    }
    if (seen.size > 0) {
      attributes[attribute] = [...seen.values()];
      if (singular) attributes[singular] = [...seen.values()][0];
    }
  }

  const consent = emailMarketing(ordered);
  if (consent) {
    attributes.email_marketing = consent.value;
    for (const entry of consent.all) candidates.push(lineage(entry.member, 'email_marketing', entry.value, entry === consent.winner));
  }
  return { attributes: attributes as GoldenAttributes, candidates };
}

function emailMarketing(members: MemberRecord[]) {
  const all = members.flatMap((member) =>
    (member.record.consent ?? [])
      .filter((consent) => consent.channel === 'email_marketing')
      .map((consent) => {
        const at = consent.at ?? member.observedAt.toISOString();
        return { member, at: new Date(at).getTime(), value: { status: consent.status, at, source: member.source } };
      }),
  );
  if (all.length === 0) return undefined;
  const winner = [...all].sort(
    (a, b) => b.at - a.at || Number(b.value.status === 'opt_out') - Number(a.value.status === 'opt_out') || b.member.rawRecordId - a.member.rawRecordId,
  )[0];
  return { all, winner, value: winner.value };
}

/** The top-level attributes whose values differ between two versions of a golden record. */
export function changedAttributes(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  // Values read back from jsonb have their keys in another order: compare them key-sorted.
  return [...keys].filter((key) => stableStringify(before[key]) !== stableStringify(after[key])).sort();
}
