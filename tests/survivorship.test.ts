import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../hub/config.js';
import { inTransaction } from '../hub/db/database.js';
import { resolveRecords, saveSurvivorshipSettings } from '../identity-resolution/resolve.js';
import { saveResolutionSettings } from '../identity-resolution/probabilistic-matcher.js';
import { survive, type MemberRecord, type PinnedValue } from '../identity-resolution/survivorship.js';
import type { CanonicalRecord } from '../openapi/generated/canonical-record.gen.js';
import type { SurvivorshipConfig } from '../openapi/generated/hub-config.gen.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { golden, goldenOf, ingest, rawRecordId } from './helpers/pipeline.js';

const member = (rawRecordId: number, source: string, observedAt: string, record: CanonicalRecord): MemberRecord => ({
  rawRecordId,
  source,
  observedAt: new Date(observedAt),
  record,
});
const person = (person: NonNullable<CanonicalRecord['person']>): CanonicalRecord => ({ person });
const pin = (attribute: string, value: unknown, id = 1): PinnedValue => ({ id, attribute, value, createdAt: new Date('2025-06-01T00:00:00Z') });
const survivorOf = (candidates: ReturnType<typeof survive>['candidates'], attribute: string) =>
  candidates.filter((candidate) => candidate.attribute === attribute && candidate.survived);

/** Three records of one person: the ERP's is oldest, the shop's newest, the CRM's in between. */
const members = [
  member(1, 'erp', '2025-01-01T00:00:00Z', person({ given_name: 'Jon', phones: [{ number: '+4930111' }], addresses: [{ line1: '12 High St', postcode: '10115', city: 'Berlin' }] })),
  member(2, 'crm', '2025-02-01T00:00:00Z', person({ given_name: 'Jonathan', phones: [{ number: '+4930222' }], addresses: [{ city: 'Berlin' }] })),
  member(3, 'shop', '2025-03-01T00:00:00Z', person({ given_name: 'Jon', phones: [{ number: '+4930333' }, { number: '+4930111' }] })),
];

