import { isDeepStrictEqual } from 'node:util';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compileMapping, loadMappingFile } from '../../mapping/engine.js';
import { ConnectorError } from '../kit/contract.js';
import { bodies, fakeSleep, fixture, readStream, testContext } from '../kit/testing.js';
import { createRtHttp, ticketSqlLowerBound, ticketSqlTime } from './client.js';
import type { RtConfig } from './config.gen.js';
import { connector as defaultConnector, createRtConnector } from './connector.js';
import { userUpdateRequest, writeUser } from './write-back.js';

const host = 'https://rt.example.com';
const token = '1-14-598ed51d80e12fb90d008d19442e45ce';
// Deletion sweeps are tested against the real RT (rt.server.test.ts); here the incremental read alone.
const config: RtConfig = { url: `${host}/`, auth: { token }, timezone: 'Europe/Berlin', per_page: 2, deletion_sweep_hours: 0 };
const load = (name: string) => fixture(import.meta.url, `fixtures/${name}`);
const ids = (pages: { records: { externalId: string }[] }[]) => pages.map((page) => page.records.map((record) => record.externalId));

const ticketFields = {
  fields: 'Subject,Status,Priority,InitialPriority,FinalPriority,Created,LastUpdated,Started,Resolved,Due,Queue,Owner,Requestor',
  'fields[Requestor]': 'id,Name,EmailAddress,RealName',
  'fields[Owner]': 'id,Name,EmailAddress,RealName',
  'fields[Queue]': 'Name',
};
// nock cannot compare `fields` next to `fields[Requestor]` itself (it expands brackets into objects), so the whole query is compared here.
const exactly = (expected: Record<string, string | string[]>) => (actual: Record<string, unknown>) => isDeepStrictEqual({ ...actual }, expected);
const ticketsQuery = (query: string, page: number) => exactly({ query, orderby: ['LastUpdated', 'id'], order: ['ASC', 'ASC'], page: String(page), per_page: '2', ...ticketFields });
const usersQuery = (page: number) => ({
  orderby: 'id', page: String(page), per_page: '2', find_disabled_rows: '1',
  fields: 'id,Name,EmailAddress,RealName,NickName,Organization,WorkPhone,HomePhone,MobilePhone,Address1,Address2,City,State,Zip,Country,Lang,Created,LastUpdated,Disabled,Privileged',
});

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

const api = () => nock(host, { reqheaders: { authorization: `token ${token}` } });
/** The time-zone check every ticket read starts with: the last updated ticket (3, 10:00:05Z), found again by its second in Berlin. */
const timeZoneChecked = (scope: nock.Scope, probe = 'tickets-probe.json') =>
  scope
    .get('/REST/2.0/tickets')
    .query({ query: 'id > 0', orderby: ['LastUpdated', 'id'], order: ['DESC', 'DESC'], per_page: '1', fields: 'LastUpdated' })
    .reply(200, load('tickets-latest.json'))
    .get('/REST/2.0/tickets')
    .query({ query: "id = 3 AND LastUpdated >= '2024-01-15 11:00:05' AND LastUpdated < '2024-01-15 11:00:06'", per_page: '1' })
    .reply(200, load(probe));
function setup() {
  const { waits, sleep } = fakeSleep();
  return { waits, connector: createRtConnector({ sleep }) };
}

