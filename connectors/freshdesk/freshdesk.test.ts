import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compileMapping, loadMappingFile } from '../../mapping/engine.js';
import { ConnectorError } from '../kit/contract.js';
import { bodies, fakeSleep, fixture, readStream, testContext } from '../kit/testing.js';
import { createFreshdeskHttp } from './client.js';
import type { FreshdeskConfig } from './config.gen.js';
import { connector as defaultConnector, createFreshdeskConnector } from './connector.js';
import { contactUpdateRequest, writeContact } from './write-back.js';

const host = 'https://acme.freshdesk.com';
const config: FreshdeskConfig = { domain: 'acme', api_key: 'fd_key_Abc123XyZ789', per_page: 2 };
/** Changes only, without the listing of deleted records (tested apart). */
const changesOnly: FreshdeskConfig = { ...config, deletion_sweep_hours: 0 };
const load = (name: string) => fixture(import.meta.url, `fixtures/${name}`);
const basic = `Basic ${Buffer.from('fd_key_Abc123XyZ789:X').toString('base64')}`;
const next = (path: string, page: number) => ({ Link: `<${host}/api/v2/${path}?page=${page}&per_page=2>; rel="next"` });
const ticketsQuery = (updatedSince: string, page: string) => ({ updated_since: updatedSince, order_by: 'updated_at', order_type: 'asc', include: 'requester', per_page: '2', page });
const ids = (pages: { records: { externalId: string }[] }[]) => pages.map((page) => page.records.map((record) => record.externalId));

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

const api = () => nock(host, { reqheaders: { authorization: basic } });
function setup(maxPage?: number) {
  const { waits, sleep } = fakeSleep();
  return { waits, connector: createFreshdeskConnector({ sleep, maxPage }) };
}

