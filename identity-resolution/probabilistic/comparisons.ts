/**
 * Comparisons: for each attribute, an ordered list of levels from most to least similar; a pair lands in
 * the first level whose condition holds. Level -1 means a side is missing: it contributes weight 0.
 * Thresholds are the customary ones (Jaro–Winkler 0.92/0.88/0.8, one edit) rather than fitted to any data;
 * the Fellegi–Sunter model learns how much each level is worth.
 */
import type { PreparedRecord } from './match-record.js';
import { sameByNickname } from './nicknames.js';
import { FREE_MAIL_DOMAINS } from '../free-mail.js';
import { jaroWinkler, jaroWinklerAbove } from './similarity.js';

export const MISSING = -1;

export interface Comparison {
  name: string;
  /** Level labels, most similar first; the last is "everything else". */
  levels: readonly string[];
  /** The level of a pair, or MISSING. */
  compare(a: PreparedRecord, b: PreparedRecord): number;
  /**
   * Term frequencies: the values a record holds (for the frequency table) and the value two records share
   * at level 0, whose frequency replaces the average u of that level ("smith" weighs less than "zbigniew").
   */
  termFrequency?: {
    values(record: PreparedRecord): readonly string[];
    shared(a: PreparedRecord, b: PreparedRecord): string | undefined;
  };
}

function close(a: string, b: string, jw: number): boolean {
  return jaroWinklerAbove(a, b, jw) >= jw;
}

/** a from index i equals b from index j. */
function sameTail(a: string, i: number, b: string, j: number): boolean {
  if (a.length - i !== b.length - j) return false;
  for (; i < a.length; i++, j++) if (a.charCodeAt(i) !== b.charCodeAt(j)) return false;
  return true;
}

