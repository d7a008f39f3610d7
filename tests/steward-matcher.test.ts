/** Issue 7: the deterministic matcher honours a steward's cannot-links, the same way whatever the seed. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inTransaction } from '../hub/db/database.js';
import { linkedComponents } from '../identity-resolution/matcher.js';
import { saveResolutionSettings } from '../identity-resolution/probabilistic-matcher.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { goldenOf, ingest, rawRecordId } from './helpers/pipeline.js';

let db: TestDatabase;
const id: Record<string, number> = {};

async function components(seed: number[]): Promise<number[][]> {
  const result = await inTransaction(db.pool, (client) => linkedComponents(client, seed));
  return result.components.map((component) => [...component].sort((a, b) => a - b)).sort((a, b) => a[0] - b[0]);
}

async function constrain(kind: 'must_link' | 'cannot_link', left: number, right: number): Promise<void> {
  await db.pool.query(`insert into match_constraint (kind, left_raw_record_id, right_raw_record_id, actor) values ($1, least($2::bigint, $3::bigint), greatest($2::bigint, $3::bigint), 'test')`, [kind, left, right]);
}

beforeAll(async () => {
  db = await createTestDatabase();
  // The deterministic matcher's own test: the resolver must use it too (the default is probabilistic).
  await saveResolutionSettings(db.pool, { matcher: 'deterministic' });
  // a–b share an email, b–c a phone, c–d an email: one chain a-b-c-d.
  await ingest(db.pool, 'crm', [
    { id: 'a', email: 'ab@x.example' },
    { id: 'b', email: 'ab@x.example', phone: '+49 151 12345678' },
    { id: 'c', phone: '+49 151 12345678', email: 'cd@x.example' },
    { id: 'd', email: 'cd@x.example' },
  ]);
  for (const name of ['a', 'b', 'c', 'd']) id[name] = await rawRecordId(db.pool, 'crm', name);
});

afterAll(() => db?.drop());

describe('linkedComponents with cannot-links', () => {
  it('joins the chain without constraints', async () => {
    expect(await components([id.a])).toEqual([[id.a, id.b, id.c, id.d]]);
  });

  it('never puts a cannot-link pair in one group, and gives the same clusters from every seed', async () => {
    await constrain('cannot_link', id.a, id.d);
    // Edges join in record order: a–b, then b–c, then c–d would put a and d together and is skipped.
    const expected = [[id.a, id.b, id.c], [id.d]];
    for (const seed of [[id.a], [id.d], [id.c], [id.d, id.c, id.b, id.a]]) expect(await components(seed)).toEqual(expected);
  });

  it('lets a must-link join what a key edge alone could not, and keeps the cannot-link pair apart', async () => {
    await constrain('must_link', id.c, id.d);
    // c–d must link: {c, d} first; then a–b; b–c would bring a next to d and is skipped.
    const expected = [[id.a, id.b], [id.c, id.d]];
    for (const seed of [[id.a], [id.d], [id.b, id.c]]) expect(await components(seed)).toEqual(expected);
  });

  it('the resolver stores those clusters', async () => {
    await ingest(db.pool, 'crm', [{ id: 'a', email: 'ab@x.example', given: 'Ann' }]);
    const goldens = await Promise.all(['a', 'b', 'c', 'd'].map((name) => goldenOf(db.pool, 'crm', name)));
    expect(goldens[0]).toBe(goldens[1]);
    expect(goldens[2]).toBe(goldens[3]);
    expect(goldens[0]).not.toBe(goldens[2]);
  });
});