describe('survivorship rules', () => {
  it('keeps the most recent value by default, and names the rule in the lineage', () => {
    const { attributes, candidates } = survive(members);
    expect(attributes.given_name).toBe('Jon');
    expect(attributes.phones).toEqual(['+4930333', '+4930111', '+4930222']);
    expect(survivorOf(candidates, 'given_name')).toEqual([expect.objectContaining({ rawRecordId: 3, rule: 'most_recent' })]);
    expect(candidates.filter((candidate) => candidate.attribute === 'given_name' && !candidate.survived).map((candidate) => candidate.rawRecordId)).toEqual([2, 1]);
  });

  it('prefers the listed sources in order, then the most recent of the rest', () => {
    const rules: SurvivorshipConfig = { attributes: { phone: { rule: 'source_priority', sources: ['erp', 'crm'] }, given_name: { rule: 'source_priority', sources: ['crm'] } } };
    const { attributes, candidates } = survive(members, { rules });
    expect(attributes.phone).toBe('+4930111');
    expect(attributes.phones).toEqual(['+4930111', '+4930222', '+4930333']);
    expect(attributes.given_name).toBe('Jonathan');
    // The ERP's +4930111 represents the value; the shop's repeat of it is an alternate.
    expect(survivorOf(candidates, 'phones').map((candidate) => [candidate.value, candidate.rawRecordId, candidate.rule])).toEqual([
      ['+4930111', 1, 'source_priority'],
      ['+4930222', 2, 'source_priority'],
      ['+4930333', 3, 'source_priority'],
    ]);
    // No listed source has a birth date or job title: unlisted sources follow by recency.
    const unlisted = survive([member(1, 'erp', '2025-01-01T00:00:00Z', person({ job_title: 'Buyer' })), member(2, 'web', '2025-02-01T00:00:00Z', person({ job_title: 'CFO' })), member(3, 'desk', '2025-01-15T00:00:00Z', person({ job_title: 'CTO' }))], {
      rules: { attributes: { job_title: { rule: 'source_priority', sources: ['crm'] } } },
    });
    expect(unlisted.attributes.job_title).toBe('CFO');
  });

  it('keeps the value most records hold, the most recent of them on a tie', () => {
    const { attributes } = survive(members, { rules: { default: 'most_frequent' } });
    expect(attributes.given_name).toBe('Jon');
    expect(attributes.phone).toBe('+4930111');
    const tie = survive(members.slice(0, 2), { rules: { default: 'most_frequent' } });
    expect(tie.attributes.given_name).toBe('Jonathan');
  });

  it('keeps the most complete value: most filled parts, then the longest', () => {
    const { attributes, candidates } = survive(members, { rules: { attributes: { address: { rule: 'most_complete' }, given_name: { rule: 'most_complete' } } } });
    expect(attributes.address).toEqual({ line1: '12 High St', postcode: '10115', city: 'Berlin' });
    expect(attributes.given_name).toBe('Jonathan');
    expect(survivorOf(candidates, 'address')).toEqual([expect.objectContaining({ rawRecordId: 1, rule: 'most_complete' })]);
    // Equally complete values: the most recent wins.
    const tie = survive([member(1, 'erp', '2025-01-01T00:00:00Z', person({ given_name: 'Anna' })), member(2, 'crm', '2025-02-01T00:00:00Z', person({ given_name: 'Hans' }))], {
      rules: { default: 'most_complete' },
    });
    expect(tie.attributes.given_name).toBe('Hans');
  });

  it('gives the same result whatever order the members come in', () => {
    const twins = [...members, member(4, 'crm', '2025-03-01T00:00:00Z', person({ given_name: 'Johnny', phones: [{ number: '+4930444' }] }))];
    const configurations: SurvivorshipConfig[] = [{}, { default: 'most_frequent' }, { default: 'most_complete' }, { attributes: { given_name: { rule: 'source_priority', sources: ['crm', 'shop'] } } }];
    for (const rules of configurations) {
      const expected = survive(twins, { rules });
      for (const order of [[...twins].reverse(), [twins[2], twins[0], twins[3], twins[1]]]) {
        const shuffled = survive(order, { rules });
        expect(shuffled.attributes).toEqual(expected.attributes);
        expect(new Set(shuffled.candidates.map((candidate) => JSON.stringify(candidate)))).toEqual(new Set(expected.candidates.map((candidate) => JSON.stringify(candidate))));
      }
    }
    // Same observed_at: the later record id wins (4 over 3).
    expect(survive(twins).attributes.given_name).toBe('Johnny');
  });

  it('lets an opt-out win over an older opt-in and at the same moment, and a newer opt-in win over an opt-out', () => {
    const consent = (id: number, source: string, status: 'opt_in' | 'opt_out', at: string) =>
      member(id, source, '2025-01-01T00:00:00Z', { consent: [{ channel: 'email_marketing', status, at }] });
    const outAfterIn = survive([consent(1, 'crm', 'opt_in', '2025-01-01T00:00:00Z'), consent(2, 'shop', 'opt_out', '2025-02-01T00:00:00Z')]);
    expect(outAfterIn.attributes.email_marketing).toMatchObject({ status: 'opt_out', source: 'shop' });
    const sameMoment = survive([consent(2, 'shop', 'opt_out', '2025-02-01T00:00:00Z'), consent(3, 'crm', 'opt_in', '2025-02-01T00:00:00Z')]);
    expect(sameMoment.attributes.email_marketing).toMatchObject({ status: 'opt_out' });
    const inAfterOut = survive([consent(1, 'shop', 'opt_out', '2025-01-01T00:00:00Z'), consent(2, 'crm', 'opt_in', '2025-03-01T00:00:00Z')]);
    expect(inAfterOut.attributes.email_marketing).toMatchObject({ status: 'opt_in', source: 'crm' });
    expect(survivorOf(inAfterOut.candidates, 'email_marketing')).toEqual([expect.objectContaining({ rawRecordId: 2, rule: 'consent' })]);
  });
});

describe('survivorship configuration', () => {
  it('names a source priority without sources, or with a source that is not configured', () => {
    const config = (attributes: unknown) => () => checkConfig({ resolution: { survivorship: { attributes } }, sources: [] }, 'hub.config.yaml');
    expect(config({ given_name: { rule: 'source_priority' } })).toThrow(/resolution\.survivorship\.attributes\.given_name\.sources: is required/);
    expect(config({ phone: { rule: 'source_priority', sources: ['shopp'] } })).toThrow(/resolution\.survivorship\.attributes\.phone\.sources: unknown source 'shopp'/);
    expect(config({ phone: { rule: 'most_popular' } })).toThrow(/resolution\.survivorship\.attributes\.phone\.rule/);
    expect(config({ phone: { rule: 'source_priority', sources: ['hub'] }, address: { rule: 'most_complete' } })).not.toThrow();
  });
});