/** Damerau–Levenshtein distance ≤ 1, in one pass: after the common prefix, one substitution, transposition, insertion or deletion. */
export function oneEdit(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (i < a.length && i < b.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (a.length === b.length) {
    if (i === a.length || sameTail(a, i + 1, b, i + 1)) return true;
    return i + 1 < a.length && a[i] === b[i + 1] && a[i + 1] === b[i] && sameTail(a, i + 2, b, i + 2);
  }
  return a.length > b.length ? sameTail(a, i + 1, b, i) : sameTail(a, i, b, i + 1);
}

/** Given and family names written the wrong way round in one of the two records. */
export function namesSwapped(a: PreparedRecord, b: PreparedRecord): boolean {
  if (!a.given || !a.family || !b.given || !b.family) return false;
  if (a.given === b.given || a.family === b.family) return false;
  // Cheap test first: nearly every pair fails it.
  if (a.given[0] !== b.family[0] && a.family[0] !== b.given[0]) return false;
  return close(a.given, b.family, 0.92) && close(a.family, b.given, 0.92);
}

function firstToken(value: string): string {
  const space = value.indexOf(' ');
  return space < 0 ? value : value.slice(0, space);
}

export const givenName: Comparison = {
  name: 'given_name',
  levels: ['exact', 'one edit, Jaro–Winkler ≥ 0.92 or same first name', 'nickname or same NYSIIS code', 'Jaro–Winkler ≥ 0.8', 'initial only', 'different'],
  compare(a, b) {
    if (!a.given || !b.given) return MISSING;
    const left = a.given;
    const right = namesSwapped(a, b) ? b.family! : b.given;
    if (left === right) return 0;
    const [fa, fb] = [firstToken(left), firstToken(right)];
    const jw = jaroWinklerAbove(left, right, 0.8);
    if (fa.length > 1 && fb.length > 1 && (fa === fb || jw >= 0.92 || oneEdit(left, right))) return 1;
    if (sameByNickname(fa, fb) || (a.givenCode && a.givenCode === b.givenCode && fa.length > 1 && fb.length > 1)) return 2;
    if (jw >= 0.8) return 3;
    if ((fa.length === 1 || fb.length === 1) && fa[0] === fb[0]) return 4;
    return 5;
  },
  termFrequency: {
    values: (r) => (r.given ? [r.given] : []),
    shared: (a, b) => (a.given && a.given === b.given ? a.given : undefined),
  },
};

function sharesToken(a: string, b: string): boolean {
  if (!a.includes(' ') && !b.includes(' ')) return false;
  const tokens = new Set(a.split(' '));
  return b.split(' ').some((token) => token.length > 1 && tokens.has(token));
}

export const familyName: Comparison = {
  name: 'family_name',
  levels: ['exact', 'given and family swapped', 'one edit or Jaro–Winkler ≥ 0.92', 'one part of a compound name', 'same NYSIIS code', 'Jaro–Winkler ≥ 0.8', 'different'],
  compare(a, b) {
    if (!a.family || !b.family) return MISSING;
    if (a.family === b.family) return 0;
    if (namesSwapped(a, b)) return 1;
    const jw = jaroWinklerAbove(a.family, b.family, 0.8);
    if (jw >= 0.92 || oneEdit(a.family, b.family)) return 2;
    if (sharesToken(a.family, b.family)) return 3;
    if (a.familyCode && a.familyCode === b.familyCode) return 4;
    if (jw >= 0.8) return 5;
    return 6;
  },
  termFrequency: {
    values: (r) => (r.family ? [r.family] : []),
    shared: (a, b) => (a.family && a.family === b.family ? a.family : undefined),
  },
};

function sameTokens(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const sorted = [...b].sort();
  return [...a].sort().every((token, i) => token === sorted[i]);
}

function commonTokens(a: readonly string[], b: readonly string[]): number {
  const set = new Set(a);
  let n = 0;
  for (const token of new Set(b)) if (set.has(token)) n++;
  return n;
}

export const fullName: Comparison = {
  name: 'full_name',
  levels: ['exact', 'same words in another order', 'all words of the shorter in the longer', 'two words in common or Jaro–Winkler ≥ 0.9', 'different'],
  compare(a, b) {
    if (!a.full || !b.full) return MISSING;
    if (a.full === b.full) return 0;
    const [ta, tb] = [a.fullTokens!, b.fullTokens!];
    if (sameTokens(ta, tb)) return 1;
    const common = commonTokens(ta, tb);
    if (common === Math.min(new Set(ta).size, new Set(tb).size) && common >= 2) return 2;
    if (common >= 2 || close(a.full, b.full, 0.9)) return 3;
    return 4;
  },
  termFrequency: {
    values: (r) => (r.full ? [r.full] : []),
    shared: (a, b) => (a.full && a.full === b.full ? a.full : undefined),
  },
};

export const birthDate: Comparison = {
  name: 'birth_date',
  levels: ['exact', 'day and month swapped', 'one of day, month, year differs', 'within a year', 'different'],
  compare(a, b) {
    const [x, y] = [a.birth, b.birth];
    if (!x || !y) return MISSING;
    if (x.days === y.days) return 0;
    if (x.year === y.year && x.day === y.month && x.month === y.day) return 1;
    const same = Number(x.year === y.year) + Number(x.month === y.month) + Number(x.day === y.day);
    if (same === 2) return 2;
    if (Math.abs(x.days - y.days) <= 366) return 3;
    return 4;
  },
  termFrequency: {
    values: (r) => (r.birth ? [r.birth.iso] : []),
    shared: (a, b) => (a.birth && b.birth && a.birth.days === b.birth.days ? a.birth.iso : undefined),
  },
};

function firstShared(a: readonly string[], b: readonly string[]): string | undefined {
  for (const value of a) if (b.includes(value)) return value;
  return undefined;
}

export const email: Comparison = {
  name: 'email',
  levels: ['exact', 'same user name, other domain', 'user name Jaro–Winkler ≥ 0.88', 'different'],
  // A user name spelled from the name ("john.smith", "jsmith") repeats what the name comparisons found: namesakes
  // share it as often as one person does, so it counts only for what is left beside the name (a number, say). Two
  // such mailboxes of one company's domain that differ only there (niklas.wagner24@ and niklas.wagner62@) tell
  // nothing either way: a second mailbox of one person, or a namesake colleague (at a mail provider, namesakes).
  compare(a, b) {
    if (a.emails.length === 0 || b.emails.length === 0) return MISSING;
    if (firstShared(a.emails, b.emails) !== undefined) return 0;
    let level = 3;
    let namesOnly = false;
    const companyDomain = (address: string) => {
      const domain = address.slice(address.indexOf('@') + 1);
      return FREE_MAIL_DOMAINS.has(domain) ? undefined : domain;
    };
    for (let x = 0; x < a.emailLocals.length; x++) {
      for (let y = 0; y < b.emailLocals.length; y++) {
        const [la, lb] = [a.emailLocals[x], b.emailLocals[y]];
        const same = la === lb;
        if (!same && (level <= 2 || !close(la, lb, 0.88))) continue;
        const [ra, rb] = [a.emailResiduals[x], b.emailResiduals[y]];
        if (ra === undefined || rb === undefined) level = Math.min(level, same ? 1 : 2);
        else if ((ra === '' && rb === '') || (companyDomain(a.emails[x]) ?? '@') === companyDomain(b.emails[y])) namesOnly = true;
        else if (ra === rb || (ra.length > 2 && rb.length > 2 && close(ra, rb, 0.88))) level = Math.min(level, same ? 1 : 2);
      }
    }
    return level === 3 && namesOnly ? MISSING : level;
  },
  termFrequency: { values: (r) => r.emails, shared: (a, b) => firstShared(a.emails, b.emails) },
};

export const phone: Comparison = {
  name: 'phone',
  levels: ['exact', 'same last eight digits', 'one edit', 'different'],
  compare(a, b) {
    if (a.phones.length === 0 || b.phones.length === 0) return MISSING;
    if (firstShared(a.phones, b.phones) !== undefined) return 0;
    for (const x of a.phones) for (const y of b.phones) if (x.length >= 8 && y.length >= 8 && sameTail(x, x.length - 8, y, y.length - 8)) return 1;
    for (const x of a.phones) for (const y of b.phones) if (oneEdit(x, y)) return 2;
    return 3;
  },
  termFrequency: { values: (r) => r.phones, shared: (a, b) => firstShared(a.phones, b.phones) },
};

export const postcode: Comparison = {
  name: 'postcode',
  levels: ['exact', 'one edit', 'same first three characters', 'different'],
  compare(a, b) {
    if (!a.postcode || !b.postcode) return MISSING;
    if (a.postcode === b.postcode) return 0;
    if (oneEdit(a.postcode, b.postcode)) return 1;
    if (a.postcode.length >= 3 && b.postcode.length >= 3 && a.postcode.charCodeAt(0) === b.postcode.charCodeAt(0) && a.postcode.charCodeAt(1) === b.postcode.charCodeAt(1) && a.postcode.charCodeAt(2) === b.postcode.charCodeAt(2)) return 2;
    return 3;
  },
  termFrequency: {
    values: (r) => (r.postcode ? [r.postcode] : []),
    shared: (a, b) => (a.postcode && a.postcode === b.postcode ? a.postcode : undefined),
  },
};

export const city: Comparison = {
  name: 'city',
  levels: ['exact', 'Jaro–Winkler ≥ 0.9', 'different'],
  compare(a, b) {
    if (!a.city || !b.city) return MISSING;
    if (a.city === b.city) return 0;
    return close(a.city, b.city, 0.9) ? 1 : 2;
  },
  termFrequency: {
    values: (r) => (r.city ? [r.city] : []),
    shared: (a, b) => (a.city && a.city === b.city ? a.city : undefined),
  },
};

export const address: Comparison = {
  name: 'address',
  // House number and street apart: one similarity on the street alone is cheaper than on the whole line, and says more.
  levels: ['exact', 'same house number, street Jaro–Winkler ≥ 0.9', 'street Jaro–Winkler ≥ 0.9', 'same house number, street Jaro–Winkler ≥ 0.8', 'different'],
  compare(a, b) {
    if (!a.address || !b.address) return MISSING;
    if (a.address === b.address) return 0;
    const street = a.street && b.street ? jaroWinklerAbove(a.street, b.street, 0.8) : 0;
    const sameNumber = a.houseNumber !== undefined && a.houseNumber === b.houseNumber;
    if (sameNumber && street >= 0.9) return 1;
    if (street >= 0.9) return 2;
    if (sameNumber && street >= 0.8) return 3;
    return 4;
  },
  termFrequency: {
    values: (r) => (r.address ? [r.address] : []),
    shared: (a, b) => (a.address && a.address === b.address ? a.address : undefined),
  },
};

export const organisation: Comparison = {
  name: 'organisation',
  levels: ['exact (legal form folded)', 'Jaro–Winkler ≥ 0.9', 'different'],
  compare(a, b) {
    if (!a.organisation || !b.organisation) return MISSING;
    if (a.organisation === b.organisation) return 0;
    return close(a.organisation, b.organisation, 0.9) ? 1 : 2;
  },
  termFrequency: {
    values: (r) => (r.organisation ? [r.organisation] : []),
    shared: (a, b) => (a.organisation && a.organisation === b.organisation ? a.organisation : undefined),
  },
};

export const jobTitle: Comparison = {
  name: 'job_title',
  levels: ['exact', 'Jaro–Winkler ≥ 0.9', 'different'],
  compare(a, b) {
    if (!a.job || !b.job) return MISSING;
    if (a.job === b.job) return 0;
    return close(a.job, b.job, 0.9) ? 1 : 2;
  },
  termFrequency: {
    values: (r) => (r.job ? [r.job] : []),
    shared: (a, b) => (a.job && a.job === b.job ? a.job : undefined),
  },
};

/** Every built-in comparison by name; a configuration lists the ones it uses. */
export const COMPARISONS: Record<string, Comparison> = Object.fromEntries(
  [givenName, familyName, fullName, birthDate, email, phone, postcode, city, address, organisation, jobTitle].map((c) => [c.name, c]),
);
