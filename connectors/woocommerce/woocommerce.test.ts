import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compileMapping, loadMappingFile } from '../../mapping/engine.js';
import { ConnectorError } from '../kit/contract.js';
import { bodies, fakeSleep, fixture, readStream, testContext } from '../kit/testing.js';
import { createWooHttp } from './client.js';
import type { WoocommerceConfig } from './config.gen.js';
import { connector as defaultConnector, createWooConnector } from './connector.js';
import { writeCustomer } from './write-back.js';

const store = 'https://shop.example.com';
const config: WoocommerceConfig = { url: 'https://shop.example.com/', consumer_key: 'ck_test_key_1234', consumer_secret: 'cs_test_secret_5678', per_page: 2, lookback_seconds: 1 };
const load = (name: string) => fixture(import.meta.url, `fixtures/${name}`);
const basic = `Basic ${Buffer.from('ck_test_key_1234:cs_test_secret_5678').toString('base64')}`;
const paging = (total: number, pages: number) => ({ 'X-WP-Total': String(total), 'X-WP-TotalPages': String(pages) });
const ordersQuery = (extra: Record<string, string>) => ({ dates_are_gmt: 'true', orderby: 'modified', order: 'asc', per_page: '2', ...extra });

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

const api = () => nock(store, { reqheaders: { authorization: basic } });
function setup() {
  const { waits, sleep } = fakeSleep();
  return { waits, connector: createWooConnector({ sleep }) };
}

describe('woocommerce: orders', () => {
  it('reads orders by modified date, re-anchoring modified_after on the cursor after each page, until X-WP-TotalPages', async () => {
    const scope = api()
      .get('/wp-json/wc/v3/orders')
      .query(ordersQuery({ page: '1' }))
      .reply(200, load('orders-page-1.json'), paging(4, 2))
      // Both orders of page 1 share 16:28:08: asked again from one second before, nothing new comes
      // back, so the same anchor's next page is read.
      .get('/wp-json/wc/v3/orders')
      .query(ordersQuery({ modified_after: '2017-03-22T16:28:07', page: '1' }))
      .reply(200, load('orders-page-1.json'), paging(4, 2))
      .get('/wp-json/wc/v3/orders')
      .query(ordersQuery({ modified_after: '2017-03-22T16:28:07', page: '2' }))
      .reply(200, load('orders-page-2.json'), paging(4, 2));
    const { connector } = setup();

    const pages = await readStream(connector, 'orders', config);

    expect(pages.map((page) => page.records.map((record) => record.externalId))).toEqual([['727', '728'], [], ['729']]);
    expect(pages[0].records[1].data).toMatchObject({ customer_id: 0, billing: { email: 'guest.buyer@example.com' } });
    expect(pages.map((page) => page.state)).toEqual([
      { cursor: '2017-03-22T16:28:08', seen: { '727': '2017-03-22T16:28:08', '728': '2017-03-22T16:28:08' } },
      { cursor: '2017-03-22T16:28:08', seen: { '727': '2017-03-22T16:28:08', '728': '2017-03-22T16:28:08' } },
      { cursor: '2017-03-23T09:00:00', seen: { '729': '2017-03-23T09:00:00' } },
    ]);
    // The order with an unreadable date_modified_gmt is quarantined; the stream goes on.
    expect(pages[2].rejected).toEqual([
      { externalId: '730', field: 'date_modified_gmt', reason: `'date_modified_gmt' is not a timestamp ("yesterday")`, payload: load('orders-page-2.json')[1] },
    ]);
    expect(scope.isDone()).toBe(true);
  });

  it('resumes from state: the second order with the boundary timestamp arrives, the first is not read twice', async () => {
    api()
      .get('/wp-json/wc/v3/orders')
      .query(ordersQuery({ modified_after: '2017-03-22T16:28:07', page: '1' }))
      .reply(200, load('orders-page-1.json'), paging(4, 2))
      .get('/wp-json/wc/v3/orders')
      .query(ordersQuery({ modified_after: '2017-03-22T16:28:07', page: '2' }))
      .reply(200, load('orders-page-2.json'), paging(4, 2));
    const { connector } = setup();

    const pages = await readStream(connector, 'orders', config, { cursor: '2017-03-22T16:28:08', seen: { '727': '2017-03-22T16:28:08' } });

    expect(pages.flatMap((page) => page.records.map((record) => record.externalId))).toEqual(['728', '729']);
  });

  it('retries a 429 after Retry-After and a 500, inside the page loop', async () => {
    api()
      .get('/wp-json/wc/v3/orders')
      .query(true)
      .reply(429, '<html>Too Many Requests</html>', { 'Retry-After': '3' })
      .get('/wp-json/wc/v3/orders')
      .query(true)
      .reply(500, { code: 'internal_server_error', message: 'There has been a critical error on this website.' })
      .get('/wp-json/wc/v3/orders')
      .query(ordersQuery({ page: '1' }))
      .reply(200, [], paging(0, 0));
    const { connector, waits } = setup();

    const pages = await readStream(connector, 'orders', config);

    expect(waits[0]).toBe(3000);
    expect(waits).toHaveLength(2);
    expect(pages).toEqual([{ records: [], state: { seen: {} }, progress: { done: 0 } }]);
  });

  it('fails at once on 401 with a message naming woocommerce, and check reports it', async () => {
    const scope = api().get('/wp-json/wc/v3/orders').query(true).twice().reply(401, load('error-401.json'));
    const { connector, waits } = setup();

    const error = (await readStream(connector, 'orders', config).catch((caught: unknown) => caught)) as ConnectorError;
    const checked = await connector.check(config, testContext);

    expect(error).toBeInstanceOf(ConnectorError);
    expect(error.kind).toBe('config');
    expect(error.message).toBe('The credentials were refused by woocommerce (HTTP 401 on GET /wp-json/wc/v3/orders)');
    expect(checked).toEqual({ ok: false, message: error.message });
    expect(waits).toEqual([]);
    expect(scope.isDone()).toBe(true);
  });

  it('check counts the orders', async () => {
    api().get('/wp-json/wc/v3/orders').query({ per_page: '1' }).reply(200, [load('orders-page-1.json')[0]], paging(4, 4));
    expect(await setup().connector.check(config, testContext)).toEqual({ ok: true, message: 'Connected to the WooCommerce store at https://shop.example.com/: 4 orders' });
  });
});

