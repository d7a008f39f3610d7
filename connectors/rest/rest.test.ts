import nock from 'nock';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../hub/log.js';
import { ConnectorError, type ConnectorContext, type RecordPage } from '../kit/contract.js';
import { bodies, fakeSleep, withoutFingerprints } from '../kit/testing.js';
import { clearTokenCache } from './auth.js';
import { createRestConnector } from './connector.js';
import { parseDefinition } from './definition.js';

const dir = mkdtempSync(join(tmpdir(), 'rest-connector-'));
const ctx: ConnectorContext = { source: 'rest-test', log: silentLogger, baseDir: dir };
const api = 'https://api.example.test';
let files = 0;

beforeAll(() => nock.disableNetConnect());
beforeEach(() => clearTokenCache());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

/** Writes a definition file and returns a source config naming it. */
function define(yaml: string, secrets: Record<string, string> = {}) {
  const name = `definition-${++files}.yaml`;
  writeFileSync(join(dir, name), yaml);
  return { definition: name, secrets };
}

async function readAll(config: { definition: string; secrets?: Record<string, string> }, stream: string, state?: Record<string, unknown>, now?: () => number) {
  const { sleep, waits } = fakeSleep();
  const pages: RecordPage[] = [];
  for await (const page of createRestConnector({ sleep, now }).read(stream, state, config, ctx)) pages.push({ ...page, state: withoutFingerprints(page.state) });
  return { pages, waits };
}

const ids = (pages: RecordPage[]) => pages.map((page) => page.records.map((record) => record.externalId));

