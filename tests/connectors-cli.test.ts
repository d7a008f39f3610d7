import { mkdtemp, readFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { runHub } from './helpers/cli.js';
import { startStubApi, type StubApi, type StubRequest } from './helpers/stub-api.js';
import { startTrytonServer, trytonInstalled, type TrytonServer } from '../connectors/tryton/test-server.js';

const fixture = async (path: string) => JSON.parse(await readFile(path, 'utf8'));

/** `hub check` and `hub sync` from the command line, for each HTTP connector, against a local stand-in of its API. */
describe('hub check and hub sync for each connector', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let dir: string;
  let api: StubApi;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'hub-connectors-cli-'));
    const shopify = {
      customers: [await fixture('connectors/shopify/fixtures/customers-page-1.json'), await fixture('connectors/shopify/fixtures/customers-page-2.json')],
      orders: await fixture('connectors/shopify/fixtures/orders-page-1.json'),
    };
    const woo = {
      orders: await fixture('connectors/woocommerce/fixtures/orders-page-1.json'),
      customers: [await fixture('connectors/woocommerce/fixtures/customers-page-1.json'), await fixture('connectors/woocommerce/fixtures/customers-page-2.json')],
    };
    const odoo: Record<string, unknown> = {
      'res.partner': await fixture('connectors/odoo/fixtures/partners-batch-1.json'),
      'sale.order': await fixture('connectors/odoo/fixtures/sale-orders.json'),
      'account.move': await fixture('connectors/odoo/fixtures/invoices.json'),
    };
    const odooFields = await fixture('connectors/odoo/fixtures/fields-get-partner.json');
    const github = [await fixture('examples/rest/fixtures/github-issues-page-1.json'), await fixture('examples/rest/fixtures/github-issues-page-2.json')];
    const jsonRpc = (result: unknown) => ({ body: { jsonrpc: '2.0', id: 1, result } });

    api = await startStubApi([
      // Shopify Admin GraphQL (https://shopify.dev/docs/api/admin-graphql)
      (request: StubRequest) => {
        if (request.path !== '/shopify/graphql.json') return undefined;
        const { query, variables } = request.body as { query: string; variables?: { after?: string | null } };
        if (query.includes('shop {')) return { body: { data: { shop: { name: 'Acme', myshopifyDomain: 'acme.myshopify.com' } } } };
        if (query.includes('customers(')) return { body: shopify.customers[variables?.after ? 1 : 0] };
        return { body: shopify.orders };
      },
      // WooCommerce REST v3 (https://woocommerce.github.io/woocommerce-rest-api-docs/)
      (request) => {
        if (request.path === '/woo/wp-json/wc/v3/orders') return { headers: { 'x-wp-total': '2', 'x-wp-totalpages': '1' }, body: request.query.get('per_page') === '1' ? woo.orders.slice(0, 1) : woo.orders };
        if (request.path === '/woo/wp-json/wc/v3/customers') {
          const offset = Number(request.query.get('offset') ?? 0);
          return { headers: { 'x-wp-total': '4' }, body: woo.customers.flat().slice(offset, offset + Number(request.query.get('per_page'))) };
        }
        return undefined;
      },
      // Odoo external JSON-RPC (https://www.odoo.com/documentation/18.0/developer/reference/external_api.html)
      (request) => {
        if (request.path !== '/odoo/jsonrpc') return undefined;
        const { service, method, args } = (request.body as { params: { service: string; method: string; args: unknown[] } }).params;
        if (service === 'common' && method === 'authenticate') return jsonRpc(2);
        const [model, call] = [args[3] as string, args[4] as string];
        if (call === 'search_count') return jsonRpc(3);
        if (call === 'fields_get') return { body: odooFields };
        if (call === 'search_read') return { body: odoo[model] ?? { jsonrpc: '2.0', id: 1, result: [] } };
        return jsonRpc([]);
      },
      // GitHub REST, through the declarative connector's example definition
      (request, base) => {
        if (request.path !== '/repos/octocat/Hello-World/issues') return undefined;
        if (request.query.get('page') === '2') return { body: github[1] };
        return { headers: { link: `<${base}/repos/octocat/Hello-World/issues?state=all&page=2>; rel="next"` }, body: github[0] };
      },
    ]);

    const definition = (await readFile('examples/rest/github-issues.yaml', 'utf8')).replace('base_url: https://api.github.com', `base_url: ${api.base}`);
    await writeFile(join(dir, 'github.yaml'), definition);
    await writeFile(
      join(dir, 'hub.config.yaml'),
      `sources:
  - name: shop
    connector: shopify
    config: { shop: acme, base_url: "${api.base}/shopify", access_token: "\${SHOPIFY_TOKEN}" }
  - name: woo
    connector: woocommerce
    default_region: US
    config: { url: "${api.base}/woo", consumer_key: ck_test, consumer_secret: "\${WOO_SECRET}", per_page: 2 }
  - name: erp
    connector: odoo
    config: { url: "${api.base}/odoo", database: acme, login: admin@example.com, api_key: "\${ODOO_KEY}" }
  - name: github
    connector: rest
    config: { definition: "${join(dir, 'github.yaml')}", secrets: { github_token: "\${GITHUB_TOKEN}" } }
`,
    );
    env = { DATABASE_URL: db.url, SHOPIFY_TOKEN: 'shpat_secret_token', WOO_SECRET: 'cs_secret', ODOO_KEY: 'odoo-secret-key', GITHUB_TOKEN: 'ghp_secret' };
  });
  afterAll(async () => {
    await api?.close();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const hub = (...args: string[]) => runHub(['--config', join(dir, 'hub.config.yaml'), ...args], env);

  it.each(['shop', 'woo', 'erp', 'github'])('checks %s', async (source) => {
    const result = await hub('check', source);
    expect(result.stdout).toMatch(new RegExp(`^${source}: ok: `));
    expect(result.code).toBe(0);
  });

  it.each([
    ['shop', 5],
    ['woo', 5],
    ['erp', 5],
    ['github', 3],
  ])('syncs %s', async (source, atLeast) => {
    const result = await hub('sync', source);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/run \d+ succeeded: read \d+/);
    const { rows } = await db.pool.query<{ n: number }>('select count(*)::int as n from raw_record where source = $1', [source]);
    expect(rows[0].n).toBeGreaterThanOrEqual(Number(atLeast));
    // Secrets reach the vendor, never the output.
    expect(result.stdout + result.stderr).not.toMatch(/shpat_secret_token|cs_secret|odoo-secret-key|ghp_secret/);
  });

  it('sent the credentials the way each vendor expects', () => {
    expect(api.requests.find((request) => request.path.startsWith('/shopify'))?.headers['x-shopify-access-token']).toBe('shpat_secret_token');
    expect(api.requests.find((request) => request.path.startsWith('/woo'))?.headers.authorization).toBe(`Basic ${Buffer.from('ck_test:cs_secret').toString('base64')}`);
    expect(api.requests.find((request) => request.path.startsWith('/repos'))?.headers.authorization).toBe('Bearer ghp_secret');
  });
});

describe.skipIf(!trytonInstalled)('hub check and hub sync for tryton, against a real Tryton server', () => {
  let db: TestDatabase;
  let dir: string;
  let server: TrytonServer;
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'hub-tryton-cli-'));
    server = await startTrytonServer();
    await writeFile(
      join(dir, 'hub.config.yaml'),
      `sources:\n  - name: tryton\n    connector: tryton\n    config: { url: "${server.url}", database: ${server.database}, login: ${server.login}, password: "\${TRYTON_PASSWORD}" }\n`,
    );
  }, 300_000);
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('checks and syncs', async () => {
    const env = { DATABASE_URL: db.url, TRYTON_PASSWORD: server.password };
    const check = await runHub(['--config', join(dir, 'hub.config.yaml'), 'check', 'tryton'], env);
    expect(check.stdout).toMatch(/^tryton: ok: /);
    const sync = await runHub(['--config', join(dir, 'hub.config.yaml'), 'sync', 'tryton'], env);
    expect(sync.code, sync.stderr).toBe(0);
    expect(sync.stdout).toMatch(/run \d+ succeeded: read \d+/);
  }, 120_000);
});
