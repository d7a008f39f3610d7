/**
 * Issue 3, incremental speed: what a record joining or changing writes. Lineage and blocking keys are replaced by their
 * difference (rows that stay are not written again, yet the result equals a full rewrite); a transaction marks a
 * customer's document stale once; a small pass runs on generic plans; a source's mapping is compiled again only when
 * its file changed; rows derived from a record, which check no foreign key, go with it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inTransaction } from '../hub/db/database.js';
import { loadCompiledMapping } from '../mapping/engine.js';
import { rebuildClusters } from '../identity-resolution/probabilistic-matcher.js';
import { resolveRecords } from '../identity-resolution/resolve.js';
import { MAX_GENERIC_PLAN_SEEDS } from '../identity-resolution/sql.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { goldenOf, ingest, orphanedRows, rawRecordId } from './helpers/pipeline.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

/** Lineage rows of a golden record with their row version (xmin changes when a row is written again). */
async function lineageOf(goldenId: string): Promise<{ row: string; xmin: string }[]> {
  const { rows } = await db.pool.query<{ row: string; xmin: string }>(
    `select concat_ws('|', attribute, value::text, raw_record_id, source, observed_at, survived, rule, pinned_value_id) as row, xmin::text as xmin
     from attribute_lineage where golden_id = $1 order by 1`,
    [goldenId],
  );
  return rows;
}

describe('lineage', () => {
  it('keeps the rows that stay when a record joins, and ends as a full rewrite would', async () => {
    await ingest(db.pool, 'erp', [{ id: 'l1', given: 'Lena', family: 'Lang', email: 'lena@example.com', city: 'Bonn', updated: '2025-01-01T10:00:00Z' }]);
    const lena = (await goldenOf(db.pool, 'erp', 'l1'))!;
    const before = await lineageOf(lena);
    expect(before.length).toBeGreaterThan(2);

    // An older record of Lena, in another source, with another city: her values still survive, their rows stay as
    // they were; the other record's values come as alternates.
    await ingest(db.pool, 'shop', [{ id: 's1', given: 'Lena', family: 'Lang', email: 'lena@example.com', city: 'Köln', updated: '2024-06-01T10:00:00Z' }]);
    expect(await goldenOf(db.pool, 'shop', 's1')).toBe(lena);
    const after = await lineageOf(lena);
    for (const old of before) expect(after.find((row) => row.row === old.row)?.xmin).toBe(old.xmin);
    expect(after.filter((row) => row.row.startsWith('address|{"city": "Köln"}|') && row.row.includes('|shop|') && row.row.endsWith('|f'))).toHaveLength(1);
    expect(after.length).toBeGreaterThan(before.length);

    // A newer one moves the flags: the rows that change are written, the result is what a full rewrite gives.
    await ingest(db.pool, 'web', [{ id: 'w1', given: 'Lena', family: 'Lang', email: 'lena@example.com', city: 'Hamburg', updated: '2025-03-01T10:00:00Z' }]);
    const latest = await lineageOf(lena);
    expect(latest.some((row) => row.row.startsWith('address|{"city": "Bonn"}|') && row.row.endsWith('|f'))).toBe(true);
    expect(latest.some((row) => row.row.startsWith('address|{"city": "Hamburg"}|') && row.row.includes('|t|'))).toBe(true);
    expect(latest.filter((row) => row.row.startsWith('address|') && row.row.includes('|t|'))).toHaveLength(1);

    // A full rewrite (lineage dropped, resolved again) gives the same rows.
    await db.pool.query('delete from attribute_lineage where golden_id = $1', [lena]);
    await inTransaction(db.pool, async (client) => resolveRecords(client, [await rawRecordId(db.pool, 'erp', 'l1')], { cause: 'decision', actor: 'test' }));
    expect((await lineageOf(lena)).map((row) => row.row)).toEqual(latest.map((row) => row.row));
  });

  it('is the same after `hub resolve --full` as after the records arrived one by one', async () => {
    const lena = (await goldenOf(db.pool, 'erp', 'l1'))!;
    const incremental = (await lineageOf(lena)).map((row) => row.row);
    await rebuildClusters(db.pool, resolveRecords);
    expect((await lineageOf(lena)).map((row) => row.row)).toEqual(incremental);
  });
});

describe('blocking keys', () => {
  it('follow a changed record: its old keys go, the ones it keeps are not written again, new ones come', async () => {
    await ingest(db.pool, 'erp', [{ id: 'k1', given: 'Karl', family: 'Kurz', email: 'karl@example.com', phone: '+49 30 1234567' }]);
    const id = await rawRecordId(db.pool, 'erp', 'k1');
    const keysOf = async () =>
      (await db.pool.query<{ key: string; xmin: string }>('select key, xmin::text from block_key where raw_record_id = $1 order by key', [id])).rows;
    const before = await keysOf();
    expect(before.some((row) => row.key.includes('karl@example.com'))).toBe(true);

    await ingest(db.pool, 'erp', [{ id: 'k1', given: 'Karl', family: 'Kurz', email: 'karl.kurz@example.org', phone: '+49 30 1234567' }]);
    const after = await keysOf();
    expect(after.some((row) => row.key.includes('karl@example.com'))).toBe(false);
    expect(after.some((row) => row.key.includes('karl.kurz@example.org'))).toBe(true);
    const phone = before.find((row) => row.key.startsWith('phone'))!;
    expect(after.find((row) => row.key === phone.key)?.xmin).toBe(phone.xmin);
  });
});

