import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { loadMappingFile, compileMapping } from '../../mapping/engine.js';
import { ConnectorError } from '../kit/contract.js';
import { bodies, fakeSleep, fixture, readStream, testContext } from '../kit/testing.js';
import type { ShopifyConfig } from './config.gen.js';
import { connector as defaultConnector, createShopifyConnector } from './connector.js';
import { createShopifyHttp } from './graphql.js';
import { shopifyStreams } from './streams.js';
import { consentUpdateMutation, customerUpdateMutation, writeCustomer } from './write-back.js';

const shop = 'https://acme.myshopify.com';
const path = '/admin/api/2025-01/graphql.json';
// Deletion sweeps are tested apart (below); the other tests list the requests of the incremental read alone.
const config: ShopifyConfig = { shop: 'acme', access_token: 'shpat_test_token_123', page_size: 2, deletion_sweep_hours: 0 };
const load = (name: string) => fixture(import.meta.url, `fixtures/${name}`);
const customersQuery = shopifyStreams[0].query;
const ordersQuery = shopifyStreams[1].query;

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

function setup() {
  const { waits, sleep } = fakeSleep();
  return { waits, connector: createShopifyConnector({ sleep }) };
}

const api = () => nock(shop, { reqheaders: { 'x-shopify-access-token': 'shpat_test_token_123' } });

describe('shopify: reading', () => {
  it('pages customers by endCursor, sorted by UPDATED_AT, with the cursor and the boundary ids in each checkpoint', async () => {
    const sent = bodies();
    const scope = api().post(path, sent.match).reply(200, load('customers-page-1.json')).post(path, sent.match).reply(200, load('customers-page-2.json'));
    const { connector } = setup();

    const pages = await readStream(connector, 'customers', config);

    expect(sent.seen).toEqual([
      { query: customersQuery, variables: { first: 2, after: null, query: null } },
      { query: customersQuery, variables: { first: 2, after: 'eyJsYXN0X2lkIjo1NDQzNjUyNjcsImxhc3RfdmFsdWUiOiIyMDI0LTA1LTAyIn0=', query: null } },
    ]);
    expect(customersQuery).toContain('customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT)');
    expect(customersQuery).toContain('emailMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt }');
    expect(pages.map((page) => page.records.map((record) => record.externalId))).toEqual([['207119551', '544365267'], ['812745336']]);
    expect(pages[0].records[0].data).toEqual(load('customers-page-1.json').data.customers.nodes[0]);
    expect(pages[0].state).toEqual({ cursor: '2024-05-02T10:15:00Z', seen: { '207119551': '2024-05-02T10:15:00Z', '544365267': '2024-05-02T10:15:00Z' } });
    // The default lookback of 300 s keeps ids updated in the five minutes before the cursor.
    expect(pages[1].state).toEqual({ cursor: '2024-05-03T09:30:00Z', seen: { '812745336': '2024-05-03T09:30:00Z' } });
    expect(scope.isDone()).toBe(true);
  });

  it('quarantines a node without a Shopify GID and goes on', async () => {
    api().post(path).reply(200, load('customers-page-1.json')).post(path).reply(200, load('customers-page-2.json'));
    const { connector } = setup();

    const pages = await readStream(connector, 'customers', config);

    expect(pages[1].rejected).toEqual([
      { reason: `no Shopify GID in 'id' ("not-a-gid")`, field: 'id', payload: load('customers-page-2.json').data.customers.nodes[1] },
    ]);
    expect(pages[1].records).toHaveLength(1);
  });

  it('resumes from state with updated_at:>= the cursor minus the lookback, and lets a second record with the boundary timestamp through', async () => {
    const sent = bodies();
    api().post(path, sent.match).reply(200, load('customers-page-1.json')).post(path, sent.match).reply(200, load('customers-page-2.json'));
    const { connector } = setup();
    // The last run stopped after Bob, at 10:15:00; Jane shares that timestamp and was not read yet.
    const state = { cursor: '2024-05-02T10:15:00Z', seen: { '207119551': '2024-05-02T10:15:00Z' } };

    const pages = await readStream(connector, 'customers', { ...config, lookback_seconds: 60 }, state);

    expect((sent.seen[0] as { variables: unknown }).variables).toEqual({ first: 2, after: null, query: "updated_at:>='2024-05-02T10:14:00Z'" });
    expect(pages.flatMap((page) => page.records.map((record) => record.externalId))).toEqual(['544365267', '812745336']);
  });

  it('a record updated again after it was read arrives again; a cursor that goes backwards is not followed', async () => {
    const body = load('customers-page-2.json');
    body.data.customers.nodes = [{ ...body.data.customers.nodes[0], updatedAt: '2024-05-01T00:00:00Z' }];
    api().post(path).reply(200, body);
    const { connector } = setup();

    const [page] = await readStream(connector, 'customers', config, { cursor: '2024-05-02T10:15:00Z', seen: { '812745336': '2024-04-01T00:00:00Z' } });

    expect(page.records.map((record) => record.externalId)).toEqual(['812745336']);
    expect(page.state).toMatchObject({ cursor: '2024-05-02T10:15:00Z' });
  });

  it('reads orders of every status (no status filter) with amount, currency and customer', async () => {
    const sent = bodies();
    api().post(path, sent.match).reply(200, load('orders-page-1.json'));
    const { connector } = setup();

    const [page] = await readStream(connector, 'orders', config);

    expect(sent.seen).toEqual([{ query: ordersQuery, variables: { first: 2, after: null, query: null } }]);
    expect(ordersQuery).toContain('orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT)');
    expect(ordersQuery).not.toContain('status');
    expect(page.records.map((record) => [record.externalId, record.data.displayFinancialStatus])).toEqual([
      ['450789469', 'PAID'],
      ['1073459962', 'REFUNDED'],
    ]);
  });
});

