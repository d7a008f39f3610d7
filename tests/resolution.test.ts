import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { changesAfter, golden, goldenOf, ingest, lastPosition } from './helpers/pipeline.js';
import { saveResolutionSettings } from '../identity-resolution/probabilistic-matcher.js';

describe('deterministic identity resolution', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    // These cases are the deterministic matcher's rule (a shared email or phone alone joins); the default is probabilistic.
    await saveResolutionSettings(db.pool, { matcher: 'deterministic' });
  });
  afterAll(() => db.drop());

  it('joins records that share a normalised email or phone, across sources', async () => {
    await ingest(db.pool, 'crm', [
      { id: 'c1', email: 'Jon.Smith@Example.com ', given: 'Jon', family: 'Smith', phone: '030 1234567', updated: '2025-01-01T10:00:00Z' },
      { id: 'c2', email: 'ann@example.com', given: 'Ann', family: 'Lee', updated: '2025-01-01T10:00:00Z' },
    ]);
    await ingest(db.pool, 'shop', [{ id: 's1', email: 'jon.smith@example.com', given: 'Jonathan', family: 'Smith', updated: '2025-02-01T10:00:00Z' }]);
    await ingest(db.pool, 'desk', [{ id: 'd1', phone: '+49 30 1234567', given: 'J.', family: 'Smith', updated: '2024-12-01T10:00:00Z' }]);

    const jon = await goldenOf(db.pool, 'crm', 'c1');
    expect(await goldenOf(db.pool, 'shop', 's1')).toBe(jon);
    expect(await goldenOf(db.pool, 'desk', 'd1')).toBe(jon);
    expect(await goldenOf(db.pool, 'crm', 'c2')).not.toBe(jon);
  });

  it('keeps the most recent non-empty value of each attribute, with alternates and lineage', async () => {
    const jon = (await goldenOf(db.pool, 'crm', 'c1'))!;
    const record = await golden(db.pool, jon);
    expect(record.data.given_name).toBe('Jonathan');
    expect(record.data.email).toBe('jon.smith@example.com');
    expect(record.data.phone).toBe('+49301234567');
    const { rows } = await db.pool.query<{ value: string; source: string; survived: boolean }>(
      "select value #>> '{}' as value, source, survived from attribute_lineage where golden_id = $1 and attribute = 'given_name' order by observed_at desc",
      [jon],
    );
    expect(rows).toEqual([
      { value: 'Jonathan', source: 'shop', survived: true },
      { value: 'Jon', source: 'crm', survived: false },
      { value: 'J.', source: 'desk', survived: false },
    ]);
  });

  it('changes nothing when the same records arrive again', async () => {
    const before = await lastPosition(db.pool);
    const counts = await ingest(db.pool, 'shop', [{ id: 's1', email: 'jon.smith@example.com', given: 'Jonathan', family: 'Smith', updated: '2025-02-01T10:00:00Z' }]);
    expect(counts).toMatchObject({ read: 1, created: 0, updated: 0, unchanged: 1 });
    expect(await changesAfter(db.pool, before)).toEqual([]);
  });

  it('updates the golden record and writes one change when a record changes', async () => {
    const jon = (await goldenOf(db.pool, 'crm', 'c1'))!;
    const before = await lastPosition(db.pool);
    const counts = await ingest(db.pool, 'shop', [{ id: 's1', email: 'jon.smith@example.com', given: 'Jonathan', family: 'Smith', city: 'Berlin', updated: '2025-03-01T10:00:00Z' }]);
    expect(counts).toMatchObject({ updated: 1 });
    expect((await golden(db.pool, jon)).data.address).toEqual({ city: 'Berlin' });
    expect(await changesAfter(db.pool, before)).toEqual([expect.objectContaining({ golden_id: jon, kind: 'updated', changed: ['address'] })]);
  });

  it('merges two golden records when a record links them; the oldest id survives', async () => {
    const jon = (await goldenOf(db.pool, 'crm', 'c1'))!;
    const ann = (await goldenOf(db.pool, 'crm', 'c2'))!;
    const before = await lastPosition(db.pool);
    await ingest(db.pool, 'web', [{ id: 'w1', email: 'ann@example.com', email2: 'jon.smith@example.com', updated: '2025-04-01T10:00:00Z' }]);
    const survivor = [jon, ann].sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))[0];
    const mergedAway = survivor === jon ? ann : jon;
    expect(await goldenOf(db.pool, 'crm', 'c1')).toBe(survivor);
    expect(await goldenOf(db.pool, 'crm', 'c2')).toBe(survivor);
    expect(await golden(db.pool, mergedAway)).toMatchObject({ status: 'merged', merged_into: survivor });
    const changes = await changesAfter(db.pool, before);
    expect(changes.map((change) => [change.golden_id, change.kind])).toEqual([
      [mergedAway, 'merged'],
      [survivor, 'updated'],
    ]);
    expect(changes[1].detail).toEqual({ merged: [mergedAway] });
    // Memberships are history: the merged-away membership is closed, not deleted.
    const { rows } = await db.pool.query('select count(*)::int as n from cluster_membership where golden_id = $1 and valid_to is not null', [mergedAway]);
    expect(rows[0].n).toBeGreaterThan(0);
  });

  it('splits a golden record when the record that linked it changes, and keeps the id with the larger part', async () => {
    const survivor = (await goldenOf(db.pool, 'crm', 'c1'))!;
    const before = await lastPosition(db.pool);
    // w1 no longer carries Jon's address: Ann (c2, w1) and Jon (c1, s1, d1) fall apart.
    await ingest(db.pool, 'web', [{ id: 'w1', email: 'ann@example.com', updated: '2025-05-01T10:00:00Z' }]);
    const jon = await goldenOf(db.pool, 'crm', 'c1');
    const ann = await goldenOf(db.pool, 'crm', 'c2');
    expect(jon).toBe(survivor);
    expect(ann).not.toBe(survivor);
    expect(await goldenOf(db.pool, 'web', 'w1')).toBe(ann);
    expect(await goldenOf(db.pool, 'shop', 's1')).toBe(jon);
    const kinds = (await changesAfter(db.pool, before)).map((change) => [change.golden_id, change.kind]);
    expect(kinds).toEqual(expect.arrayContaining([[ann, 'created'], [jon, 'split']]));
  });

  it('lets a changed record leave its golden record for a new one', async () => {
    const jon = (await goldenOf(db.pool, 'crm', 'c1'))!;
    await ingest(db.pool, 'desk', [{ id: 'd1', phone: '+49 40 7654321', given: 'J.', family: 'Smith', updated: '2025-06-01T10:00:00Z' }]);
    const leaver = await goldenOf(db.pool, 'desk', 'd1');
    expect(leaver).toBeDefined();
    expect(leaver).not.toBe(jon);
    expect((await golden(db.pool, jon)).data.phones).toEqual(['+49301234567']);
  });

  it('lets an opt-out win over an older opt-in, and an opt-out at the same moment', async () => {
    await ingest(db.pool, 'crm', [{ id: 'c9', email: 'eve@example.com', newsletter: 'opt_in', updated: '2025-01-01T10:00:00Z' }]);
    await ingest(db.pool, 'shop', [{ id: 's9', email: 'eve@example.com', newsletter: 'opt_out', updated: '2025-01-01T10:00:00Z' }]);
    const eve = (await goldenOf(db.pool, 'crm', 'c9'))!;
    expect((await golden(db.pool, eve)).data.email_marketing).toMatchObject({ status: 'opt_out', source: 'shop' });
    await ingest(db.pool, 'crm', [{ id: 'c9', email: 'eve@example.com', newsletter: 'opt_in', updated: '2025-02-01T10:00:00Z' }]);
    expect((await golden(db.pool, eve)).data.email_marketing).toMatchObject({ status: 'opt_in', source: 'crm' });
    // Re-resolving with the same consent (read back from jsonb, keys reordered) names only what changed.
    const before = await lastPosition(db.pool);
    await ingest(db.pool, 'crm', [{ id: 'c9', email: 'eve@example.com', newsletter: 'opt_in', city: 'Bonn', updated: '2025-02-01T10:00:00Z' }]);
    expect((await changesAfter(db.pool, before)).map((change) => change.changed)).toEqual([['address']]);
  });

  it('quarantines a record that does not map, and it leaves its cluster', async () => {
    await ingest(db.pool, 'crm', [{ id: 'c7', email: 'zed@example.com', updated: '2025-01-01T10:00:00Z' }]);
    const zed = (await goldenOf(db.pool, 'crm', 'c7'))!;
    const counts = await ingest(db.pool, 'crm', [{ id: 'c7', email: 'zed(at)example.com', updated: '2025-01-02T10:00:00Z' }]);
    expect(counts.quarantined).toBe(1);
    expect(await goldenOf(db.pool, 'crm', 'c7')).toBeUndefined();
    expect((await golden(db.pool, zed)).status).toBe('retired');
    const { rows } = await db.pool.query("select field, reason, stage from quarantine where external_id = 'c7' and resolved_at is null");
    expect(rows).toEqual([{ field: 'email', reason: expect.stringMatching(/zed\(at\)example\.com/), stage: 'map' }]);
  });
});