describe('records stored before blocking keys were', () => {
  it('get their keys when a search reaches them, and keep their cluster', async () => {
    await ingest(db.pool, 'erp', [{ id: 'o1', given: 'Olga', family: 'Ott', email: 'olga@example.com', phone: '+49 30 7654321' }]);
    await ingest(db.pool, 'shop', [{ id: 'o2', given: 'Olga', family: 'Ott', email: 'olga@example.com' }]);
    const [first, second] = [await rawRecordId(db.pool, 'erp', 'o1'), await rawRecordId(db.pool, 'shop', 'o2')];
    const olga = (await goldenOf(db.pool, 'erp', 'o1'))!;
    expect(await goldenOf(db.pool, 'shop', 'o2')).toBe(olga);
    await db.pool.query('delete from block_key where raw_record_id = any($1::bigint[])', [[first, second]]);
    // The ERP record changes: it is searched, and its cluster mate, keyless, is reached, given keys and searched too.
    await ingest(db.pool, 'erp', [{ id: 'o1', given: 'Olga', family: 'Ott', email: 'olga@example.com', phone: '+49 30 7654322' }]);
    const { rows } = await db.pool.query<{ id: string }>('select distinct raw_record_id as id from block_key where raw_record_id = any($1::bigint[])', [[first, second]]);
    expect(rows.map((row) => Number(row.id)).sort()).toEqual([first, second].sort());
    expect(await goldenOf(db.pool, 'erp', 'o1')).toBe(olga);
    expect(await goldenOf(db.pool, 'shop', 'o2')).toBe(olga);
  });
});

describe('rows derived from a record', () => {
  /** A record's match and blocking keys, lineage rows and memberships. */
  const derivedOf = async (id: number) =>
    (
      await db.pool.query(
        `select (select count(*) from match_key where raw_record_id = $1)::int as match_keys, (select count(*) from block_key where raw_record_id = $1)::int as block_keys,
                (select count(*) from attribute_lineage where raw_record_id = $1)::int as lineage, (select count(*) from cluster_membership where raw_record_id = $1)::int as memberships`,
        [id],
      )
    ).rows[0];
  const none = { match_keys: 0, block_keys: 0, lineage: 0, memberships: 0 };

  it('go with it: its keys with its canonical form, its lineage and memberships with the record', async () => {
    await ingest(db.pool, 'erp', [{ id: 'd1', given: 'Dora', family: 'Diaz', email: 'dora@example.com', phone: '+49 30 1234567', city: 'Bonn', updated: '2025-01-01T10:00:00Z' }]);
    await ingest(db.pool, 'shop', [{ id: 'd2', given: 'Dora', family: 'Diaz', email: 'dora@example.com', city: 'Köln', updated: '2025-02-01T10:00:00Z' }]);
    const [first, second] = [await rawRecordId(db.pool, 'erp', 'd1'), await rawRecordId(db.pool, 'shop', 'd2')];
    expect(await goldenOf(db.pool, 'shop', 'd2')).toBe(await goldenOf(db.pool, 'erp', 'd1'));
    for (const id of [first, second]) {
      const derived = await derivedOf(id);
      for (const count of Object.values(derived)) expect(count).toBeGreaterThan(0);
    }

    // Quarantined (a malformed email): its canonical form goes, and its keys with it; the pass takes it out of the customer.
    const counts = await ingest(db.pool, 'shop', [{ id: 'd2', given: 'Dora', family: 'Diaz', email: 'dora(at)example', updated: '2025-03-01T10:00:00Z' }]);
    expect(counts.quarantined).toBe(1);
    expect(await derivedOf(second)).toMatchObject({ match_keys: 0, block_keys: 0, lineage: 0 });

    // The record deleted (as erasure and source removal do): its lineage, memberships and keys go with it.
    await db.pool.query('delete from raw_record where id = any($1::bigint[])', [[first, second]]);
    expect(await derivedOf(first)).toEqual(none);
    expect(await derivedOf(second)).toEqual(none);
    expect(await orphanedRows(db.pool)).toEqual(none);
  });
});

