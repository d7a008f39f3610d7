/** Pushed records that arrive together are stored together (group commit), and each delivery learns its own outcome. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../hub/config.js';
import { silentLogger } from '../hub/log.js';
import { registerSources, type Hub } from '../hub/sync.js';
import { acceptRecords } from '../hub/push.js';
import type { ChangeCause } from '../identity-resolution/change-log.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { goldenOf } from './helpers/pipeline.js';
import { waitFor } from './helpers/wait.js';
import { lockResolution } from '../identity-resolution/sql.js';

let db: TestDatabase;
let hub: Hub;
const cause: ChangeCause = { cause: 'api', actor: 'receive:forms' };
const deliver = (id: string, data: Record<string, unknown>) => acceptRecords(hub, 'forms', 'records', [{ externalId: id, data: { id, ...data } }], cause);

beforeAll(async () => {
  db = await createTestDatabase();
  const config = checkConfig({ sources: [{ name: 'forms', connector: 'webhook', config: { secret: 'whsec_0123456789abcdef', streams: ['records'] } }] }, 'test.yaml');
  hub = { pool: db.pool, config, log: silentLogger };
  await registerSources(db.pool, config);
});

afterAll(async () => {
  await db?.drop();
});

describe('pushed records', () => {
  it('that arrive while others are stored wait and are stored together, each delivery answered with its own outcome', async () => {
    // The first two deliveries are stored at once (two groups at a time: one resolving, the next stored meanwhile);
    // the 28 that arrive meanwhile make one group.
    const counts = await Promise.all(
      Array.from({ length: 30 }, (_, i) => deliver(`p${i}`, { email: `p${i}@example.com`, ...(i === 7 ? { updated_at: 'not a date' } : {}) })),
    );
    counts.forEach((delivery, i) => {
      expect(delivery).toMatchObject(i === 7 ? { read: 1, created: 0, quarantined: 1 } : { read: 1, created: 1, quarantined: 0 });
    });
    const { rows } = await db.pool.query<{ transactions: number }>("select count(distinct xmin::text)::int as transactions from raw_record where source = 'forms'");
    expect(rows[0].transactions).toBe(3);
    expect(await goldenOf(db.pool, 'forms', 'p29')).toMatch(/^cus_/);
    expect(await goldenOf(db.pool, 'forms', 'p7')).toBeUndefined();
    const { rows: quarantined } = await db.pool.query("select external_id, field from quarantine where source = 'forms' and resolved_at is null");
    expect(quarantined).toEqual([{ external_id: 'p7', field: 'updated_at' }]);
  });

  it('stores two deliveries of one record one after the other, in the order they arrived', async () => {
    const [first, second, third] = await Promise.all([deliver('q1', { first_name: 'Ann' }), deliver('q1', { first_name: 'Anna' }), deliver('q2', { first_name: 'Bo' })]);
    expect(first).toMatchObject({ created: 1 });
    expect(second).toMatchObject({ updated: 1 });
    expect(third).toMatchObject({ created: 1 });
    const { rows } = await db.pool.query("select data ->> 'first_name' as name from raw_record where source = 'forms' and external_id = 'q1'");
    expect(rows).toEqual([{ name: 'Anna' }]);
  });

  it('counts a record repeated within one delivery once, and an unchanged one as unchanged', async () => {
    const counts = await acceptRecords(
      hub,
      'forms',
      'records',
      [
        { externalId: 'q2', data: { id: 'q2', first_name: 'Bo' } },
        { externalId: 'r1', data: { id: 'r1', first_name: 'Cy' } },
        { externalId: 'r1', data: { id: 'r1', first_name: 'Cyd' } },
      ],
      cause,
    );
    expect(counts).toEqual({ read: 3, created: 1, updated: 0, unchanged: 2, quarantined: 0 });
  });

  it('stores a group while the one before it is resolved, and the later one finds the earlier', async () => {
    // Two groups at once: each is stored and mapped before the other is committed, then they are resolved in turn. The two
    // are the same person to the score, but two ids of one source: the matcher puts the pair up for review.
    const sam = { email: 'sam.lee@example.com', first_name: 'Sam', last_name: 'Lee', phone: '+44 20 7946 0018' };
    const [first, second] = await Promise.all([deliver('s1', sam), deliver('s2', sam)]);
    expect(first).toMatchObject({ created: 1 });
    expect(second).toMatchObject({ created: 1 });
    const { rows } = await db.pool.query<{ transactions: number }>("select count(distinct xmin::text)::int as transactions from raw_record where external_id in ('s1', 's2')");
    expect(rows[0].transactions).toBe(2);
    // Either group may reach the resolution lock first: whichever is resolved second finds the other.
    const { rows: reviews } = await db.pool.query(
      `select array[l.external_id, r.external_id] as pair, reason from review_item
       join raw_record l on l.id = left_raw_record_id join raw_record r on r.id = right_raw_record_id where 's1' in (l.external_id, r.external_id)`,
    );
    expect(reviews.map((review) => ({ ...review, pair: review.pair.sort() }))).toEqual([{ pair: ['s1', 's2'], reason: 'same_source' }]);
  });

  it('stores a group again when PostgreSQL ends it for a deadlock with a resolver', async () => {
    await deliver('t1', { first_name: 'Tea' });
    const resolver = await db.pool.connect();
    try {
      // A resolver holds the resolution lock; the group updates t1 and then waits for that lock.
      await resolver.query('begin');
      await resolver.query(lockResolution());
      const delivered = deliver('t1', { first_name: 'Teal' });
      const waiting = "select 1 from pg_locks l join pg_database d on d.oid = l.database where locktype = 'advisory' and not granted and datname = current_database()";
      await waitFor(async () => (await db.pool.query(waiting)).rowCount === 1);
      // The resolver now needs the row the group holds: a cycle, which PostgreSQL breaks by failing the group.
      await resolver.query("select id from raw_record where source = 'forms' and external_id = 't1' for update");
      await resolver.query('commit');
      expect(await delivered).toMatchObject({ updated: 1 });
    } finally {
      resolver.release();
    }
    const { rows } = await db.pool.query("select data ->> 'first_name' as name from raw_record where source = 'forms' and external_id = 't1'");
    expect(rows).toEqual([{ name: 'Teal' }]);
  });
});
