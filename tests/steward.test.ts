/** Issue 7: the steward API — review queue, decisions, corrections, undo, decision log (CSV), overview — on a real PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { parse } from 'csv-parse/sync';
import { createApiKey } from '../hub/auth.js';
import { inTransaction } from '../hub/db/database.js';
import { resolveRecords } from '../identity-resolution/resolve.js';
import { saveResolutionSettings } from '../identity-resolution/probabilistic-matcher.js';
import type { Hub } from '../hub/sync.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, buildTestApp, seedRun, testHub } from './helpers/app.js';
import { golden, goldenOf, ingest, lastPosition, rawRecordId } from './helpers/pipeline.js';

let db: TestDatabase;
let hub: Hub;
let app: FastifyInstance;
const keys = { read: '', steward: '' };

async function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, key = keys.steward, headers: Record<string, string> = {}) {
  const response = await app.inject({ method, url, headers: { ...bearer(key), ...headers }, ...(body === undefined ? {} : { payload: body as object }) });
  return { status: response.statusCode, body: String(response.headers['content-type']).startsWith('application/json') ? response.json() : response.body, headers: response.headers };
}

/** A review item between two records, as the probabilistic matcher stores one. */
async function reviewItem(left: number, right: number, probability = 0.6): Promise<string> {
  const [a, b] = left < right ? [left, right] : [right, left];
  const { rows } = await db.pool.query<{ id: string }>(
    `insert into review_item (left_raw_record_id, right_raw_record_id, probability, match_weight, reason, explanation) values ($1, $2, $3, 1.5, 'between_thresholds', '{}') returning id`,
    [a, b, probability],
  );
  return `pair-${rows[0].id}`;
}

/** Each record's golden id, and the attributes of those golden records. */
async function snapshot(source: string, externalIds: string[]) {
  const goldens = await Promise.all(externalIds.map((id) => goldenOf(db.pool, source, id)));
  const together = goldens.map((id) => goldens.indexOf(id));
  const data = await Promise.all(goldens.map(async (id) => (id ? (await golden(db.pool, id)).data : undefined)));
  return { together, data };
}