describe('rt: tickets', () => {
  it('reads by LastUpdated then id, re-anchors on the cursor minus the lookback in RT’s time zone; the ticket sharing the boundary second arrives, none twice', async () => {
    const scope = timeZoneChecked(api())
      .get('/REST/2.0/tickets')
      .query(ticketsQuery('id > 0', 1))
      .reply(200, load('tickets-page-1.json'))
      // Cursor 10:00:05Z minus 60 s, on Berlin's wall clock (UTC+1 in January).
      .get('/REST/2.0/tickets')
      .query(ticketsQuery("LastUpdated >= '2024-01-15 10:59:05'", 1))
      .reply(200, load('tickets-anchored-page-1.json'))
      // Nothing new on that page (both read already): the same anchor's next page.
      .get('/REST/2.0/tickets')
      .query(ticketsQuery("LastUpdated >= '2024-01-15 10:59:05'", 2))
      .reply(200, load('tickets-anchored-page-2.json'));
    const { connector, waits } = setup();

    const pages = await readStream(connector, 'tickets', config);

    expect(ids(pages)).toEqual([['1', '2'], [], ['3']]);
    expect(pages.map((page) => page.state)).toEqual([
      { cursor: '2024-01-15T10:00:05Z', seen: { '1': '2024-01-15T10:00:00Z', '2': '2024-01-15T10:00:05Z' } },
      { cursor: '2024-01-15T10:00:05Z', seen: { '1': '2024-01-15T10:00:00Z', '2': '2024-01-15T10:00:05Z' } },
      { cursor: '2024-01-15T10:00:05Z', seen: { '1': '2024-01-15T10:00:00Z', '2': '2024-01-15T10:00:05Z', '3': '2024-01-15T10:00:05Z' } },
    ]);
    expect(pages[2].rejected).toEqual([{ externalId: '4', field: 'LastUpdated', reason: "'LastUpdated' is not a timestamp (missing)", payload: load('tickets-anchored-page-2.json').items[1] }]);
    expect(waits).toEqual([]);
    expect(scope.isDone()).toBe(true);
  });

  it('resumes from its checkpoint: the configured TicketSQL is combined by AND, the boundary second is read again and de-duplicated', async () => {
    const scoped = { ...config, query: "Queue = 'General'", lookback_seconds: 0 };
    const scope = api()
      .get('/REST/2.0/tickets')
      .query({ query: "Queue = 'General'", orderby: ['LastUpdated', 'id'], order: ['DESC', 'DESC'], per_page: '1', fields: 'LastUpdated' })
      .reply(200, load('tickets-none.json'))
      .get('/REST/2.0/tickets')
      .query(ticketsQuery("(Queue = 'General') AND LastUpdated >= '2024-01-15 11:00:05'", 1))
      .reply(200, load('tickets-anchored-page-2.json'));

    const pages = await readStream(setup().connector, 'tickets', scoped, { cursor: '2024-01-15T10:00:05Z', seen: { '2': '2024-01-15T10:00:05Z' } });

    // 3 shares the second of 2, which was read before: only 3 arrives.
    expect(ids(pages)).toEqual([['3']]);
    expect(pages[0].rejected).toHaveLength(1);
    expect(scope.isDone()).toBe(true);
  });

  it('retries a 429 after its Retry-After, then a 500, and keeps going', async () => {
    const scope = timeZoneChecked(api())
      .get('/REST/2.0/tickets')
      .query(ticketsQuery('id > 0', 1))
      .reply(429, 'Too Many Requests', { 'Retry-After': '7' })
      .get('/REST/2.0/tickets')
      .query(ticketsQuery('id > 0', 1))
      .reply(500, { message: 'Internal Server Error' })
      .get('/REST/2.0/tickets')
      .query(ticketsQuery('id > 0', 1))
      .reply(200, { ...load('tickets-page-1.json'), next_page: undefined });
    const { connector, waits } = setup();

    const pages = await readStream(connector, 'tickets', config);

    expect(waits[0]).toBe(7000);
    expect(waits).toHaveLength(2);
    expect(ids(pages)).toEqual([['1', '2']]);
    expect(scope.isDone()).toBe(true);
  });

  it('fails at once on 401 with a message naming rt, and check reports it', async () => {
    const scope = api()
      .get('/REST/2.0/tickets').query(true).reply(401, load('error-401.json'))
      .get('/REST/2.0/rt').reply(401, load('error-401.json'));
    const { connector, waits } = setup();

    const error = (await readStream(connector, 'tickets', config).catch((caught: unknown) => caught)) as ConnectorError;
    const checked = await connector.check(config, testContext);

    expect(error).toBeInstanceOf(ConnectorError);
    expect(error.kind).toBe('config');
    expect(error.message).toBe('The credentials were refused by rt (HTTP 401 on GET /REST/2.0/tickets)');
    expect(error.message).not.toContain(token);
    expect(checked).toEqual({ ok: false, message: 'The credentials were refused by rt (HTTP 401 on GET /REST/2.0/rt)' });
    expect(waits).toEqual([]);
    expect(scope.isDone()).toBe(true);
  });

  it('refuses to read when RT reads TicketSQL dates in another time zone than configured, and check says which setting to fix', async () => {
    const scope = timeZoneChecked(timeZoneChecked(api(), 'tickets-none.json').get('/REST/2.0/rt').reply(200, load('rt.json')), 'tickets-none.json');
    const { connector } = setup();

    const error = (await readStream(connector, 'tickets', config).catch((caught: unknown) => caught)) as ConnectorError;
    const checked = await connector.check(config, testContext);

    const message = "rt: RT does not read TicketSQL dates in the time zone 'Europe/Berlin': ticket 3, last updated 2024-01-15T10:00:05Z, is not found at that time. Set 'timezone' to the Timezone preference of the RT user the hub signs in as, else RT's $Timezone";
    expect(error.kind).toBe('config');
    expect(error.message).toBe(message);
    expect(checked).toEqual({ ok: false, message });
    expect(scope.isDone()).toBe(true);
  });

  it('check names the version and the ticket the time zone was checked on; Basic auth for a user name', async () => {
    const basic = `Basic ${Buffer.from('hub:s3cret-pass').toString('base64')}`;
    timeZoneChecked(nock(host, { reqheaders: { authorization: basic } }).get('/REST/2.0/rt').reply(200, load('rt.json')));

    const checked = await setup().connector.check({ ...config, auth: { username: 'hub', password: 's3cret-pass' } }, testContext);

    expect(checked).toEqual({ ok: true, message: 'Connected to RT 5.0.3 at https://rt.example.com/REST/2.0; TicketSQL dates in Europe/Berlin (checked on ticket 3)' });
  });

  it('a wrong address (an HTML page) is a config error, not an empty stream', async () => {
    api().get('/REST/2.0/tickets').query(true).reply(200, '<html>Login</html>', { 'Content-Type': 'text/html' });
    const error = (await readStream(setup().connector, 'tickets', config).catch((caught: unknown) => caught)) as ConnectorError;
    expect(error.message).toBe("rt: GET /tickets did not answer with a REST2 collection (is 'url' the address of RT?)");
  });
});

