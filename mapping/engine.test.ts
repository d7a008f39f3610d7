import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import canonicalSchema from '../openapi/schemas/canonical-record.schema.json' with { type: 'json' };
import { compileMapping, loadMappingFile, MappingConfigError, parseMapping, type FieldError, type MapResult } from './engine.js';

const ajv = new Ajv({ allErrors: true });
addFormats.default(ajv);
const validateCanonical = ajv.compile(canonicalSchema);

const crmMapping = `
streams:
  rows:
    fields:
      - { target: identifier, from: Kundennummer, scheme: 'crm:customer_id', verified: true, required: true }
      - { target: person.given_name, from: Name, transforms: [normalise_text, { split_full_name: { part: given } }] }
      - { target: person.family_name, from: Name, transforms: [normalise_text, { split_full_name: { part: family } }] }
      - { target: person.full_name, from: Name, transforms: [normalise_text] }
      - { target: person.birth_date, from: Geburtsdatum, transforms: [{ parse_date: { format: dd.MM.yyyy } }] }
      - { target: person.email, from: E-Mail, transforms: [email] }
      - { target: person.phone, from: Telefon, transforms: [phone] }
      - { target: person.address.line1, from: Strasse, transforms: [trim] }
      - { target: person.address.postcode, from: PLZ, transforms: [trim] }
      - { target: person.address.city, from: Ort, transforms: [trim] }
      - { target: person.address.country, value: DE }
      - { target: organisation.name, from: Firma, transforms: [normalise_text] }
      - { target: organisation.domain, from: E-Mail, transforms: [domain_from_email] }
      - { target: consent.email_marketing, from: Newsletter, transforms: [{ map_values: { values: { ja: opt_in, nein: opt_out } } }] }
      - { target: consent.email_marketing_at, from: Newsletter seit, transforms: [{ parse_timestamp: { format: 'dd.MM.yyyy HH:mm', timezone: '+01:00' } }] }
      - { target: observed_at, from: Geaendert, transforms: [{ parse_timestamp: { format: 'dd.MM.yyyy HH:mm:ss' } }] }
`;

const crmRow = {
  Kundennummer: 'K-1001',
  Name: 'Dr. Jan  van der Berg',
  Geburtsdatum: '07.03.1980',
  'E-Mail': ' Jan.vanderBerg@Example.DE ',
  Telefon: '030 1234567',
  Strasse: ' Hauptstraße 5 ',
  PLZ: '10115',
  Ort: 'Berlin',
  Firma: 'Beispiel\u00a0GmbH',
  Newsletter: 'Ja',
  'Newsletter seit': '01.12.2023 09:15',
  Geaendert: '02.01.2024 08:00:00',
};

const shopMapping = {
  streams: {
    orders: {
      fields: [
        { target: 'identifier', from: 'customer.id', scheme: 'shop:customer_id' },
        { target: 'person.email', from: 'billing.email', transforms: ['email'], verified: true },
        { target: 'person.given_name', from: 'billing.first_name', transforms: ['trim'] },
        { target: 'person.family_name', from: 'billing.last_name', transforms: ['trim'] },
        { target: 'person.phone', from: 'billing.phone', transforms: [{ phone: { default_region: 'GB' } }] },
        { target: 'person.address.country', from: 'billing.country', transforms: ['upper_case'] },
        { target: 'consent.email_marketing', from: 'customer.accepts_marketing', transforms: [{ map_values: { values: { true: 'opt_in', false: 'opt_out' } } }] },
        { target: 'interaction.kind', value: 'order' },
        { target: 'interaction.occurred_at', from: 'created_at', transforms: ['parse_timestamp'] },
        { target: 'interaction.external_id', from: 'id' },
        { target: 'interaction.amount', from: 'total_price', transforms: ['decimal'] },
        { target: 'interaction.currency', from: 'currency', transforms: ['upper_case'] },
        { target: 'interaction.status', from: 'financial_status' },
        { target: 'observed_at', from: 'updated_at', transforms: ['parse_timestamp'] },
      ],
    },
  },
};

const shopOrder = {
  id: 4501,
  created_at: '2024-01-05T10:30:00+01:00',
  updated_at: '2024-01-06T08:00:00Z',
  total_price: '129.90',
  currency: 'gbp',
  financial_status: 'paid',
  customer: { id: 777, accepts_marketing: true },
  billing: { email: 'Amy.Pond@Example.co.uk', first_name: ' Amy ', last_name: 'Pond', phone: '020 7946 0958', country: 'gb' },
  line_items: [{ sku: 'A-1', quantity: 2 }],
};

const ctx = { source: 'test', stream: 'rows', defaultRegion: 'DE' };

