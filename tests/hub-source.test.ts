import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../hub/config.js';
import { silentLogger } from '../hub/log.js';
import { acceptRecords, recordConsent } from '../hub/push.js';
import { registerSources, type Hub } from '../hub/sync.js';
import { saveResolutionSettings } from '../identity-resolution/probabilistic-matcher.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { changesAfter, golden, goldenOf, ingest, lastPosition } from './helpers/pipeline.js';

describe('the built-in hub source', () => {
  let db: TestDatabase;
  let hub: Hub;
  beforeAll(async () => {
    db = await createTestDatabase();
    // The deterministic matcher: the merge case joins two customers through a record holding both their emails.
    hub = { pool: db.pool, config: checkConfig({ resolution: { matcher: 'deterministic' }, sources: [] }, 'test.yaml'), log: silentLogger };
    await registerSources(db.pool, hub.config);
    await saveResolutionSettings(db.pool, hub.config.resolution);
  });
  afterAll(() => db.drop());

  it('takes a consent change through the same path as any source: raw, mapped, resolved, with lineage', async () => {
    await ingest(db.pool, 'crm', [{ id: 'c1', email: 'ada@example.com', newsletter: 'opt_in', updated: '2025-01-01T10:00:00Z' }]);
    const ada = (await goldenOf(db.pool, 'crm', 'c1'))!;
    const before = await lastPosition(db.pool);

    await recordConsent(hub, ada, 'opt_out', 'api-key:support', new Date('2025-06-01T12:00:00Z'));

    expect((await golden(db.pool, ada)).data.email_marketing).toEqual({ status: 'opt_out', at: '2025-06-01T12:00:00.000Z', source: 'hub' });
    expect(await goldenOf(db.pool, 'hub', ada)).toBe(ada);
    const { rows: raw } = await db.pool.query("select data from raw_record where source = 'hub'");
    expect(raw).toEqual([{ data: { golden_id: ada, email_marketing: 'opt_out', at: '2025-06-01T12:00:00.000Z', actor: 'api-key:support' } }]);
    const { rows: lineage } = await db.pool.query("select source, survived from attribute_lineage where golden_id = $1 and attribute = 'email_marketing' order by observed_at", [ada]);
    expect(lineage).toEqual([
      { source: 'crm', survived: false },
      { source: 'hub', survived: true },
    ]);
    const changes = await changesAfter(db.pool, before);
    expect(changes).toEqual([expect.objectContaining({ golden_id: ada, kind: 'updated', changed: ['email_marketing'] })]);
  });

  it('follows its golden record through a merge', async () => {
    const ada = (await goldenOf(db.pool, 'crm', 'c1'))!;
    await ingest(db.pool, 'shop', [{ id: 's1', email: 'ada.l@example.com', updated: '2025-01-01T10:00:00Z' }]);
    const other = (await goldenOf(db.pool, 'shop', 's1'))!;
    // A record that links both: the older golden record survives and the hub's record stays with the customer.
    await ingest(db.pool, 'web', [{ id: 'w1', email: 'ada@example.com', email2: 'ada.l@example.com', updated: '2025-02-01T10:00:00Z' }]);
    const survivor = (await goldenOf(db.pool, 'crm', 'c1'))!;
    expect(survivor).toBe(ada);
    expect(await goldenOf(db.pool, 'shop', 's1')).toBe(survivor);
    expect(await goldenOf(db.pool, 'hub', ada)).toBe(survivor);
    expect((await golden(db.pool, other)).merged_into).toBe(survivor);
    expect((await golden(db.pool, survivor)).data.email_marketing).toMatchObject({ status: 'opt_out', source: 'hub' });
  });

  it('refuses records for a pulled source or an unknown stream', async () => {
    await expect(acceptRecords(hub, 'hub', 'nosuch', [], { cause: 'api', actor: 'test' })).rejects.toThrow("Source 'hub' has no stream 'nosuch'");
    const withCsv: Hub = { ...hub, config: checkConfig({ sources: [{ name: 'files', connector: 'csv', config: { path: 'x.csv' } }] }, 'test.yaml') };
    await expect(acceptRecords(withCsv, 'files', 'rows', [], { cause: 'api', actor: 'test' })).rejects.toThrow('does not accept pushed records');
  });

  it('reserves its name in the configuration', () => {
    expect(() => checkConfig({ sources: [{ name: 'hub', connector: 'csv', config: { path: 'x.csv' } }] }, 'test.yaml')).toThrow("sources[0].name: 'hub' is the hub's built-in source");
  });
});