beforeAll(async () => {
  db = await createTestDatabase();
  // The steward cases build their customers with the deterministic rule (a shared email joins) and insert their
  // review items by hand; the probabilistic matcher (the default) would add review items of its own.
  await saveResolutionSettings(db.pool, { matcher: 'deterministic' });
  hub = testHub(db.pool, []);
  app = await buildTestApp(hub);
  keys.read = await createApiKey(db.pool, 'reader', ['read']);
  keys.steward = await createApiKey(db.pool, 'ana', ['steward']);
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('pair decisions', () => {
  it('lists a pair in the queue, explains it side by side, merges it at once, and undo after a sync restores both customers', async () => {
    await ingest(db.pool, 'crm', [{ id: 'm1', email: 'jon@erp.example', given: 'Jon', family: 'Smith', city: 'London', updated: '2026-01-01T00:00:00Z' }]);
    await ingest(db.pool, 'shop', [{ id: 'm2', email: 'jsmith@shop.example', given: 'Jonathan', family: 'Smith', city: 'London', updated: '2026-01-02T00:00:00Z' }]);
    const [left, right] = [await rawRecordId(db.pool, 'crm', 'm1'), await rawRecordId(db.pool, 'shop', 'm2')];
    const before = await snapshot('crm', ['m1']).then(async (crm) => ({ crm, shop: await snapshot('shop', ['m2']) }));
    const [goldenLeft, goldenRight] = [await goldenOf(db.pool, 'crm', 'm1'), await goldenOf(db.pool, 'shop', 'm2')];
    expect(goldenLeft).not.toBe(goldenRight);
    const id = await reviewItem(left, right);

    const queue = await call('GET', '/v1/review?kind=pair');
    expect(queue.status).toBe(200);
    const listed = queue.body.items.find((item: { id: string }) => item.id === id);
    expect(listed).toMatchObject({ kind: 'pair', status: 'open', impact: 2 });
    expect(listed.golden_ids.sort()).toEqual([goldenLeft, goldenRight].sort());
    expect(listed.summary).toContain('crm:m1');

    const detail = await call('GET', `/v1/review/${id}`);
    expect(detail.status).toBe(200);
    expect(detail.body.records.map((record: { raw_record_id: number }) => record.raw_record_id)).toEqual([left, right]);
    expect(detail.body.records[0].data.person.given_name).toBe('Jon');
    const family = detail.body.explanation.attributes.find((attribute: { attribute: string }) => attribute.attribute === 'family_name');
    expect(family).toMatchObject({ left: 'Smith', right: 'Smith', level: 0 });
    const sum = detail.body.explanation.attributes.reduce((total: number, attribute: { weight: number }) => total + attribute.weight, detail.body.explanation.prior_weight);
    expect(detail.body.explanation.total_weight).toBeCloseTo(sum, 5);

    const position = await lastPosition(db.pool);
    const merged = await call('POST', `/v1/review/${id}/decision`, { action: 'merge', reason: 'same person' });
    expect(merged.status).toBe(200);
    expect(merged.body.decision).toMatchObject({ kind: 'merge', actor: 'key:ana', review_item_id: id, raw_record_ids: [left, right], undone_at: null });
    expect(merged.body.customers).toEqual([goldenLeft]);
    expect(await goldenOf(db.pool, 'shop', 'm2')).toBe(goldenLeft);
    expect(await golden(db.pool, goldenRight!)).toMatchObject({ status: 'merged', merged_into: goldenLeft });
    const { rows: changes } = await db.pool.query('select golden_id, kind, cause, cause_id, actor from change_log where position > $1 order by position', [position]);
    expect(changes).toContainEqual({ golden_id: goldenRight, kind: 'merged', cause: 'decision', cause_id: merged.body.decision.id, actor: 'key:ana' });
    expect((await call('GET', `/v1/review/${id}`)).body.status).toBe('linked');
    expect((await call('GET', '/v1/review?kind=pair')).body.items.map((item: { id: string }) => item.id)).not.toContain(id);
    // A second decision on a decided pair is refused.
    expect((await call('POST', `/v1/review/${id}/decision`, { action: 'keep_apart' })).status).toBe(409);

    // A sync that changes one of the records keeps the merge.
    await ingest(db.pool, 'shop', [{ id: 'm2', email: 'jsmith@shop.example', given: 'Jonathan', family: 'Smith', city: 'Leeds', updated: '2026-01-03T00:00:00Z' }]);
    expect(await goldenOf(db.pool, 'shop', 'm2')).toBe(goldenLeft);
    await ingest(db.pool, 'shop', [{ id: 'm2', email: 'jsmith@shop.example', given: 'Jonathan', family: 'Smith', city: 'London', updated: '2026-01-02T00:00:00Z' }]);

    const undone = await call('POST', `/v1/decisions/${merged.body.decision.id}/undo`, { reason: 'not the same' });
    expect(undone.status).toBe(200);
    expect(undone.body.decision).toMatchObject({ undone_by: 'key:ana', undo_reason: 'not the same' });
    expect(undone.body.customers).toHaveLength(2);
    const after = { crm: await snapshot('crm', ['m1']), shop: await snapshot('shop', ['m2']) };
    expect(after).toEqual(before);
    // Undo gives back the customer id other systems may have stored, not a new one.
    expect(await goldenOf(db.pool, 'crm', 'm1')).toBe(goldenLeft);
    expect(await goldenOf(db.pool, 'shop', 'm2')).toBe(goldenRight);
    expect(await golden(db.pool, goldenRight!)).toMatchObject({ status: 'active', merged_into: null });
    expect((await call('GET', `/v1/customers/${goldenRight}`)).status).toBe(200);
    expect((await call('GET', `/v1/review/${id}`)).body.status).toBe('open');

    const twice = await call('POST', `/v1/decisions/${merged.body.decision.id}/undo`, {});
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('HUB_ERR_CONFLICT');
  });

  it('keeps two records apart that share an email, through a later re-resolution and a sync of the same data', async () => {
    const rows = [
      { id: 'k1', email: 'family@home.example', given: 'Anna', family: 'Berg', updated: '2026-01-01T00:00:00Z' },
      { id: 'k2', email: 'family@home.example', given: 'Lars', family: 'Berg', updated: '2026-01-01T00:00:00Z' },
    ];
    await ingest(db.pool, 'crm', rows);
    expect(await goldenOf(db.pool, 'crm', 'k1')).toBe(await goldenOf(db.pool, 'crm', 'k2'));
    const ids = [await rawRecordId(db.pool, 'crm', 'k1'), await rawRecordId(db.pool, 'crm', 'k2')];
    const item = await reviewItem(ids[0], ids[1]);

    const decided = await call('POST', `/v1/review/${item}/decision`, { action: 'keep_apart', reason: 'spouses' });
    expect(decided.status).toBe(200);
    expect(decided.body.customers).toHaveLength(2);
    expect(await goldenOf(db.pool, 'crm', 'k1')).not.toBe(await goldenOf(db.pool, 'crm', 'k2'));
    const { rows: constraints } = await db.pool.query('select kind, decision_id from match_constraint where withdrawn_at is null and left_raw_record_id = $1 and right_raw_record_id = $2', ids);
    expect(constraints).toEqual([{ kind: 'cannot_link', decision_id: decided.body.decision.id }]);

    await inTransaction(db.pool, (client) => resolveRecords(client, ids, { cause: 'run', actor: 'test' }));
    expect(await goldenOf(db.pool, 'crm', 'k1')).not.toBe(await goldenOf(db.pool, 'crm', 'k2'));
    await ingest(db.pool, 'crm', rows);
    await ingest(db.pool, 'crm', rows.map((row) => ({ ...row, city: 'Oslo' })));
    expect(await goldenOf(db.pool, 'crm', 'k1')).not.toBe(await goldenOf(db.pool, 'crm', 'k2'));
    expect((await call('GET', `/v1/review/${item}`)).body.status).toBe('rejected');
  });

  it('defers a pair out of the open queue into the deferred one', async () => {
    await ingest(db.pool, 'crm', [{ id: 'd1', email: 'd1@x.example', given: 'Dora' }]);
    await ingest(db.pool, 'shop', [{ id: 'd2', email: 'd2@x.example', given: 'Dora' }]);
    const item = await reviewItem(await rawRecordId(db.pool, 'crm', 'd1'), await rawRecordId(db.pool, 'shop', 'd2'));
    const deferred = await call('POST', `/v1/review/${item}/decision`, { action: 'defer' });
    expect(deferred.status).toBe(200);
    expect(deferred.body.decision.kind).toBe('defer');
    expect(deferred.body.customers).toHaveLength(2);
    const ids = async (status: string) => (await call('GET', `/v1/review?kind=pair&status=${status}`)).body.items.map((entry: { id: string }) => entry.id);
    expect(await ids('open')).not.toContain(item);
    expect(await ids('deferred')).toContain(item);
    expect((await call('POST', `/v1/review/${item}/decision`, { action: 'choose', value: 'x' })).status).toBe(400);
  });
});

describe('corrections of a golden record', () => {
  it('splits records off, keeps them apart through a sync, and undo joins them again', async () => {
    const rows: Record<string, string>[] = [
      { id: 's1', email: 'shared@x.example', given: 'Ada', family: 'King', updated: '2026-01-01T00:00:00Z' },
      { id: 's2', email: 'shared@x.example', given: 'Ada', family: 'King', updated: '2026-01-02T00:00:00Z' },
      { id: 's3', email: 'shared@x.example', phone: '+49 151 23456789', given: 'Bob', family: 'King', updated: '2026-01-03T00:00:00Z' },
    ];
    await ingest(db.pool, 'crm', rows);
    const customer = (await goldenOf(db.pool, 'crm', 's1'))!;
    const before = await snapshot('crm', ['s1', 's2', 's3']);
    expect(before.together).toEqual([0, 0, 0]);
    const leaving = await rawRecordId(db.pool, 'crm', 's3');

    const split = await call('POST', `/v1/customers/${customer}/split`, { raw_record_ids: [leaving], reason: 'Bob is her son' });
    expect(split.status).toBe(200);
    expect(split.body.decision.kind).toBe('split');
    const [kept, created] = split.body.customers;
    expect(kept).toBe(customer);
    expect(await goldenOf(db.pool, 'crm', 's3')).toBe(created);
    expect((await golden(db.pool, customer)).data.given_name).toBe('Ada');
    expect((await golden(db.pool, created)).data.given_name).toBe('Bob');

    // A sync changing the leaving record keeps it apart.
    await ingest(db.pool, 'crm', [{ ...rows[2], updated: '2026-01-04T00:00:00Z' }]);
    expect(await goldenOf(db.pool, 'crm', 's3')).not.toBe(customer);

    const undone = await call('POST', `/v1/decisions/${split.body.decision.id}/undo`);
    expect(undone.status, JSON.stringify(undone.body)).toBe(200);
    expect(undone.body.customers).toEqual([customer]);
    const after = await snapshot('crm', ['s1', 's2', 's3']);
    expect(after.together).toEqual([0, 0, 0]);
    expect(after.data[0]).toMatchObject({ given_name: 'Bob', emails: ['shared@x.example'] });
  });

  it('refuses a split that names a record of another customer, or every record', async () => {
    await ingest(db.pool, 'crm', [{ id: 'x1', email: 'x@x.example' }]);
    const customer = (await goldenOf(db.pool, 'crm', 'x1'))!;
    const own = await rawRecordId(db.pool, 'crm', 'x1');
    const all = await call('POST', `/v1/customers/${customer}/split`, { raw_record_ids: [own] });
    expect(all.status).toBe(400);
    expect(all.body.error.message).toContain('at least one must stay');
    const other = await rawRecordId(db.pool, 'crm', 'k1');
    const foreign = await call('POST', `/v1/customers/${customer}/split`, { raw_record_ids: [other] });
    expect(foreign.status).toBe(400);
    expect(foreign.body.error.message).toContain(`record ${other}`);
  });

  it('merges two customers into the older one; undo separates them', async () => {
    await ingest(db.pool, 'crm', [{ id: 'c1', email: 'c1@x.example', given: 'Cleo' }]);
    await ingest(db.pool, 'shop', [{ id: 'c2', email: 'c2@x.example', given: 'Cleo' }]);
    const [a, b] = [(await goldenOf(db.pool, 'crm', 'c1'))!, (await goldenOf(db.pool, 'shop', 'c2'))!];
    const merged = await call('POST', '/v1/customers/merge', { ids: [b, a], reason: 'same' });
    expect(merged.status).toBe(200);
    expect(merged.body.customers).toEqual([a]);
    expect(await goldenOf(db.pool, 'shop', 'c2')).toBe(a);
    expect((await golden(db.pool, b)).status).toBe('merged');
    expect((await call('POST', '/v1/customers/merge', { ids: [a, b] })).status).toBe(409);

    const undone = await call('POST', `/v1/decisions/${merged.body.decision.id}/undo`, {});
    expect(undone.status).toBe(200);
    expect(await goldenOf(db.pool, 'crm', 'c1')).toBe(a);
    expect(await goldenOf(db.pool, 'shop', 'c2')).toBe(b);
    expect((await golden(db.pool, b)).status).toBe('active');
  });

  it('pins a value that survives a sync; unpinning lets the sources decide again; undoing the unpin pins it again', async () => {
    await ingest(db.pool, 'crm', [{ id: 'p1', email: 'p@x.example', given: 'Kate', updated: '2026-01-01T00:00:00Z' }]);
    const customer = (await goldenOf(db.pool, 'crm', 'p1'))!;
    const pinned = await call('PUT', `/v1/customers/${customer}/pins/given_name`, { value: 'Katherine', reason: 'her legal name' });
    expect(pinned.status).toBe(200);
    expect(pinned.body.decision).toMatchObject({ kind: 'pin', attribute: 'given_name', value: 'Katherine' });
    expect((await golden(db.pool, customer)).data.given_name).toBe('Katherine');

    await ingest(db.pool, 'crm', [{ id: 'p1', email: 'p@x.example', given: 'Katie', updated: '2026-02-01T00:00:00Z' }]);
    expect((await golden(db.pool, customer)).data.given_name).toBe('Katherine');

    const unpinned = await call('DELETE', `/v1/customers/${customer}/pins/given_name?reason=asked`);
    expect(unpinned.status).toBe(200);
    expect((await golden(db.pool, customer)).data.given_name).toBe('Katie');
    expect((await call('DELETE', `/v1/customers/${customer}/pins/given_name`)).status).toBe(404);

    expect((await call('POST', `/v1/decisions/${unpinned.body.decision.id}/undo`)).status).toBe(200);
    expect((await golden(db.pool, customer)).data.given_name).toBe('Katherine');
    expect((await call('POST', `/v1/decisions/${pinned.body.decision.id}/undo`)).status).toBe(200);
    expect((await golden(db.pool, customer)).data.given_name).toBe('Katie');
  });

  it('refuses a pin of an unknown attribute or a value of the wrong shape, naming the field', async () => {
    const customer = (await goldenOf(db.pool, 'crm', 'p1'))!;
    const unknown = await call('PUT', `/v1/customers/${customer}/pins/shoe_size`, { value: '42' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toContain('params/attribute');
    const shape = await call('PUT', `/v1/customers/${customer}/pins/given_name`, { value: { first: 'x' } });
    expect(shape.status).toBe(400);
    expect(shape.body.error.message).toContain('body/value');
  });
});

describe('conflicts', () => {
  it('lists two sources that disagree on a phone as a conflict; choosing a value pins it and settles the conflict', async () => {
    await ingest(db.pool, 'crm', [{ id: 'f1', email: 'fay@x.example', phone: '+49 151 12345678', given: 'Fay', updated: '2026-01-01T00:00:00Z' }]);
    await ingest(db.pool, 'shop', [{ id: 'f2', email: 'fay@x.example', phone: '+49 151 87654321', given: 'Fay', updated: '2026-01-05T00:00:00Z' }]);
    const customer = (await goldenOf(db.pool, 'crm', 'f1'))!;
    const id = `conflict-${customer}-phone`;
    const queue = await call('GET', '/v1/review?kind=conflict&limit=500');
    expect(queue.body.items.map((item: { id: string }) => item.id)).toContain(id);
    // The same given name in both sources is no conflict.
    expect(queue.body.items.map((item: { id: string }) => item.id)).not.toContain(`conflict-${customer}-given_name`);

    const detail = await call('GET', `/v1/review/${id}`);
    expect(detail.status).toBe(200);
    expect(detail.body).toMatchObject({ kind: 'conflict', golden_id: customer, attribute: 'phone', status: 'open' });
    expect(detail.body.candidates.map((candidate: { value: string; source: string }) => [candidate.source, candidate.value]).sort()).toEqual([
      ['crm', '+4915112345678'],
      ['shop', '+4915187654321'],
    ]);

    const wrong = await call('POST', `/v1/review/${id}/decision`, { action: 'choose', value: '+4900000' });
    expect(wrong.status).toBe(400);
    const chosen = await call('POST', `/v1/review/${id}/decision`, { action: 'choose', value: '+4915112345678', reason: 'called her' });
    expect(chosen.status).toBe(200);
    expect(chosen.body.decision).toMatchObject({ kind: 'choose', review_item_id: id, attribute: 'phone' });
    expect((await golden(db.pool, customer)).data.phone).toBe('+4915112345678');
    expect((await call('GET', '/v1/review?kind=conflict&limit=500')).body.items.map((item: { id: string }) => item.id)).not.toContain(id);
    expect((await call('GET', `/v1/review/${id}`)).status).toBe(404);
  });
});

describe('what counts as a conflict', () => {
  it('not the same words written differently, an address that fills fewer fields, or a source updating its own value', async () => {
    const agree = async (a: unknown, b: unknown) => (await db.pool.query('select hub_values_agree($1::jsonb, $2::jsonb) as agree', [JSON.stringify(a), JSON.stringify(b)])).rows[0].agree;
    expect(await agree('SCHNEIDER, Lukas', 'Lukas Schneider')).toBe(true);
    expect(await agree('Müller', 'mueller')).toBe(false);
    expect(await agree('Müller', 'MULLER')).toBe(true);
    expect(await agree({ city: 'Köln' }, { city: 'Köln', postcode: '50667', country: 'DE' })).toBe(true);
    expect(await agree({ city: 'Köln', postcode: '50667' }, { city: 'Köln', postcode: '50668' })).toBe(false);

    await ingest(db.pool, 'crm', [
      { id: 'u1', email: 'una@x.example', given: 'Una', city: 'Hamburg', updated: '2026-01-01T00:00:00Z' },
      { id: 'u2', email: 'una@x.example', given: 'UNA', city: 'Berlin', updated: '2026-02-01T00:00:00Z' },
    ]);
    await ingest(db.pool, 'shop', [{ id: 'u3', email: 'una@x.example', given: 'una', city: 'berlin', updated: '2026-01-15T00:00:00Z' }]);
    const customer = (await goldenOf(db.pool, 'crm', 'u1'))!;
    const ids = (await call('GET', '/v1/review?kind=conflict&status=all&limit=500')).body.items.map((item: { id: string }) => item.id);
    expect(ids.filter((id: string) => id.startsWith(`conflict-${customer}-`))).toEqual([]);
    // The shop's city changes: now the sources' current cities disagree.
    await ingest(db.pool, 'shop', [{ id: 'u3', email: 'una@x.example', given: 'una', city: 'Munich', updated: '2026-03-01T00:00:00Z' }]);
    const after = (await call('GET', '/v1/review?kind=conflict&status=all&limit=500')).body.items.map((item: { id: string }) => item.id);
    expect(after.filter((id: string) => id.startsWith(`conflict-${customer}-`))).toEqual([`conflict-${customer}-address`]);
  });
});

describe('the queue', () => {
  it('orders by impact, then oldest first, and pages with a cursor', async () => {
    // A customer with orders (customer value) goes first, whatever its number of records.
    const valued = (await goldenOf(db.pool, 'crm', 'd1'))!;
    await db.pool.query('insert into customer_value (golden_id, first_order_at, last_order_at, order_count) values ($1, now(), now(), 4)', [valued]);
    const all = (await call('GET', '/v1/review?status=all&limit=500')).body.items as { id: string; impact: number; created_at: string; golden_ids: string[] }[];
    // Three pairs (open, kept apart, deferred) and the address conflict.
    expect(all.length).toBe(4);
    expect(all[0]).toMatchObject({ impact: 4 });
    expect(all[0].golden_ids).toContain(valued);
    for (let i = 2; i < all.length; i++) {
      expect(all[i - 1].impact > all[i].impact || (all[i - 1].impact === all[i].impact && all[i - 1].created_at <= all[i].created_at)).toBe(true);
    }
    const paged: unknown[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: unknown[]; next_cursor: string | null } } = await call('GET', `/v1/review?status=all&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      paged.push(...page.body.items);
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(paged).toEqual(all);
    expect((await call('GET', '/v1/review?cursor=abc')).status).toBe(400);
  });
});

describe('the decision log', () => {
  it('filters by kind, actor and customer, pages with a cursor, and exports CSV that parses back to the same rows', async () => {
    const all = await call('GET', '/v1/decisions?limit=500');
    expect(all.status).toBe(200);
    expect(all.body.items.length).toBeGreaterThanOrEqual(8);
    expect(all.body.items.map((item: { id: string }) => Number(item.id))).toEqual([...all.body.items.map((item: { id: string }) => Number(item.id))].sort((a, b) => b - a));
    const merges = await call('GET', '/v1/decisions?kind=merge');
    expect(merges.body.items.length).toBeGreaterThan(0);
    expect(merges.body.items.every((item: { kind: string }) => item.kind === 'merge')).toBe(true);
    expect((await call('GET', '/v1/decisions?actor=user:nobody')).body.items).toEqual([]);
    const customer = (await goldenOf(db.pool, 'crm', 'p1'))!;
    const ofCustomer = await call('GET', `/v1/decisions?golden_id=${customer}`);
    expect(ofCustomer.body.items.map((item: { kind: string }) => item.kind).sort()).toEqual(['pin', 'unpin']);

    const first = await call('GET', '/v1/decisions?limit=2');
    const second = await call('GET', `/v1/decisions?limit=2&cursor=${first.body.next_cursor}`);
    expect([...first.body.items, ...second.body.items]).toEqual(all.body.items.slice(0, 4));

    // A reason with a comma, quotes and a line break needs quoting.
    await ingest(db.pool, 'crm', [{ id: 'q1', email: 'q@x.example', given: 'Quinn' }]);
    const quoted = await call('PUT', `/v1/customers/${(await goldenOf(db.pool, 'crm', 'q1'))!}/pins/given_name`, { value: 'Quinn "Q", Jr', reason: 'said "yes",\nthen "no"' });
    expect(quoted.status).toBe(200);
    // A reason a spreadsheet would run as a formula is exported as text.
    await ingest(db.pool, 'crm', [{ id: 'q2', email: 'q2@x.example', given: 'Quentin' }]);
    const formula = await call('PUT', `/v1/customers/${(await goldenOf(db.pool, 'crm', 'q2'))!}/pins/given_name`, { value: 'Quentin', reason: '=HYPERLINK("http://evil.example","click")' });
    expect(formula.status).toBe(200);
    const json = await call('GET', '/v1/decisions?limit=500');
    for (const request of [{ url: '/v1/decisions?format=csv', headers: {} as Record<string, string> }, { url: '/v1/decisions', headers: { accept: 'text/csv' } }]) {
      const csv = await call('GET', request.url, undefined, keys.steward, request.headers);
      expect(csv.status).toBe(200);
      expect(csv.headers['content-type']).toContain('text/csv');
      const rows = parse(csv.body as string, { columns: true }) as Record<string, string>[];
      expect(rows).toEqual(
        json.body.items.map((item: Record<string, unknown>) =>
          Object.fromEntries(
            Object.keys(rows[0]).map((column) => {
              const value = item[column];
              const formula = (column === 'reason' || column === 'undo_reason') && /^[=+\-@]/.test(String(value));
              return [column, value === null ? '' : Array.isArray(value) ? value.join(' ') : column === 'value' ? JSON.stringify(value) : `${formula ? "'" : ''}${value}`];
            }),
          ),
        ),
      );
      expect(rows.find((row) => row.id === quoted.body.decision.id)?.reason).toBe('said "yes",\nthen "no"');
      expect(rows.find((row) => row.id === formula.body.decision.id)?.reason).toBe(`'=HYPERLINK("http://evil.example","click")`);
    }
  });
});

describe('the overview', () => {
  it('counts golden records, source records, steward merges and the review backlog per day', async () => {
    await seedRun(db.pool, 'crm', { status: 'succeeded', read: 7 });
    const response = await call('GET', '/v1/overview');
    expect(response.status).toBe(200);
    const { totals, series } = response.body;
    const { rows } = await db.pool.query<{ active: number; crm: number; open: number }>(
      `select (select count(*)::int from golden_record where status = 'active') as active,
              (select count(*)::int from raw_record where source = 'crm') as crm,
              (select count(*)::int from review_item where status = 'open') as open`,
    );
    expect(totals.golden_records).toBe(rows[0].active);
    expect(totals.source_records.crm).toBe(rows[0].crm);
    // Open pairs, and the open conflicts the queue lists.
    const conflicts = (await call('GET', '/v1/review?kind=conflict&limit=500')).body.items.length;
    expect(totals.review_open).toBe(rows[0].open + conflicts);
    expect(series).toHaveLength(30);
    const today = series[29];
    expect(today.day).toBe(new Date().toISOString().slice(0, 10));
    expect(today.golden_records).toBe(rows[0].active);
    // Steward merges today: the pair merge, the merge of two customers, and the undo of the split (the split-off customer merges back).
    expect(today.merges_steward).toBe(3);
    // The test's page ingests record no run counts; the finished run read 7.
    expect(today.records_read).toBe(7);
  });
});

describe('scopes', () => {
  it('answers 403 to a read-only key on every steward route', async () => {
    const customer = (await goldenOf(db.pool, 'crm', 'k1'))!;
    for (const [method, url, body] of [
      ['GET', '/v1/review', undefined],
      ['GET', '/v1/review/pair-1', undefined],
      ['POST', '/v1/review/pair-1/decision', { action: 'merge' }],
      ['POST', `/v1/customers/${customer}/split`, { raw_record_ids: [1] }],
      ['POST', '/v1/customers/merge', { ids: [customer, 'cus_1'] }],
      ['PUT', `/v1/customers/${customer}/pins/given_name`, { value: 'x' }],
      ['DELETE', `/v1/customers/${customer}/pins/given_name`, undefined],
      ['GET', '/v1/decisions', undefined],
      ['POST', '/v1/decisions/1/undo', {}],
      ['GET', '/v1/overview', undefined],
    ] as const) {
      const response = await call(method, url, body, keys.read);
      expect(response.status, `${method} ${url}`).toBe(403);
    }
  });
});