function record(result: MapResult) {
  if (!result.ok) throw new Error(`expected a record, got ${JSON.stringify(result.errors)}`);
  expect(validateCanonical(result.record), JSON.stringify(validateCanonical.errors)).toBe(true);
  return result.record;
}

function errors(result: MapResult): FieldError[] {
  if (result.ok) throw new Error(`expected errors, got ${JSON.stringify(result.record)}`);
  return result.errors;
}

/** Maps one record with a one-stream mapping of the given rules. */
function mapWith(fields: unknown[], data: Record<string, unknown>): MapResult {
  return compileMapping(parseMapping({ streams: { rows: { fields } } }, 'test')).map('rows', data, ctx);
}

describe('compileMapping', () => {
  it('maps a CSV row into a valid CanonicalRecord', () => {
    const mapping = compileMapping(parseMapping(crmMapping, 'crm.yaml'));
    expect(mapping.streams).toEqual(['rows']);
    expect(record(mapping.map('rows', crmRow, ctx))).toEqual({
      observed_at: '2024-01-02T08:00:00.000Z',
      person: {
        given_name: 'Jan',
        family_name: 'van der Berg',
        full_name: 'Dr. Jan van der Berg',
        birth_date: '1980-03-07',
        emails: [{ address: 'jan.vanderberg@example.de' }],
        phones: [{ number: '+49301234567' }],
        addresses: [{ line1: 'Hauptstraße 5', postcode: '10115', city: 'Berlin', country: 'DE' }],
      },
      organisation: { name: 'Beispiel GmbH', domain: 'example.de' },
      identifiers: [{ scheme: 'crm:customer_id', value: 'K-1001', verified: true }],
      consent: [{ channel: 'email_marketing', status: 'opt_in', at: '2023-12-01T08:15:00.000Z' }],
    });
  });

  it('maps a nested JSON order, reading numbers and booleans', () => {
    const mapping = compileMapping(parseMapping(shopMapping, 'shop'));
    expect(record(mapping.map('orders', shopOrder, { ...ctx, stream: 'orders' }))).toEqual({
      observed_at: '2024-01-06T08:00:00.000Z',
      person: {
        given_name: 'Amy',
        family_name: 'Pond',
        emails: [{ address: 'amy.pond@example.co.uk', verified: true }],
        phones: [{ number: '+442079460958' }],
        addresses: [{ country: 'GB' }],
      },
      identifiers: [{ scheme: 'shop:customer_id', value: '777' }],
      consent: [{ channel: 'email_marketing', status: 'opt_in' }],
      interactions: [
        { kind: 'order', occurred_at: '2024-01-05T09:30:00.000Z', external_id: '4501', amount: 129.9, currency: 'GBP', status: 'paid' },
      ],
    });
  });

  it('gives deep-equal output for the same input', () => {
    const mapping = compileMapping(parseMapping(crmMapping, 'crm.yaml'));
    const first = mapping.map('rows', { ...crmRow }, ctx);
    const second = mapping.map('rows', { ...crmRow }, ctx);
    expect(second).toEqual(first);
    expect(JSON.stringify(second)).toBe(JSON.stringify(first));
  });

  it('collects several emails, phones and identifiers, leaving out empty ones', () => {
    const result = mapWith(
      [
        { target: 'person.email', from: 'work_email', transforms: ['email'], verified: true },
        { target: 'person.email', from: 'home_email', transforms: ['email'] },
        { target: 'person.email', from: 'other_email', transforms: ['email'] },
        { target: 'person.phone', from: 'mobile', transforms: ['phone'], verified: false },
        { target: 'person.phone', from: 'landline', transforms: ['phone'] },
        { target: 'identifier', from: 'id', scheme: 'crm:id' },
        { target: 'identifier', from: 'vat', scheme: 'vat', transforms: ['upper_case'], verified: true },
      ],
      { work_email: 'a@work.com', home_email: 'A@Home.org', other_email: '  ', mobile: '0151 23456789', landline: '+44 20 7946 0958', id: 7, vat: 'de123456789' },
    );
    expect(record(result)).toEqual({
      person: {
        emails: [{ address: 'a@work.com', verified: true }, { address: 'a@home.org' }],
        phones: [{ number: '+4915123456789', verified: false }, { number: '+442079460958' }],
      },
      identifiers: [
        { scheme: 'crm:id', value: '7' },
        { scheme: 'vat', value: 'DE123456789', verified: true },
      ],
    });
  });

  it('takes verified from a field of the record: a boolean, true/false text, or unknown when empty', () => {
    const fields = [
      { target: 'person.email', from: 'email', transforms: ['email'], verified_from: 'verifiedEmail' },
      { target: 'identifier', from: 'id', scheme: 'shop:id', verified_from: 'account.confirmed' },
    ];
    const map = (data: Record<string, unknown>) => record(mapWith(fields, { email: 'Amy@Example.com', id: 7, ...data }));
    expect(map({ verifiedEmail: true, account: { confirmed: false } })).toEqual({
      person: { emails: [{ address: 'amy@example.com', verified: true }] },
      identifiers: [{ scheme: 'shop:id', value: '7', verified: false }],
    });
    expect(map({ verifiedEmail: ' FALSE ', account: { confirmed: 'true' } })).toEqual({
      person: { emails: [{ address: 'amy@example.com', verified: false }] },
      identifiers: [{ scheme: 'shop:id', value: '7', verified: true }],
    });
    // Missing, null or blank: the source does not say, so neither does the record.
    for (const unknown of [{}, { verifiedEmail: null, account: {} }, { verifiedEmail: ' ', account: { confirmed: '' } }]) {
      expect(map(unknown)).toEqual({ person: { emails: [{ address: 'amy@example.com' }] }, identifiers: [{ scheme: 'shop:id', value: '7' }] });
    }
  });

  it('reports a verified_from field that holds no boolean, naming the field, and leaves the value out', () => {
    const fields = [{ target: 'person.email', from: 'email', transforms: ['email'], verified_from: 'verifiedEmail' }];
    for (const flag of ['yes', 1, { at: 'now' }]) {
      expect(errors(mapWith(fields, { email: 'amy@example.com', verifiedEmail: flag }))).toEqual([
        { field: 'email', target: 'person.email', reason: `verified_from 'verifiedEmail': '${typeof flag === 'string' ? flag : JSON.stringify(flag)}' is not true or false` },
      ]);
    }
    // An empty value is left out before its flag is read: nothing to verify.
    expect(record(mapWith(fields, { email: '', verifiedEmail: 'yes' }))).toEqual({});
  });

  it("maps every element of a list with '*', each with the verified flag of its own element", () => {
    const fields = [
      { target: 'person.email', from: 'email', transforms: ['email'], verified_from: 'identities.0.verified' },
      { target: 'person.email', from: 'identities.*.value', transforms: ['email'], verified_from: 'identities.*.verified' },
      { target: 'person.phone', from: 'other_phones.*', transforms: ['phone'] },
    ];
    const data = {
      email: 'amy@example.com',
      identities: [
        { value: 'Amy@Example.com', verified: true },
        { value: 'amy.private@mail.org', verified: false },
        { verified: true },
        { value: 'a.b@work.com' },
        'not an object',
      ],
      other_phones: ['+44 20 7946 0958', '', '+49 30 1234567'],
    };
    // The primary email, listed again among the identities, is kept once.
    expect(record(mapWith(fields, data))).toEqual({
      person: {
        emails: [{ address: 'amy@example.com', verified: true }, { address: 'amy.private@mail.org', verified: false }, { address: 'a.b@work.com' }],
        phones: [{ number: '+442079460958' }, { number: '+49301234567' }],
      },
    });
    // A missing, null or empty list maps to nothing.
    for (const identities of [undefined, null, []]) expect(record(mapWith(fields.slice(1), { identities }))).toEqual({});
  });

  it("names the element of a list whose value or flag is bad, and a '*' field that holds no list", () => {
    const fields = [{ target: 'person.email', from: 'identities.*.value', transforms: ['email'], verified_from: 'identities.*.verified' }];
    const identities = [{ value: 'amy@example.com', verified: true }, { value: 'not an email' }, { value: 'b@example.com', verified: 'maybe' }];
    expect(errors(mapWith(fields, { identities }))).toEqual([
      { field: 'identities.1.value', target: 'person.email', reason: expect.stringMatching(/^'not an email' /) },
      { field: 'identities.2.value', target: 'person.email', reason: "verified_from 'identities.2.verified': 'maybe' is not true or false" },
    ]);
    expect(errors(mapWith(fields, { identities: { value: 'amy@example.com' } }))).toEqual([
      { field: 'identities.*.value', target: 'person.email', reason: `'identities' holds '{"value":"amy@example.com"}', not a list` },
    ]);
  });

  it('leaves out every empty target: no empty objects or arrays', () => {
    const mapping = compileMapping(parseMapping(crmMapping, 'crm.yaml'));
    const blank = Object.fromEntries(Object.keys(crmRow).map((key) => [key, ' ']));
    expect(record(mapping.map('rows', { ...blank, Kundennummer: 'K-1' }, ctx))).toEqual({
      person: { addresses: [{ country: 'DE' }] },
      identifiers: [{ scheme: 'crm:customer_id', value: 'K-1', verified: true }],
    });
    expect(record(mapWith([{ target: 'person.given_name', from: 'a' }], {}))).toEqual({});
  });

  it('reports a required target that ends empty, whether missing, blank or emptied by a transform', () => {
    const fields = [
      { target: 'person.family_name', from: 'last', required: true },
      { target: 'person.given_name', from: 'first', transforms: [{ map_values: { values: { 'n/a': '' }, default: 'x' } }], required: true },
    ];
    expect(errors(mapWith(fields, {}))).toEqual([
      { field: 'last', target: 'person.family_name', reason: 'is required' },
      { field: 'first', target: 'person.given_name', reason: 'is required' },
    ]);
    expect(errors(mapWith(fields, { last: '\t', first: 'N/A' }))).toHaveLength(2);
    expect(record(mapWith(fields, { last: 'Pond', first: 'Amy' }))).toEqual({ person: { family_name: 'Pond', given_name: 'x' } });
  });

  it('collects all field errors of a record, with the source field or (constant)', () => {
    const result = mapWith(
      [
        { target: 'person.email', from: 'email', transforms: ['email'] },
        { target: 'person.birth_date', from: 'born', transforms: [{ parse_date: { format: 'dd.MM.yyyy' } }] },
        { target: 'person.given_name', from: 'first' },
        { target: 'interaction.kind', value: 'purchase' },
        { target: 'interaction.occurred_at', from: 'at' },
        { target: 'interaction.amount', from: 'total' },
      ],
      { email: 'jane@@x', born: '31.02.1990', first: 'Jane', at: '2024-01-05 10:00', total: '12.50' },
    );
    expect(errors(result)).toEqual([
      { field: 'email', target: 'person.email', reason: "'jane@@x' is not an email address" },
      { field: 'born', target: 'person.birth_date', reason: "'31.02.1990' is not a valid date (expected dd.MM.yyyy)" },
      { field: '(constant)', target: 'interaction.kind', reason: "'purchase' is not one of: order, quote, invoice, ticket, email, web_event, call, note" },
      { field: 'at', target: 'interaction.occurred_at', reason: `'2024-01-05 10:00' must match format "date-time"` },
      { field: 'total', target: 'interaction.amount', reason: "'12.50' must be number" },
    ]);
  });

  it('reports an unknown stream with one error naming it', () => {
    const mapping = compileMapping(parseMapping(crmMapping, 'crm.yaml'));
    expect(errors(mapping.map('contacts', crmRow, ctx))).toEqual([
      { field: '(stream)', target: '(stream)', reason: "stream 'contacts' is not in the mapping (it has: rows)" },
    ]);
  });

  it('reads a key containing dots before the nested path, and a missing path as empty', () => {
    const fields = [
      { target: 'person.email', from: 'billing.email' },
      { target: 'person.given_name', from: 'billing.name.first' },
    ];
    expect(record(mapWith(fields, { 'billing.email': 'flat@x.com', billing: { email: 'nested@x.com' } }))).toEqual({
      person: { emails: [{ address: 'flat@x.com' }] },
    });
    expect(record(mapWith(fields, { billing: { email: 'nested@x.com', name: 'not an object' } }))).toEqual({
      person: { emails: [{ address: 'nested@x.com' }] },
    });
  });

  it('refuses an object where the canonical model wants text', () => {
    expect(errors(mapWith([{ target: 'person.job_title', from: 'job' }], { job: { title: 'CTO' } }))).toEqual([
      { field: 'job', target: 'person.job_title', reason: `'{"title":"CTO"}' must be string` },
    ]);
  });

  it('gives timestamps as ISO 8601 UTC and checks observed_at', () => {
    expect(errors(mapWith([{ target: 'observed_at', from: 'changed' }], { changed: 'last week' }))).toEqual([
      { field: 'changed', target: 'observed_at', reason: `'last week' must match format "date-time"` },
    ]);
  });
});

