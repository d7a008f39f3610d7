/**
 * The RT connector against a real Request Tracker 5 (Debian's request-tracker5 on SQLite), started here,
 * through the hub: check, sync into a real PostgreSQL, an incremental second sync, write-back. RT reads
 * TicketSQL dates in Europe/Berlin here, so a cursor sent as UTC would be an hour off. Skipped where RT
 * is not installed.
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig, type LoadedConfig } from '../../hub/config.js';
import { silentLogger } from '../../hub/log.js';
import { sourceAndConnector } from '../../hub/sync.js';
import { createTestDatabase, type TestDatabase } from '../../tests/helpers/db.js';
import { startTestHub, syncNow, type TestHub } from '../../tests/helpers/hub.js';
import type { PulledConnector } from '../kit/contract.js';
import type { HttpClient } from '../kit/http.js';
import { createRtHttp } from './client.js';
import type { RtConfig } from './config.gen.js';
import { startRtServer, rtInstalled, type RtServer } from './test-server.js';
import { writeUser } from './write-back.js';

const source = 'helpdesk';

describe.skipIf(!rtInstalled)('rt: a real Request Tracker, through the hub', () => {
  let server: RtServer;
  let rt: RtConfig;
  let http: HttpClient;
  let db: TestDatabase;
  let hub: TestHub;
  let config: LoadedConfig;
  const users: Record<string, number> = {};

  const check = (sourceConfig: RtConfig) => {
    const { connector } = sourceAndConnector(config, source);
    return (connector as PulledConnector<RtConfig>).check(sourceConfig, { source, log: silentLogger, baseDir: config.baseDir });
  };
  const ticketRows = async () =>
    (await db.pool.query<{ external_id: string; email: string | null; status: string; summary: string; owner: string | null }>(
      `select r.external_id, c.data->'person'->'emails'->0->>'address' as email, i.data->>'status' as status, i.data->>'summary' as summary, i.data->>'owner' as owner
       from raw_record r join canonical_record c on c.raw_record_id = r.id join interaction i on i.raw_record_id = r.id
       where r.source = $1 and r.stream = 'tickets' order by r.external_id::int`,
      [source],
    )).rows;

  beforeAll(async () => {
    // Other test files may have left nock intercepting; this one talks to a real local server.
    nock.restore();
    server = await startRtServer('Europe/Berlin');
    rt = { url: server.url, auth: { token: server.token }, timezone: 'Europe/Berlin', per_page: 2, lookback_seconds: 60, golden_id_custom_field: server.goldenIdField };
    http = createRtHttp(rt);
    for (const [name, realName] of [['ana@example.com', 'Ana Pérez'], ['bo@example.com', 'Bo Ng']]) {
      await http.post('/user', { Name: name, EmailAddress: name, RealName: realName, Organization: 'Acme' });
      users[name] = (await http.get<{ id: number }>(`/user/${encodeURIComponent(name)}`)).data.id;
    }
    await http.post('/ticket', { Queue: 'General', Subject: 'My repair request is still open', Requestor: 'ana@example.com', Owner: 'root', Priority: 3, Content: 'Sent it in a month ago.' });
    await http.post('/ticket', { Queue: 'General', Subject: 'Invoice 4711 is wrong', Requestor: 'bo@example.com', Content: 'The total is wrong.' });
    // A requestor RT has never seen: RT creates the user, named by the address.
    await http.post('/ticket', { Queue: 'General', Subject: 'Seminar: no confirmation', Requestor: 'cy@example.com', Content: 'I registered last week.' });
    config = checkConfig({ sources: [{ name: source, connector: 'rt', config: rt }] }, join(tmpdir(), 'hub.config.yaml'));
    db = await createTestDatabase();
    hub = await startTestHub(db, undefined, config);
  }, 120_000);

  afterAll(async () => {
    await hub?.stop();
    await db?.drop();
    await server?.stop();
    nock.activate();
  });

  it('check connects, and verifies the time zone; a wrong zone and a wrong token are refused', async () => {
    expect(await check(rt)).toEqual({ ok: true, message: expect.stringMatching(new RegExp(`^Connected to RT 5\\.0\\.\\d+\\S* at ${server.url}/REST/2\\.0; TicketSQL dates in Europe/Berlin \\(checked on ticket 3\\)$`)) });
    expect(await check({ ...rt, timezone: 'UTC' })).toEqual({ ok: false, message: expect.stringContaining("RT does not read TicketSQL dates in the time zone 'UTC': ticket 3") });
    expect(await check({ ...rt, auth: { token: '1-14-00000000000000000000000000000000' } })).toEqual({ ok: false, message: 'The credentials were refused by rt (HTTP 401 on GET /REST/2.0/rt)' });
    expect(await check({ ...rt, auth: { username: 'root', password: server.password } })).toMatchObject({ ok: true });
  });

  it('syncs users and tickets: tickets land as interactions of people found by their email', async () => {
    const run = await syncNow(hub, source);
    expect([run.status, run.error]).toEqual(['succeeded', null]);
    // RT's administrator has the address root@localhost, which is no email address a customer could have.
    const { rows: quarantined } = await db.pool.query<{ stream: string; reason: string }>('select stream, reason from quarantine where source = $1', [source]);
    expect(quarantined).toEqual([{ stream: 'users', reason: expect.stringContaining("'root@localhost' is not an email address") }]);

    expect(await ticketRows()).toEqual([
      { external_id: '1', email: 'ana@example.com', status: 'new', summary: 'My repair request is still open', owner: 'root' },
      { external_id: '2', email: 'bo@example.com', status: 'new', summary: 'Invoice 4711 is wrong', owner: null },
      { external_id: '3', email: 'cy@example.com', status: 'new', summary: 'Seminar: no confirmation', owner: null },
    ]);
    // Each requestor's user record and tickets are one golden record.
    const { rows } = await db.pool.query<{ email: string; streams: string[] }>(
      `select g.data->>'email' as email, array_agg(distinct r.stream order by r.stream) as streams
       from golden_record g join cluster_membership m on m.golden_id = g.id and m.valid_to is null join raw_record r on r.id = m.raw_record_id
       where r.source = $1 and g.data->>'email' like '%@example.com' group by g.id order by 1`,
      [source],
    );
    expect(rows).toEqual([
      { email: 'ana@example.com', streams: ['tickets', 'users'] },
      { email: 'bo@example.com', streams: ['tickets', 'users'] },
      { email: 'cy@example.com', streams: ['tickets', 'users'] },
    ]);
  });

  it('a second sync reads only the ticket updated since, though the lookback asks for the others again', async () => {
    await http.request({ method: 'PUT', url: '/ticket/2', data: { Status: 'resolved' } });
    const run = await syncNow(hub, source);
    expect([run.status, run.read, run.updated, run.created]).toEqual(['succeeded', 1, 1, 0]);
    expect((await ticketRows()).map((row) => [row.external_id, row.status])).toEqual([['1', 'new'], ['2', 'resolved'], ['3', 'new']]);
  });

  it('writes a user back, golden id included, and fails naming the field when RT keeps the old value', async () => {
    const ana = String(users['ana@example.com']);
    const messages = await writeUser(http, ana, { email: 'ana.perez@example.com', real_name: 'Ana María Pérez', golden_id: 'g-42' }, server.goldenIdField);
    expect(messages).toEqual(expect.arrayContaining([expect.stringContaining("EmailAddress changed from 'ana@example.com' to 'ana.perez@example.com'")]));
    const user = (await http.get<{ EmailAddress: string; RealName: string; CustomFields: { name: string; values: string[] }[] }>(`/user/${ana}`)).data;
    expect([user.EmailAddress, user.RealName, user.CustomFields.find((field) => field.name === server.goldenIdField)?.values]).toEqual(['ana.perez@example.com', 'Ana María Pérez', ['g-42']]);

    await expect(writeUser(http, String(users['bo@example.com']), { email: 'ana.perez@example.com' })).rejects.toThrow(
      `rt: user ${users['bo@example.com']}: RT did not store EmailAddress: User bo@example.com: Email address in use`,
    );
    // The next sync brings the written user back, once, and her ticket: the lookback reads it again, and the requester
    // it embeds has her new name, though the ticket's LastUpdated did not move (a version of the same second).
    const run = await syncNow(hub, source);
    expect([run.status, run.read]).toEqual(['succeeded', 2]);
    const { rows } = await db.pool.query("select data->'Requestor'->0->>'RealName' as requester from raw_record where source = $1 and stream = 'tickets' and external_id = '1'", [source]);
    expect(rows).toEqual([{ requester: 'Ana María Pérez' }]);
  });

  it('a ticket deleted in RT is marked deleted by the next deletion sweep (no REST2 search shows a deleted ticket)', async () => {
    await http.request({ method: 'DELETE', url: '/ticket/3' });
    const deleted = async () => (await db.pool.query("select external_id from raw_record where source = $1 and stream = 'tickets' and deleted_at is not null", [source])).rows;
    // Within deletion_sweep_hours of the first sync's sweep, a run reads changes only and cannot see the deletion.
    expect(await syncNow(hub, source)).toMatchObject({ status: 'succeeded', deleted: 0 });
    expect(await deleted()).toEqual([]);
    await db.pool.query("update stream_state set state = state - 'swept_at' where source = $1 and stream = 'tickets'", [source]);
    expect(await syncNow(hub, source)).toMatchObject({ status: 'succeeded', deleted: 1 });
    expect(await deleted()).toEqual([{ external_id: '3' }]);
  });
});