describe('rt: TicketSQL times', () => {
  it('writes instants on the configured wall clock; an hour earlier when the clocks go back within the hour', () => {
    expect(ticketSqlTime(Date.parse('2024-07-01T12:00:00Z'), 'Europe/Berlin')).toBe('2024-07-01 14:00:00');
    expect(ticketSqlTime(Date.parse('2024-01-15T05:00:00Z'), 'America/New_York')).toBe('2024-01-15 00:00:00');
    // 00:30Z on 27 October 2024 is 02:30 CEST; 02:30 comes again as CET at 01:30Z.
    expect(ticketSqlLowerBound(Date.parse('2024-10-27T00:30:00Z'), 'Europe/Berlin')).toBe('2024-10-27 01:30:00');
    expect(ticketSqlLowerBound(Date.parse('2024-10-27T01:30:00Z'), 'Europe/Berlin')).toBe('2024-10-27 02:30:00');
    expect(() => ticketSqlTime(0, 'Mars/Olympus')).toThrow("rt: 'timezone' is not an IANA time zone name: 'Mars/Olympus'");
  });
});

describe('rt: users', () => {
  it('lists every user by id, disabled ones too; a user without id is quarantined and the checkpoint names the next page', async () => {
    const scope = api()
      .get('/REST/2.0/users').query(usersQuery(1)).reply(200, load('users-page-1.json'))
      .get('/REST/2.0/users').query(usersQuery(2)).reply(200, load('users-page-2.json'));

    const pages = await readStream(setup().connector, 'users', config);

    expect(ids(pages)).toEqual([['27', '33'], ['35']]);
    expect(pages[1].rejected).toEqual([{ reason: "user without a positive integer 'id'", field: 'id', payload: load('users-page-2.json').items[1] }]);
    expect(pages.map((page) => page.state)).toEqual([
      { cursor: '2024-01-15T08:00:00Z', seen: { '27': '2024-01-15T08:00:00Z', '33': '2024-01-15T08:00:00Z' }, next_page: 2 },
      { cursor: '2024-01-15T08:00:00Z', seen: { '27': '2024-01-15T08:00:00Z', '33': '2024-01-15T08:00:00Z', '35': '2024-01-15T08:00:00Z' } },
    ]);
    expect(scope.isDone()).toBe(true);
  });

  it('emits only users changed since the cursor minus the lookback, skips RT’s own users, and keeps the last run’s versions until the listing ends', async () => {
    const scope = api()
      .get('/REST/2.0/users').query(usersQuery(1)).reply(200, load('users-changed-page-1.json'))
      .get('/REST/2.0/users').query(usersQuery(2)).reply(200, load('users-changed-page-2.json'));

    const pages = await readStream(setup().connector, 'users', config, { cursor: '2024-01-15T08:00:00Z', seen: { '33': '2024-01-15T08:00:00Z', '35': '2024-01-15T08:00:00Z' } });

    // 27 is older than the lookback, 33 changed, Nobody is RT's, 35 was read last run (though the cursor has moved past it since).
    expect(ids(pages)).toEqual([['33'], []]);
    expect(pages.map((page) => page.state)).toEqual([
      { cursor: '2024-01-16T09:00:00Z', seen: { '33': '2024-01-16T09:00:00Z', '35': '2024-01-15T08:00:00Z' }, next_page: 2, since: '2024-01-15T07:59:00.000Z' },
      { cursor: '2024-01-16T09:00:00Z', seen: { '33': '2024-01-16T09:00:00Z' } },
    ]);
    expect(scope.isDone()).toBe(true);
  });

  it('resumes an unfinished listing at its page, with the time it started from', async () => {
    const scope = api().get('/REST/2.0/users').query(usersQuery(2)).reply(200, load('users-changed-page-2.json'));

    const pages = await readStream(setup().connector, 'users', config, { cursor: '2024-01-16T09:00:00Z', seen: { '33': '2024-01-16T09:00:00Z' }, next_page: 2, since: '2024-01-15T07:59:00.000Z' });

    // 35 (08:00:00) is before the cursor's lookback but after the listing's start: it was never read, so it arrives.
    expect(ids(pages)).toEqual([['35']]);
    expect(scope.isDone()).toBe(true);
  });
});

