/**
 * Resolution passes over unrelated records run side by side; passes over one customer never do. A pass holds the
 * resolution lock (identity-resolution/sql.ts RESOLVE_LOCK) shared, locks the keys of its own records (KEY_LOCKS) and
 * claims the golden records it recomputes (cluster_claim), each until it commits; organisations and passes over very
 * many keys take the lock exclusively. Proven with transactions held open, and by four syncs of sources sharing
 * customers, run at once, which end with the same golden records as the same syncs run one after another.
 */
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../hub/config.js';
import type { PoolClient } from '../hub/db/database.js';
import { storePage } from '../hub/ingest.js';
import { KEY_LOCKS, MAX_KEY_LOCKS, RESOLVE_LOCK } from '../identity-resolution/sql.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startTestHub, syncNow } from './helpers/hub.js';
import { goldenOf, ingest, testMapping } from './helpers/pipeline.js';
import { waitFor } from './helpers/wait.js';

const SOURCES = 4;
const PEOPLE = 160;

/**
 * What the passes of this database wait for: the resolution lock (pg_locks splits a bigint key into classid and objid),
 * a key lock (two integers: namespace and hash), and the statements waiting for a row (a claim, the change-log counter).
 */
async function waiting(db: TestDatabase): Promise<{ resolution: number; key: number; statements: string[] }> {
  const { rows } = await db.pool.query<{ resolution: number; key: number; statements: string[] }>(
    `select (select count(*) from pg_locks where not granted and database = d.oid and locktype = 'advisory' and objsubid = 1
               and ((classid::bigint << 32) | objid::bigint) = $1)::int as resolution,
            (select count(*) from pg_locks where not granted and database = d.oid and locktype = 'advisory' and objsubid = 2 and classid = $2)::int as key,
            array(select query from pg_stat_activity a where a.datid = d.oid and wait_event_type = 'Lock' and wait_event in ('transactionid', 'tuple')) as statements
     from pg_database d where datname = current_database()`,
    [RESOLVE_LOCK, KEY_LOCKS],
  );
  return rows[0];
}

/**
 * Active golden records by their members (source/id), with their values: nothing that depends on timing (ids,
 * sequence numbers, change-log positions).
 */
async function goldenRecords(db: TestDatabase) {
  const { rows } = await db.pool.query<{ members: string[]; data: unknown }>(
    `select array_agg(r.source || '/' || r.external_id order by r.source, r.external_id) as members, g.data
     from golden_record g join cluster_membership m on m.golden_id = g.id and m.valid_to is null join raw_record r on r.id = m.raw_record_id
     where g.status = 'active' group by g.id, g.data order by 1`,
  );
  return rows;
}

