/**
 * Issue 3, deterministic rules first: each rule in both matchers, same-source duplicates, and a steward's cannot-link
 * beating a verified email; explanations name the rule. Records go through the real save boundary and resolver.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { inTransaction, type Pool } from '../hub/db/database.js';
import { createApiKey } from '../hub/auth.js';
import { checkConfig } from '../hub/config.js';
import { compileMapping, parseMapping } from '../mapping/engine.js';
import { resolveRecords } from '../identity-resolution/resolve.js';
import { matchKeys } from '../identity-resolution/match-keys.js';
import { resolutionSettings, saveResolutionSettings, type MatcherName } from '../identity-resolution/probabilistic-matcher.js';
import type { HubConfig } from '../openapi/generated/hub-config.gen.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { migrate } from '../hub/db/migrate.js';
import { mergeCustomers } from '../hub/steward.js';
import { bearer, buildTestApp, seedRecord, seedSource, testHub } from './helpers/app.js';
import { goldenOf, ingest as ingestWith, rawRecordId } from './helpers/pipeline.js';

// A shop-like source: a customer id (one scheme for every source here, as if the ERP stored the shop's id) and a verified flag.
const mapping = compileMapping(
  parseMapping(
    `streams:
  people:
    fields:
      - { target: identifier, from: cid, scheme: "shop:customer_id" }
      - { target: person.email, from: email, transforms: [email], verified_from: email_verified }
      - { target: person.given_name, from: given, transforms: [normalise_text] }
      - { target: person.family_name, from: family, transforms: [normalise_text] }
      - { target: person.birth_date, from: born }
`,
    'rules test mapping',
  ),
);

const ingest = (pool: Pool, source: string, rows: Record<string, string>[]) => ingestWith(pool, source, rows, mapping);

async function membership(pool: Pool, source: string, externalId: string): Promise<{ rule: string; links: { with: number; rule: string; key?: string }[] }> {
  const { rows } = await pool.query(
    'select m.detail from cluster_membership m join raw_record r on r.id = m.raw_record_id where m.valid_to is null and r.source = $1 and r.external_id = $2',
    [source, externalId],
  );
  return rows[0].detail;
}

describe.each<MatcherName>(['deterministic', 'probabilistic'])('deterministic rules with the %s matcher', (matcher) => {
  let db: TestDatabase;
  let app: FastifyInstance;
  let readKey = '';
  const settle = (config: HubConfig['resolution'] = {}) => saveResolutionSettings(db.pool, { matcher, ...config });
  const id = (source: string, externalId: string) => rawRecordId(db.pool, source, externalId);
  const same = async (a: [string, string], b: [string, string]) => (await goldenOf(db.pool, ...a)) === (await goldenOf(db.pool, ...b));
  const match = async (left: number, right: number) => (await app.inject({ method: 'GET', url: `/v1/match?left=${left}&right=${right}`, headers: bearer(readKey) })).json();

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await buildTestApp(testHub(db.pool, []));
    readKey = await createApiKey(db.pool, 'reader', ['read']);
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('links the same verified email across sources whatever the names, and not the same email verified on one side only', async () => {
    // The deterministic matcher links any shared email by default: with the verified rule alone the difference shows.
    await settle(matcher === 'deterministic' ? { deterministic_rules: ['verified_email'] } : {});
    await ingest(db.pool, 'crm-a', [
      { id: 'v1', given: 'Ann', family: 'Lee', email: 'ann@x.example', email_verified: 'true' },
      { id: 'u1', given: 'Carl', family: 'Mayer', email: 'carl@x.example', email_verified: 'true' },
    ]);
    await ingest(db.pool, 'shop-a', [
      { id: 'v2', given: 'Bob', family: 'Stone', email: 'ANN@x.example', email_verified: 'true' },
      { id: 'u2', given: 'Dora', family: 'Klein', email: 'carl@x.example', email_verified: 'false' },
    ]);
    expect(await same(['crm-a', 'v1'], ['shop-a', 'v2'])).toBe(true);
    expect(await same(['crm-a', 'u1'], ['shop-a', 'u2'])).toBe(false);
    expect((await membership(db.pool, 'shop-a', 'v2')).links).toEqual([expect.objectContaining({ with: await id('crm-a', 'v1'), rule: 'verified_email', key: 'email:ann@x.example' })]);
    const explained = await match(await id('crm-a', 'v1'), await id('shop-a', 'v2'));
    expect(explained).toMatchObject({ deterministic_rule: { rule: 'verified_email', key: 'email:ann@x.example' }, same_source_duplicates: false, same_customer: true });
    expect((await match(await id('crm-a', 'u1'), await id('shop-a', 'u2'))).deterministic_rule).toBeNull();
  });

  it('links the same external id in one source (same_source_id); the same id in another source only with the identifier rule', async () => {
    await settle({ deterministic_rules: ['same_source_id'] });
    await ingest(db.pool, 'shop-b', [
      { id: 'c1', cid: '1', given: 'Eve', family: 'Hart', email: 'eve@y.example' },
      { id: 'o1', cid: '1', email: 'orders@elsewhere.example' },
    ]);
    await ingest(db.pool, 'erp-b', [{ id: 'x1', cid: '1', given: 'Zed', family: 'Ward' }]);
    expect(await same(['shop-b', 'c1'], ['shop-b', 'o1'])).toBe(true);
    expect(await same(['shop-b', 'c1'], ['erp-b', 'x1'])).toBe(false);
    expect((await membership(db.pool, 'shop-b', 'o1')).links).toEqual([expect.objectContaining({ rule: 'same_source_id', key: 'identifier:shop:customer_id=1' })]);

    await settle({ deterministic_rules: ['same_source_id', 'identifier'] });
    const x1 = await id('erp-b', 'x1');
    await inTransaction(db.pool, (client) => resolveRecords(client, [x1], { cause: 'decision', actor: 'test' }));
    expect(await same(['shop-b', 'c1'], ['erp-b', 'x1'])).toBe(true);
    // Each matcher stores the links that joined: x1 came in through c1 or o1.
    expect((await membership(db.pool, 'erp-b', 'x1')).links).toContainEqual(expect.objectContaining({ rule: 'identifier', key: 'identifier:shop:customer_id=1' }));
    expect(await match(await id('shop-b', 'o1'), await id('shop-b', 'c1'))).toMatchObject({
      deterministic_rule: { rule: 'same_source_id', key: 'identifier:shop:customer_id=1' },
      same_source_duplicates: false,
    });
  });

  it('keeps two accounts of one source apart on a shared unverified email, also through a third record, and reviews them', async () => {
    await settle();
    await ingest(db.pool, 'shop-c', [
      { id: 'd1', cid: '10', given: 'Finn', family: 'Olsen', email: 'olsen@home.example' },
      { id: 'd2', cid: '11', given: 'Finn', family: 'Olsen', email: 'olsen@home.example' },
    ]);
    await ingest(db.pool, 'crm-c', [{ id: 'd3', given: 'Finn', family: 'Olsen', email: 'olsen@home.example' }]);
    expect(await same(['shop-c', 'd1'], ['shop-c', 'd2'])).toBe(false);
    // The other source's record joins one of them (the older one), not both.
    expect(await same(['crm-c', 'd3'], ['shop-c', 'd1'])).toBe(true);
    const [d1, d2] = [await id('shop-c', 'd1'), await id('shop-c', 'd2')];
    expect(await match(d1, d2)).toMatchObject({ same_source_duplicates: true, same_customer: false });
    const { rows: reviews } = await db.pool.query('select reason, status from review_item where left_raw_record_id = $1 and right_raw_record_id = $2', [d1, d2]);
    // Only the probabilistic matcher scores pairs, so only it has something to review.
    expect(reviews).toEqual(matcher === 'probabilistic' ? [{ reason: 'same_source', status: 'open' }] : []);
  });

  it("takes both customers whole into a steward's merge, also a record of a source the other customer holds too", async () => {
    await settle();
    await ingest(db.pool, 'crm-h', [{ id: 'x1', cid: '40', given: 'Ida', family: 'Storm', email: 'ida@storm.example' }]);
    await ingest(db.pool, 'shop-h', [{ id: 'y1', cid: '30', given: 'Ole', family: 'Storm', email: 'ole@storm.example' }]);
    await ingest(db.pool, 'crm-h', [{ id: 'x2', cid: '41', given: 'Ole', family: 'Storm', email: 'ole@storm.example' }]);
    expect(await same(['shop-h', 'y1'], ['crm-h', 'x2'])).toBe(true);
    expect(await same(['crm-h', 'x1'], ['shop-h', 'y1'])).toBe(false);
    // Through x1 and y1; x2 is a second record of x1's source, which no shared key may join to x1 on its own.
    await mergeCustomers(db.pool, [(await goldenOf(db.pool, 'crm-h', 'x1'))!, (await goldenOf(db.pool, 'shop-h', 'y1'))!], 'one family account', 'user:sam');
    expect(await same(['crm-h', 'x1'], ['shop-h', 'y1'])).toBe(true);
    expect(await same(['crm-h', 'x1'], ['crm-h', 'x2'])).toBe(true);
  });

  it('joins two accounts of one source on strong evidence: the same verified email', async () => {
    await settle();
    await ingest(db.pool, 'shop-d', [
      { id: 'g1', cid: '12', given: 'Gus', family: 'Berg', email: 'gus@z.example', email_verified: 'true' },
      { id: 'g2', cid: '13', given: 'Gustav', family: 'Berg', email: 'gus@z.example', email_verified: 'true' },
    ]);
    expect(await same(['shop-d', 'g1'], ['shop-d', 'g2'])).toBe(true);
    expect((await membership(db.pool, 'shop-d', 'g2')).links).toEqual([expect.objectContaining({ rule: 'verified_email' })]);
  });

  it.runIf(matcher === 'probabilistic')('joins two accounts of one source when the score links without their email: name and birth date', async () => {
    await settle();
    await ingest(db.pool, 'shop-e', [
      { id: 'h1', cid: '14', given: 'Hilde', family: 'Brandt', born: '1971-04-02', email: 'brandt@home.example' },
      { id: 'h2', cid: '15', given: 'Hilde', family: 'Brandt', born: '1971-04-02', email: 'brandt@home.example' },
    ]);
    expect(await same(['shop-e', 'h1'], ['shop-e', 'h2'])).toBe(true);
    expect((await membership(db.pool, 'shop-e', 'h2')).links).toEqual([expect.objectContaining({ rule: 'score' })]);
  });

  it('treats duplicates like any pair with same_source_duplicates: shared_key', async () => {
    await settle({ same_source_duplicates: 'shared_key' });
    await ingest(db.pool, 'shop-f', [
      { id: 'k1', cid: '16', given: 'Kai', family: 'Lund', email: 'lund@home.example' },
      { id: 'k2', cid: '17', given: 'Kai', family: 'Lund', email: 'lund@home.example' },
    ]);
    expect(await same(['shop-f', 'k1'], ['shop-f', 'k2'])).toBe(true);
    expect(await match(await id('shop-f', 'k1'), await id('shop-f', 'k2'))).toMatchObject({ same_source_duplicates: false, same_customer: true });
  });

  it("keeps a steward's cannot-link pair apart although they share a verified email", async () => {
    await settle();
    await ingest(db.pool, 'shop-g', [{ id: 'm1', cid: '20', given: 'Hana', family: 'Ito', email: 'hana@v.example', email_verified: 'true' }]);
    await ingest(db.pool, 'crm-g', [{ id: 'm2', given: 'Hana', family: 'Ito', email: 'hana@v.example', email_verified: 'true' }]);
    expect(await same(['shop-g', 'm1'], ['crm-g', 'm2'])).toBe(true);
    const [m1, m2] = [await id('shop-g', 'm1'), await id('crm-g', 'm2')];
    await db.pool.query("insert into match_constraint (kind, left_raw_record_id, right_raw_record_id, actor) values ('cannot_link', $1, $2, 'test')", [Math.min(m1, m2), Math.max(m1, m2)]);
    await inTransaction(db.pool, (client) => resolveRecords(client, [m1, m2], { cause: 'decision', actor: 'test' }));
    expect(await same(['shop-g', 'm1'], ['crm-g', 'm2'])).toBe(false);
    expect(await match(m1, m2)).toMatchObject({ constraint: 'cannot_link', deterministic_rule: { rule: 'verified_email' }, same_customer: false });
  });
});

describe('resolution.deterministic_rules in hub.config.yaml', () => {
  const config = (resolution: unknown) => () => checkConfig({ sources: [], resolution }, 'hub.config.yaml');

  it('defaults per matcher, and reads the old deterministic_keys as rules', () => {
    expect(resolutionSettings({}).rules).toEqual(['verified_email', 'same_source_id', 'identifier']);
    expect(resolutionSettings({ matcher: 'deterministic' }).rules).toEqual(['verified_email', 'verified_phone', 'same_source_id', 'identifier', 'email', 'phone']);
    expect(resolutionSettings({ deterministic_keys: ['identifier', 'phone'] }).rules).toEqual(['verified_email', 'same_source_id', 'identifier', 'phone']);
    expect(resolutionSettings({ deterministic_rules: [] }).rules).toEqual([]);
    expect(resolutionSettings({}).sameSourceDuplicates).toBe('strong_evidence');
  });

  it('refuses unknown rules and treatments, and the old key beside the new one', () => {
    expect(config({ deterministic_rules: ['verified_email', 'same_name'] })).toThrow(/resolution\.deterministic_rules\[1\]: must be one of "verified_email", "verified_phone"/);
    expect(config({ same_source_duplicates: 'never' })).toThrow(/resolution\.same_source_duplicates: must be one of "strong_evidence", "shared_key"/);
    expect(config({ deterministic_rules: ['identifier'], deterministic_keys: ['identifier'] })).toThrow(/resolution\.deterministic_keys: replaced by resolution\.deterministic_rules/);
    expect(config({ deterministic_rules: ['same_source_id', 'verified_phone'], same_source_duplicates: 'shared_key' })).not.toThrow();
  });
});

describe('matchKeys', () => {
  it('keeps whether the source verified each email and phone; a verified copy of a value wins', () => {
    const keys = matchKeys({
      person: { emails: [{ address: 'Ann@X.example ' }, { address: 'ann@x.example', verified: true }, { address: 'a@b.example', verified: false }], phones: [{ number: '+4930123456', verified: true }] },
      identifiers: [{ scheme: 'shop:id', value: '7' }],
    });
    expect(keys).toEqual([
      { kind: 'email', value: 'ann@x.example', verified: true },
      { kind: 'email', value: 'a@b.example', verified: false },
      { kind: 'phone', value: '+4930123456', verified: true },
      { kind: 'identifier', value: 'shop:id=7', verified: false },
    ]);
  });
});

describe('migration 0014: verified match keys', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db?.drop());

  it('marks the keys stored before it verified where the canonical record says so', async () => {
    // The database as it was before 0014, holding keys without the flag.
    await db.pool.query("alter table match_key drop column verified; delete from schema_migration where version = '0014_verified_match_keys'");
    await seedSource(db.pool, 'shop');
    const id = await seedRecord(db.pool, {
      source: 'shop',
      externalId: 'c1',
      canonical: { person: { emails: [{ address: 'Ann@X.example', verified: true }, { address: 'ann@home.example', verified: false }], phones: [{ number: '+4930123456', verified: true }] } },
    });
    const keys = [['email', 'ann@x.example'], ['email', 'ann@home.example'], ['phone', '+4930123456'], ['identifier', 'shop:id=1']];
    for (const [kind, value] of keys) await db.pool.query('insert into match_key (raw_record_id, kind, value) values ($1, $2, $3)', [id, kind, value]);

    expect(await migrate(db.pool)).toContain('0014_verified_match_keys');
    const { rows } = await db.pool.query('select kind, value, verified from match_key order by kind, value');
    expect(rows).toEqual([
      { kind: 'email', value: 'ann@home.example', verified: false },
      { kind: 'email', value: 'ann@x.example', verified: true },
      { kind: 'identifier', value: 'shop:id=1', verified: false },
      { kind: 'phone', value: '+4930123456', verified: true },
    ]);
  });
});