describe('interactions', () => {
  const fields = [
    { target: 'interaction.kind', from: 'type', transforms: [{ map_values: { values: { auftrag: 'order', angebot: 'quote' } } }] },
    { target: 'interaction.occurred_at', from: 'date', transforms: [{ parse_timestamp: { format: 'dd.MM.yyyy' } }] },
    { target: 'interaction.external_id', from: 'number' },
    { target: 'interaction.owner', from: 'rep' },
  ];

  it('builds one interaction', () => {
    expect(record(mapWith(fields, { type: 'Angebot', date: '05.01.2024', number: 'Q-17', rep: 'Tom' }))).toEqual({
      interactions: [{ kind: 'quote', occurred_at: '2024-01-05T00:00:00.000Z', external_id: 'Q-17', owner: 'Tom' }],
    });
  });

  it('needs kind and occurred_at when any interaction field is set', () => {
    expect(errors(mapWith(fields, { number: 'Q-17' }))).toEqual([
      { field: 'type', target: 'interaction.kind', reason: 'is required when other interaction fields are set' },
      { field: 'date', target: 'interaction.occurred_at', reason: 'is required when other interaction fields are set' },
    ]);
    expect(errors(mapWith(fields, { type: 'auftrag' }))).toEqual([
      { field: 'date', target: 'interaction.occurred_at', reason: 'is required when other interaction fields are set' },
    ]);
  });

  it('reports a failed kind once, not again as missing', () => {
    expect(errors(mapWith(fields, { type: 'rechnung', date: '05.01.2024' }))).toEqual([
      { field: 'type', target: 'interaction.kind', reason: "'rechnung' is not one of: auftrag, angebot" },
    ]);
  });

  it('leaves interactions out when no interaction field is set', () => {
    expect(record(mapWith(fields, { type: '', date: ' ' }))).toEqual({});
  });
});