describe('resolution passes side by side', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query("insert into source (name, connector) values ('crm', 'csv'), ('shop', 'csv'), ('erp', 'csv') on conflict do nothing");
  });
  afterAll(() => db?.drop());

  /** Stores and resolves rows of `crm` in `client`'s open transaction (begun here), which the caller commits. */
  async function holdOpen(client: PoolClient, rows: Record<string, string>[]): Promise<void> {
    await client.query('begin');
    const cause = { cause: 'run' as const, causeId: 'test', actor: 'source:crm' };
    await storePage(client, { stream: 'people', runId: null, target: { source: 'crm', mapping: testMapping, defaultRegion: 'DE' }, cause }, {
      records: rows.map((row) => ({ externalId: row.id, data: row })),
      state: {},
    });
  }

  async function withClient(work: (client: PoolClient) => Promise<void>): Promise<void> {
    const client = await db.pool.connect();
    try {
      await work(client);
    } finally {
      await client.query('rollback').catch(() => undefined);
      client.release();
    }
  }

  it('a second pass over the same customer waits until the first has committed, then joins its golden record', async () => {
    await withClient(async (first) => {
      await holdOpen(first, [{ id: 'c1', email: 'same.person@example.com', given: 'Sam', updated: '2025-01-01T00:00:00Z' }]);
      // Both records hold the same email: the second pass waits for its key.
      const second = ingest(db.pool, 'shop', [{ id: 's1', email: 'Same.Person@example.com', given: 'Samuel', updated: '2025-02-01T00:00:00Z' }]);
      await waitFor(async () => (await waiting(db)).key === 1);
      await first.query('commit');
      expect(await second).toMatchObject({ created: 1 });
    });
    // Run side by side without the key lock, neither pass would have seen the other's record: two customers.
    const customer = await goldenOf(db.pool, 'crm', 'c1');
    expect(await goldenOf(db.pool, 'shop', 's1')).toBe(customer);
    const { rows } = await db.pool.query('select kind from change_log where golden_id = $1 order by position', [customer]);
    expect(rows.map((row) => row.kind)).toEqual(['created', 'updated']);
  }, 30_000);

  it('a pass over unrelated records waits for an open one only to take the next change-log positions', async () => {
    await withClient(async (first) => {
      await holdOpen(first, [{ id: 'c2', email: 'alex.open@example.com', given: 'Alex', updated: '2025-01-01T00:00:00Z' }]);
      const second = ingest(db.pool, 'shop', [{ id: 's2', email: 'kim.other@example.com', given: 'Kim', updated: '2025-01-01T00:00:00Z' }]);
      // Resolved while the first transaction is open: it waits for no resolution lock, key or claim, only at the end
      // for the counter of change-log positions (they follow commit order).
      await waitFor(async () => (await waiting(db)).statements.length === 1);
      const { resolution, key, statements } = await waiting(db);
      expect({ resolution, key }).toEqual({ resolution: 0, key: 0 });
      expect(statements[0]).toContain('update change_log_counter');
      await first.query('commit');
      expect(await second).toMatchObject({ created: 1 });
    });
    expect(await goldenOf(db.pool, 'crm', 'c2')).not.toBe(await goldenOf(db.pool, 'shop', 's2'));
  }, 30_000);

  it('a pass that read a customer another pass then changed reads it again: the golden record holds both', async () => {
    // One customer known by email and phone; two new records reach it by different keys, so they take no common key lock.
    await ingest(db.pool, 'erp', [{ id: 'e3', email: 'robin.both@example.com', phone: '+49 30 5550303', given: 'Robin', updated: '2025-01-01T00:00:00Z' }]);
    const customer = await goldenOf(db.pool, 'erp', 'e3');
    await withClient(async (first) => {
      await holdOpen(first, [{ id: 'c3', phone: '030 5550303', given: 'Robin', city: 'Berlin', updated: '2025-03-01T00:00:00Z' }]);
      const second = ingest(db.pool, 'shop', [{ id: 's3', email: 'Robin.Both@example.com', given: 'Robin', family: 'Both', updated: '2025-02-01T00:00:00Z' }]);
      // The second pass has read the customer without the first one's record and waits for its claim.
      await waitFor(async () => (await waiting(db)).statements.some((statement) => statement.includes('insert into cluster_claim')));
      await first.query('commit');
      expect(await second).toMatchObject({ created: 1 });
    });
    for (const [source, id] of [['crm', 'c3'], ['shop', 's3']]) expect(await goldenOf(db.pool, source, id)).toBe(customer);
    // Written from all three records: had the second pass kept what it first read, the city would be gone.
    const { rows } = await db.pool.query<{ data: Record<string, unknown> }>('select data from golden_record where id = $1', [customer]);
    expect(rows[0].data).toMatchObject({ given_name: 'Robin', family_name: 'Both', address: { city: 'Berlin' } });
    const { rows: lineage } = await db.pool.query<{ records: number }>(
      'select count(distinct raw_record_id)::int as records from attribute_lineage where golden_id = $1',
      [customer],
    );
    expect(lineage[0].records).toBe(3);
  }, 30_000);

  it('a pass over records with an organisation holds the resolution lock alone', async () => {
    await withClient(async (first) => {
      await holdOpen(first, [{ id: 'c4', email: 'jo.first@example.com', given: 'Jo', updated: '2025-01-01T00:00:00Z' }]);
      const second = ingest(db.pool, 'shop', [{ id: 's4', email: 'lee@acme.example', given: 'Lee', company: 'Acme GmbH', updated: '2025-01-01T00:00:00Z' }]);
      await waitFor(async () => (await waiting(db)).resolution === 1);
      await first.query('commit');
      expect(await second).toMatchObject({ created: 1 });
    });
    const { rows } = await db.pool.query("select data ->> 'organisation_id' as organisation from golden_record where id = $1", [await goldenOf(db.pool, 'shop', 's4')]);
    expect(rows[0].organisation).toMatch(/^org_/);
  }, 30_000);

  it(`a pass over more than ${MAX_KEY_LOCKS} keys holds the resolution lock alone instead of locking each`, async () => {
    // Each record holds at least two keys of its own (its email and its phone).
    const many = Array.from({ length: MAX_KEY_LOCKS / 2 + 1 }, (_, i) => ({
      id: `bulk${i}`,
      email: `bulk.person${i}@example.com`,
      phone: `+49 30 7${String(i).padStart(6, '0')}`,
      given: 'Bulk',
      updated: '2025-01-01T00:00:00Z',
    }));
    await withClient(async (first) => {
      await holdOpen(first, [{ id: 'c5', email: 'pat.first@example.com', given: 'Pat', updated: '2025-01-01T00:00:00Z' }]);
      const second = ingest(db.pool, 'shop', many);
      await waitFor(async () => (await waiting(db)).resolution === 1);
      expect((await waiting(db)).key).toBe(0);
      await first.query('commit');
      expect(await second).toMatchObject({ created: many.length });
    });
  }, 60_000);
});

