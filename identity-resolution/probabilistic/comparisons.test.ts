import { describe, expect, it } from 'vitest';
import { address, birthDate, oneEdit, city, email, familyName, fullName, givenName, jobTitle, MISSING, organisation, phone, postcode, type Comparison } from './comparisons.js';
import { normaliseText, prepareRecord, toMatchRecord, type MatchRecord } from './match-record.js';
import { damerauLevenshtein } from './similarity.js';

const record = (fields: Partial<MatchRecord>) => prepareRecord({ id: 'x', emails: [], phones: [], ...fields }, 0);
const level = (comparison: Comparison, left: Partial<MatchRecord>, right: Partial<MatchRecord>) => {
  const l = comparison.compare(record(left), record(right));
  return l === MISSING ? 'missing' : comparison.levels[l];
};

describe('comparisons', () => {
  it('given name', () => {
    expect(level(givenName, { givenName: 'Jonathan' }, { givenName: 'jonathan' })).toBe('exact');
    expect(level(givenName, { givenName: 'Jonathan' }, { givenName: 'Johnathan' })).toBe(givenName.levels[1]);
    expect(level(givenName, { givenName: 'Mary Ann' }, { givenName: 'Mary' })).toBe(givenName.levels[1]);
    expect(level(givenName, { givenName: 'Bob' }, { givenName: 'Robert' })).toBe('nickname or same NYSIIS code');
    expect(level(givenName, { givenName: 'Liz' }, { givenName: 'Elizabeth' })).toBe('nickname or same NYSIIS code');
    expect(level(givenName, { givenName: 'Martin' }, { givenName: 'Martina' })).toBe(givenName.levels[1]);
    expect(level(givenName, { givenName: 'Daniel' }, { givenName: 'Danielle' })).toBe(givenName.levels[1]);
    expect(level(givenName, { givenName: 'Marcus' }, { givenName: 'Marcel' })).toBe('Jaro–Winkler ≥ 0.8');
    expect(level(givenName, { givenName: 'J' }, { givenName: 'John' })).toBe('initial only');
    expect(level(givenName, { givenName: 'Anna' }, { givenName: 'Zbigniew' })).toBe('different');
    expect(level(givenName, {}, { givenName: 'Anna' })).toBe('missing');
  });

  it('family name, including given and family swapped', () => {
    expect(level(familyName, { familyName: 'Müller' }, { familyName: 'MULLER' })).toBe('exact');
    expect(level(familyName, { givenName: 'dent', familyName: 'bailee' }, { givenName: 'bailee', familyName: 'dent' })).toBe('given and family swapped');
    expect(level(givenName, { givenName: 'dent', familyName: 'bailee' }, { givenName: 'bailee', familyName: 'dent' })).toBe('exact');
    expect(level(familyName, { familyName: 'Smith' }, { familyName: 'Smiht' })).toBe('one edit or Jaro–Winkler ≥ 0.92');
    expect(level(familyName, { familyName: 'Smith-Jones' }, { familyName: 'Jones' })).toBe('one part of a compound name');
    expect(level(familyName, { familyName: 'Knight' }, { familyName: 'Night' })).toBe('one edit or Jaro–Winkler ≥ 0.92');
    expect(level(familyName, { familyName: 'Catherwood' }, { familyName: 'Katerwud' })).toBe('same NYSIIS code');
    expect(level(familyName, { familyName: 'Smith' }, { familyName: 'Jones' })).toBe('different');
  });

  it('full name', () => {
    expect(level(fullName, { fullName: 'Ada Lovelace' }, { fullName: 'ada lovelace' })).toBe('exact');
    expect(level(fullName, { fullName: 'Lovelace Ada' }, { fullName: 'Ada Lovelace' })).toBe('same words in another order');
    expect(level(fullName, { fullName: 'Augusta Ada King Lovelace' }, { fullName: 'Ada Lovelace' })).toBe('all words of the shorter in the longer');
    expect(level(fullName, { fullName: 'Ada Lovelace' }, { fullName: 'Alan Turing' })).toBe('different');
  });

  it('full name only: given and family names are taken from it', () => {
    const r = record({ fullName: 'Dr. Ada Byron Lovelace' });
    expect([r.given, r.family]).toEqual(['ada', 'lovelace']);
  });

  it('birth date: equal, day and month swapped, one part differs, within a year, different, missing', () => {
    expect(level(birthDate, { birthDate: '1980-03-04' }, { birthDate: '19800304' })).toBe('exact');
    expect(level(birthDate, { birthDate: '1980-03-04' }, { birthDate: '1980-04-03' })).toBe('day and month swapped');
    expect(level(birthDate, { birthDate: '1980-03-04' }, { birthDate: '1981-03-04' })).toBe('one of day, month, year differs');
    expect(level(birthDate, { birthDate: '1980-03-04' }, { birthDate: '1980-03-14' })).toBe('one of day, month, year differs');
    expect(level(birthDate, { birthDate: '1980-12-30' }, { birthDate: '1981-01-02' })).toBe('within a year');
    expect(level(birthDate, { birthDate: '1980-03-04' }, { birthDate: '1990-07-09' })).toBe('different');
    expect(level(birthDate, { birthDate: 'unknown' }, { birthDate: '1990-07-09' })).toBe('missing');
  });

  it('email: exact, same user name, similar user name', () => {
    expect(level(email, { emails: ['A.Smith@Example.com'] }, { emails: ['other@x.org', 'a.smith@example.com'] })).toBe('exact');
    expect(level(email, { emails: ['a.smith@example.com'] }, { emails: ['asmith@gmail.com'] })).toBe('same user name, other domain');
    expect(level(email, { emails: ['annasmith@example.com'] }, { emails: ['annasmyth@gmail.com'] })).toBe('user name Jaro–Winkler ≥ 0.88');
    expect(level(email, { emails: ['anna@example.com'] }, { emails: ['zed@example.com'] })).toBe('different');
    expect(level(email, { emails: [] }, { emails: ['zed@example.com'] })).toBe('missing');
  });

  it('email: a user name spelled from the names counts only for what is left beside them', () => {
    const smith = (emails: string[]) => ({ givenName: 'John', familyName: 'Smith', emails });
    // Namesakes: the user names repeat what the name comparisons found.
    expect(level(email, smith(['john.smith@gmail.com']), smith(['john.smith@web.de']))).toBe('missing');
    expect(level(email, smith(['jsmith12@gmail.com']), smith(['jsmith45@gmail.com']))).toBe('different');
    // At one company's domain, the same name's mailboxes that differ only in their number tell nothing either way.
    expect(level(email, smith(['john.smith24@acme.de']), smith(['john.smith62@acme.de']))).toBe('missing');
    expect(level(email, smith(['john.smith24@acme.de']), smith(['john.smith62@globex.de']))).toBe('different');
    expect(level(email, smith(['john.smith@gmail.com']), smith(['john.smith12@gmail.com']))).toBe('different');
    // What is left agrees: one person at two providers, or a typo beside the same number.
    expect(level(email, smith(['jsmith73@gmail.com']), smith(['jsmith73@web.de']))).toBe('same user name, other domain');
    expect(level(email, smith(['john.smith1973@gmail.com']), smith(['jonh.smith1973@gmail.com']))).toBe('user name Jaro–Winkler ≥ 0.88');
    // A user name not spelled from the family name is compared whole.
    expect(level(email, smith(['jack.sparrow@gmail.com']), smith(['jack.sparrow@web.de']))).toBe('same user name, other domain');
    expect(level(email, smith(['john.smith@gmail.com']), { emails: ['john.smith@web.de'] })).toBe('same user name, other domain');
  });

  it('normalises plain ASCII text in one pass exactly as the Unicode path does', () => {
    const unicodePath = (value: string) => value.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/['’`.]/g, '').replace(/[^a-z0-9]+/g, ' ').trim() || undefined;
    let state = 11;
    const random = (n: number) => ((state = (state * 1_103_515_245 + 12_345) % 2 ** 31), state % n);
    for (let t = 0; t < 5000; t++) {
      const value = Array.from({ length: random(12) }, () => String.fromCharCode(32 + random(95))).join('');
      expect(normaliseText(value), JSON.stringify(value)).toBe(unicodePath(value));
    }
    expect(normaliseText("  O'Brien-Smith Ltd. ")).toBe('obrien smith ltd');
    expect(normaliseText('Müller, Zoë')).toBe('muller zoe');
    expect(normaliseText(' .. ')).toBeUndefined();
  });

  it('one edit agrees with Damerau–Levenshtein ≤ 1', () => {
    let state = 7;
    const random = (n: number) => ((state = (state * 1_103_515_245 + 12_345) % 2 ** 31), state % n);
    const word = () => Array.from({ length: 1 + random(6) }, () => 'abc'[random(3)]).join('');
    for (let t = 0; t < 5000; t++) {
      const [a, b] = [word(), word()];
      expect(oneEdit(a, b), `${a} ${b}`).toBe(damerauLevenshtein(a, b) <= 1);
    }
    expect(oneEdit('447700900123', '447700900132')).toBe(true);
    expect(oneEdit('447700900123', '44770090012')).toBe(true);
    expect(oneEdit('447700900123', '447700910132')).toBe(false);
  });

  it('phone: exact, same national number, one digit off', () => {
    expect(level(phone, { phones: ['+4930123456'] }, { phones: ['+49 30 123456'] })).toBe('exact');
    expect(level(phone, { phones: ['+447700900123'] }, { phones: ['07700900123'] })).toBe('same last eight digits');
    expect(level(phone, { phones: ['+4930123456'] }, { phones: ['+4930123465'] })).toBe('one edit');
    expect(level(phone, { phones: ['+4930123456'] }, { phones: ['+4989765432'] })).toBe('different');
  });

  it('postcode, city, address, organisation, job title', () => {
    expect(level(postcode, { postcode: 'SW1A 1AA' }, { postcode: 'sw1a1aa' })).toBe('exact');
    expect(level(postcode, { postcode: '2119' }, { postcode: '2191' })).toBe('one edit');
    expect(level(postcode, { postcode: 'tq13 8df' }, { postcode: 'tq14 9zz' })).toBe('same first three characters');
    expect(level(city, { city: 'Frankston' }, { city: 'Franskton' })).toBe('Jaro–Winkler ≥ 0.9');
    expect(level(address, { address: '12 High Street' }, { address: '12 high st' })).toBe('exact');
    expect(level(address, { address: '12 High Street' }, { address: '12 Hihg St' })).toBe('same house number, street Jaro–Winkler ≥ 0.9');
    expect(level(address, { address: '12 High Street' }, { address: '21 High St' })).toBe('street Jaro–Winkler ≥ 0.9');
    expect(level(address, { address: '12 High Street' }, { address: '3 Low Road' })).toBe('different');
    expect(level(organisation, { organisation: 'ACME Ltd.' }, { organisation: 'Acme Limited' })).toBe('exact (legal form folded)');
    expect(level(organisation, { organisation: 'Acme GmbH' }, { organisation: 'Globex' })).toBe('different');
    expect(level(jobTitle, { jobTitle: 'Politician' }, { jobTitle: 'politician' })).toBe('exact');
  });

  it('derives the match record from a canonical record', () => {
    const match = toMatchRecord('7', 'shop', {
      person: {
        given_name: 'Jon',
        family_name: 'Smith',
        birth_date: '1980-01-02',
        emails: [{ address: 'jon@example.com' }],
        phones: [{ number: '+4930123456' }],
        addresses: [{ line1: '12 High St', line2: 'Flat 3', postcode: 'AB1 2CD', city: 'Leeds' }],
      },
      organisation: { name: 'Acme Ltd' },
    });
    expect(match).toEqual({
      id: '7',
      source: 'shop',
      givenName: 'Jon',
      familyName: 'Smith',
      fullName: undefined,
      birthDate: '1980-01-02',
      emails: ['jon@example.com'],
      phones: ['+4930123456'],
      postcode: 'AB1 2CD',
      city: 'Leeds',
      address: '12 High St Flat 3',
      organisation: 'Acme Ltd',
      jobTitle: undefined,
    });
  });
});