describe('steward pins', () => {
  it('override every rule; a pinned value a source holds survives from that source', () => {
    const { attributes, candidates } = survive(members, { pins: [pin('given_name', 'Jonathan', 7)], rules: { default: 'most_frequent' } });
    expect(attributes.given_name).toBe('Jonathan');
    const givenNames = candidates.filter((candidate) => candidate.attribute === 'given_name').sort((a, b) => a.rawRecordId! - b.rawRecordId!);
    expect(givenNames).toEqual([
      expect.objectContaining({ rawRecordId: 1, survived: false }),
      expect.objectContaining({ rawRecordId: 2, source: 'crm', survived: true, rule: 'pinned', pinnedValueId: 7 }),
      expect.objectContaining({ rawRecordId: 3, survived: false }),
    ]);
  });

  it('keep a value no source holds, from the steward, with every source value as an alternate', () => {
    const { attributes, candidates } = survive(members, { pins: [pin('given_name', 'John', 8), pin('email', 'jon@corp.example', 9)] });
    expect(attributes.given_name).toBe('John');
    expect(candidates.filter((candidate) => candidate.attribute === 'given_name').map((candidate) => [candidate.source, candidate.rawRecordId, candidate.survived])).toEqual([
      ['steward', null, true],
      ['shop', 3, false],
      ['crm', 2, false],
      ['erp', 1, false],
    ]);
    expect(attributes.email).toBe('jon@corp.example');
    expect(attributes.emails).toEqual(['jon@corp.example']);
    expect(survivorOf(candidates, 'emails')).toEqual([expect.objectContaining({ source: 'steward', rule: 'pinned', pinnedValueId: 9 })]);
  });

  it('put a pinned phone first in the list', () => {
    const { attributes } = survive(members, { pins: [pin('phone', '+4930222')] });
    expect(attributes.phone).toBe('+4930222');
    expect(attributes.phones).toEqual(['+4930222', '+4930333', '+4930111']);
  });
});