describe('freshdesk: tickets', () => {
  it('reads by updated_at ascending with the requester, re-anchoring updated_since on the cursor after each page; both tickets of the boundary second arrive', async () => {
    const scope = api()
      .get('/api/v2/tickets')
      .query(ticketsQuery('2000-01-01T00:00:00Z', '1'))
      .reply(200, load('tickets-page-1.json'), next('tickets', 2))
      .get('/api/v2/tickets')
      .query(ticketsQuery('2015-08-25T09:59:59Z', '1'))
      .reply(200, load('tickets-page-2.json'));
    const { connector, waits } = setup();

    const pages = await readStream(connector, 'tickets', changesOnly);

    // 21 comes again (the boundary second is re-read): dropped; 22 shares its second and arrives.
    expect(ids(pages)).toEqual([['20', '21'], ['22']]);
    expect(pages[0].records[0].data).toMatchObject({ requester: { email: 'Ana.Perez@example.com' } });
    expect(pages.map((page) => page.state)).toEqual([
      { cursor: '2015-08-25T10:00:00Z', seen: { '21': '2015-08-25T10:00:00Z' } },
      { cursor: '2015-08-25T10:00:00Z', seen: { '21': '2015-08-25T10:00:00Z', '22': '2015-08-25T10:00:00Z' } },
    ]);
    expect(pages[1].rejected).toEqual([{ externalId: '23', field: 'updated_at', reason: "'updated_at' is not a timestamp (missing)", payload: load('tickets-page-2.json')[2] }]);
    expect(waits).toEqual([]);
    expect(scope.isDone()).toBe(true);
  });

  it('resumes from state: the second ticket of the boundary second arrives, the first is not read twice', async () => {
    const scope = api().get('/api/v2/tickets').query(ticketsQuery('2015-08-25T09:59:59Z', '1')).reply(200, load('tickets-page-2.json'));

    const pages = await readStream(setup().connector, 'tickets', changesOnly, { cursor: '2015-08-25T10:00:00Z', seen: { '21': '2015-08-25T10:00:00Z' } });

    expect(ids(pages)).toEqual([['22']]);
    expect(scope.isDone()).toBe(true);
  });

  it('at the last page Freshdesk lists (300; 2 here) restarts the listing from the cursor instead of asking past it', async () => {
    const scope = api()
      .get('/api/v2/tickets')
      .query(ticketsQuery('2015-08-25T09:59:59Z', '1'))
      .reply(200, load('tickets-page-2.json').slice(0, 2), next('tickets', 2))
      // Nothing new on page 1 and the cursor did not move: the same listing's next page.
      .get('/api/v2/tickets')
      .query(ticketsQuery('2015-08-25T09:59:59Z', '2'))
      .reply(200, load('tickets-same-second.json'), next('tickets', 3))
      // Page 3 would be past the cap: the listing starts again, one second on, at page 1.
      .get('/api/v2/tickets')
      .query(ticketsQuery('2015-08-25T10:00:00Z', '1'))
      .reply(200, load('tickets-after-cap.json'));

    const pages = await readStream(setup(2).connector, 'tickets', changesOnly, { cursor: '2015-08-25T10:00:00Z', seen: { '21': '2015-08-25T10:00:00Z', '22': '2015-08-25T10:00:00Z' } });

    expect(ids(pages)).toEqual([[], ['24', '25'], ['26']]);
    expect(pages[2].state).toEqual({ cursor: '2015-08-25T10:00:01Z', seen: { '26': '2015-08-25T10:00:01Z', '21': '2015-08-25T10:00:00Z', '22': '2015-08-25T10:00:00Z', '24': '2015-08-25T10:00:00Z', '25': '2015-08-25T10:00:00Z' } });
    expect(scope.isDone()).toBe(true);
  });

  const listedTickets = (filter: 'deleted' | 'spam', page: number) => api().get('/api/v2/tickets').query({ filter, per_page: '2', page: String(page) });
  const noChanges = () => api().get('/api/v2/tickets').query(ticketsQuery('2015-08-25T09:59:59Z', '1')).reply(200, []);

  it('after the changes, lists the deleted tickets, then the spam ones, and reports them deleted, each list up to the last page Freshdesk lists', async () => {
    const scopes = [
      noChanges(),
      listedTickets('deleted', 1).reply(200, [{ id: 30, deleted: true, subject: 'Refund' }, { id: 31, deleted: true }], next('tickets', 2)),
      // Page 2 of 2 (the cap here) still says there is more: asking past it would fail, so the list ends.
      listedTickets('deleted', 2).reply(200, [{ id: 32, deleted: true }], next('tickets', 3)),
      listedTickets('spam', 1).reply(200, [{ id: 33, spam: true, subject: 'Buy cheap watches' }, { id: 'x', spam: true }], next('tickets', 2)),
      listedTickets('spam', 2).reply(200, []),
    ];

    const pages = await readStream(setup(2).connector, 'tickets', config, { cursor: '2015-08-25T10:00:00Z', seen: {} });

    expect(pages.map((page) => page.deleted)).toEqual([undefined, ['30', '31'], ['32'], ['33'], undefined]);
    expect(pages[3].rejected).toEqual([{ reason: "spam ticket without a positive integer 'id'", field: 'id', payload: { id: 'x', spam: true } }]);
    expect(pages.slice(1, 4).map((page) => page.state)).toEqual([
      { cursor: '2015-08-25T10:00:00Z', seen: {}, deleted_next_page: 2 },
      { cursor: '2015-08-25T10:00:00Z', seen: {}, deleted_list: 1, deleted_next_page: 1 },
      { cursor: '2015-08-25T10:00:00Z', seen: {}, deleted_list: 1, deleted_next_page: 2 },
    ]);
    expect(Object.keys(pages[4].state)).toEqual(['cursor', 'seen', 'swept_at']);
    expect(scopes.every((scope) => scope.isDone())).toBe(true);
  });

  it('a listing cut short in the spam tickets goes on at that page in the next run, after the changes', async () => {
    const scopes = [noChanges(), listedTickets('spam', 2).reply(200, [{ id: 34, spam: true }])];
    const swept = new Date(Date.now() - 48 * 3600_000).toISOString();

    const pages = await readStream(setup().connector, 'tickets', config, { cursor: '2015-08-25T10:00:00Z', seen: {}, swept_at: swept, deleted_list: 1, deleted_next_page: 2 });

    expect(pages.map((page) => page.deleted)).toEqual([undefined, ['34']]);
    expect(pages[0].state).toEqual({ cursor: '2015-08-25T10:00:00Z', seen: {}, swept_at: swept, deleted_list: 1, deleted_next_page: 2 });
    expect(pages[1].state.swept_at).not.toBe(swept);
    expect(Object.keys(pages[1].state)).toEqual(['cursor', 'seen', 'swept_at']);
    expect(scopes.every((scope) => scope.isDone())).toBe(true);
  });

  it('retries a 429 after its Retry-After, then a 500', async () => {
    api()
      .get('/api/v2/tickets')
      .query(true)
      .reply(429, { code: 'rate_limit_exceeded', message: 'You have exceeded the limit of requests per minute' }, { 'Retry-After': '12', 'X-RateLimit-Total': '200', 'X-RateLimit-Remaining': '0' })
      .get('/api/v2/tickets')
      .query(true)
      .reply(500, { code: 'internal_error', message: 'We are facing some issues. Please try after some time.' })
      .get('/api/v2/tickets')
      .query(ticketsQuery('2000-01-01T00:00:00Z', '1'))
      .reply(200, load('tickets-page-1.json'));
    const { connector, waits } = setup();

    const pages = await readStream(connector, 'tickets', changesOnly);

    expect(waits[0]).toBe(12_000);
    expect(waits).toHaveLength(2);
    expect(ids(pages)).toEqual([['20', '21']]);
  });

  it('fails at once on 401 with a message naming freshdesk, and check reports it', async () => {
    const scope = api().get('/api/v2/tickets').query(true).reply(401, load('error-401.json')).get('/api/v2/agents/me').reply(401, load('error-401.json'));
    const { connector, waits } = setup();

    const error = (await readStream(connector, 'tickets', config).catch((caught: unknown) => caught)) as ConnectorError;
    const checked = await connector.check(config, testContext);

    expect(error).toBeInstanceOf(ConnectorError);
    expect(error.kind).toBe('config');
    expect(error.message).toBe('The credentials were refused by freshdesk (HTTP 401 on GET /api/v2/tickets)');
    expect(checked).toEqual({ ok: false, message: 'The credentials were refused by freshdesk (HTTP 401 on GET /api/v2/agents/me)' });
    expect(waits).toEqual([]);
    expect(scope.isDone()).toBe(true);
  });

  it('check names the agent', async () => {
    api().get('/api/v2/agents/me').reply(200, load('me.json'));
    expect(await setup().connector.check(config, testContext)).toEqual({ ok: true, message: 'Connected to Freshdesk acme as agent@acme.example.com' });
  });
});