describe('woocommerce: customers', () => {
  /**
   * A store's customer list as WooCommerce answers it: `per_page` customers from `offset` in id order (the test's
   * per_page is 2). `change(request, list)` may delete customers before a request is answered. Returns the offsets asked.
   * It replaces the lists set up before it.
   */
  function customerList(list: unknown[], change: (request: number, list: unknown[]) => void = () => undefined): number[] {
    const offsets: number[] = [];
    nock.cleanAll(); // a list answers alone: no interceptor of an earlier list of the test
    api()
      .get('/wp-json/wc/v3/customers')
      .query((query) => query.per_page === '2' && query.orderby === 'id' && query.order === 'asc' && query.role === 'all' && query.page === undefined)
      .times(50)
      .reply((uri) => {
        const offset = Number(new URL(uri, store).searchParams.get('offset'));
        change(offsets.length, list);
        offsets.push(offset);
        return [200, list.slice(offset, offset + 2), { 'X-WP-Total': String(list.length) }];
      });
    return offsets;
  }
  const customer = (id: number) => ({ id, email: `customer${id}@example.com` });
  const listed = (pages: { records: { externalId: string }[] }[]) => pages.flatMap((page) => page.records.map((record) => Number(record.externalId)));

  it('sweeps every customer in id order, each request from the last one listed, and quarantines one without id once', async () => {
    const offsets = customerList([...load('customers-page-1.json'), ...load('customers-page-2.json')]);

    // A complete sweep in the state starts again at the first customer.
    const pages = await readStream(setup().connector, 'customers', config, { after_id: 0, position: 0, complete: true });

    expect(offsets).toEqual([0, 1, 2, 3]);
    expect(pages.map((page) => page.records.map((record) => record.externalId))).toEqual([['25', '26'], ['27'], [], []]);
    expect(pages.map((page) => page.state)).toEqual([
      { after_id: 26, position: 2, complete: false },
      { after_id: 27, position: 3, complete: false },
      { after_id: 27, position: 4, complete: false },
      { after_id: 0, position: 0, complete: true },
    ]);
    expect(pages.map((page) => page.progress)).toEqual([
      { done: 2, total: 4 },
      { done: 3, total: 4 },
      { done: 4, total: 4 },
      { done: 4, total: 4 },
    ]);
    // The hub marks customers not seen by a sweep that ran from start to end as deleted.
    expect(pages.map((page) => page.sweep)).toEqual([{ start: true }, {}, {}, { end: true }]);
    expect(pages.flatMap((page) => page.rejected ?? [])).toEqual([{ reason: "customer without a positive integer 'id'", field: 'id', payload: load('customers-page-2.json')[1] }]);
  });

  it('resumes an interrupted sweep after the last customer it listed', async () => {
    const offsets = customerList([25, 26, 27].map(customer));

    const pages = await readStream(setup().connector, 'customers', config, { after_id: 26, position: 2, complete: false });

    expect(offsets).toEqual([1, 2]);
    expect(listed(pages)).toEqual([27]);
    // A resumed sweep ends the sweep an earlier run began; it does not start one.
    expect(pages.map((page) => page.sweep)).toEqual([{}, { end: true }]);
  });

  it('lists every customer still there when others are deleted during the sweep or before it resumes', async () => {
    // Customer 25 is deleted after the first page: 27 moves to where the next page would have started.
    const offsets = customerList([25, 26, 27, 28, 29].map(customer), (request, list) => request === 1 && list.shift());
    const pages = await readStream(setup().connector, 'customers', config, undefined);
    expect(listed(pages)).toEqual([25, 26, 27, 28, 29]);
    expect(offsets).toEqual([0, 1, 0, 1, 2, 3]);
    expect(pages.map((page) => page.sweep)).toEqual([{ start: true }, {}, {}, {}, { end: true }]);

    // Deleted between two runs, 25 and 26 (the last one listed) among them: the sweep resumes without a gap.
    customerList([27, 28, 29].map(customer));
    expect(listed(await readStream(setup().connector, 'customers', config, { after_id: 26, position: 2, complete: false }))).toEqual([27, 28, 29]);
    // So many deleted that the list is shorter than the position reached: the sweep steps back to the customers left.
    customerList([31, 32].map(customer));
    expect(listed(await readStream(setup().connector, 'customers', config, { after_id: 30, position: 6, complete: false }))).toEqual([31, 32]);
  });

  it('fails, naming the reason, when the store answers every offset with the same customers', async () => {
    api().get('/wp-json/wc/v3/customers').query(true).times(5).reply(200, [25, 26].map(customer), { 'X-WP-Total': '4' });
    const error = await readStream(setup().connector, 'customers', config, undefined).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConnectorError);
    expect(error).toMatchObject({ kind: 'system' });
    expect((error as Error).message).toMatch(/answered offset 1 as it did the request before/);
  });

  it('starts a new sweep from a checkpoint of the page-numbered sweep before', async () => {
    const offsets = customerList([25, 26, 27].map(customer));
    const pages = await readStream(setup().connector, 'customers', config, { next_page: 2, complete: false });
    expect(offsets[0]).toBe(0);
    expect(listed(pages)).toEqual([25, 26, 27]);
    expect(pages[0].sweep).toEqual({ start: true });
  });
});