describe(`${SOURCES} syncs of sources sharing customers, at once`, () => {
  let dir: string;
  let concurrent: TestDatabase;
  let sequential: TestDatabase;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hub-resolution-concurrency-'));
    await writeFile(
      join(dir, 'people.yaml'),
      'streams:\n  rows:\n    fields:\n' +
        '      - { target: observed_at, from: updated, transforms: [parse_timestamp] }\n' +
        '      - { target: person.email, from: email, transforms: [email] }\n' +
        '      - { target: person.phone, from: phone, transforms: [phone] }\n' +
        '      - { target: person.given_name, from: given }\n' +
        '      - { target: person.address.city, from: city }\n',
    );
    // Each source holds three people in four. Sources 0 and 2 know people by email, source 1 by phone, and source 3
    // by both: its records join email clusters with phone clusters (merges), whichever order the pages commit in.
    // Every record has its own change time, so survivorship does not depend on the order records arrive in.
    for (let source = 0; source < SOURCES; source++) {
      const lines = ['id,email,phone,given,city,updated'];
      for (let person = 0; person < PEOPLE; person++) {
        if ((person + source) % 4 === 0) continue;
        const email = source === 1 ? '' : `person${person}@example.com`;
        const phone = source === 1 || source === 3 ? `030 ${String(1_000_000 + person)}` : '';
        const updated = new Date(Date.UTC(2025, 0, 1) + (person * SOURCES + ((person + source) % SOURCES)) * 60_000).toISOString();
        lines.push(`${source}-${person},${email},${phone},Given ${person} of ${source},City ${source},${updated}`);
      }
      await writeFile(join(dir, `source${source}.csv`), lines.join('\n') + '\n');
    }
    [concurrent, sequential] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  });
  afterAll(async () => {
    await concurrent?.drop();
    await sequential?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const config = () =>
    checkConfig(
      {
        sources: Array.from({ length: SOURCES }, (_, source) => ({
          name: `source${source}`,
          connector: 'csv',
          mapping: 'people.yaml',
          default_region: 'DE',
          config: { path: `source${source}.csv`, id_column: 'id', page_size: 20 },
        })),
      },
      join(dir, 'hub.config.yaml'),
    );

  it('end with the same golden records as the same syncs one after another', async () => {
    const names = Array.from({ length: SOURCES }, (_, source) => `source${source}`);
    const together = await startTestHub(concurrent, undefined, config());
    try {
      const runs = await Promise.all(names.map((name) => syncNow(together, name)));
      expect(runs.map((run) => run.status)).toEqual(names.map(() => 'succeeded'));
    } finally {
      await together.stop();
    }
    const oneByOne = await startTestHub(sequential, undefined, config());
    try {
      for (const name of names) expect(await syncNow(oneByOne, name)).toMatchObject({ status: 'succeeded' });
    } finally {
      await oneByOne.stop();
    }

    const [after, expected] = [await goldenRecords(concurrent), await goldenRecords(sequential)];
    // One customer per person with all three of its records, except the people source 3 does not know: nothing
    // links their phone-only record (source 1) to their email records (sources 0 and 2).
    expect(after.filter((golden) => golden.members.length === 3)).toHaveLength((PEOPLE * 3) / 4);
    expect(after.filter((golden) => golden.members.length < 3)).toHaveLength((PEOPLE / 4) * 2);
    expect(after).toEqual(expected);
    // The runs did overlap: pages of different sources committed between each other's pages.
    const { rows } = await concurrent.pool.query<{ sources: number }>(
      `select count(distinct source)::int as sources from sync_run where started_at < (select min(finished_at) from sync_run)`,
    );
    expect(rows[0].sources).toBeGreaterThan(1);
  }, 120_000);
});
