/**
 * The record the probabilistic matcher compares: a flat struct of the attributes that identify a person,
 * derived from a canonical record. Values are normalised once here (and in `prepare`), never per pair.
 */
import type { CanonicalRecord } from '../../openapi/generated/canonical-record.gen.js';
import { formalNames } from './nicknames.js';
import { nysiis } from './phonetic.js';

export interface MatchRecord {
  /** Unique across the run; clusters and explanations refer to records by it. */
  id: string;
  /** The system the record comes from; `link_only` runs compare records of different sources only. */
  source?: string;
  givenName?: string;
  familyName?: string;
  /** As the source wrote it (may hold titles, middle names); given/family are derived from it when absent. */
  fullName?: string;
  /** ISO date, YYYY-MM-DD. */
  birthDate?: string;
  emails: string[];
  /** E.164 or at least digits; compared on digits. */
  phones: string[];
  postcode?: string;
  city?: string;
  /** Street line(s), house number included. */
  address?: string;
  organisation?: string;
  jobTitle?: string;
}

/** Derives the match record from a canonical record (the hub's raw record id as `id`, its source as `source`). */
export function toMatchRecord(id: string, source: string | undefined, record: CanonicalRecord): MatchRecord {
  const person = record.person ?? {};
  const address = person.addresses?.find((a) => a.line1 || a.postcode || a.city) ?? person.addresses?.[0];
  return {
    id,
    source,
    givenName: person.given_name || undefined,
    familyName: person.family_name || undefined,
    fullName: person.full_name || undefined,
    birthDate: person.birth_date || undefined,
    emails: (person.emails ?? []).map((e) => e.address),
    phones: (person.phones ?? []).map((p) => p.number),
    postcode: address?.postcode || undefined,
    city: address?.city || undefined,
    address: [address?.line1, address?.line2].filter(Boolean).join(' ') || undefined,
    organisation: record.organisation?.name || undefined,
    jobTitle: person.job_title || undefined,
  };
}

/**
 * normaliseText of a plain ASCII value in one pass (no Unicode normalisation or regular expressions: a million
 * records hold eight million such values); undefined for any other value.
 */
function asciiNormalised(value: string): string | undefined {
  let out = '';
  let gap = false;
  for (let i = 0; i < value.length; i++) {
    let code = value.charCodeAt(i);
    if (code > 0x7f) return undefined;
    if (code === 0x27 || code === 0x60 || code === 0x2e) continue; // ' ` . vanish
    if (code >= 0x41 && code <= 0x5a) code += 0x20;
    if ((code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39)) {
      if (gap && out.length > 0) out += ' ';
      gap = false;
      out += String.fromCharCode(code);
    } else gap = true;
  }
  return out;
}