describe('rest: definition validation', () => {
  it('lists every problem, each naming its key', () => {
    const attempt = () =>
      parseDefinition(
        `
base_url: https://api.example.test
auth: { type: bearer, tokn: x }
streams:
  - name: contacts
    path: /contacts
    pagination: { type: pages }
  - name: deals
    path: /deals
    primary_key: [id]
    pagination: { type: cursor, cursor_param: after }
mapping:
  streams:
    contacts:
      fields:
        - { target: person.nickname, from: nick }
`,
        'crm.yaml',
      );
    expect(attempt).toThrow(ConnectorError);
    let message = '';
    try {
      attempt();
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('The REST definition crm.yaml is not valid:');
    expect(message).toContain('auth.token: is required');
    expect(message).toContain('auth.tokn: is not a known key (expected one of: type, token)');
    expect(message).toContain('streams[0].primary_key: is required');
    expect(message).toContain('streams[0].pagination.type: must be one of: none, page_number, offset, cursor, link_header, odata');
  });

  it('checks what the schema cannot: cursor paging needs its path, rest increments need a parameter, the mapping is valid', () => {
    const attempt = () =>
      parseDefinition(
        `
base_url: https://api.example.test
streams:
  - { name: deals, path: /deals, primary_key: [id], pagination: { type: cursor, cursor_param: after }, incremental: { cursor_fields: [{ field: updated }] } }
mapping: { streams: { deals: { fields: [{ target: person.nickname, from: nick }] } } }
`,
        'crm.yaml',
      );
    expect(attempt).toThrow(/streams\[0\]\.pagination: type cursor needs cursor_param and cursor_path/);
    expect(attempt).toThrow(/streams\[0\]\.incremental\.request_param: is required for protocol rest/);
    expect(attempt).toThrow(/mapping\.streams\.deals\.fields\[0\]\.target: 'person\.nickname' is not one of/);
  });

  it('names a secret the source did not set', async () => {
    const config = define(`
base_url: https://api.example.test
auth: { type: bearer, token: "{{ secrets.token }}" }
streams: [{ name: contacts, path: /contacts, primary_key: [id] }]
`);
    await expect(readAll(config, 'contacts')).rejects.toThrow(/uses \{\{ secrets\.token \}\}, which is not set/);
  });
});

describe('rest: pagination and auth', () => {
  it('page_number with an API key in the query, an epoch-seconds cursor parameter and a 500 retried', async () => {
    const config = define(
      `
name: crm
base_url: ${api}/v1
auth: { type: api_key, in: query, name: api_key, value: "{{ secrets.key }}" }
streams:
  - name: contacts
    path: /contacts
    record_selector: data.items
    primary_key: [id]
    pagination: { type: page_number, page_size: 2, size_param: limit }
    incremental: { cursor_fields: [{ field: updated }], request_param: updated_since, param_format: epoch_seconds }
`,
      { key: 'secret-key-42' },
    );
    nock(api)
      .get('/v1/contacts').query({ page: '1', limit: '2', updated_since: '1714644900', api_key: 'secret-key-42' })
      .reply(500, { error: 'oops' })
      .get('/v1/contacts').query({ page: '1', limit: '2', updated_since: '1714644900', api_key: 'secret-key-42' })
      .reply(200, { data: { items: [{ id: 1, updated: 1714644900 }, { id: 2, updated: 1714644900 }] } })
      .get('/v1/contacts').query({ page: '2', limit: '2', updated_since: '1714644900', api_key: 'secret-key-42' })
      .reply(200, { data: { items: [{ id: 3, updated: 1714645000 }] } });

    const { pages, waits } = await readAll(config, 'contacts', { cursor: '2024-05-02T10:15:00.000Z', seen: { '1': '2024-05-02T10:15:00.000Z' } });

    expect(ids(pages)).toEqual([['2'], ['3']]);
    expect(waits).toHaveLength(1);
  });

  it('offset paging with basic auth; a record that is not an object or lacks its timestamp is quarantined', async () => {
    const config = define(`
base_url: ${api}
auth: { type: basic, username: hub, password: "{{ secrets.password }}" }
streams:
  - name: people
    path: /people
    primary_key: [id]
    pagination: { type: offset, page_size: 2, offset_param: skip, size_param: take }
    incremental: { cursor_fields: [{ field: modified }], request_param: modified_from, param_format: date }
`, { password: 'pa55word' });
    nock(api, { reqheaders: { authorization: `Basic ${Buffer.from('hub:pa55word').toString('base64')}` } })
      .get('/people').query({ skip: '0', take: '2' })
      .reply(200, [{ id: 'a', modified: '2024-05-01T00:00:00Z' }, 'junk'])
      .get('/people').query({ skip: '2', take: '2' })
      .reply(200, [{ id: 'b' }]);

    const { pages } = await readAll(config, 'people');

    expect(ids(pages)).toEqual([['a'], []]);
    expect(pages[0].rejected).toEqual([{ reason: "stream 'people': a record is not a JSON object", payload: 'junk' }]);
    expect(pages[1].rejected).toEqual([{ externalId: 'b', field: 'modified', reason: "stream 'people': no readable change timestamp in modified", payload: { id: 'b' } }]);
    expect(pages[1].state).toEqual({ cursor: '2024-05-01T00:00:00.000Z', seen: { a: '2024-05-01T00:00:00.000Z' } });
  });

  it('a cursor in the body, until the stop flag; a 429 waits for Retry-After', async () => {
    const config = define(`
base_url: ${api}
auth: { type: bearer, token: tok-123456 }
streams:
  - name: tickets
    path: /export
    record_selector: tickets
    primary_key: [id]
    pagination: { type: cursor, cursor_param: cursor, cursor_path: after_cursor, stop_path: end_of_stream }
`);
    nock(api, { reqheaders: { authorization: 'Bearer tok-123456' } })
      .get('/export').query({}).reply(200, { tickets: [{ id: 1 }], after_cursor: 'c1', end_of_stream: false })
      .get('/export').query({ cursor: 'c1' }).reply(429, '', { 'Retry-After': '9' })
      .get('/export').query({ cursor: 'c1' }).reply(200, { tickets: [{ id: 2 }], after_cursor: 'c2', end_of_stream: true });

    const { pages, waits } = await readAll(config, 'tickets');

    expect(ids(pages)).toEqual([['1'], ['2']]);
    expect(pages.map((page) => page.state)).toEqual([{ complete: false }, { complete: true }]);
    expect(waits).toEqual([9000]);
  });

  it('a repeating next cursor fails the run instead of looping', async () => {
    const config = define(`
base_url: ${api}
streams: [{ name: t, path: /t, record_selector: items, primary_key: [id], pagination: { type: cursor, cursor_param: c, cursor_path: next } }]
`);
    nock(api).get('/t').query({}).reply(200, { items: [{ id: 1 }], next: 'same' }).get('/t').query({ c: 'same' }).reply(200, { items: [{ id: 2 }], next: 'same' });

    const error = (await readAll(config, 't').catch((caught: unknown) => caught)) as ConnectorError;

    expect([error.kind, error.message]).toEqual(['system', 'rest:definition: page loop detected: page 3 asks for the same request as page 2']);
  });

  it('OData v4: $filter ge the cursor, @odata.nextLink, and an OAuth2 client-credentials token fetched once and cached until it expires', async () => {
    const config = define(
      `
name: dynamics
base_url: ${api}/api/data/v9.2
protocol: odata_v4
auth:
  type: oauth2_client_credentials
  token_url: https://login.example.test/tenant/oauth2/v2.0/token
  client_id: hub-client
  client_secret: "{{ secrets.client_secret }}"
  scopes: [${api}/.default]
streams:
  - name: contacts
    path: /contacts
    params: { $select: "contactid,emailaddress1,modifiedon" }
    primary_key: [contactid]
    pagination: { type: odata, page_size: 2 }
    incremental: { cursor_fields: [{ field: modifiedon }] }
`,
      { client_secret: 's3cr3t-value' },
    );
    const token = bodies();
    nock('https://login.example.test', { reqheaders: { authorization: `Basic ${Buffer.from('hub-client:s3cr3t-value').toString('base64')}` } })
      .post('/tenant/oauth2/v2.0/token', token.match)
      .reply(200, { token_type: 'Bearer', expires_in: 3599, access_token: 'eyJ0eXAi.token.one' })
      .post('/tenant/oauth2/v2.0/token', token.match)
      .reply(200, { token_type: 'Bearer', expires_in: 3599, access_token: 'eyJ0eXAi.token.two' });
    const nextLink = `${api}/api/data/v9.2/contacts?$select=contactid,emailaddress1,modifiedon&$skiptoken=%3Ccookie%20pagenumber=%222%22%3E`;
    const page1 = { '@odata.context': `${api}/api/data/v9.2/$metadata#contacts`, value: [{ contactid: 'c-1', modifiedon: '2024-05-02T10:15:00Z' }, { contactid: 'c-2', modifiedon: '2024-05-02T10:15:00Z' }], '@odata.nextLink': nextLink };
    const page2 = { value: [{ contactid: 'c-3', modifiedon: '2024-05-02T11:00:00Z' }] };
    const query = { $select: 'contactid,emailaddress1,modifiedon', $filter: 'modifiedon ge 2024-05-02T10:15:00Z', $orderby: 'modifiedon asc,contactid asc', $top: '2' };
    nock(api, { reqheaders: { authorization: 'Bearer eyJ0eXAi.token.one' } })
      .get('/api/data/v9.2/contacts').query(query).reply(200, page1)
      .get('/api/data/v9.2/contacts').query({ $select: 'contactid,emailaddress1,modifiedon', $skiptoken: '<cookie pagenumber="2">' }).reply(200, page2)
      .get('/api/data/v9.2/contacts').query(query).reply(200, { value: [] });
    nock(api, { reqheaders: { authorization: 'Bearer eyJ0eXAi.token.two' } }).get('/api/data/v9.2/contacts').query(query).reply(200, { value: [] });
    let clock = Date.parse('2024-05-02T12:00:00Z');
    const state = { cursor: '2024-05-02T10:15:00.000Z', seen: { 'c-1': '2024-05-02T10:15:00.000Z' } };

    const { pages } = await readAll(config, 'contacts', state, () => clock);
    await readAll(config, 'contacts', state, () => clock);
    clock += 3600_000;
    await readAll(config, 'contacts', state, () => clock);

    expect(ids(pages)).toEqual([['c-2'], ['c-3']]);
    // One token for the first two runs; after it expired, a second one. nock reads the form body as an object.
    expect(token.seen).toEqual([
      { grant_type: 'client_credentials', scope: `${api}/.default` },
      { grant_type: 'client_credentials', scope: `${api}/.default` },
    ]);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('check reads the first page; a refused credential is reported, not thrown', async () => {
    const config = define(`
name: crm
base_url: ${api}
auth: { type: api_key, name: X-Api-Key, value: k-123456 }
streams: [{ name: contacts, path: /contacts, primary_key: [id] }]
`);
    nock(api, { reqheaders: { 'x-api-key': 'k-123456' } }).get('/contacts').reply(200, [{ id: 1 }, { id: 2 }]).get('/contacts').reply(403, { message: 'Forbidden' });
    const connector = createRestConnector();

    expect(await connector.check(config, ctx)).toEqual({ ok: true, message: "rest:crm: read 2 record(s) from the first page of 'contacts' (rest, 1 stream(s))" });
    expect(await connector.check(config, ctx)).toEqual({ ok: false, message: 'The credentials were refused by rest:crm (HTTP 403 on GET /contacts)' });
  });
});
