import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compileMapping, loadMappingFile } from '../../mapping/engine.js';
import { ConnectorError } from '../kit/contract.js';
import { bodies, fixture, readStream, testContext } from '../kit/testing.js';
import { createZendeskHttp, RateBudget } from './client.js';
import type { ZendeskConfig } from './config.gen.js';
import { connector as defaultConnector, createZendeskConnector } from './connector.js';
import { userUpdateRequest, writeUser } from './write-back.js';

const host = 'https://acme.zendesk.com';
const config: ZendeskConfig = { subdomain: 'acme', email: 'admin@acme.example.com', api_token: 'zd_token_6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv', start_date: '2011-01-01T00:00:00Z', per_page: 100 };
const load = (name: string) => fixture(import.meta.url, `fixtures/${name}`);
const basic = `Basic ${Buffer.from('admin@acme.example.com/token:zd_token_6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv').toString('base64')}`;
const cursor1 = 'MTU3NjYxMzUzOS4wfHw0Njd8';
const cursor2 = 'MTU3NjYxMzUzOS4wfHw0Njl8';

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

const api = () => nock(host, { reqheaders: { authorization: basic } });

/** A fake clock that the fake sleep moves forward, so the rate budget sees time pass. */
function setup() {
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const waits: number[] = [];
  const sleep = async (ms: number) => {
    waits.push(ms);
    clock += ms;
  };
  const now = () => clock;
  return { waits, now, connector: createZendeskConnector({ sleep, now }) };
}