describe('consent', () => {
  const fields = [
    { target: 'consent.email_marketing', from: 'status' },
    { target: 'consent.email_marketing_at', from: 'since', transforms: ['parse_timestamp'] },
  ];

  it('builds one email_marketing entry, with its time when known', () => {
    expect(record(mapWith(fields, { status: 'opt_out', since: '2024-02-01T12:00:00+02:00' }))).toEqual({
      consent: [{ channel: 'email_marketing', status: 'opt_out', at: '2024-02-01T10:00:00.000Z' }],
    });
    expect(record(mapWith(fields, { status: 'opt_in' }))).toEqual({ consent: [{ channel: 'email_marketing', status: 'opt_in' }] });
  });

  it("accepts only 'opt_in' and 'opt_out'", () => {
    expect(errors(mapWith(fields, { status: 'yes' }))).toEqual([
      { field: 'status', target: 'consent.email_marketing', reason: "'yes' is not one of: opt_in, opt_out" },
    ]);
  });

  it('records no consent when a row has a time but no decision', () => {
    // A source that maps its "last modified" column as the consent time has rows where nobody decided.
    expect(record(mapWith(fields, { since: '2024-02-01T12:00:00Z' }))).toEqual({});
  });
});

describe("on_error: omit", () => {
  const fields = [
    { target: 'person.email', from: 'email', transforms: ['email'] },
    { target: 'person.phone', from: 'phone', transforms: ['phone'] },
    { target: 'person.phone', from: 'phones.*', transforms: ['phone'], on_error: 'omit' },
    { target: 'person.address.city', from: 'city', transforms: ['normalise_text'], on_error: 'omit' },
  ];
  const omitted = (result: MapResult) => {
    if (!result.ok) throw new Error(`expected a record, got ${JSON.stringify(result.errors)}`);
    return result.omitted;
  };

  it('leaves a value its rule cannot map out of the record, names it, and maps the rest', () => {
    const result = mapWith(fields, { email: 'ann@example.com', phone: '+49 30 1234567', phones: ['+49 40 7654321', 'call reception', '030 9876543'], city: { street: 'x' } });
    expect(record(result)).toEqual({
      person: { emails: [{ address: 'ann@example.com' }], phones: [{ number: '+49301234567' }, { number: '+49407654321' }, { number: '+49309876543' }] },
    });
    expect(omitted(result)).toEqual([
      { field: 'phones.1', target: 'person.phone', reason: expect.stringMatching(/^'call reception' /) },
      { field: 'city', target: 'person.address.city', reason: expect.stringMatching(/not a text value/) },
    ]);
    expect(omitted(mapWith(fields, { email: 'ann@example.com', phones: ['+49 40 7654321'] }))).toEqual([]);
    // A '*' field that holds no list is omitted too.
    expect(omitted(mapWith(fields, { email: 'ann@example.com', phones: 'call reception' }))).toEqual([
      { field: 'phones.*', target: 'person.phone', reason: "'phones' holds 'call reception', not a list" },
    ]);
  });

  it("still quarantines a record for a rule without it, reporting only that rule's errors", () => {
    expect(errors(mapWith(fields, { email: 'ann@example.com', phone: 'call reception', phones: ['n/a'] }))).toEqual([
      { field: 'phone', target: 'person.phone', reason: expect.stringMatching(/^'call reception' /) },
    ]);
  });

  it('fails the record when an omitted value is one its group needs', () => {
    const interaction = [
      { target: 'interaction.kind', from: 'type', transforms: [{ map_values: { values: { auftrag: 'order' } } }], on_error: 'omit' },
      { target: 'interaction.occurred_at', from: 'date', transforms: ['parse_timestamp'] },
    ];
    expect(errors(mapWith(interaction, { type: 'rechnung', date: '2024-01-05T00:00:00Z' }))).toEqual([
      { field: 'type', target: 'interaction.kind', reason: "'rechnung' is not one of: auftrag" },
    ]);
    expect(omitted(mapWith(interaction, { type: 'rechnung' }))).toEqual([{ field: 'type', target: 'interaction.kind', reason: "'rechnung' is not one of: auftrag" }]);
  });
});

