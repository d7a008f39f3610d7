/** Issue 3: the probabilistic matcher behind the hub's resolver, its review queue, explanations and full rebuild. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { inTransaction } from '../hub/db/database.js';
import { storePage } from '../hub/ingest.js';
import { compileMapping, parseMapping } from '../mapping/engine.js';
import { createApiKey } from '../hub/auth.js';
import { registerSources, type Hub } from '../hub/sync.js';
import { checkConfig } from '../hub/config.js';
import { silentLogger } from '../hub/log.js';
import { resolveAndRefreshValue } from '../hub/customer-value.js';
import { explanationJson, rebuildClusters, saveResolutionSettings } from '../identity-resolution/probabilistic-matcher.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, buildTestApp } from './helpers/app.js';
import { goldenOf, ingest as ingestFlat, rawRecordId } from './helpers/pipeline.js';

const mapping = compileMapping(
  parseMapping(
    `streams:
  people:
    fields:
      - { target: person.email, from: email, transforms: [email] }
      - { target: person.phone, from: phone, transforms: [phone] }
      - { target: person.given_name, from: given, transforms: [normalise_text] }
      - { target: person.family_name, from: family, transforms: [normalise_text] }
      - { target: person.birth_date, from: born }
      - { target: person.address.line1, from: street, transforms: [normalise_text] }
      - { target: person.address.postcode, from: zip, transforms: [trim] }
      - { target: person.address.city, from: city, transforms: [normalise_text] }
      - { target: organisation.name, from: company, transforms: [normalise_text] }
`,
    'matching test mapping',
  ),
);

let db: TestDatabase;
let hub: Hub;
let app: FastifyInstance;
let readKey = '';

async function ingest(source: string, rows: Record<string, string>[]): Promise<void> {
  await db.pool.query("insert into source (name, connector) values ($1, 'csv') on conflict do nothing", [source]);
  await inTransaction(db.pool, (client) =>
    storePage(
      client,
      { stream: 'people', runId: null, target: { source, mapping, defaultRegion: 'GB' }, cause: { cause: 'api', actor: `source:${source}` } },
      { records: rows.map((row) => ({ externalId: row.id, data: row })), state: {} },
    ),
  );
}

const get = async (url: string) => {
  const response = await app.inject({ method: 'GET', url, headers: bearer(readKey) });
  return { status: response.statusCode, body: response.json() };
};

beforeAll(async () => {
  db = await createTestDatabase();
  hub = { pool: db.pool, config: checkConfig({ sources: [], resolution: { matcher: 'probabilistic' } }, 'test.yaml'), log: silentLogger };
  await registerSources(db.pool, hub.config);
  await saveResolutionSettings(db.pool, hub.config.resolution);
  app = await buildTestApp(hub);
  readKey = await createApiKey(db.pool, 'reader', ['read']);

  // A steward's cannot-link, decided before the records were resolved together.
  await ingest('erp', [{ id: 'twin-a', given: 'Peter', family: 'Quill', born: '1990-01-01', street: '5 Mill Lane', zip: 'OX1 2AB', city: 'Oxford' }]);
  await ingest('shop', [{ id: 'twin-b', given: 'Peter', family: 'Quill', born: '1990-01-01', street: '5 Mill Lane', zip: 'OX1 2AB', city: 'Oxford' }]);
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('the probabilistic matcher (resolution.matcher: probabilistic)', () => {
  it('joins "Jon Smith, 12 High St" and "jonathan smith, 12 high street" with the same birth date, without a shared email or phone', async () => {
    await ingest('erp', [{ id: 'e1', given: 'Jon', family: 'Smith', born: '1980-03-14', street: '12 High St', zip: 'SW1A 1AA', city: 'London', email: 'jon@erp-mail.example' }]);
    await ingest('shop', [{ id: 's1', given: 'jonathan', family: 'smith', born: '1980-03-14', street: '12 high street', city: 'london', email: 'jsmith77@shop.example' }]);
    const golden = await goldenOf(db.pool, 'erp', 'e1');
    expect(golden).toBeDefined();
    expect(await goldenOf(db.pool, 'shop', 's1')).toBe(golden);
    // The membership row carries the link's weight and probability.
    const { rows } = await db.pool.query('select detail from cluster_membership where valid_to is null and raw_record_id = $1', [await rawRecordId(db.pool, 'shop', 's1')]);
    expect(rows[0].detail.rule).toBe('probabilistic');
    expect(rows[0].detail.links[0]).toMatchObject({ with: await rawRecordId(db.pool, 'erp', 'e1'), rule: 'score' });
    expect(rows[0].detail.links[0].probability).toBeGreaterThan(0.9);
  });

  it('joins a typo in the surname', async () => {
    await ingest('erp', [{ id: 'e2', given: 'Maria', family: 'Kowalska', born: '1975-06-02', zip: 'M1 4BT', city: 'Manchester' }]);
    await ingest('shop', [{ id: 's2', given: 'Maria', family: 'Kowalksa', born: '1975-06-02', zip: 'M1 4BT' }]);
    expect(await goldenOf(db.pool, 'shop', 's2')).toBe(await goldenOf(db.pool, 'erp', 'e2'));
  });

  it('lets a changed record leave its cluster, incrementally', async () => {
    await ingest('shop', [{ id: 's2', given: 'Maria', family: 'Kowalksa', born: '1975-06-02', zip: 'M1 4BT' }]);
    const before = await goldenOf(db.pool, 'erp', 'e2');
    expect(await goldenOf(db.pool, 'shop', 's2')).toBe(before);
    // The shop's record is rewritten to someone else: it leaves; the ERP record keeps the golden id.
    await ingest('shop', [{ id: 's2', given: 'Tomasz', family: 'Lewandowski', born: '1968-12-24', zip: 'B1 1AA' }]);
    expect(await goldenOf(db.pool, 'erp', 'e2')).toBe(before);
    expect(await goldenOf(db.pool, 'shop', 's2')).not.toBe(before);
    // And back: it rejoins.
    await ingest('shop', [{ id: 's2', given: 'Maria', family: 'Kowalksa', born: '1975-06-02', zip: 'M1 4BT' }]);
    expect(await goldenOf(db.pool, 'shop', 's2')).toBe(before);
  });

  it('keeps two people who share an office phone apart', async () => {
    await ingest('erp', [{ id: 'e3', given: 'Alice', family: 'Brown', phone: '+44 20 7946 0018', company: 'Acme Ltd', email: 'alice@acme.example' }]);
    await ingest('shop', [{ id: 's3', given: 'Robert', family: 'Green', phone: '+44 20 7946 0018', company: 'ACME Limited', email: 'rgreen@acme.example' }]);
    const [alice, robert] = [await goldenOf(db.pool, 'erp', 'e3'), await goldenOf(db.pool, 'shop', 's3')];
    expect(alice).toBeDefined();
    expect(robert).toBeDefined();
    expect(alice).not.toBe(robert);
  });

  it('puts a pair between the thresholds in the review queue, with its explanation', async () => {
    await ingest('erp', [{ id: 'e4', given: 'Zofia', family: 'Nowakowska' }]);
    await ingest('shop', [{ id: 's4', given: 'Zofia', family: 'Nowakowska' }]);
    const [left, right] = [await rawRecordId(db.pool, 'erp', 'e4'), await rawRecordId(db.pool, 'shop', 's4')];
    expect(await goldenOf(db.pool, 'erp', 'e4')).not.toBe(await goldenOf(db.pool, 'shop', 's4'));
    const { rows } = await db.pool.query('select * from review_item where left_raw_record_id = $1 and right_raw_record_id = $2', [left, right]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'open', reason: 'between_thresholds' });
    expect(rows[0].probability).toBeGreaterThanOrEqual(0.3);
    expect(rows[0].probability).toBeLessThan(0.9);
    expect(rows[0].explanation.attributes.find((a: { comparison: string }) => a.comparison === 'family_name')).toMatchObject({ level: 0, label: 'exact' });
  });

  it('keeps namesakes apart whose email user names differ only in a number: the prior counts the name once', async () => {
    await ingest('erp', [{ id: 'e5', given: 'Hans', family: 'Müller', email: 'hans.mueller24@nordwind.example', phone: '+44 20 7946 0024', company: 'Nordwind GmbH', city: 'Leeds' }]);
    await ingest('shop', [{ id: 's5', given: 'Hans', family: 'Müller', email: 'hans.mueller62@nordwind.example' }]);
    const [left, right] = [await rawRecordId(db.pool, 'erp', 'e5'), await rawRecordId(db.pool, 'shop', 's5')];
    expect(await goldenOf(db.pool, 'erp', 'e5')).not.toBe(await goldenOf(db.pool, 'shop', 's5'));
    const { rows } = await db.pool.query('select probability, explanation from review_item where left_raw_record_id = $1 and right_raw_record_id = $2', [left, right]);
    expect(rows).toHaveLength(1);
    expect(rows[0].probability).toBeLessThan(0.9);
    expect(rows[0].explanation.attributes.find((a: { comparison: string }) => a.comparison === 'email')).toMatchObject({ label: 'user name Jaro–Winkler ≥ 0.88', weight: 0 });
  });

  it('keeps two records apart that a cannot-link separates, however well they match', async () => {
    const [a, b] = [await rawRecordId(db.pool, 'erp', 'twin-a'), await rawRecordId(db.pool, 'shop', 'twin-b')];
    expect(await goldenOf(db.pool, 'erp', 'twin-a')).toBe(await goldenOf(db.pool, 'shop', 'twin-b'));
    await db.pool.query("insert into match_constraint (kind, left_raw_record_id, right_raw_record_id, actor) values ('cannot_link', $1, $2, 'steward')", [a, b]);
    await inTransaction(db.pool, (client) => resolveAndRefreshValue(client, [a, b], { cause: 'decision', actor: 'steward' }));
    expect(await goldenOf(db.pool, 'erp', 'twin-a')).not.toBe(await goldenOf(db.pool, 'shop', 'twin-b'));
    // No review item for a pair the steward decided.
    const { rows } = await db.pool.query("select 1 from review_item where status = 'open' and left_raw_record_id = $1 and right_raw_record_id = $2", [a, b]);
    expect(rows).toHaveLength(0);
  });

  it('a steward must-link joins a pair below the link threshold and settles its review item', async () => {
    const [e4, s4] = [await rawRecordId(db.pool, 'erp', 'e4'), await rawRecordId(db.pool, 'shop', 's4')];
    await db.pool.query("insert into match_constraint (kind, left_raw_record_id, right_raw_record_id, actor) values ('must_link', $1, $2, 'steward')", [e4, s4]);
    await inTransaction(db.pool, (client) => resolveAndRefreshValue(client, [e4], { cause: 'decision', actor: 'steward' }));
    expect(await goldenOf(db.pool, 'erp', 'e4')).toBe(await goldenOf(db.pool, 'shop', 's4'));
    const { rows } = await db.pool.query('select status from review_item where left_raw_record_id = $1 and right_raw_record_id = $2', [e4, s4]);
    expect(rows[0].status).toBe('settled');
  });
});

describe('training', () => {
  it('keeps the prior while EM has no pairs to learn from (a first import of one source), so the next source still links', async () => {
    const own = await createTestDatabase();
    try {
      await saveResolutionSettings(own.pool, { matcher: 'probabilistic', min_training_records: 40 });
      const people = Array.from({ length: 60 }, (_, n) => ({ phone: `+4930${1_000_000 + n}` }));
      await ingestFlat(own.pool, 'crm', people.map((person, n) => ({ ...person, id: `c${n}`, email: `person.${n}@example.com` })));
      await ingestFlat(own.pool, 'shop', people.map((person, n) => ({ ...person, id: `s${n}`, email: `Person.${n}@Example.com` })));
      const { rows: models } = await own.pool.query("select kind, report ->> 'reason' as reason from match_model order by id");
      expect(models[0]).toEqual({ kind: 'prior', reason: '0 candidate pairs among 60 records, fewer than 100' });
      for (let n = 0; n < 60; n += 7) expect(await goldenOf(own.pool, 'shop', `s${n}`)).toBe(await goldenOf(own.pool, 'crm', `c${n}`));
      const { rows } = await own.pool.query("select count(*)::int as n from golden_record where status = 'active'");
      expect(rows[0].n).toBe(60);
    } finally {
      await own.drop();
    }
  });
});

describe('explanations', () => {
  it('GET /v1/match explains a pair: per attribute level, weight and TF adjustment, total weight and probability', async () => {
    const [left, right] = [await rawRecordId(db.pool, 'erp', 'e1'), await rawRecordId(db.pool, 'shop', 's1')];
    const { status, body } = await get(`/v1/match?left=${left}&right=${right}`);
    expect(status).toBe(200);
    expect(body.same_customer).toBe(true);
    expect(body.constraint).toBeNull();
    expect(body.model).toMatchObject({ kind: 'prior', matcher: 'probabilistic', link_probability: 0.9 });
    const byName = Object.fromEntries(body.explanation.attributes.map((a: { comparison: string }) => [a.comparison, a]));
    expect(byName.family_name).toMatchObject({ level: 0, label: 'exact', tf_adjustment: 0 });
    expect(byName.family_name.weight).toBeGreaterThan(0);
    expect(byName.given_name.level).toBeGreaterThan(0);
    expect(byName.birth_date).toMatchObject({ level: 0 });
    expect(byName.phone).toMatchObject({ level: -1, label: 'missing', weight: 0 });
    const total = body.explanation.attributes.reduce((sum: number, a: { weight: number; tf_adjustment: number }) => sum + a.weight + a.tf_adjustment, 0);
    expect(body.explanation.match_weight).toBeCloseTo(total, 3);
    expect(body.explanation.probability).toBeGreaterThan(0.9);

    const apart = await get(`/v1/match?left=${await rawRecordId(db.pool, 'erp', 'e3')}&right=${await rawRecordId(db.pool, 'shop', 's3')}`);
    expect(apart.body.same_customer).toBe(false);
    expect(apart.body.explanation.probability).toBeLessThan(0.3);
    expect((await get(`/v1/match?left=${left}&right=999999`)).status).toBe(404);
    expect((await get(`/v1/match?left=${left}`)).status).toBe(400);
  });

  it('GET /v1/customers/{id}/explain explains each member against the first one and its best link', async () => {
    const golden = (await goldenOf(db.pool, 'erp', 'e1'))!;
    const { status, body } = await get(`/v1/customers/${golden}/explain`);
    expect(status).toBe(200);
    expect(body.reference).toBe(String(await rawRecordId(db.pool, 'erp', 'e1')));
    expect(body.members).toHaveLength(2);
    expect(body.members[0]).toMatchObject({ source: 'erp', against_reference: null });
    expect(body.members[1].against_reference.attributes.length).toBeGreaterThan(5);
    expect(body.members[1].against_reference.probability).toBeGreaterThan(0.9);
    expect(body.members[1].best_link.right).toBe(body.reference);
    expect(body.members[1].membership.rule).toBe('probabilistic');
    expect((await get('/v1/customers/cus_999999/explain')).status).toBe(404);
  });
});

describe('hub resolve --full', () => {
  const snapshot = async () =>
    (await db.pool.query<{ raw_record_id: string; golden_id: string }>('select raw_record_id, golden_id from cluster_membership where valid_to is null order by raw_record_id')).rows;

  it('rebuilds every cluster; the same input gives the same clusters and golden ids', async () => {
    const before = await snapshot();
    const first = await rebuildClusters(db.pool, resolveAndRefreshValue, { batchSize: 3 });
    expect(first.records).toBe(before.length);
    expect(await snapshot()).toEqual(before);
    const second = await rebuildClusters(db.pool, resolveAndRefreshValue, { batchSize: 5 });
    expect(await snapshot()).toEqual(before);
    expect(second).toMatchObject({ created: 0, merged: 0, split: 0, retired: 0, clusters: first.clusters });
  });

  it('from scratch (memberships dropped), twice: the same clusters both times', async () => {
    const clusters = async () => {
      const rows = await snapshot();
      const groups = new Map<string, string[]>();
      for (const row of rows) groups.set(row.golden_id, [...(groups.get(row.golden_id) ?? []), row.raw_record_id]);
      return [...groups.values()].map((g) => g.join(',')).sort();
    };
    const expected = await clusters();
    await db.pool.query('update cluster_membership set valid_to = now() where valid_to is null');
    await rebuildClusters(db.pool, resolveAndRefreshValue, { batchSize: 4 });
    const once = await snapshot();
    expect(await clusters()).toEqual(expected);
    await rebuildClusters(db.pool, resolveAndRefreshValue, { batchSize: 2 });
    expect(await snapshot()).toEqual(once);
  });
});

describe('the explanation the API gives', () => {
  it('marks household evidence that does not count, so that the counted weights add up to match_weight', () => {
    const attribute = (comparison: string, weight: number, counted?: false) => ({ comparison, level: 0, label: 'exact', weight, tfAdjustment: 0, ...(counted === false ? { counted } : {}) });
    const json = explanationJson({
      left: '1',
      right: '2',
      attributes: [attribute('given_name', -5.6), attribute('family_name', 9.8), attribute('email', 9.8), attribute('address', 9.8, false), attribute('city', 3.1, false)],
      priorWeight: -13,
      matchWeight: -5.6 + 9.8 + 9.8,
      probability: 0.01,
    });
    expect(json.attributes.filter((a) => a.counted === false).map((a) => a.comparison)).toEqual(['address', 'city']);
    const counted = json.attributes.filter((a) => a.counted !== false).reduce((sum, a) => sum + a.weight + a.tf_adjustment, 0);
    expect(counted).toBeCloseTo(json.match_weight, 6);
  });
});
