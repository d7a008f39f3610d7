/**
 * Bad records through a connector (a CSV file) and through a pushed source (`acceptRecords`): wrong types,
 * missing keys, a 10 MB field, control characters, NUL bytes, invalid UTF-8 / UTF-16. Each bad record is
 * quarantined with a reason; the rest of the stream loads. A bad value of a rule with `on_error: omit` is left out
 * instead, and the customer's source record names it.
 */
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../hub/config.js';
import { acceptRecords } from '../hub/push.js';
import { createApiKey } from '../hub/auth.js';
import { bearer, buildTestApp } from './helpers/app.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { goldenOf } from './helpers/pipeline.js';
import { startTestHub, syncNow, type TestHub } from './helpers/hub.js';

const TEN_MB = 10 * 1024 * 1024;

describe('bad records', () => {
  let dir: string;
  let db: TestDatabase;
  let hub: TestHub;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hub-bad-records-'));
    await writeFile(
      join(dir, 'people.yaml'),
      'streams:\n  rows:\n    fields:\n      - { target: observed_at, from: updated, transforms: [parse_timestamp] }\n      - { target: person.email, from: email, transforms: [email] }\n      - { target: person.full_name, from: name }\n',
    );
    await writeFile(
      join(dir, 'pushed.yaml'),
      'streams:\n  contacts:\n    fields:\n      - { target: observed_at, from: updated, transforms: [parse_timestamp] }\n      - { target: person.email, from: email, transforms: [email] }\n      - { target: person.full_name, from: name }\n' +
        '      - { target: person.phone, from: phone, transforms: [phone], on_error: omit }\n',
    );
    await writeFile(
      join(dir, 'phones.yaml'),
      'streams:\n  rows:\n    fields:\n      - { target: person.email, from: email, transforms: [email] }\n      - { target: person.phone, from: phone, transforms: [phone], on_error: omit }\n',
    );
    await writeFile(join(dir, 'phones.csv'), 'id,email,phone\np1,paul@example.com,+49 30 7654321\np2,petra@example.com,ask reception\np3,piet@example.com,\n');
    const lines = ['id,email,name,updated'];
    for (let i = 1; i <= 20; i++) lines.push(`g${i},good${i}@example.com,Good ${i},2025-01-0${(i % 9) + 1}T00:00:00Z`);
    lines.push('bad-type,typed@example.com,Typed,not a date');
    lines.push('bad-missing,missing@example.com');
    lines.push(`bad-huge,huge@example.com,${'x'.repeat(TEN_MB)},2025-01-01T00:00:00Z`);
    lines.push('bad-control,control@example.com,Ctrl\u0001\u0007\u001b[31mred,2025-01-01T00:00:00Z');
    lines.push('bad-nul,nul@example.com,Nul\u0000byte,2025-01-01T00:00:00Z');
    lines.push(',noid@example.com,No id,2025-01-01T00:00:00Z');
    for (let i = 21; i <= 40; i++) lines.push(`g${i},good${i}@example.com,Good ${i},2025-01-0${(i % 9) + 1}T00:00:00Z`);
    await writeFile(join(dir, 'people.csv'), lines.join('\n') + '\n');
    const config = checkConfig(
      {
        sources: [
          { name: 'people', connector: 'csv', mapping: 'people.yaml', config: { path: 'people.csv', id_column: 'id', page_size: 10 } },
          { name: 'phones', connector: 'csv', default_region: 'DE', mapping: 'phones.yaml', config: { path: 'phones.csv', id_column: 'id' } },
          { name: 'pushed', connector: 'webhook', mapping: 'pushed.yaml', config: { secret: 'a-secret-of-sixteen-or-more', streams: ['contacts'] } },
        ],
      },
      join(dir, 'hub.config.yaml'),
    );
    db = await createTestDatabase();
    hub = await startTestHub(db, undefined, config);
  }, 60_000);
  afterAll(async () => {
    await hub?.stop();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const quarantined = async (source: string) =>
    (await db.pool.query<{ external_id: string | null; line: number | null; reason: string; stage: string; size: number }>(
      'select external_id, line, reason, stage, length(payload::text) as size from quarantine where source = $1 and resolved_at is null order by id',
      [source],
    )).rows;

  it('a CSV file: the bad rows are quarantined with a reason, every good row loads', async () => {
    const run = await syncNow(hub, 'people');
    expect(run.status).toBe('succeeded');
    const entries = await quarantined('people');
    const reasons = Object.fromEntries(entries.map((entry) => [entry.external_id ?? `line:${entry.line}`, entry.reason]));
    // A row with too few columns is rejected by line (line 23), as is a row without an id (line 27).
    expect(Object.keys(reasons).sort()).toEqual(['bad-huge', 'bad-nul', 'bad-type', 'line:23', 'line:27'].sort());
    for (const entry of entries) expect(entry.reason.length).toBeGreaterThan(5);
    expect(reasons['bad-huge']).toMatch(/large|long|size/i);
    expect(reasons['bad-nul']).toMatch(/NUL|control|null/i);
    // The quarantined payload of a huge record is cut down, not stored whole.
    expect(Math.max(...entries.map((entry) => entry.size))).toBeLessThan(100_000);
    expect(run.quarantined).toBe(5);

    const { rows } = await db.pool.query<{ external_id: string; data: Record<string, string> }>(
      "select r.external_id, c.data from raw_record r join canonical_record c on c.raw_record_id = r.id where r.source = 'people' order by r.external_id",
    );
    const loaded = rows.map((row) => row.external_id);
    for (let i = 1; i <= 40; i++) expect(loaded).toContain(`g${i}`);
    // Control characters other than NUL are kept as they came (they are valid text).
    expect(loaded).toContain('bad-control');
    expect(loaded).not.toContain('bad-huge');
    const golden = await db.pool.query("select count(*)::int as n from golden_record where status = 'active'");
    expect(golden.rows[0].n).toBe(41);
  }, 60_000);

  it('a pushed source: bad records are quarantined with a reason, the rest of the delivery loads', async () => {
    const good = (i: number) => ({ externalId: `p${i}`, data: { id: `p${i}`, email: `pushed${i}@example.com`, name: `Pushed ${i}`, updated: '2025-02-01T00:00:00Z' } });
    const records = [
      good(1),
      { externalId: 'wrong-type', data: { id: 'wrong-type', email: { nested: [1, 2] }, name: 42, updated: true } },
      { externalId: 'missing-keys', data: {} },
      { externalId: 'huge', data: { id: 'huge', email: 'huge@example.com', name: 'y'.repeat(TEN_MB) } },
      { externalId: 'nul', data: { id: 'nul', email: 'nul@example.com', name: 'a\u0000b' } },
      { externalId: 'nul-key', data: { id: 'nul-key', ['bad\u0000key']: 'x' } },
      { externalId: 'lone-surrogate', data: { id: 'lone-surrogate', email: 'ls@example.com', name: 'broken \ud800 text' } },
      { externalId: 'control', data: { id: 'control', email: 'ctl@example.com', name: 'bell\u0007tab\tend' } },
      { externalId: 'deep', data: { id: 'deep', nested: JSON.parse('{"a":'.repeat(2000) + '1' + '}'.repeat(2000)) } },
      good(2),
    ];
    const counts = await acceptRecords(hub, 'pushed', 'contacts', records, { cause: 'api', actor: 'test' });
    expect(counts.read).toBe(records.length);
    const entries = await quarantined('pushed');
    const reasons = Object.fromEntries(entries.map((entry) => [entry.external_id, entry.reason]));
    expect(Object.keys(reasons).sort()).toEqual(['deep', 'huge', 'lone-surrogate', 'nul', 'nul-key', 'wrong-type']);
    expect(reasons.huge).toMatch(/too large/);
    expect(reasons.nul).toMatch(/NUL/);
    expect(reasons['nul-key']).toMatch(/name of field .*NUL/);
    expect(reasons['lone-surrogate']).toMatch(/not valid Unicode/);
    expect(reasons.deep).toMatch(/nested deeper/);
    // Wrong types are the mapping's to find: each field at fault is named.
    expect(reasons['wrong-type']).toMatch(/not a valid timestamp.*not a text value/);
    expect(counts.quarantined).toBe(entries.length);

    const { rows } = await db.pool.query<{ external_id: string }>("select external_id from raw_record where source = 'pushed' and deleted_at is null order by external_id");
    const loaded = rows.map((row) => row.external_id);
    // A record with no fields at all is stored (it maps to nothing, and matches nobody).
    expect(loaded).toEqual(expect.arrayContaining(['p1', 'p2', 'control', 'missing-keys']));
    for (const id of ['huge', 'nul', 'nul-key', 'lone-surrogate', 'deep']) expect(loaded).not.toContain(id);
  }, 60_000);

  it('a sync run counts the records it stored with values left out, in its counts and in GET /v1/runs/{id}', async () => {
    const run = await syncNow(hub, 'phones');
    expect(run).toMatchObject({ status: 'succeeded', created: 3, quarantined: 0, with_omitted_values: 1 });
    const app = await buildTestApp(hub);
    try {
      const key = await createApiKey(db.pool, 'run-reader', ['read']);
      const response = await app.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers: bearer(key) });
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json()).toMatchObject({ created: 3, with_omitted_values: 1 });
    } finally {
      await app.close();
    }
    // Read again unchanged: nothing stored, nothing left out by this run (the customer still names its omission).
    expect(await syncNow(hub, 'phones')).toMatchObject({ status: 'succeeded', unchanged: 3, with_omitted_values: 0 });
  }, 60_000);

  it("a value its rule omits: the record loads without it, its customer's source record names it until it is fixed", async () => {
    const app = await buildTestApp(hub);
    try {
      const key = await createApiKey(db.pool, 'omitted-reader', ['read']);
      const push = (phone: string) =>
        acceptRecords(hub, 'pushed', 'contacts', [{ externalId: 'o1', data: { id: 'o1', email: 'olga@example.com', name: 'Olga', phone, updated: '2025-03-01T00:00:00Z' } }], { cause: 'api', actor: 'test' });
      const customer = async () => {
        const golden = await goldenOf(db.pool, 'pushed', 'o1');
        const response = await app.inject({ method: 'GET', url: `/v1/customers/${golden}`, headers: bearer(key) });
        expect(response.statusCode, response.body).toBe(200);
        return response.json();
      };
      const omittedOfSource = async () => {
        const response = await app.inject({ method: 'GET', url: '/v1/sources', headers: bearer(key) });
        return response.json().data.find((source: { name: string }) => source.name === 'pushed').records_with_omitted_values;
      };

      expect(await push('call reception')).toMatchObject({ created: 1, quarantined: 0 });
      expect((await quarantined('pushed')).map((entry) => entry.external_id)).not.toContain('o1');
      const before = await customer();
      expect(before.attributes).toMatchObject({ email: 'olga@example.com', full_name: 'Olga' });
      expect(before.attributes.phones ?? []).toEqual([]);
      expect(before.source_records).toEqual([
        expect.objectContaining({ external_id: 'o1', omitted_values: [{ field: 'phone', target: 'person.phone', reason: expect.stringMatching(/^'call reception' /) }] }),
      ]);
      expect(await omittedOfSource()).toBe(1);

      // Another bad value, the rest unchanged: the customer (its document kept ready) names the new one.
      expect(await push('n/a')).toMatchObject({ quarantined: 0 });
      expect((await customer()).source_records[0].omitted_values).toEqual([{ field: 'phone', target: 'person.phone', reason: expect.stringMatching(/^'n\/a' /) }]);

      // Fixed at the source: the phone maps, nothing is omitted any more.
      expect(await push('+49 30 1234567')).toMatchObject({ updated: 1 });
      const after = await customer();
      expect(after.attributes.phones).toEqual(['+49301234567']);
      expect(after.source_records).toEqual([expect.objectContaining({ external_id: 'o1', omitted_values: [] })]);
      expect(await omittedOfSource()).toBe(0);
    } finally {
      await app.close();
    }
  }, 60_000);
});