/** The issues of a document that parseMapping refuses; the message gives each as `origin: path: reason`. */
function issues(input: unknown) {
  try {
    parseMapping(input, 'mappings/bad.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(MappingConfigError);
    const { message, issues } = error as MappingConfigError;
    for (const issue of issues) expect(message).toContain(`mappings/bad.yaml: ${issue.path ? `${issue.path}: ` : ''}${issue.reason}`);
    return issues;
  }
  throw new Error('expected a MappingConfigError');
}

const oneRule = (rule: Record<string, unknown>) => ({ streams: { rows: { fields: [{ target: 'person.given_name', from: 'a' }, rule] } } });

describe('parseMapping', () => {
  it('reads YAML, JSON text and parsed objects alike', () => {
    const fromYaml = parseMapping(crmMapping, 'crm.yaml');
    expect(parseMapping(JSON.stringify(fromYaml), 'crm.json')).toEqual(fromYaml);
    expect(parseMapping(shopMapping, 'shop')).toEqual(shopMapping);
    expect(fromYaml.streams.rows.fields[4]).toEqual({ target: 'person.birth_date', from: 'Geburtsdatum', transforms: [{ parse_date: { format: 'dd.MM.yyyy' } }] });
  });

  it('names the key path, the origin and the reason in the message', () => {
    const yaml = `
streams:
  rows:
    fields:
      - { target: person.given_name, from: a }
      - { target: person.nickname, from: b }
`;
    expect(() => parseMapping(yaml, 'mappings/bad.yaml')).toThrow(
      /^mappings\/bad\.yaml: streams\.rows\.fields\[1\]\.target: 'person\.nickname' is not one of: observed_at, person\.given_name, /,
    );
  });

  it('refuses an unknown transform', () => {
    expect(issues(oneRule({ target: 'person.family_name', from: 'b', transforms: ['trim', 'trimm'] }))).toEqual([
      { path: 'streams.rows.fields[1].transforms[1]', reason: expect.stringMatching(/^'trimm' is not one of: trim, lower_case, /) },
    ]);
    expect(issues(oneRule({ target: 'person.family_name', from: 'b', transforms: [{ trimm: {} }] }))).toEqual([
      { path: 'streams.rows.fields[1].transforms[0].trimm', reason: expect.stringMatching(/^is not a known key \(expected one of: trim, /) },
    ]);
  });

  it("refuses on_error 'omit' on a required rule, and an unknown on_error", () => {
    expect(issues(oneRule({ target: 'person.family_name', from: 'b', required: true, on_error: 'omit' }))).toEqual([
      { path: 'streams.rows.fields[1].on_error', reason: "'omit' cannot be combined with 'required: true': a required value cannot be left out" },
    ]);
    expect(issues(oneRule({ target: 'person.family_name', from: 'b', on_error: 'skip' }))).toEqual([
      { path: 'streams.rows.fields[1].on_error', reason: expect.stringMatching(/quarantine, omit/) },
    ]);
  });

  it('refuses a transform step that is neither a name nor a one-key object', () => {
    expect(issues(oneRule({ target: 'person.family_name', from: 'b', transforms: [42] }))).toEqual([
      { path: 'streams.rows.fields[1].transforms[0]', reason: "'42' is not valid here. Either a transform name or a one-key object from the name to its options." },
    ]);
    expect(issues(oneRule({ target: 'person.family_name', from: 'b', transforms: [{ trim: {}, email: {} }] }))).toEqual([
      { path: 'streams.rows.fields[1].transforms[0]', reason: 'must NOT have more than 1 properties' },
    ]);
  });

  it('refuses bad transform options, naming the key', () => {
    const transform = (step: unknown) => issues(oneRule({ target: 'person.family_name', from: 'b', transforms: [step] }));
    expect(transform({ parse_date: { fmt: 'dd.MM.yyyy' } })).toEqual([
      { path: 'streams.rows.fields[1].transforms[0].parse_date.fmt', reason: 'is not a known key (expected one of: format)' },
    ]);
    expect(transform({ split_full_name: { part: 'middle' } })).toEqual([
      { path: 'streams.rows.fields[1].transforms[0].split_full_name.part', reason: "'middle' is not one of: given, family" },
    ]);
    expect(transform({ phone: { default_region: 'de' } })).toEqual([
      { path: 'streams.rows.fields[1].transforms[0].phone.default_region', reason: 'must match pattern "^[A-Z]{2}$"' },
    ]);
    expect(transform({ trim: { side: 'left' } })).toEqual([
      { path: 'streams.rows.fields[1].transforms[0].trim.side', reason: 'is not a known key (no keys are allowed here)' },
    ]);
    expect(transform({ parse_timestamp: { timezone: 'Europe/Berlin' } })[0].path).toBe('streams.rows.fields[1].transforms[0].parse_timestamp.timezone');
  });

  it('refuses a bare transform name whose options are required', () => {
    expect(issues(oneRule({ target: 'person.family_name', from: 'b', transforms: ['map_values', 'split_full_name'] }))).toEqual([
      { path: 'streams.rows.fields[1].transforms[0].map_values.values', reason: 'is required' },
      { path: 'streams.rows.fields[1].transforms[1].split_full_name.part', reason: 'is required' },
    ]);
  });

  it('refuses options the schema cannot check: date formats and phone regions', () => {
    expect(issues(oneRule({ target: 'person.birth_date', from: 'b', transforms: [{ parse_date: { format: 'dd.MM.yyyz' } }] }))).toEqual([
      { path: 'streams.rows.fields[1].transforms[0].parse_date', reason: expect.stringMatching(/^format 'dd.MM.yyyz' is not a date-fns format/) },
    ]);
    expect(issues(oneRule({ target: 'person.phone', from: 'b', transforms: [{ phone: { default_region: 'XX' } }] }))).toEqual([
      { path: 'streams.rows.fields[1].transforms[0].phone', reason: "default_region 'XX' is not a known phone region" },
    ]);
  });

  it('needs exactly one of from and value', () => {
    const reason = "needs exactly one of 'from' (a source field) and 'value' (a constant)";
    expect(issues(oneRule({ target: 'person.family_name', from: 'b', value: 'x' }))).toEqual([{ path: 'streams.rows.fields[1]', reason }]);
    expect(issues(oneRule({ target: 'person.family_name' }))).toEqual([{ path: 'streams.rows.fields[1]', reason }]);
  });

  it('needs a scheme for identifiers, and only there', () => {
    expect(issues(oneRule({ target: 'identifier', from: 'id' }))).toEqual([
      { path: 'streams.rows.fields[1].scheme', reason: "is required for target 'identifier'" },
    ]);
    expect(issues(oneRule({ target: 'person.family_name', from: 'b', scheme: 'crm:id' }))).toEqual([
      { path: 'streams.rows.fields[1].scheme', reason: "is only allowed for target 'identifier'" },
    ]);
  });

  it('allows verified only for identifiers, emails and phones', () => {
    expect(issues(oneRule({ target: 'person.family_name', from: 'b', verified: true }))).toEqual([
      { path: 'streams.rows.fields[1].verified', reason: 'is only allowed for targets identifier, person.email and person.phone' },
    ]);
  });

  it('allows verified_from only for identifiers, emails and phones, and not together with verified', () => {
    expect(issues(oneRule({ target: 'person.family_name', from: 'b', verified_from: 'c' }))).toEqual([
      { path: 'streams.rows.fields[1].verified_from', reason: 'is only allowed for targets identifier, person.email and person.phone' },
    ]);
    expect(issues(oneRule({ target: 'person.email', from: 'b', verified: true, verified_from: 'c' }))).toEqual([
      { path: 'streams.rows.fields[1].verified_from', reason: "cannot be combined with 'verified' (a constant): use one of the two" },
    ]);
    expect(issues(oneRule({ target: 'person.phone', from: 'b', verified_from: '' }))).toEqual([
      { path: 'streams.rows.fields[1].verified_from', reason: 'must NOT have fewer than 1 characters' },
    ]);
  });

  it("allows '*' once per path, after a list's field, for identifiers, emails and phones, and in verified_from only with from", () => {
    expect(issues(oneRule({ target: 'person.family_name', from: 'names.*' }))).toEqual([
      { path: 'streams.rows.fields[1].from', reason: "'*' (every element of a list) is only allowed for targets identifier, person.email and person.phone" },
    ]);
    expect(issues(oneRule({ target: 'person.email', from: 'a.*.b.*' }))).toEqual([
      { path: 'streams.rows.fields[1].from', reason: "may hold one '*' (every element of one list), not several" },
    ]);
    expect(issues(oneRule({ target: 'person.email', from: '*.address' }))).toEqual([
      { path: 'streams.rows.fields[1].from', reason: "needs the list's field before '*' (e.g. other_emails.*)" },
    ]);
    expect(issues(oneRule({ target: 'person.email', from: 'email', verified_from: 'identities.*.verified' }))).toEqual([
      { path: 'streams.rows.fields[1].verified_from', reason: "holds '*' but 'from' does not: the flag is read from the element the value came from" },
    ]);
    expect(issues(oneRule({ target: 'person.phone', from: 'phones.*', required: true }))).toEqual([
      { path: 'streams.rows.fields[1].required', reason: "cannot be combined with '*' in 'from' (a list may be empty)" },
    ]);
    expect(() => parseMapping(oneRule({ target: 'identifier', scheme: 'crm:id', from: 'ids.*', verified_from: 'flags.*' }), 'good.yaml')).not.toThrow();
  });

  it('allows one rule per single-valued target', () => {
    expect(issues(oneRule({ target: 'person.given_name', from: 'b' }))).toEqual([
      {
        path: 'streams.rows.fields[1].target',
        reason: "'person.given_name' is already the target of fields[0]; only person.email, person.phone, identifier take several rules",
      },
    ]);
  });

  it('needs rules for interaction.kind and occurred_at when any interaction target is mapped', () => {
    expect(issues(oneRule({ target: 'interaction.amount', from: 'b' }))).toEqual([
      { path: 'streams.rows.fields', reason: 'interaction fields need a rule for interaction.kind and interaction.occurred_at' },
    ]);
    expect(issues(oneRule({ target: 'consent.email_marketing_at', from: 'b' }))).toEqual([
      { path: 'streams.rows.fields', reason: 'consent.email_marketing_at needs a rule for consent.email_marketing' },
    ]);
  });

  it('refuses unknown keys, missing keys and wrong types', () => {
    expect(issues(oneRule({ target: 'person.family_name', form: 'b' }))).toEqual([
      { path: 'streams.rows.fields[1].form', reason: 'is not a known key (expected one of: target, from, value, transforms, required, on_error, scheme, verified, verified_from)' },
    ]);
    expect(issues({ streams: { rows: { fields: [{ from: 'a', required: 'yes' }] } } })).toEqual([
      { path: 'streams.rows.fields[0].target', reason: 'is required' },
      { path: 'streams.rows.fields[0].required', reason: 'must be boolean' },
    ]);
    expect(issues({ streams: {} })).toEqual([{ path: 'streams', reason: 'must NOT have fewer than 1 properties' }]);
    expect(issues('just text')).toEqual([{ path: '', reason: 'must be object' }]);
  });

  it('reports every issue of a document at once', () => {
    const found = issues({
      streams: {
        rows: { fields: [{ target: 'identifier', from: 'id' }, { target: 'person.email', value: 'x', from: 'y' }] },
        contacts: { fields: [{ target: 'person.phone', from: 'p', transforms: [{ parse_date: { format: 'nope' } }] }] },
      },
    });
    expect(found.map((issue) => issue.path)).toEqual(['streams.rows.fields[0].scheme', 'streams.rows.fields[1]', 'streams.contacts.fields[0].transforms[0].parse_date']);
  });

  it('reports YAML syntax errors with their line', () => {
    const found = issues('streams:\n  rows:\n    fields: [\n');
    expect(found).toHaveLength(1);
    expect(found[0].reason).toMatch(/line \d+/);
  });
});

describe('loadMappingFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mapping-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads and validates a file', async () => {
    await writeFile(join(dir, 'crm.yaml'), crmMapping);
    expect(await loadMappingFile(join(dir, 'crm.yaml'))).toEqual(parseMapping(crmMapping, 'crm.yaml'));
  });

  it('names the file in validation errors', async () => {
    const path = join(dir, 'bad.yaml');
    await writeFile(path, 'streams:\n  rows:\n    fields:\n      - { target: identifier, from: id }\n');
    await expect(loadMappingFile(path)).rejects.toThrow(`${path}: streams.rows.fields[0].scheme: is required for target 'identifier'`);
  });

  it('refuses a file that cannot be read, as a config error', async () => {
    const path = join(dir, 'missing.yaml');
    await expect(loadMappingFile(path)).rejects.toBeInstanceOf(MappingConfigError);
    await expect(loadMappingFile(path)).rejects.toThrow(`${path}: cannot read the mapping: ENOENT`);
  });
});
