/** Calls end to end: a CSV export (csv connector + this mapping) and a signed webhook per call land in one customer's timeline. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { checkConfig } from '../../hub/config.js';
import { createApiKey } from '../../hub/auth.js';
import { createTestDatabase, type TestDatabase } from '../../tests/helpers/db.js';
import { buildTestApp, bearer } from '../../tests/helpers/app.js';
import { startTestHub, syncNow, type TestHub } from '../../tests/helpers/hub.js';
import { goldenOf } from '../../tests/helpers/pipeline.js';
import { sign } from '../webhook/signature.js';

const SECRET = 'calls_secret_0123456789';

describe('calls', () => {
  let db: TestDatabase;
  let hub: TestHub;
  let app: FastifyInstance;
  let key: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    const config = checkConfig(
      {
        sources: [
          { name: 'pbx-export', connector: 'csv', default_region: 'DE', mapping: 'mapping.yaml', config: { path: 'fixtures/calls-export.csv', stream: 'calls', id_column: 'call_id' } },
          { name: 'pbx', connector: 'calls', default_region: 'DE', config: { secret: '${PBX_SECRET}' } },
        ],
      },
      fileURLToPath(new URL('./hub.config.yaml', import.meta.url)),
      { PBX_SECRET: SECRET },
    );
    hub = await startTestHub(db, undefined, config);
    app = await buildTestApp(hub);
    key = await createApiKey(db.pool, 'reader', ['read']);
  });
  afterAll(async () => {
    await app?.close();
    await hub?.stop();
    await db?.drop();
  });

  const timeline = async (id: string, query = '') => {
    const response = await app.inject({ method: 'GET', url: `/v1/customers/${id}/timeline${query}`, headers: bearer(key) });
    expect(response.statusCode).toBe(200);
    return response.json().data as Record<string, unknown>[];
  };

  it('reads the CSV export into call interactions, identifying people by phone number; a call without a number is quarantined', async () => {
    const run = await syncNow(hub, 'pbx-export');
    expect(run).toMatchObject({ status: 'succeeded', read: 4, quarantined: 1 });
    const caller = await goldenOf(db.pool, 'pbx-export', 'c-1001');
    // 030 1234567 (DE) and +49 30 1234567 are one number, so one person.
    expect(await goldenOf(db.pool, 'pbx-export', 'c-1002')).toBe(caller);
    expect(await goldenOf(db.pool, 'pbx-export', 'c-1003')).not.toBe(caller);
    const { rows } = await db.pool.query("select external_id, reason from quarantine where source = 'pbx-export'");
    expect(rows).toEqual([{ external_id: 'c-1004', reason: 'caller_number (person.phone): is required' }]);
    expect(await timeline(caller!)).toEqual([
      expect.objectContaining({ kind: 'call', occurred_at: '2025-05-03T14:40:00.000Z', external_id: 'c-1002', owner: 'Jonas Weber', summary: 'Outbound call', status: 'missed' }),
      expect.objectContaining({ kind: 'call', occurred_at: '2025-05-02T08:15:00.000Z', external_id: 'c-1001', owner: 'Jonas Weber', summary: 'Inbound call', status: 'answered' }),
    ]);
  });

  it('takes a signed webhook per call into the same customer timeline, newest first', async () => {
    const call = { call_id: 'pbx-77', caller_number: '+4930 1234567', agent: 'Mira König', direction: 'inbound', started_at: '2025-05-10T11:30:00+02:00', duration_seconds: 241, outcome: 'completed' };
    const body = JSON.stringify(call);
    const timestamp = Math.floor(Date.now() / 1000);
    const response = await app.inject({
      method: 'POST',
      url: '/v1/receive/pbx/calls',
      headers: { 'content-type': 'application/json', 'x-hub-timestamp': String(timestamp), 'x-hub-signature': sign(SECRET, timestamp, body) },
      payload: body,
    });
    expect(response.json()).toEqual({ external_id: 'pbx-77', status: 'created' });
    const caller = await goldenOf(db.pool, 'pbx-export', 'c-1001');
    expect(await goldenOf(db.pool, 'pbx', 'pbx-77')).toBe(caller);
    const items = await timeline(caller!, '?kind=call');
    expect(items.map((item) => [item.external_id, item.occurred_at, item.status])).toEqual([
      ['pbx-77', '2025-05-10T09:30:00.000Z', 'answered'],
      ['c-1002', '2025-05-03T14:40:00.000Z', 'missed'],
      ['c-1001', '2025-05-02T08:15:00.000Z', 'answered'],
    ]);
    expect(items[0]).toMatchObject({ owner: 'Mira König', summary: 'Inbound call', source_record: { source: 'pbx', stream: 'calls', external_id: 'pbx-77' } });
  });
});