describe('freshdesk: contacts', () => {
  it('walks the pages of one _updated_since, checkpointing the page to resume at, and waits when X-RateLimit-Remaining is low', async () => {
    const scope = api()
      .get('/api/v2/contacts')
      .query({ _updated_since: '2015-08-01T00:00:00Z', per_page: '2', page: '1' })
      .reply(200, load('contacts-page-1.json'), { ...next('contacts', 2), 'X-RateLimit-Total': '200', 'X-RateLimit-Remaining': '3', 'X-RateLimit-Used-CurrentRequest': '1' })
      .get('/api/v2/contacts')
      .query({ _updated_since: '2015-08-01T00:00:00Z', per_page: '2', page: '2' })
      .reply(200, load('contacts-page-2.json'), { 'X-RateLimit-Total': '200', 'X-RateLimit-Remaining': '199' });
    const { connector, waits } = setup();

    const pages = await readStream(connector, 'contacts', { ...changesOnly, start_date: '2015-08-01T00:00:00Z' });

    expect(ids(pages)).toEqual([['1', '2'], ['3']]);
    expect(pages.map((page) => page.state)).toEqual([
      { cursor: '2015-08-19T10:00:00Z', seen: { '2': '2015-08-19T10:00:00Z' }, anchor: '2015-08-01T00:00:00Z', next_page: 2 },
      { cursor: '2015-08-19T10:00:00Z', seen: { '2': '2015-08-19T10:00:00Z', '3': '2015-08-19T10:00:00Z' } },
    ]);
    expect(pages[1].rejected).toEqual([{ reason: "contact without a positive integer 'id'", field: 'id', payload: load('contacts-page-2.json')[1] }]);
    // 3 left of 200, at or under the reserve of 5: a minute's wait before page 2.
    expect(waits).toEqual([60_000]);
    expect(scope.isDone()).toBe(true);
  });

  it('resumes an unfinished walk at its anchor and page', async () => {
    const scope = api().get('/api/v2/contacts').query({ _updated_since: '2015-08-01T00:00:00Z', per_page: '2', page: '2' }).reply(200, load('contacts-page-2.json'));

    const pages = await readStream(setup().connector, 'contacts', changesOnly, {
      cursor: '2015-08-19T10:00:00Z', seen: { '2': '2015-08-19T10:00:00Z' }, anchor: '2015-08-01T00:00:00Z', next_page: 2,
    });

    expect(ids(pages)).toEqual([['3']]);
    expect(scope.isDone()).toBe(true);
  });

  it('starts the next walk one second before the cursor', async () => {
    const scope = api().get('/api/v2/contacts').query({ _updated_since: '2015-08-19T09:59:59Z', per_page: '2', page: '1' }).reply(200, []);

    const pages = await readStream(setup().connector, 'contacts', changesOnly, { cursor: '2015-08-19T10:00:00Z', seen: {} });

    expect(pages).toEqual([{ records: [], state: { cursor: '2015-08-19T10:00:00Z', seen: {} }, progress: { done: 0 } }]);
    expect(scope.isDone()).toBe(true);
  });

  const changes = (updatedSince: string) => api().get('/api/v2/contacts').query({ _updated_since: updatedSince, per_page: '2', page: '1' });
  const deletedPage = (page: number) => api().get('/api/v2/contacts').query({ state: 'deleted', per_page: '2', page: String(page) });

  it('after its changes, a first run lists the deleted contacts page by page and reports them deleted; the next run within deletion_sweep_hours does not', async () => {
    const first = [
      changes('2015-08-19T09:59:59Z').reply(200, load('contacts-page-2.json').slice(0, 1)),
      deletedPage(1).reply(200, load('contacts-deleted.json'), next('contacts', 2)),
      deletedPage(2).reply(200, [{ id: 6, deleted: true, name: 'Finn Berg' }, { id: 'six', deleted: true }]),
    ];
    const before = Date.now();

    const pages = await readStream(setup().connector, 'contacts', config, { cursor: '2015-08-19T10:00:00Z', seen: {} });

    expect(first.every((scope) => scope.isDone())).toBe(true);
    expect(pages.map((page) => [page.records.map((record) => record.externalId), page.deleted])).toEqual([
      [['3'], undefined],
      [[], ['4', '5']],
      [[], ['6']],
    ]);
    expect(pages[2].rejected).toEqual([{ reason: "deleted contact without a positive integer 'id'", field: 'id', payload: { id: 'six', deleted: true } }]);
    expect(pages[1].state).toEqual({ cursor: '2015-08-19T10:00:00Z', seen: { '3': '2015-08-19T10:00:00Z' }, deleted_next_page: 2 });
    const { swept_at: sweptAt, ...rest } = pages[2].state as { swept_at: string };
    expect(rest).toEqual({ cursor: '2015-08-19T10:00:00Z', seen: { '3': '2015-08-19T10:00:00Z' } });
    expect(Date.parse(sweptAt)).toBeGreaterThanOrEqual(before);

    // A day (the default) has not passed: changes only (nock answers nothing else).
    const again = changes('2015-08-19T09:59:59Z').reply(200, []);
    const later = await readStream(setup().connector, 'contacts', config, pages[2].state);
    expect(later.map((page) => page.state.swept_at)).toEqual([sweptAt]);
    expect(again.isDone()).toBe(true);
  });

  it('a listing cut short goes on at its page in the next run, after the changes; one is due again after deletion_sweep_hours; 0 never starts one', async () => {
    const resumed = [changes('2015-08-19T09:59:59Z').reply(200, []), deletedPage(2).reply(200, [{ id: 6, deleted: true }])];
    const dayOld = new Date(Date.now() - 25 * 3_600_000).toISOString();
    const pages = await readStream(setup().connector, 'contacts', config, { cursor: '2015-08-19T10:00:00Z', seen: {}, swept_at: dayOld, deleted_next_page: 2 });
    expect(pages.map((page) => page.deleted)).toEqual([undefined, ['6']]);
    expect(pages[0].state).toEqual({ cursor: '2015-08-19T10:00:00Z', seen: {}, swept_at: dayOld, deleted_next_page: 2 });
    expect(resumed.every((scope) => scope.isDone())).toBe(true);

    const due = [changes('2015-08-19T09:59:59Z').reply(200, []), deletedPage(1).reply(200, [])];
    expect(await readStream(setup().connector, 'contacts', { ...config, deletion_sweep_hours: 24 }, { cursor: '2015-08-19T10:00:00Z', seen: {}, swept_at: dayOld })).toHaveLength(2);
    expect(due.every((scope) => scope.isDone())).toBe(true);

    const never = changes('2015-08-19T09:59:59Z').reply(200, []);
    expect(await readStream(setup().connector, 'contacts', changesOnly, { cursor: '2015-08-19T10:00:00Z', seen: {} })).toHaveLength(1);
    expect(never.isDone()).toBe(true);
  });
});