describe('zendesk: users (cursor-based export)', () => {
  it('starts at start_time, follows after_cursor until end_of_stream, drops the duplicate and keeps both users of the boundary second', async () => {
    const scope = api()
      .get('/api/v2/incremental/users/cursor.json')
      .query({ start_time: '1293840000', per_page: '100', include: 'identities' })
      .reply(200, load('users-page-1.json'))
      .get('/api/v2/incremental/users/cursor.json')
      .query({ cursor: cursor1, per_page: '100', include: 'identities' })
      .reply(200, load('users-page-2.json'));
    const { connector, waits } = setup();

    const pages = await readStream(connector, 'users', config);

    // 35437 comes again on page 2 (same updated_at): dropped; 35438 shares its second and arrives.
    expect(pages.map((page) => page.records.map((record) => record.externalId))).toEqual([['35436', '35437'], ['35438']]);
    expect(pages.map((page) => page.state)).toEqual([
      { after_cursor: cursor1, cursor: '2011-05-06T09:00:00Z', seen: { '35437': '2011-05-06T09:00:00Z' } },
      { after_cursor: cursor2, cursor: '2011-05-06T09:00:00Z', seen: { '35437': '2011-05-06T09:00:00Z', '35438': '2011-05-06T09:00:00Z' } },
    ]);
    expect(pages[1].rejected).toEqual([{ reason: "user without a positive integer 'id'", field: 'id', payload: load('users-page-2.json').users[2] }]);
    expect(pages[1].progress).toEqual({ done: 3 });
    expect(waits).toEqual([]);
    expect(scope.isDone()).toBe(true);
  });

  it('resumes from the saved after_cursor, not from a timestamp', async () => {
    const scope = api()
      .get('/api/v2/incremental/users/cursor.json')
      .query({ cursor: cursor2, per_page: '100', include: 'identities' })
      .reply(200, { users: [], after_url: null, after_cursor: null, before_url: null, before_cursor: null, end_of_stream: true });
    const { connector } = setup();

    const pages = await readStream(connector, 'users', config, { after_cursor: cursor2, cursor: '2011-05-06T09:00:00Z', seen: {} });

    expect(pages).toEqual([{ records: [], state: { after_cursor: cursor2, cursor: '2011-05-06T09:00:00Z', seen: {} }, progress: { done: 0 } }]);
    expect(scope.isDone()).toBe(true);
  });

  it('never asks for a start_time less than a minute old', async () => {
    const scope = api()
      .get('/api/v2/incremental/users/cursor.json')
      .query({ start_time: String(Date.parse('2026-01-01T00:00:00Z') / 1000 - 60), per_page: '100', include: 'identities' })
      .reply(200, { users: [], after_cursor: cursor1, end_of_stream: true });
    const { connector } = setup();

    await readStream(connector, 'users', { ...config, start_date: '2030-01-01T00:00:00Z' });

    expect(scope.isDone()).toBe(true);
  });

  it('spends the rate budget of the incremental endpoints: the request past the limit waits for the window', async () => {
    api()
      .get('/api/v2/incremental/users/cursor.json')
      .query(true)
      .reply(200, load('users-page-1.json'))
      .get('/api/v2/incremental/users/cursor.json')
      .query(true)
      .reply(200, load('users-page-2.json'));
    const { connector, waits } = setup();

    await readStream(connector, 'users', { ...config, requests_per_minute: 1 });

    expect(waits).toEqual([60_000]);
  });

  it('retries a 429 after its Retry-After, then a 500, without failing the run', async () => {
    api()
      .get('/api/v2/incremental/users/cursor.json')
      .query(true)
      .reply(429, 'Rate limit for ticket/user incremental export exceeded.', { 'Retry-After': '7' })
      .get('/api/v2/incremental/users/cursor.json')
      .query(true)
      .reply(500, { error: 'InternalServerError' })
      .get('/api/v2/incremental/users/cursor.json')
      .query({ start_time: '1293840000', per_page: '100', include: 'identities' })
      .reply(200, load('users-page-2.json'));
    const { connector, waits } = setup();

    const pages = await readStream(connector, 'users', config);

    expect(waits[0]).toBe(7000);
    expect(waits).toHaveLength(2);
    expect(pages.flatMap((page) => page.records.map((record) => record.externalId))).toEqual(['35437', '35438']);
  });

  it('fails at once on 401 with a message naming zendesk, and check reports it', async () => {
    const scope = api()
      .get('/api/v2/incremental/users/cursor.json')
      .query(true)
      .reply(401, load('error-401.json'))
      .get('/api/v2/users/me.json')
      .reply(401, load('error-401.json'));
    const { connector, waits } = setup();

    const error = (await readStream(connector, 'users', config).catch((caught: unknown) => caught)) as ConnectorError;
    const checked = await connector.check(config, testContext);

    expect(error).toBeInstanceOf(ConnectorError);
    expect(error.kind).toBe('config');
    expect(error.message).toBe('The credentials were refused by zendesk (HTTP 401 on GET /api/v2/incremental/users/cursor.json)');
    expect(checked).toEqual({ ok: false, message: 'The credentials were refused by zendesk (HTTP 401 on GET /api/v2/users/me.json)' });
    expect(waits).toEqual([]);
    expect(scope.isDone()).toBe(true);
  });

  it('check names the account and the role', async () => {
    api().get('/api/v2/users/me.json').reply(200, load('me.json'));
    expect(await setup().connector.check(config, testContext)).toEqual({ ok: true, message: 'Connected to Zendesk acme as admin@acme.example.com (admin)' });
  });
});