/** Lower case, no diacritics, letters/digits/spaces only, single spaces. */
export function normaliseText(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const out = asciiNormalised(value) ?? value
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/['’`.]/g, '')
    .replace(/[^a-z0-9]+/g, ' ')
    .trim();
  return out.length > 0 ? out : undefined;
}

// Legal forms folded away so "Acme Ltd" and "ACME Limited" compare equal.
const LEGAL_FORMS = new Set(['ltd', 'limited', 'plc', 'llc', 'inc', 'incorporated', 'corp', 'corporation', 'co', 'company', 'gmbh', 'ag', 'kg', 'sa', 'sarl', 'sas', 'bv', 'nv', 'srl', 'spa', 'oy', 'ab', 'as', 'pty', 'llp', 'lp', 'the', 'und', 'and']);
const ADDRESS_WORDS: Record<string, string> = { street: 'st', st: 'st', road: 'rd', rd: 'rd', avenue: 'ave', ave: 'ave', av: 'ave', place: 'pl', pl: 'pl', drive: 'dr', dr: 'dr', lane: 'ln', ln: 'ln', court: 'ct', ct: 'ct', crescent: 'cres', cres: 'cres', circuit: 'cct', cct: 'cct', close: 'cl', cl: 'cl', terrace: 'tce', tce: 'tce', highway: 'hwy', hwy: 'hwy', parade: 'pde', pde: 'pde', square: 'sq', sq: 'sq', boulevard: 'blvd', blvd: 'blvd', strasse: 'str', str: 'str' };

export function normaliseOrganisation(value: string | undefined): string | undefined {
  const text = normaliseText(value);
  if (!text) return undefined;
  const kept = text.split(' ').filter((word) => !LEGAL_FORMS.has(word));
  return kept.length > 0 ? kept.join(' ') : text;
}

export interface DateParts {
  year: number;
  month: number;
  day: number;
  /** Days since 1970-01-01 (may be negative). */
  days: number;
  iso: string;
}

/** Accepts YYYY-MM-DD and YYYYMMDD; anything else (or an impossible month) is missing. */
export function parseDate(value: string | undefined): DateParts | undefined {
  if (!value) return undefined;
  const match = /^(\d{4})-?(\d{2})-?(\d{2})/.exec(value.trim());
  if (!match) return undefined;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (month < 1 || month > 12 || day < 1 || day > 31) return undefined;
  return { year, month, day, days: Math.floor(Date.UTC(year, month - 1, day) / 86_400_000), iso: `${match[1]}-${match[2]}-${match[3]}` };
}

/** A match record with every derived value the comparisons and blocking rules need, computed once. */
export interface PreparedRecord {
  index: number;
  id: string;
  source: string;
  given?: string;
  givenFormal: string[];
  givenCode?: string;
  family?: string;
  familyCode?: string;
  fullTokens?: string[];
  full?: string;
  birth?: DateParts;
  emails: string[];
  emailLocals: string[];
  /**
   * Per user name, what is left once the record's own family name and given name (or initial) are taken out
   * ("jsmith73" of John Smith → "73"); undefined when the family name is not in it (not spelled from the name).
   */
  emailResiduals: (string | undefined)[];
  phones: string[];
  postcode?: string;
  city?: string;
  address?: string;
  houseNumber?: string;
  street?: string;
  organisation?: string;
  job?: string;
}

// Honorifics and generational suffixes that say nothing about who someone is.
const NAME_NOISE = new Set(['mr', 'mrs', 'ms', 'miss', 'dr', 'prof', 'sir', 'jr', 'sr', 'ii', 'iii']);

function nameTokens(value: string | undefined): string[] {
  return (normaliseText(value) ?? '').split(' ').filter((token) => token.length > 0 && !NAME_NOISE.has(token));
}

/** A user name without the family name and the given name (or its initial) before it; undefined when the family name is not in it. */
export function nameResidual(local: string, given: string | undefined, family: string | undefined): string | undefined {
  const surname = family?.replace(/ /g, '');
  if (!surname || surname.length < 2) return undefined;
  const at = local.indexOf(surname);
  if (at < 0) return undefined;
  const before = local.slice(0, at);
  const after = local.slice(at + surname.length);
  // Before the family name: the given name, its initial, or a misspelling of it (same initial, about as long).
  const givenPart = before === '' || (given !== undefined && before[0] === given[0] && before.length <= given.length + 1);
  return givenPart ? after : before + after;
}

export function prepareRecord(record: MatchRecord, index: number): PreparedRecord {
  const fullTokens = nameTokens(record.fullName);
  let given = nameTokens(record.givenName).join(' ') || undefined;
  let family = nameTokens(record.familyName).join(' ') || undefined;
  // A source with only a full name: first token is the given name, last the family name.
  if (!given && !family && fullTokens.length > 0) {
    given = fullTokens[0];
    family = fullTokens.length > 1 ? fullTokens[fullTokens.length - 1] : undefined;
  }
  const emails = [...new Set(record.emails.map((e) => e.trim().toLowerCase()).filter((e) => e.includes('@')))].sort();
  const phones = [...new Set(record.phones.map((p) => p.replace(/\D/g, '')).filter((p) => p.length >= 6))].sort();
  const address = normaliseText(record.address)
    ?.split(' ')
    .map((word) => ADDRESS_WORDS[word] ?? word)
    .join(' ');
  const houseNumber = address?.match(/\b\d+[a-z]?\b/)?.[0];
  const givenFirst = given?.split(' ')[0];
  const emailLocals = emails.map((e) => e.slice(0, e.indexOf('@')).replace(/[^a-z0-9]/g, ''));
  return {
    index,
    id: record.id,
    source: record.source ?? '',
    given,
    givenFormal: givenFirst ? formalNames(givenFirst) : [],
    givenCode: givenFirst ? nysiis(givenFirst) : undefined,
    family,
    familyCode: family ? nysiis(family.replace(/ /g, '')) : undefined,
    fullTokens: fullTokens.length > 0 ? fullTokens : undefined,
    full: fullTokens.length > 0 ? fullTokens.join(' ') : undefined,
    birth: parseDate(record.birthDate),
    emails,
    emailLocals,
    emailResiduals: emailLocals.map((local) => nameResidual(local, givenFirst, family)),
    phones,
    postcode: normaliseText(record.postcode)?.replace(/ /g, ''),
    city: normaliseText(record.city),
    address,
    houseNumber,
    street: address?.replace(/\b\d+[a-z]?\b/g, '').trim() || undefined,
    organisation: normaliseOrganisation(record.organisation),
    job: normaliseText(record.jobTitle),
  };
}