describe('freshdesk: companies', () => {
  /**
   * Freshdesk's company list, `per_page` 2 by page number, with a `next` link while more follow. `change(request, list)`
   * may delete companies before a request is answered. Returns the pages asked, in order. It replaces earlier lists.
   */
  function companyList(list: unknown[], change: (request: number, list: unknown[]) => void = () => undefined): number[] {
    const asked: number[] = [];
    nock.cleanAll();
    api()
      .get('/api/v2/companies')
      .query((query) => query.per_page === '2')
      .times(50)
      .reply((uri) => {
        const page = Number(new URL(uri, host).searchParams.get('page'));
        change(asked.length, list);
        asked.push(page);
        return [200, list.slice((page - 1) * 2, page * 2), page * 2 < list.length ? next('companies', page + 1) : {}];
      });
    return asked;
  }
  const company = (id: number) => ({ id, name: `Company ${id}` });
  const listed = (pages: { records: { externalId: string }[] }[]) => pages.flatMap((page) => page.records.map((record) => Number(record.externalId)));

  it('sweeps every company, reading the page before each page again, and marks the start and end of the sweep', async () => {
    const asked = companyList([...load('companies-page-1.json'), company(11)]);

    const pages = await readStream(setup().connector, 'companies', config);

    expect(asked).toEqual([1, 2, 1]);
    expect(ids(pages)).toEqual([['9', '10'], ['11']]);
    expect(pages.map((page) => [page.state, page.sweep])).toEqual([
      [{ next_page: 2, before: [9, 10], complete: false }, { start: true }],
      [{ next_page: 1, complete: true }, { end: true }],
    ]);
  });

  it('starts again from the first page when companies moved between pages, so that none is missed', async () => {
    // Company 1 is deleted after the first page: 3 moves onto page 1, which was read before it got there.
    const asked = companyList([1, 2, 3, 4, 5].map(company), (request, list) => request === 1 && list.shift());
    const pages = await readStream(setup().connector, 'companies', config);
    expect(asked).toEqual([1, 2, 1, 1, 2, 1]);
    expect(new Set(listed(pages))).toEqual(new Set([1, 2, 3, 4, 5]));
    // Only the sweep that went through unchanged ends; the hub counts what it listed since the last start.
    expect(pages.map((page) => page.sweep)).toEqual([{ start: true }, { start: true }, { end: true }]);
    expect(listed(pages.slice(1))).toEqual([2, 3, 4, 5]);

    // Resumed in a later run after deletions: the page before is not as the checkpoint saw it, so it starts again.
    companyList([2, 3, 4, 5].map(company));
    const resumed = await readStream(setup().connector, 'companies', config, { next_page: 2, before: [1, 2], complete: false });
    expect(listed(resumed)).toEqual([2, 3, 4, 5]);
    expect(resumed[0].sweep).toEqual({ start: true });
  });

  it('resumes an unchanged sweep at its next page, and starts a checkpoint without the page before from the first', async () => {
    const asked = companyList([1, 2, 3].map(company));
    expect(listed(await readStream(setup().connector, 'companies', config, { next_page: 2, before: [1, 2], complete: false }))).toEqual([3]);
    expect(asked).toEqual([2, 1]);
    expect(listed(await readStream(setup().connector, 'companies', config, { next_page: 2, complete: false }))).toEqual([1, 2, 3]);
  });
});

