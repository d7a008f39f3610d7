/**
 * Resolution never runs twice at once: `resolveRecords` takes one transaction-scoped advisory lock
 * (identity-resolution/sql.ts RESOLVE_LOCK) for the whole database, held until the page that resolved commits.
 * Proven two ways: a second resolver touching the same customer waits for the first to commit, and four syncs of
 * sources sharing customers, run at once, end with the same golden records as the same syncs run one after another.
 */
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../hub/config.js';
import { storePage } from '../hub/ingest.js';
import { RESOLVE_LOCK } from '../identity-resolution/sql.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startTestHub, syncNow } from './helpers/hub.js';
import { goldenOf, ingest, testMapping } from './helpers/pipeline.js';

const SOURCES = 4;
const PEOPLE = 160;

/** Resolvers waiting for the resolution lock (pg_locks splits a bigint key into classid and objid). */
async function waitingResolvers(db: TestDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    "select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted and objsubid = 1 and ((classid::bigint << 32) | objid::bigint) = $1",
    [RESOLVE_LOCK],
  );
  return rows[0].n;
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

describe('resolution of one cluster never runs concurrently', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db?.drop());

  it('a second resolver touching the same customer waits until the first has committed, then joins its golden record', async () => {
    const first = await db.pool.connect();
    try {
      await first.query("insert into source (name, connector) values ('crm', 'csv'), ('shop', 'csv') on conflict do nothing");
      await first.query('begin');
      const cause = { cause: 'run' as const, causeId: 'test', actor: 'source:crm' };
      // The first resolver resolves and holds its transaction open: the lock is held until it commits.
      await storePage(first, { stream: 'people', runId: null, target: { source: 'crm', mapping: testMapping, defaultRegion: 'DE' }, cause }, {
        records: [{ externalId: 'c1', data: { id: 'c1', email: 'same.person@example.com', given: 'Sam', updated: '2025-01-01T00:00:00Z' } }],
        state: {},
      });
      const second = ingest(db.pool, 'shop', [{ id: 's1', email: 'Same.Person@example.com', given: 'Samuel', updated: '2025-02-01T00:00:00Z' }]);
      const deadline = Date.now() + 10_000;
      while ((await waitingResolvers(db)) === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await waitingResolvers(db)).toBe(1);
      await first.query('commit');
      expect(await second).toMatchObject({ created: 1 });
    } finally {
      first.release();
    }
    // Run side by side without the lock, neither resolver would have seen the other's record: two customers.
    const customer = await goldenOf(db.pool, 'crm', 'c1');
    expect(await goldenOf(db.pool, 'shop', 's1')).toBe(customer);
    const { rows } = await db.pool.query("select kind from change_log where golden_id = $1 order by position", [customer]);
    expect(rows.map((row) => row.kind)).toEqual(['created', 'updated']);
  }, 30_000);
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
