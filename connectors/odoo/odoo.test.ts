import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compileMapping, loadMappingFile } from '../../mapping/engine.js';
import { ConnectorError, type RecordPage } from '../kit/contract.js';
import { bodies, fakeSleep, fixture, readAll, readStream, testContext } from '../kit/testing.js';
import type { OdooConfig } from './config.gen.js';
import { connector as defaultConnector, createOdooConnector } from './connector.js';
import { fakeOdoo, microsecondsOf, type StoredRecord } from './fake-server.js';
import { createOdooHttp } from './rpc.js';
import { odooStreams } from './streams.js';
import { writeCustomer } from './write-back.js';

const server = 'https://acme.odoo.com';
// Deletion sweeps are tested apart (below); the other tests list the requests of the incremental read alone.
const config: OdooConfig = { url: 'https://acme.odoo.com', database: 'acme', login: 'admin@example.com', api_key: 'odoo-api-key-0123456789', page_size: 2, deletion_sweep_hours: 0 };
const load = (name: string) => fixture(import.meta.url, `fixtures/${name}`);
const partnerFields = odooStreams[0].fields;
const order = 'write_date asc, id asc';

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

const rpc = (id: number, service: string, method: string, args: unknown[]) => ({ jsonrpc: '2.0', method: 'call', params: { service, method, args }, id });
const kw = (id: number, model: string, method: string, args: unknown[], kwargs: Record<string, unknown>) =>
  rpc(id, 'object', 'execute_kw', ['acme', 2, 'odoo-api-key-0123456789', model, method, args, kwargs]);
const authenticate = rpc(1, 'common', 'authenticate', ['acme', 'admin@example.com', 'odoo-api-key-0123456789', {}]);
const result = (value: unknown) => ({ jsonrpc: '2.0', id: 0, result: value });
/** The domain after a checkpoint at `at` (whole seconds) with `ids` emitted in its second `at`…`next`. */
const after = (at: string, next: string, ids: number[]) => ['|', ['write_date', '>=', next], '&', '&', ['write_date', '>=', at], ['write_date', '<', next], ['id', 'not in', ids]];

function setup() {
  const { waits, sleep } = fakeSleep();
  return { waits, connector: createOdooConnector({ sleep }) };
}

