import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendChanges } from '../identity-resolution/change-log.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

describe('change log', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  const positions = async () =>
    (await db.pool.query<{ position: string; golden_id: string }>('select position, golden_id from change_log order by position')).rows.map((row) => [Number(row.position), row.golden_id]);

  it('gives positions in commit order, so a reader after N never misses a row that committed late', async () => {
    const writerA = await db.pool.connect();
    const writerB = await db.pool.connect();
    try {
      await writerA.query('begin');
      await writerB.query('begin');
      // A takes the first position and keeps its transaction open.
      await appendChanges(writerA, [{ goldenId: 'cus_a', kind: 'created' }], { cause: 'run', actor: 'test' });
      // B must wait for A: had it taken position 2 and committed first, a reader at 2 would skip 1 forever.
      let bDone = false;
      const b = appendChanges(writerB, [{ goldenId: 'cus_b', kind: 'created' }, { goldenId: 'cus_c', kind: 'updated' }], { cause: 'run', actor: 'test' }).then(() => {
        bDone = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(bDone).toBe(false);
      expect(await positions()).toEqual([]);

      await writerA.query('commit');
      await b;
      expect(await positions()).toEqual([[1, 'cus_a']]);
      await writerB.query('commit');
      expect(await positions()).toEqual([
        [1, 'cus_a'],
        [2, 'cus_b'],
        [3, 'cus_c'],
      ]);
    } finally {
      writerA.release();
      writerB.release();
    }
  });

  it('leaves no gap when a writer rolls back', async () => {
    const writer = await db.pool.connect();
    try {
      await writer.query('begin');
      await appendChanges(writer, [{ goldenId: 'cus_x', kind: 'created' }], { cause: 'api', actor: 'test' });
      await writer.query('rollback');
    } finally {
      writer.release();
    }
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      await appendChanges(client, [{ goldenId: 'cus_d', kind: 'created' }], { cause: 'api', actor: 'test' });
      await client.query('commit');
    } finally {
      client.release();
    }
    expect((await positions()).map(([position]) => position)).toEqual([1, 2, 3, 4]);
  });
});