describe('woocommerce: write-back', () => {
  it('PUTs the customer fields, the phone into billing and the golden id into meta_data', async () => {
    const sent = bodies();
    api().put('/wp-json/wc/v3/customers/25', sent.match).reply(200, load('customer-update.json'));

    const saved = await writeCustomer(createWooHttp(config), config, '25', {
      email: 'john.doe@new.example.com',
      first_name: 'John',
      phone: '+15555550123',
      golden_id: 'g-42',
    });

    expect(sent.seen).toEqual([
      { email: 'john.doe@new.example.com', first_name: 'John', billing: { phone: '+15555550123' }, meta_data: [{ key: 'customer_hub_golden_id', value: 'g-42' }] },
    ]);
    expect(saved).toMatchObject({ id: 25, email: 'john.doe@new.example.com' });
    expect(await writeCustomer(createWooHttp(config), config, '25', {})).toBeUndefined();
  });
});

describe('woocommerce: default mapping', () => {
  it('identifies a guest order by its billing email, and maps amount, currency and status', async () => {
    const mapping = compileMapping(await loadMappingFile(defaultConnector.defaultMappingPath));
    const guest = mapping.map('orders', load('orders-page-1.json')[1], { source: 'woo', stream: 'orders', defaultRegion: 'US' });
    const customer = mapping.map('customers', load('customers-page-1.json')[1], { source: 'woo', stream: 'customers', defaultRegion: 'US' });

    expect(guest).toMatchObject({
      ok: true,
      record: { person: { emails: [{ address: 'guest.buyer@example.com' }] }, interactions: [{ kind: 'order', external_id: '728', status: 'completed', amount: 18, currency: 'USD' }] },
    });
    // customer_id 0 marks a guest: no identifier, or every guest would be one customer.
    expect(guest.ok && guest.record.identifiers).toBeUndefined();
    const registered = mapping.map('orders', load('orders-page-1.json')[0], { source: 'woo', stream: 'orders', defaultRegion: 'US' });
    expect(registered.ok && registered.record.identifiers).toEqual([{ scheme: 'woocommerce:customer_id', value: '25', verified: true }]);
    expect(customer).toMatchObject({ ok: true, record: { identifiers: [{ scheme: 'woocommerce:customer_id', value: '26' }], organisation: { name: 'Silva Ltda' } } });
  });
});