describe('odoo: partners', () => {
  it('reads in batches after the (write_date, id) checkpoint; three partners sharing one write_date across batches all arrive once', async () => {
    const sent = bodies();
    const scope = nock(server)
      .post('/jsonrpc', sent.match).reply(200, load('authenticate.json'))
      .post('/jsonrpc', sent.match).reply(200, load('fields-get-partner.json'))
      .post('/jsonrpc', sent.match).reply(200, load('partners-batch-1.json'))
      .post('/jsonrpc', sent.match).reply(200, load('partners-batch-2.json'))
      .post('/jsonrpc', sent.match).reply(200, result([]));
    const { connector } = setup();

    const pages = await readStream(connector, 'partners', config);

    const at = '2024-05-02 10:15:00';
    const next = '2024-05-02 10:15:01';
    const kwargs = { fields: partnerFields, limit: 2, order, context: { active_test: false } };
    expect(sent.seen).toEqual([
      authenticate,
      kw(2, 'res.partner', 'fields_get', [partnerFields], { attributes: ['type'] }),
      kw(3, 'res.partner', 'search_read', [[]], kwargs),
      kw(4, 'res.partner', 'search_read', [after(at, next, [14, 26])], kwargs),
      kw(5, 'res.partner', 'search_read', [after(at, next, [14, 26, 27])], kwargs),
    ]);
    expect(pages.map((page) => page.records.map((record) => record.externalId))).toEqual([['14', '26'], ['27'], []]);
    expect(pages.map((page) => page.state)).toEqual([
      { cursor: at, seen: { '14': at, '26': at } },
      { cursor: at, seen: { '14': at, '26': at, '27': at } },
      { cursor: at, seen: { '14': at, '26': at, '27': at } },
    ]);
    // Archived partners are read (active_test false); Odoo's false for an empty text field becomes null, a boolean's stays.
    expect(pages[1].records[0].data).toMatchObject({ active: false, phone: null, is_company: false, street2: null });
    expect(pages[0].records[1].data.parent_id).toEqual([14, 'Azure Interior']);
    expect(pages[1].rejected).toEqual([
      { externalId: '33', field: 'write_date', reason: `'write_date' is not a timestamp ("not a date")`, payload: { id: 33, name: 'Broken date', write_date: 'not a date' } },
    ]);
    expect(scope.isDone()).toBe(true);
  });

  it('resumes from state: the lookback is read again by id (what was emitted is skipped), then a partner written in the same second as the checkpoint arrives, a later write of an emitted one too', async () => {
    const sent = bodies();
    const lookback = load('partners-batch-1.json');
    lookback.result = [lookback.result[0]];
    const batch = load('partners-batch-1.json');
    batch.result = [batch.result[1], { ...batch.result[0], write_date: '2024-05-02 11:00:00' }];
    nock(server)
      .post('/jsonrpc').reply(200, load('authenticate.json'))
      .post('/jsonrpc').reply(200, load('fields-get-partner.json'))
      .post('/jsonrpc', sent.match).reply(200, lookback)
      .post('/jsonrpc', sent.match).reply(200, batch)
      .post('/jsonrpc', sent.match).reply(200, result([]));
    const { connector } = setup();

    const pages = await readStream(connector, 'partners', config, { cursor: '2024-05-02 10:15:00', seen: { '14': '2024-05-02 10:15:00' } });

    const argsOf = (body: unknown) => (body as { params: { args: unknown[] } }).params.args;
    // Five minutes (the default lookback) before the cursor, up to the end of its second, in id order.
    expect(argsOf(sent.seen[0]).slice(5)).toEqual([
      [[['write_date', '>=', '2024-05-02 10:10:00'], ['write_date', '<', '2024-05-02 10:15:01'], ['id', '>', 0]]],
      { fields: partnerFields, limit: 2, order: 'id asc', context: { active_test: false } },
    ]);
    expect(argsOf(sent.seen[1])[5]).toEqual([after('2024-05-02 10:15:00', '2024-05-02 10:15:01', [14])]);
    expect(pages[0].records).toEqual([]);
    expect(pages[1].records.map((record) => [record.externalId, record.data.write_date])).toEqual([
      ['26', '2024-05-02 10:15:00'],
      ['14', '2024-05-02 11:00:00'],
    ]);
    expect(pages[1].state).toEqual({ cursor: '2024-05-02 11:00:00', seen: { '14': '2024-05-02 11:00:00' } });
    expect(argsOf(sent.seen[2])[5]).toEqual([after('2024-05-02 11:00:00', '2024-05-02 11:00:01', [14])]);
  });

  it('retries a 429 after Retry-After and a 503, then goes on', async () => {
    nock(server)
      .post('/jsonrpc').reply(200, load('authenticate.json'))
      .post('/jsonrpc').reply(200, load('fields-get-partner.json'))
      .post('/jsonrpc').reply(429, 'Too Many Requests', { 'Retry-After': '4' })
      .post('/jsonrpc').reply(503, '<html>Service Unavailable</html>')
      .post('/jsonrpc').reply(200, result([]));
    const { connector, waits } = setup();

    const pages = await readStream(connector, 'partners', config);

    expect(waits[0]).toBe(4000);
    expect(waits).toHaveLength(2);
    expect(pages).toEqual([{ records: [], state: { seen: {} }, progress: { done: 0 } }]);
  });

  it('fails at once when the key is refused: authenticate false, AccessDenied, or HTTP 401 from a proxy', async () => {
    const { connector, waits } = setup();
    const failure = async () => (await readStream(connector, 'partners', config).catch((caught: unknown) => caught)) as ConnectorError;

    nock(server).post('/jsonrpc').reply(200, load('authenticate-refused.json'));
    const refused = await failure();
    nock(server).post('/jsonrpc').reply(200, load('authenticate.json')).post('/jsonrpc').reply(200, load('error-access-denied.json'));
    const denied = await failure();
    nock(server).post('/jsonrpc').once().reply(401, 'Unauthorized');
    const unauthorized = await failure();

    expect([refused, denied, unauthorized].map((error) => [error instanceof ConnectorError, error.kind, error.message])).toEqual([
      [true, 'config', 'The credentials were refused by odoo (login admin@example.com on database acme)'],
      [true, 'config', 'The credentials were refused by odoo (Access Denied)'],
      [true, 'config', 'The credentials were refused by odoo (HTTP 401 on POST /jsonrpc)'],
    ]);
    expect(waits).toEqual([]);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('check signs in and counts partners; a field the database lacks is a config error with Odoo message', async () => {
    const sent = bodies();
    nock(server).post('/jsonrpc', sent.match).reply(200, load('authenticate.json')).post('/jsonrpc', sent.match).reply(200, result(42));
    expect(await setup().connector.check(config, testContext)).toEqual({ ok: true, message: 'Signed in to Odoo database acme as admin@example.com (uid 2); 42 partners' });
    expect(sent.seen[1]).toEqual(kw(2, 'res.partner', 'search_count', [[]], { context: { active_test: false } }));

    nock(server).post('/jsonrpc').reply(200, load('authenticate.json')).post('/jsonrpc').reply(200, load('error-invalid-field.json'));
    const error = (await readStream(setup().connector, 'partners', { ...config, extra_fields: { partners: ['mobile'] } }).catch((caught: unknown) => caught)) as ConnectorError;
    expect([error.kind, error.message]).toEqual(['config', "odoo: object.execute_kw failed: builtins.ValueError: Invalid field 'mobile' on model 'res.partner'"]);
  });
});

describe('odoo: write_date as real servers compare it', () => {
  for (const comparison of ['microseconds', 'whole seconds'] as const) {
    it(`compared in ${comparison}: a mass write of more than a batch in one transaction arrives once each, and what follows it too`, async () => {
      const partners: StoredRecord[] = [1, 2].map((id) => ({ id, name: `Early ${id}`, writtenUs: microsecondsOf('2024-05-02 10:14:59') + 100_000 }));
      // One transaction writes seven partners: one write_date, with microseconds, for all of them.
      const massWrite = microsecondsOf('2024-05-02 10:15:00') + 482_913;
      for (let id = 3; id <= 9; id++) partners.push({ id, name: `Imported ${id}`, writtenUs: massWrite });
      const calls = fakeOdoo(server, partners, comparison);
      const small = { ...config, page_size: 2 };

      const first = await readStream(setup().connector, 'partners', small);

      expect(first.flatMap((page) => page.records.map((record) => record.externalId))).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9']);
      // Five batches of two, the last of one, and nothing read twice.
      expect(calls.searchRead).toBe(5);
      const state = first.at(-1)!.state;
      expect(state.cursor).toBe('2024-05-02 10:15:00');

      // Later: a partner created in the checkpoint's second by another transaction, then a second mass write.
      partners.push({ id: 10, name: 'Same second', writtenUs: microsecondsOf('2024-05-02 10:15:00') + 900_000 });
      for (const partner of partners.filter((candidate) => candidate.id >= 3 && candidate.id <= 9)) partner.writtenUs = microsecondsOf('2024-05-02 10:16:30') + 1;

      const second = await readStream(setup().connector, 'partners', small, state);

      expect(second.flatMap((page) => page.records.map((record) => [record.externalId, record.data.write_date]))).toEqual([
        ['10', '2024-05-02 10:15:00'],
        ...[3, 4, 5, 6, 7, 8, 9].map((id) => [String(id), '2024-05-02 10:16:30']),
      ]);
    });

    it(`compared in ${comparison}: records a long transaction dated before the checkpoint and committed after the run arrive in the next run, through the lookback`, async () => {
      const partners: StoredRecord[] = [
        { id: 1, name: 'Ann', writtenUs: microsecondsOf('2024-05-02 10:15:00') + 200_000 },
        { id: 2, name: 'Bob', writtenUs: microsecondsOf('2024-05-02 10:15:04') + 700_000 },
      ];
      fakeOdoo(server, partners, comparison);
      // The state as saved, fingerprints included (readStream leaves them out).
      const { records, state } = await readAll(setup().connector, 'partners', config);
      expect(records.map((record) => record.externalId)).toEqual(['1', '2']);

      // An import that started at 10:13:30 commits now: a new partner and a change to Ann, both dated 10:13:30.25.
      const importStart = microsecondsOf('2024-05-02 10:13:30') + 250_000;
      partners.push({ id: 3, name: 'Cem', writtenUs: importStart });
      Object.assign(partners[0], { name: 'Ann Smith', writtenUs: importStart });
      // Bob is changed again within the second he was read in.
      Object.assign(partners[1], { name: 'Bob Jones', writtenUs: microsecondsOf('2024-05-02 10:15:04') + 900_000 });
      const names = (pages: RecordPage[]) => pages.flatMap((page) => page.records.map((record) => [record.externalId, record.data.name]));

      expect(names(await readStream(setup().connector, 'partners', config, state))).toEqual([
        ['1', 'Ann Smith'],
        ['2', 'Bob Jones'],
        ['3', 'Cem'],
      ]);
      // Without a lookback only the cursor's own second is read again: the import is lost.
      expect(names(await readStream(setup().connector, 'partners', { ...config, lookback_seconds: 0 }, state))).toEqual([['2', 'Bob Jones']]);
    });
  }
});

describe('odoo: deletion sweeps', () => {
  const manyPartners = () => Array.from({ length: 250 }, (_, index) => ({ id: index + 1, name: `Partner ${index + 1}`, writtenUs: microsecondsOf('2024-05-02 10:00:00') + index }));
  // Batches of 2: ids are listed 100 per page (50 batches' worth).
  const sweeping: OdooConfig = { ...config, deletion_sweep_hours: 24 };
  const sweepPages = (pages: RecordPage[]) => pages.filter((page) => page.present).map((page) => [page.present!.length, page.present![0], page.sweep]);

  it('lists every id after the incremental read when due, archived partners included, in pages from the first to the last; not again for deletion_sweep_hours', async () => {
    const calls = fakeOdoo(server, manyPartners(), 'whole seconds');

    const first = await readStream(setup().connector, 'partners', sweeping);

    expect(first.flatMap((page) => page.records)).toHaveLength(250);
    expect(sweepPages(first)).toEqual([
      [100, '1', { start: true }],
      [100, '101', {}],
      [50, '201', { end: true }],
    ]);
    expect(calls.searches[0]).toEqual([[['id', '>', 0]], { limit: 100, order: 'id asc', context: { active_test: false } }]);
    expect(calls.searches[1][0]).toEqual([['id', '>', 100]]);
    const state = first.at(-1)!.state;
    expect(Date.now() - Date.parse(String(state.swept_at))).toBeLessThan(60_000);
    expect(state.sweep_after_id).toBeUndefined();
    // Pages before the sweep's end say where it stands, so a run cut short goes on from there.
    expect(first.filter((page) => page.present).map((page) => page.state.sweep_after_id)).toEqual([100, 200, undefined]);

    const second = await readStream(setup().connector, 'partners', sweeping, state);
    expect(calls.searches).toHaveLength(3);
    expect(second.every((page) => page.state.swept_at === state.swept_at)).toBe(true);

    const dayOld = { ...state, swept_at: new Date(Date.now() - 25 * 3_600_000).toISOString() };
    expect(sweepPages(await readStream(setup().connector, 'partners', sweeping, dayOld))).toHaveLength(3);
  });

  it('goes on with a sweep cut short, without marking a new start; never sweeps with deletion_sweep_hours 0', async () => {
    const calls = fakeOdoo(server, manyPartners(), 'whole seconds');
    const cutShort = { cursor: '2024-05-02 10:00:00', seen: {}, swept_at: new Date().toISOString(), sweep_after_id: 100 };

    const pages = await readStream(setup().connector, 'partners', { ...sweeping, deletion_sweep_hours: 0 }, cutShort);

    expect(sweepPages(pages)).toEqual([
      [100, '101', {}],
      [50, '201', { end: true }],
    ]);
    expect(await readStream(setup().connector, 'partners', { ...sweeping, deletion_sweep_hours: 0 })).not.toContainEqual(expect.objectContaining({ present: expect.anything() }));
    expect(calls.searches).toHaveLength(2);
  });
});

describe('odoo: sale orders and invoices', () => {
  it('reads sale orders (quotes and orders) and customer invoices only (move_type filter)', async () => {
    const sent = bodies();
    nock(server)
      .post('/jsonrpc').reply(200, load('authenticate.json'))
      .post('/jsonrpc').reply(200, result({}))
      .post('/jsonrpc', sent.match).reply(200, load('sale-orders.json'))
      .post('/jsonrpc', sent.match).reply(200, result([]));
    nock(server)
      .post('/jsonrpc').reply(200, load('authenticate.json'))
      .post('/jsonrpc').reply(200, result({}))
      .post('/jsonrpc', sent.match).reply(200, load('invoices.json'));

    const orders = await readStream(setup().connector, 'sale_orders', config);
    const invoices = await readStream(setup().connector, 'invoices', config);

    expect(orders.flatMap((page) => page.records.map((record) => [record.externalId, record.data.state]))).toEqual([['7', 'sale'], ['12', 'draft']]);
    expect(orders[0].state).toEqual({ cursor: '2024-05-03 14:00:00', seen: { '12': '2024-05-03 14:00:00' } });
    expect(sent.seen[0]).toEqual(kw(3, 'sale.order', 'search_read', [[]], { fields: odooStreams[1].fields, limit: 2, order }));
    expect(sent.seen[2]).toEqual(kw(3, 'account.move', 'search_read', [[['move_type', 'in', ['out_invoice']]]], { fields: odooStreams[2].fields, limit: 2, order }));
    expect(invoices[0].records.map((record) => record.externalId)).toEqual(['41']);
  });

  it('maps partners with their company, quotes vs orders with amount, currency and salesperson, and invoices', async () => {
    const mapping = compileMapping(await loadMappingFile(defaultConnector.defaultMappingPath));
    const ctx = (stream: string) => ({ source: 'odoo', stream, defaultRegion: 'US' });
    const [order, quote] = load('sale-orders.json').result;

    expect(mapping.map('partners', load('partners-batch-1.json').result[1], ctx('partners'))).toMatchObject({
      ok: true,
      record: {
        identifiers: [{ scheme: 'odoo:partner_id', value: '26' }],
        person: { full_name: 'Brandon Freeman', job_title: 'Creative Director', emails: [{ address: 'brandon.freeman55@example.com' }] },
        organisation: { name: 'Azure Interior' },
      },
    });
    expect(mapping.map('sale_orders', order, ctx('sale_orders'))).toMatchObject({
      ok: true,
      record: { identifiers: [{ value: '26' }], interactions: [{ kind: 'order', external_id: 'S00007', status: 'sale', amount: 2068.85, currency: 'USD', owner: 'Mitchell Admin' }] },
    });
    expect(mapping.map('sale_orders', quote, ctx('sale_orders'))).toMatchObject({ ok: true, record: { interactions: [{ kind: 'quote', owner: 'Marc Demo', amount: 552 }] } });
    expect(mapping.map('invoices', load('invoices.json').result[0], ctx('invoices'))).toMatchObject({
      ok: true,
      record: { interactions: [{ kind: 'invoice', external_id: 'INV/2024/00012', status: 'not_paid', amount: 2068.85, currency: 'USD' }] },
    });
  });
});

describe('odoo: write-back', () => {
  it('writes email, phone and the golden id, then blacklists the address for an opt-out', async () => {
    const sent = bodies();
    nock(server)
      .post('/jsonrpc', sent.match).reply(200, load('authenticate.json'))
      .post('/jsonrpc', sent.match).reply(200, result(true))
      .post('/jsonrpc', sent.match).reply(200, result([]))
      .post('/jsonrpc', sent.match).reply(200, result(5));

    await writeCustomer(createOdooHttp(config), config, '26', { email: 'b.freeman@example.com', phone: '+12015550123', golden_id: 'g-42', opt_out: true });

    expect(sent.seen).toEqual([
      authenticate,
      kw(2, 'res.partner', 'write', [[26], { email: 'b.freeman@example.com', phone: '+12015550123', x_golden_id: 'g-42' }], {}),
      kw(3, 'mail.blacklist', 'search_read', [[['email', '=', 'b.freeman@example.com']]], { fields: ['id', 'active'], context: { active_test: false } }),
      kw(4, 'mail.blacklist', 'create', [{ email: 'b.freeman@example.com' }], {}),
    ]);
  });

  it('opts back in by archiving the blacklist entry; with opt_out_field it writes that field instead', async () => {
    const sent = bodies();
    nock(server)
      .post('/jsonrpc', sent.match).reply(200, load('authenticate.json'))
      .post('/jsonrpc', sent.match).reply(200, result([{ email: 'brandon.freeman55@example.com' }]))
      .post('/jsonrpc', sent.match).reply(200, result([{ id: 9, active: true }]))
      .post('/jsonrpc', sent.match).reply(200, result(true));
    await writeCustomer(createOdooHttp(config), config, '26', { opt_out: false });
    expect(sent.seen.slice(1)).toEqual([
      kw(2, 'res.partner', 'read', [[26]], { fields: ['email'] }),
      kw(3, 'mail.blacklist', 'search_read', [[['email', '=', 'brandon.freeman55@example.com']]], { fields: ['id', 'active'], context: { active_test: false } }),
      kw(4, 'mail.blacklist', 'write', [[9], { active: false }], {}),
    ]);

    const custom = { ...config, opt_out_field: 'x_no_marketing', golden_id_field: 'x_hub_id' };
    const again = bodies();
    nock(server).post('/jsonrpc', again.match).reply(200, load('authenticate.json')).post('/jsonrpc', again.match).reply(200, result(true));
    await writeCustomer(createOdooHttp(custom), custom, '26', { opt_out: true, golden_id: 'g-1' });
    expect(again.seen[1]).toEqual(kw(2, 'res.partner', 'write', [[26], { x_hub_id: 'g-1', x_no_marketing: true }], {}));
  });
});