describe('zendesk: tickets', () => {
  it('asks for deleted tickets too (no exclude_deleted) and quarantines a ticket whose updated_at is not a timestamp', async () => {
    const scope = api()
      .get('/api/v2/incremental/tickets/cursor.json')
      .query({ start_time: '1293840000', per_page: '100' })
      .reply(200, load('tickets-page-1.json'));

    const pages = await readStream(setup().connector, 'tickets', config);

    expect(pages.map((page) => page.records.map((record) => record.externalId))).toEqual([['35436', '35437']]);
    expect(pages[0].rejected).toEqual([
      { externalId: '35438', field: 'updated_at', reason: `'updated_at' is not a timestamp ("last Tuesday")`, payload: load('tickets-page-1.json').tickets[2] },
    ]);
    expect(pages[0].state).toMatchObject({ after_cursor: 'MTU3NjYxMzUzOS4wfHw0NTF8', cursor: '2011-05-06T09:00:00Z' });
    expect(scope.isDone()).toBe(true);
  });

  it('reports a ticket with the status deleted and a user no longer active as deletions, not records', async () => {
    const tickets = load('tickets-page-1.json');
    tickets.tickets = [tickets.tickets[0], { ...tickets.tickets[1], status: 'deleted' }];
    const users = load('users-page-2.json');
    users.users = [users.users[0], { ...users.users[1], active: false }];
    api().get('/api/v2/incremental/tickets/cursor.json').query(true).reply(200, tickets).get('/api/v2/incremental/users/cursor.json').query(true).reply(200, users);

    const [ticketPage] = await readStream(setup().connector, 'tickets', config);
    const [userPage] = await readStream(setup().connector, 'users', config);

    expect([ticketPage.records.map((record) => record.externalId), ticketPage.deleted]).toEqual([['35436'], ['35437']]);
    expect([userPage.records.map((record) => record.externalId), userPage.deleted]).toEqual([['35437'], ['35438']]);
    // A deletion counts for the checkpoint like any version read: read again, it is dropped as a duplicate.
    expect(ticketPage.state).toMatchObject({ seen: { '35437': '2011-05-06T09:00:00Z' } });
  });
});

describe('zendesk: organizations (time-based export)', () => {
  it('moves start_time to each end_time and drops the organization repeated at the page edge', async () => {
    const scope = api()
      .get('/api/v2/incremental/organizations.json')
      .query({ start_time: '1293840000' })
      .reply(200, load('organizations-page-1.json'))
      .get('/api/v2/incremental/organizations.json')
      .query({ start_time: '1304592000' })
      .reply(200, load('organizations-page-2.json'));

    const pages = await readStream(setup().connector, 'organizations', config);

    expect(pages.map((page) => page.records.map((record) => record.externalId))).toEqual([['57542'], ['57543']]);
    expect(pages[1].state).toEqual({ start_time: 1304592000, cursor: '2011-05-05T10:38:52Z', seen: { '57542': '2011-05-05T10:38:52Z', '57543': '2011-05-05T10:38:52Z' } });
    expect(scope.isDone()).toBe(true);
  });

  it('resumes at the saved start_time; what it already read at that second is not read twice', async () => {
    api().get('/api/v2/incremental/organizations.json').query({ start_time: '1304592000' }).reply(200, load('organizations-page-2.json'));

    const pages = await readStream(setup().connector, 'organizations', config, { start_time: 1304592000, cursor: '2011-05-05T10:38:52Z', seen: { '57542': '2011-05-05T10:38:52Z' } });

    expect(pages.flatMap((page) => page.records.map((record) => record.externalId))).toEqual(['57543']);
  });
});

describe('zendesk: rate budget', () => {
  it('lets `limit` requests through in a window and makes the next wait for the oldest to leave it', async () => {
    let clock = 0;
    const waits: number[] = [];
    const budget = new RateBudget(10, 60_000, () => clock, async (ms) => void (waits.push(ms), (clock += ms)));
    for (let i = 0; i < 10; i++) {
      await budget.take();
      clock += 1000;
    }
    await budget.take();
    expect(waits).toEqual([50_000]);
  });
});

describe('zendesk: write-back', () => {
  it('PUTs email, phone and the golden id as external_id', async () => {
    const sent = bodies();
    api().put('/api/v2/users/35436.json', sent.match).reply(200, load('user-update.json'));

    const saved = await writeUser(createZendeskHttp(config), '35436', { email: 'johnny.new@example.com', phone: '+14155238886', golden_id: 'g-42' });

    expect(sent.seen).toEqual([{ user: { email: 'johnny.new@example.com', phone: '+14155238886', external_id: 'g-42' } }]);
    expect(saved).toMatchObject({ id: 35436, external_id: 'g-42' });
    expect(userUpdateRequest('35436', { phone: null })).toEqual({ method: 'PUT', url: '/api/v2/users/35436.json', data: { user: { phone: null } } });
    expect(await writeUser(createZendeskHttp(config), '35436', {})).toBeUndefined();
    expect(() => userUpdateRequest('../35436', { email: 'x@example.com' })).toThrow(TypeError);
  });
});