describe('freshdesk: write-back', () => {
  it('PUTs the contact fields, the golden id as unique_external_id', async () => {
    const sent = bodies();
    api().put('/api/v2/contacts/1', sent.match).reply(200, load('contact-update.json'));

    const saved = await writeContact(createFreshdeskHttp(config), '1', { email: 'ana.perez@new.example.com', phone: '+34912345678', golden_id: 'g-42' });

    expect(sent.seen).toEqual([{ email: 'ana.perez@new.example.com', phone: '+34912345678', unique_external_id: 'g-42' }]);
    expect(saved).toMatchObject({ id: 1, unique_external_id: 'g-42' });
    expect(contactUpdateRequest('1', { name: 'Ana Pérez', job_title: 'CFO' })).toEqual({ method: 'PUT', url: '/contacts/1', data: { name: 'Ana Pérez', job_title: 'CFO' } });
    expect(await writeContact(createFreshdeskHttp(config), '1', {})).toBeUndefined();
  });
});

describe('freshdesk: default mapping', () => {
  it('maps contacts to people (other emails too) and tickets to ticket interactions of their requester, with status names', async () => {
    const mapping = compileMapping(await loadMappingFile(defaultConnector.defaultMappingPath));
    const ctx = { source: 'fd', stream: 'tickets', defaultRegion: 'US' };
    const ticket = mapping.map('tickets', load('tickets-page-2.json')[1], ctx);
    const custom = mapping.map('tickets', load('tickets-after-cap.json')[0], ctx);
    const contact = mapping.map('contacts', load('contacts-page-1.json')[0], { ...ctx, stream: 'contacts' });
    const company = mapping.map('companies', load('companies-page-1.json')[0], { ...ctx, stream: 'companies' });

    expect(ticket).toMatchObject({
      ok: true,
      record: {
        identifiers: [{ scheme: 'freshdesk:contact_id', value: '1', verified: true }],
        person: { emails: [{ address: 'ana.perez@example.com' }] },
        interactions: [{ kind: 'ticket', occurred_at: '2015-08-25T09:00:00.000Z', external_id: '22', status: 'pending', summary: 'My repair request is still open', owner: '5001' }],
      },
    });
    expect(custom.ok && custom.record.interactions?.[0].status).toBe('custom');
    expect(contact).toMatchObject({ ok: true, record: { identifiers: [{ scheme: 'freshdesk:contact_id', value: '1' }], person: { given_name: 'Ana María', family_name: 'Pérez', job_title: 'Office manager' } } });
    // A contact's email is verified when the contact is (`active`); the requester of a ticket does not say.
    expect(contact.ok && contact.record.person?.emails).toEqual([{ address: 'ana.perez@example.com', verified: true }]);
    const unverified = mapping.map('contacts', load('contacts-page-2.json')[0], { ...ctx, stream: 'contacts' });
    expect(unverified.ok && unverified.record.person?.emails).toEqual([{ address: 'chloe@example.fr', verified: false }]);
    const withOthers = mapping.map('contacts', { ...load('contacts-page-1.json')[0], other_emails: ['Ana.Home@Example.net', 'ana@work.example.com', 'third@example.org'] }, { ...ctx, stream: 'contacts' });
    expect(withOthers.ok && withOthers.record.person?.emails).toEqual([
      { address: 'ana.perez@example.com', verified: true },
      { address: 'ana.home@example.net' },
      { address: 'ana@work.example.com' },
      { address: 'third@example.org' },
    ]);
    expect(company).toMatchObject({ ok: true, record: { organisation: { name: 'SuperNova', domain: 'supernova.example.com' } } });
    // Phones are free text in Freshdesk: one that is not a phone number is left out and named; the contact maps.
    const badPhone = mapping.map('contacts', { ...load('contacts-page-1.json')[0], phone: 'ask reception', mobile: '+1 415 555 0100' }, { ...ctx, stream: 'contacts' });
    expect(badPhone.ok && badPhone.record.person?.phones).toEqual([{ number: '+14155550100' }]);
    expect(badPhone.ok && badPhone.omitted).toEqual([{ field: 'phone', target: 'person.phone', reason: expect.stringMatching(/^'ask reception' /) }]);
  });
});