describe('shopify: deletion sweeps', () => {
  const sweeping: ShopifyConfig = { ...config, deletion_sweep_hours: 24 };
  const ids = (from: number, to: number) => ({ data: { customers: { nodes: Array.from({ length: to - from + 1 }, (_, index) => ({ id: `gid://shopify/Customer/${from + index}` })) } } });

  it('lists every customer id after the incremental read, 250 per request in id order, first page to last; orders are never swept', async () => {
    const sent = bodies();
    api()
      .post(path).reply(200, load('customers-page-1.json'))
      .post(path).reply(200, load('customers-page-2.json'))
      .post(path, sent.match).reply(200, ids(1, 250))
      .post(path, sent.match).reply(200, ids(251, 253));

    const pages = await readStream(setup().connector, 'customers', sweeping);

    const idsQuery = shopifyStreams[0].idsQuery!;
    expect(idsQuery).toContain('customers(first: $first, query: $query, sortKey: ID) { nodes { id } }');
    expect(sent.seen).toEqual([
      { query: idsQuery, variables: { first: 250, query: 'id:>=1' } },
      { query: idsQuery, variables: { first: 250, query: 'id:>=251' } },
    ]);
    const swept = pages.filter((page) => page.present);
    expect(swept.map((page) => [page.present!.length, page.present![0], page.sweep, page.state.sweep_after_id])).toEqual([
      [250, '1', { start: true }, 250],
      [3, '251', { end: true }, undefined],
    ]);
    expect(Date.now() - Date.parse(String(pages.at(-1)!.state.swept_at))).toBeLessThan(60_000);

    api().post(path).reply(200, load('orders-page-1.json'));
    expect((await readStream(setup().connector, 'orders', sweeping)).some((page) => page.present)).toBe(false);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('fails the run when an id is not a Shopify GID, before the sweep ends', async () => {
    api().post(path).reply(200, { data: { customers: { pageInfo: { hasNextPage: false, endCursor: null }, nodes: [] } } }).post(path).reply(200, { data: { customers: { nodes: [{ id: 'not-a-gid' }] } } });
    const error = (await readStream(setup().connector, 'customers', sweeping).catch((caught: unknown) => caught)) as ConnectorError;
    expect([error.kind, error.message]).toEqual(['system', 'shopify: a deletion sweep got an id that is not a Shopify GID ("not-a-gid")']);
  });
});

describe('shopify: throttling and failures', () => {
  it('waits for the cost bucket to refill before the next query', async () => {
    const first = load('customers-page-1.json');
    first.extensions.cost.throttleStatus.currentlyAvailable = 20;
    api().post(path).reply(200, first).post(path).reply(200, load('customers-page-2.json'));
    const { connector, waits } = setup();

    await readStream(connector, 'customers', config);

    // 52 points asked, 20 available, 100 restored per second: 0.32 s.
    expect(waits).toEqual([320]);
  });

  it('retries a THROTTLED error after the bucket has refilled', async () => {
    api().post(path).reply(200, load('throttled.json')).post(path).reply(200, load('orders-page-1.json'));
    const { connector, waits } = setup();

    const [page] = await readStream(connector, 'orders', config);

    expect(waits).toEqual([500]);
    expect(page.records).toHaveLength(2);
  });

  it('honours 429 with Retry-After, and retries a 500', async () => {
    api()
      .post(path)
      .reply(429, { errors: 'Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.' }, { 'Retry-After': '2.0' })
      .post(path)
      .reply(500, { errors: 'Internal Server Error' })
      .post(path)
      .reply(200, load('orders-page-1.json'));
    const { connector, waits } = setup();

    const [page] = await readStream(connector, 'orders', config);

    expect(waits[0]).toBe(2000);
    expect(waits).toHaveLength(2);
    expect(page.records).toHaveLength(2);
  });

  it('fails at once on 401, naming the connector, without retrying', async () => {
    const scope = api().post(path).once().reply(401, { errors: '[API] Invalid API key or access token (unrecognized login or wrong password)' });
    const { connector, waits } = setup();

    const error = await readStream(connector, 'customers', config).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(ConnectorError);
    expect((error as ConnectorError).kind).toBe('config');
    expect((error as ConnectorError).message).toBe('The credentials were refused by shopify (HTTP 401 on POST /admin/api/2025-01/graphql.json)');
    expect(waits).toEqual([]);
    expect(scope.isDone()).toBe(true);
  });

  it('check names the store, or reports refused credentials', async () => {
    const sent = bodies();
    api().post(path, sent.match).reply(200, { data: { shop: { name: 'Acme', myshopifyDomain: 'acme.myshopify.com' } } }).post(path).reply(401, {});
    const { connector } = setup();

    expect(await connector.check(config, testContext)).toEqual({ ok: true, message: 'Connected to the Shopify store Acme (acme.myshopify.com)' });
    expect(sent.seen).toEqual([{ query: '{ shop { name myshopifyDomain } }', variables: {} }]);
    expect(await connector.check(config, testContext)).toMatchObject({ ok: false, message: expect.stringContaining('refused by shopify') });
  });
});

describe('shopify: write-back', () => {
  it('sends customerUpdate with email, phone and tags, then the consent mutation', async () => {
    const sent = bodies();
    api().post(path, sent.match).reply(200, load('customer-update.json')).post(path, sent.match).reply(200, load('consent-update.json'));
    const { sleep } = fakeSleep();

    const result = await writeCustomer(createShopifyHttp(config, { sleep }), config, '207119551', {
      email: 'bob@new.example.com',
      phone: '+16135550123',
      tags: ['vip', 'golden'],
      email_marketing: 'opt_out',
      email_marketing_at: '2024-05-05T08:00:00Z',
    }, { sleep });

    expect(result).toEqual({ mutations: ['customerUpdate', 'customerEmailMarketingConsentUpdate'] });
    expect(sent.seen).toEqual([
      { query: customerUpdateMutation, variables: { input: { id: 'gid://shopify/Customer/207119551', email: 'bob@new.example.com', phone: '+16135550123', tags: ['vip', 'golden'] } } },
      {
        query: consentUpdateMutation,
        variables: {
          input: {
            customerId: 'gid://shopify/Customer/207119551',
            emailMarketingConsent: { marketingState: 'UNSUBSCRIBED', marketingOptInLevel: 'SINGLE_OPT_IN', consentUpdatedAt: '2024-05-05T08:00:00Z' },
          },
        },
      },
    ]);
  });

  it('sends only the consent mutation when only consent changes, and reports userErrors naming the field', async () => {
    const sent = bodies();
    api().post(path, sent.match).reply(200, load('consent-update.json')).post(path).reply(200, load('customer-update-user-error.json'));
    const http = createShopifyHttp(config);

    await writeCustomer(http, config, '207119551', { email_marketing: 'opt_in' });
    expect(sent.seen).toEqual([
      { query: consentUpdateMutation, variables: { input: { customerId: 'gid://shopify/Customer/207119551', emailMarketingConsent: { marketingState: 'SUBSCRIBED', marketingOptInLevel: 'SINGLE_OPT_IN' } } } },
    ]);
    await expect(writeCustomer(http, config, '207119551', { email: 'taken@example.com' })).rejects.toMatchObject({
      kind: 'config',
      message: 'shopify: customerUpdate of customer 207119551 was refused: email: Email has already been taken',
    });
  });
});

describe('shopify: default mapping', () => {
  it('maps a customer and an order into the canonical model', async () => {
    const mapping = compileMapping(await loadMappingFile(defaultConnector.defaultMappingPath));
    const ctx = { source: 'shop', stream: 'customers' };
    const customer = mapping.map('customers', load('customers-page-1.json').data.customers.nodes[0], ctx);
    const order = mapping.map('orders', load('orders-page-1.json').data.orders.nodes[0], { ...ctx, stream: 'orders' });
    const jane = mapping.map('customers', load('customers-page-1.json').data.customers.nodes[1], ctx);

    expect(customer).toMatchObject({
      ok: true,
      record: {
        identifiers: [{ scheme: 'shopify:customer_id', value: '207119551', verified: true }],
        person: { given_name: 'Bob', family_name: 'Norman', emails: [{ address: 'bob.norman@mail.example.com', verified: true }], phones: [{ number: '+16136120707' }] },
        consent: [{ channel: 'email_marketing', status: 'opt_in', at: '2024-04-30T12:00:00.000Z' }],
      },
    });
    // The default address's phone is free text: Bob's (a fictional 555 number) is not a phone number, so it is left
    // out and named, and Bob maps; a valid one is a second phone.
    expect(customer.ok && customer.omitted).toEqual([
      { field: 'defaultAddress.phone', target: 'person.phone', reason: "'555-625-1199' is not a valid phone number (no default region)" },
    ]);
    const bob = load('customers-page-1.json').data.customers.nodes[0];
    const withAddressPhone = mapping.map('customers', { ...bob, defaultAddress: { ...bob.defaultAddress, phone: '+1 613-555-0199' } }, ctx);
    expect(withAddressPhone.ok && withAddressPhone.record.person?.phones).toEqual([{ number: '+16136120707' }, { number: '+16135550199' }]);
    expect(withAddressPhone.ok && withAddressPhone.omitted).toEqual([]);
    expect(jane).toMatchObject({ ok: true });
    // verifiedEmail false: the address is kept, marked unverified.
    const ana = mapping.map('customers', load('customers-page-2.json').data.customers.nodes[0], ctx);
    expect(ana.ok && ana.record.person?.emails).toEqual([{ address: 'ana@example.com.br', verified: false }]);
    expect(jane.ok && jane.record.consent).toBeUndefined();
    expect(order).toMatchObject({
      ok: true,
      record: { interactions: [{ kind: 'order', external_id: '#1001', status: 'paid', amount: 598.94, currency: 'USD' }] },
    });
    expect(await readFile(defaultConnector.defaultMappingPath, 'utf8')).toContain('shopify:<shop>:customer_id');
  });
});