describe('rt: write-back', () => {
  const http = () => createRtHttp(config);

  it('PUTs the user fields and the golden id custom field, then reads the user back', async () => {
    const sent = bodies();
    const scope = api().put('/REST/2.0/user/27', sent.match).reply(200, load('user-update.json')).get('/REST/2.0/user/27').reply(200, load('user.json'));

    const messages = await writeUser(http(), '27', { email: 'ana@new.example.com', phone: '+34912345678', golden_id: 'g-42' }, 'Hub golden id');

    expect(sent.seen).toEqual([{ EmailAddress: 'ana@new.example.com', WorkPhone: '+34912345678', CustomFields: { 'Hub golden id': 'g-42' } }]);
    expect(messages).toEqual(load('user-update.json'));
    expect(scope.isDone()).toBe(true);
    expect(userUpdateRequest('27', { real_name: 'Ana Pérez', organization: 'Acme' })).toEqual({ method: 'PUT', url: '/user/27', data: { RealName: 'Ana Pérez', Organization: 'Acme' } });
    expect(await writeUser(http(), '27', {})).toBeUndefined();
  });

  it('fails naming the field and RT’s reason when RT answers 200 but kept the old value', async () => {
    api()
      .put('/REST/2.0/user/27', { EmailAddress: 'bo@example.com' })
      .reply(200, load('user-update-refused.json'))
      .get('/REST/2.0/user/27')
      .reply(200, { ...load('user.json'), EmailAddress: 'ana.perez@example.com' });

    const error = (await writeUser(http(), '27', { email: 'bo@example.com' }).catch((caught: unknown) => caught)) as ConnectorError;

    expect(error.message).toBe('rt: user 27: RT did not store EmailAddress: User ana.perez@example.com: Email address in use');
  });

  it('refuses a golden id without a custom field to keep it in, and an id that is not a number', () => {
    expect(() => userUpdateRequest('27', { golden_id: 'g-42' })).toThrow("RT has no field for the golden id: name a user custom field in the source's 'golden_id_custom_field'");
    expect(() => userUpdateRequest('ana', { email: 'a@example.com' })).toThrow("An RT user id is a positive integer, not 'ana'");
  });
});

describe('rt: default mapping', () => {
  it('maps users to people and tickets to ticket interactions of their first requestor', async () => {
    const mapping = compileMapping(await loadMappingFile(defaultConnector.defaultMappingPath));
    const ctx = { source: 'rt', stream: 'tickets', defaultRegion: 'ES' };
    const [first, second] = load('tickets-page-1.json').items;

    expect(mapping.map('tickets', first, ctx)).toMatchObject({
      ok: true,
      record: {
        identifiers: [{ scheme: 'rt:user_id', value: '27', verified: true }],
        person: { emails: [{ address: 'ana.perez@example.com' }], full_name: 'Ana María Pérez' },
        interactions: [{ kind: 'ticket', occurred_at: '2024-01-15T09:00:00.000Z', external_id: '1', thread_id: '1', status: 'open', summary: 'My repair request is still open', owner: 'jdoe' }],
      },
    });
    const unowned = mapping.map('tickets', second, ctx);
    expect(unowned.ok && unowned.record.interactions?.[0]).not.toHaveProperty('owner');
    expect(mapping.map('users', load('users-page-1.json').items[0], { ...ctx, stream: 'users' })).toMatchObject({
      ok: true,
      record: {
        identifiers: [{ scheme: 'rt:user_id', value: '27', verified: true }],
        person: { given_name: 'Ana María', family_name: 'Pérez', emails: [{ address: 'ana.perez@example.com' }], phones: [{ number: '+34912345678' }], addresses: [{ city: 'Madrid', country: 'ES' }] },
        organisation: { name: 'Acme SL' },
      },
    });
    expect(mapping.map('tickets', { ...first, Requestor: [] }, ctx)).toMatchObject({ ok: false });
  });
});