describe('document staleness', () => {
  it('raises the generation once per transaction, however many of its statements mark the customer', async () => {
    await ingest(db.pool, 'erp', [{ id: 'd1', given: 'Dora', family: 'Dorn', email: 'dora@example.com' }]);
    const dora = (await goldenOf(db.pool, 'erp', 'd1'))!;
    await db.pool.query("update customer_document set body = '{}' where golden_id = $1", [dora]);
    const generation = async () => Number((await db.pool.query<{ generation: string }>('select generation from customer_document where golden_id = $1', [dora])).rows[0].generation);
    const before = await generation();
    await inTransaction(db.pool, async (client) => {
      await client.query('select hub_stale_documents($1::text[])', [[dora]]);
      // The golden record's trigger marks it again, in the same transaction.
      await client.query('update golden_record set updated_at = updated_at where id = $1', [dora]);
      await client.query('select hub_stale_documents($1::text[])', [[dora]]);
    });
    expect(await generation()).toBe(before + 1);
    const { rows } = await db.pool.query('select body from customer_document where golden_id = $1', [dora]);
    expect(rows[0].body).toBeNull();
    // The next transaction raises it again.
    await db.pool.query('select hub_stale_documents($1::text[])', [[dora]]);
    expect(await generation()).toBe(before + 2);
  });
});

describe('plans', () => {
  it('a small pass runs on generic plans for the rest of its transaction; a larger one after it on the session\'s mode again', async () => {
    const rows = Array.from({ length: MAX_GENERIC_PLAN_SEEDS + 1 }, (_, i) => ({ id: `p${i}`, given: 'Pia', family: `Plan${i}`, email: `pia.plan${i}@example.com`, updated: '2025-01-01T10:00:00Z' }));
    await ingest(db.pool, 'erp', rows);
    const ids = await Promise.all(rows.map((row) => rawRecordId(db.pool, 'erp', row.id)));
    const cause = { cause: 'run' as const, actor: 'test' };
    const modes = await inTransaction(db.pool, async (client) => {
      const mode = async () => (await client.query<{ mode: string }>("select current_setting('plan_cache_mode') as mode")).rows[0].mode;
      const seen = [await mode()];
      await resolveRecords(client, ids.slice(0, 1), cause);
      seen.push(await mode());
      await resolveRecords(client, ids, cause);
      seen.push(await mode());
      return seen;
    });
    expect(modes).toEqual(['auto', 'force_generic_plan', 'auto']);
    // Local to the transaction: the next one plans as the session does.
    expect((await db.pool.query("select current_setting('plan_cache_mode') as mode")).rows[0].mode).toBe('auto');
  });
});

describe('round trips', () => {
  it('a pass reads canonical records with its search steps and takes its snapshot with its locks: no statement of its own for either', async () => {
    await ingest(db.pool, 'erp', [{ id: 'r1', given: 'Rita', family: 'Rundt', email: 'rita.rundt@example.com', updated: '2025-01-01T10:00:00Z' }]);
    await ingest(db.pool, 'shop', [{ id: 'r2', given: 'Rita', family: 'Rundt', email: 'Rita.Rundt@example.com', city: 'Bonn', updated: '2025-02-01T10:00:00Z' }]);
    await db.pool.query("update canonical_record set data = jsonb_set(data, '{person,given_name}', '\"Ritta\"') where raw_record_id = $1", [await rawRecordId(db.pool, 'erp', 'r1')]);
    const ids = [await rawRecordId(db.pool, 'erp', 'r1'), await rawRecordId(db.pool, 'shop', 'r2')];
    const sent: string[] = [];
    await inTransaction(db.pool, async (client) => {
      // Records the statements of one pass over both records (the rest of the client stays as it is).
      const counting = Object.create(client) as typeof client;
      counting.query = ((statement: { name?: string; text: string }, ...rest: unknown[]) => {
        sent.push(statement.name ?? statement.text.trim().split(/\s+/)[0]);
        return (client.query as (...args: unknown[]) => unknown)(statement, ...rest);
      }) as typeof client.query;
      await resolveRecords(counting, ids, { cause: 'run', actor: 'test' });
    });
    expect(sent).toContain('hub_search_step');
    expect(sent).not.toContain('hub_canonical_records');
    expect(sent).not.toContain('hub_current_snapshot');
    // What the pass read with its search step is what it wrote from: the canonical form as changed above.
    const customer = (await goldenOf(db.pool, 'erp', 'r1'))!;
    expect(await goldenOf(db.pool, 'shop', 'r2')).toBe(customer);
    const { rows } = await db.pool.query<{ value: unknown }>("select value from attribute_lineage where golden_id = $1 and attribute = 'given_name' order by 1", [customer]);
    expect(rows.map((row) => row.value)).toContain('Ritta');
  });
});

describe('compiled mappings', () => {
  it('are reused while the file is unchanged and compiled again once it is edited', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hub-mapping-'));
    try {
      const path = join(dir, 'people.yaml');
      const mappingOf = (target: string) => `streams:\n  rows:\n    fields:\n      - { target: ${target}, from: name, transforms: [normalise_text] }\n`;
      await writeFile(path, mappingOf('person.full_name'));
      const first = await loadCompiledMapping(path);
      expect(await loadCompiledMapping(path)).toBe(first);
      await writeFile(path, mappingOf('person.given_name'));
      const edited = await loadCompiledMapping(path);
      expect(edited).not.toBe(first);
      const mapped = edited.map('rows', { name: 'Eva' }, { source: 'test', stream: 'rows' });
      expect(mapped.ok && mapped.record.person?.given_name).toBe('Eva');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
