import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compileMapping, loadMappingFile } from '../../mapping/engine.js';
import { ConnectorError } from '../kit/contract.js';
import { bodies, fakeSleep, fixture, readStream, testContext } from '../kit/testing.js';
import type { OdooConfig } from './config.gen.js';
import { connector as defaultConnector, createOdooConnector } from './connector.js';
import { createOdooHttp } from './rpc.js';
import { odooStreams } from './streams.js';
import { writeCustomer } from './write-back.js';

const server = 'https://acme.odoo.com';
const config: OdooConfig = { url: 'https://acme.odoo.com', database: 'acme', login: 'admin@example.com', api_key: 'odoo-api-key-0123456789', page_size: 2 };
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
    const after = (ids: number[]) => [['|', ['write_date', '>', at], '&', ['write_date', '=', at], ['id', 'not in', ids]]];
    const kwargs = { fields: partnerFields, limit: 2, order, context: { active_test: false } };
    expect(sent.seen).toEqual([
      authenticate,
      kw(2, 'res.partner', 'fields_get', [partnerFields], { attributes: ['type'] }),
      kw(3, 'res.partner', 'search_read', [[]], kwargs),
      kw(4, 'res.partner', 'search_read', after([14, 26]), kwargs),
      kw(5, 'res.partner', 'search_read', after([14, 26, 27]), kwargs),
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

  it('resumes from state: a partner written in the same second as the checkpoint arrives, a later write of an emitted one too', async () => {
    const sent = bodies();
    const batch = load('partners-batch-1.json');
    batch.result = [batch.result[1], { ...batch.result[0], write_date: '2024-05-02 11:00:00' }];
    nock(server)
      .post('/jsonrpc').reply(200, load('authenticate.json'))
      .post('/jsonrpc').reply(200, load('fields-get-partner.json'))
      .post('/jsonrpc', sent.match).reply(200, batch)
      .post('/jsonrpc', sent.match).reply(200, result([]));
    const { connector } = setup();

    const pages = await readStream(connector, 'partners', config, { cursor: '2024-05-02 10:15:00', seen: { '14': '2024-05-02 10:15:00' } });

    expect((sent.seen[0] as { params: { args: unknown[] } }).params.args[5]).toEqual([
      ['|', ['write_date', '>', '2024-05-02 10:15:00'], '&', ['write_date', '=', '2024-05-02 10:15:00'], ['id', 'not in', [14]]],
    ]);
    expect(pages[0].records.map((record) => [record.externalId, record.data.write_date])).toEqual([
      ['26', '2024-05-02 10:15:00'],
      ['14', '2024-05-02 11:00:00'],
    ]);
    expect(pages[0].state).toEqual({ cursor: '2024-05-02 11:00:00', seen: { '14': '2024-05-02 11:00:00' } });
    expect((sent.seen[1] as { params: { args: unknown[] } }).params.args[5]).toEqual([
      ['|', ['write_date', '>', '2024-05-02 11:00:00'], '&', ['write_date', '=', '2024-05-02 11:00:00'], ['id', 'not in', [14]]],
    ]);
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