describe('steward pins in resolution', () => {
  let db: TestDatabase;
  const decision = { cause: 'decision' as const, causeId: '1', actor: 'steward:test' };
  const resolve = (ids: number[]) => inTransaction(db.pool, (client) => resolveRecords(client, ids, decision));
  const pinValue = async (goldenId: string, attribute: string, value: unknown, createdAt = '2025-06-01T00:00:00Z') => {
    const { rows } = await db.pool.query<{ id: string }>(
      "insert into pinned_value (golden_id, attribute, value, actor, created_at) values ($1, $2, $3, 'steward:test', $4) returning id",
      [goldenId, attribute, JSON.stringify(value), createdAt],
    );
    return Number(rows[0].id);
  };
  const lineage = async (goldenId: string, attribute: string) =>
    (
      await db.pool.query<{ value: unknown; source: string; raw_record_id: string | null; survived: boolean; rule: string | null; pinned_value_id: string | null }>(
        'select value, source, raw_record_id, survived, rule, pinned_value_id from attribute_lineage where golden_id = $1 and attribute = $2 order by survived desc, raw_record_id nulls first',
        [goldenId, attribute],
      )
    ).rows;

  beforeAll(async () => {
    db = await createTestDatabase();
    // The deterministic matcher: these cases join a customer's records by a shared email alone ("Mia"/"Maria").
    await saveResolutionSettings(db.pool, { matcher: 'deterministic' });
  });
  afterAll(() => db.drop());

  it('keeps a pinned value through later syncs until the pin is withdrawn', async () => {
    await ingest(db.pool, 'crm', [{ id: 'c1', email: 'mia@example.com', given: 'Mia', family: 'Roth', updated: '2025-01-01T10:00:00Z' }]);
    await ingest(db.pool, 'shop', [{ id: 's1', email: 'mia@example.com', given: 'Maria', family: 'Roth', updated: '2025-02-01T10:00:00Z' }]);
    const mia = (await goldenOf(db.pool, 'crm', 'c1'))!;
    const ids = [await rawRecordId(db.pool, 'crm', 'c1'), await rawRecordId(db.pool, 'shop', 's1')];
    expect((await golden(db.pool, mia)).data.given_name).toBe('Maria');

    const pinId = await pinValue(mia, 'given_name', 'Mia');
    await resolve(ids);
    expect((await golden(db.pool, mia)).data.given_name).toBe('Mia');
    expect(await lineage(mia, 'given_name')).toEqual([
      { value: 'Mia', source: 'crm', raw_record_id: String(ids[0]), survived: true, rule: 'pinned', pinned_value_id: String(pinId) },
      { value: 'Maria', source: 'shop', raw_record_id: String(ids[1]), survived: false, rule: null, pinned_value_id: null },
    ]);

    // A newer shop record would win by recency; the pin holds.
    await ingest(db.pool, 'shop', [{ id: 's1', email: 'mia@example.com', given: 'Marie', family: 'Roth', updated: '2025-03-01T10:00:00Z' }]);
    expect((await golden(db.pool, mia)).data.given_name).toBe('Mia');

    await db.pool.query('update pinned_value set withdrawn_at = now() where id = $1', [pinId]);
    await resolve(ids);
    expect((await golden(db.pool, mia)).data.given_name).toBe('Marie');
    expect((await lineage(mia, 'given_name')).filter((row) => row.survived)).toEqual([expect.objectContaining({ value: 'Marie', rule: 'most_recent', pinned_value_id: null })]);
  });

  it('keeps a pinned value that no source holds, with the steward as its lineage', async () => {
    const mia = (await goldenOf(db.pool, 'crm', 'c1'))!;
    const pinId = await pinValue(mia, 'family_name', 'Roth-Meyer');
    await resolve([await rawRecordId(db.pool, 'crm', 'c1')]);
    expect((await golden(db.pool, mia)).data.family_name).toBe('Roth-Meyer');
    expect(await lineage(mia, 'family_name')).toEqual([
      { value: 'Roth-Meyer', source: 'steward', raw_record_id: null, survived: true, rule: 'pinned', pinned_value_id: String(pinId) },
      expect.objectContaining({ value: 'Roth', source: 'crm', survived: false }),
      expect.objectContaining({ value: 'Roth', source: 'shop', survived: false }),
    ]);
    const { rows } = await db.pool.query("select changed from change_log where golden_id = $1 and cause = 'decision' order by position desc limit 1", [mia]);
    expect(rows[0].changed).toEqual(['family_name']);
  });

  it('moves pins to the survivor of a merge unless it has a pin of that attribute', async () => {
    await ingest(db.pool, 'crm', [{ id: 'c2', email: 'ben@example.com', given: 'Ben', family: 'Kern', updated: '2025-01-01T10:00:00Z' }]);
    await ingest(db.pool, 'crm', [{ id: 'c3', phone: '030 5550001', given: 'Benjamin', family: 'Kern', updated: '2025-01-02T10:00:00Z' }]);
    const [first, second] = [(await goldenOf(db.pool, 'crm', 'c2'))!, (await goldenOf(db.pool, 'crm', 'c3'))!];
    const keptPin = await pinValue(first, 'given_name', 'Ben');
    const overruledPin = await pinValue(second, 'given_name', 'Benny');
    const movedPin = await pinValue(second, 'job_title', 'Head of Sales');
    // A record with both keys merges the two; the older golden record survives.
    await ingest(db.pool, 'web', [{ id: 'w1', email: 'ben@example.com', phone: '030 5550001', updated: '2025-01-03T10:00:00Z' }]);
    expect(await goldenOf(db.pool, 'crm', 'c3')).toBe(first);
    expect(await golden(db.pool, second)).toMatchObject({ status: 'merged', merged_into: first });
    expect((await golden(db.pool, first)).data).toMatchObject({ given_name: 'Ben', job_title: 'Head of Sales' });
    const { rows } = await db.pool.query<{ id: string; golden_id: string }>('select id, golden_id from pinned_value where id = any($1::bigint[]) order by id', [[keptPin, overruledPin, movedPin]]);
    expect(rows.map((row) => row.golden_id)).toEqual([first, second, first]);
  });

  it('applies the configured rules the hub stored at boot', async () => {
    await saveSurvivorshipSettings(db.pool, { attributes: { given_name: { rule: 'source_priority', sources: ['crm'] } } });
    await ingest(db.pool, 'crm', [{ id: 'c4', email: 'ida@example.com', given: 'Ida', updated: '2025-01-01T10:00:00Z' }]);
    await ingest(db.pool, 'shop', [{ id: 's4', email: 'ida@example.com', given: 'Idalia', updated: '2025-05-01T10:00:00Z' }]);
    expect((await golden(db.pool, (await goldenOf(db.pool, 'crm', 'c4'))!)).data.given_name).toBe('Ida');
    await saveSurvivorshipSettings(db.pool, {});
  });
});