describe('zendesk: default mapping', () => {
  it('puts the sideloaded identities on their users, primary first, and maps every email and phone identity, each with its verified flag', async () => {
    api()
      .get('/api/v2/incremental/users/cursor.json')
      .query({ start_time: '1293840000', per_page: '100', include: 'identities' })
      .reply(200, { ...load('users-page-1.json'), end_of_stream: true });
    const [page] = await readStream(setup().connector, 'users', config);
    const [johnny, soren] = page.records.map((record) => record.data as { identities?: Record<string, { id: number }[]> });
    expect(johnny.identities?.email.map((identity) => identity.id)).toEqual([77938, 77940]);
    expect(johnny.identities?.phone_number.map((identity) => identity.id)).toEqual([77939]);
    expect(soren.identities).toEqual({ email: [expect.objectContaining({ id: 77941, verified: false })] });

    const mapping = compileMapping(await loadMappingFile(defaultConnector.defaultMappingPath));
    const person = (data: Record<string, unknown>) => {
      const result = mapping.map('users', data, { source: 'zd', stream: 'users', defaultRegion: 'US' });
      return result.ok ? result.record.person : result.errors;
    };
    const emails = (data: Record<string, unknown>) => {
      const mapped = person(data);
      return Array.isArray(mapped) ? mapped : mapped?.emails;
    };
    expect(emails(johnny)).toEqual([
      { address: 'johnny@example.com', verified: true },
      { address: 'johnny.private@example.net', verified: false },
    ]);
    // The user's phone is also its phone identity: one phone, verified as the identity is.
    expect(person(johnny)).toMatchObject({ phones: [{ number: '+14152007986', verified: true }] });
    // However many identities a user has, each is mapped.
    const many = { value: 'old.address@example.org', verified: true };
    const more = { ...johnny, identities: { ...johnny.identities, email: [...johnny.identities!.email, { value: 'johnny@home.example', verified: false }, many] } };
    expect(emails(more)).toEqual([
      { address: 'johnny@example.com', verified: true },
      { address: 'johnny.private@example.net', verified: false },
      { address: 'johnny@home.example', verified: false },
      { address: 'old.address@example.org', verified: true },
    ]);
    expect(emails(soren)).toEqual([{ address: 'soren@example.dk', verified: false }]);
    // A user stored before identities were sideloaded: whether its email is verified is unknown.
    expect(emails(load('users-page-1.json').users[0])).toEqual([{ address: 'johnny@example.com' }]);
  });

  it('maps users to people with their Zendesk id, and tickets to the requester’s ticket interactions', async () => {
    const mapping = compileMapping(await loadMappingFile(defaultConnector.defaultMappingPath));
    const ctx = { source: 'zd', stream: 'users', defaultRegion: 'US' };
    const user = mapping.map('users', load('users-page-1.json').users[0], ctx);
    const ticket = mapping.map('tickets', load('tickets-page-1.json').tickets[1], { ...ctx, stream: 'tickets' });
    const organization = mapping.map('organizations', load('organizations-page-1.json').organizations[0], { ...ctx, stream: 'organizations' });

    expect(user).toMatchObject({
      ok: true,
      record: { identifiers: [{ scheme: 'zendesk:user_id', value: '35436', verified: true }], person: { emails: [{ address: 'johnny@example.com' }], given_name: 'Johnny', family_name: 'Agent' } },
    });
    expect(ticket).toMatchObject({
      ok: true,
      record: {
        identifiers: [{ scheme: 'zendesk:user_id', value: '35437', verified: true }],
        interactions: [{ kind: 'ticket', occurred_at: '2011-05-01T12:00:00.000Z', external_id: '35437', status: 'solved', summary: 'My repair request is still open' }],
      },
    });
    const assigned = mapping.map('tickets', load('tickets-page-1.json').tickets[0], { ...ctx, stream: 'tickets' });
    expect(assigned.ok && assigned.record.interactions?.[0].owner).toBe('235323');
    expect(organization).toMatchObject({ ok: true, record: { organisation: { name: 'Groablet Enterprises', domain: 'groablet.example.com' } } });
  });
});
