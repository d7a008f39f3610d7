import nock from 'nock';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compileMapping, parseMapping } from '../../mapping/engine.js';
import { ConnectorError, type ConnectorContext } from '../kit/contract.js';
import { fakeSleep, fixture, withoutFingerprints } from '../kit/testing.js';
import { silentLogger } from '../../hub/log.js';
import type { RestConfig } from './config.gen.js';
import { createRestConnector } from './connector.js';
import { loadDefinition } from './definition.js';

const examples = fileURLToPath(new URL('../../examples/rest/', import.meta.url));
const ctx: ConnectorContext = { source: 'example', log: silentLogger, baseDir: examples };
const load = (name: string) => fixture(import.meta.url, `../../examples/rest/fixtures/${name}`);

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

async function readAll(config: RestConfig, stream: string, state?: Record<string, unknown>) {
  const { sleep, waits } = fakeSleep();
  const pages = [];
  for await (const page of createRestConnector({ sleep }).read(stream, state, config, ctx)) pages.push({ ...page, state: withoutFingerprints(page.state) });
  return { pages, waits };
}

describe('example: SAP S/4HANA Business Partner (OData v2)', () => {
  const sandbox = 'https://sandbox.api.sap.com';
  const path = '/s4hanacloud/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner';
  const expand = 'to_BusinessPartnerAddress/to_EmailAddress,to_BusinessPartnerAddress/to_PhoneNumber';
  const order = 'LastChangeDate asc,LastChangeTime asc,CreationDate asc,CreationTime asc,BusinessPartner asc';
  const config: RestConfig = { definition: 'sap-business-partner.yaml', secrets: { api_key: 'sap-sandbox-key-0123' } };
  const api = () => nock(sandbox, { reqheaders: { apikey: 'sap-sandbox-key-0123', accept: 'application/json' } });

  it('reads A_BusinessPartner with $expand and $top, follows __next, and quarantines a partner without key', async () => {
    const scope = api()
      .get(path)
      .query({ $expand: expand, $orderby: order, $top: '100' })
      .reply(200, load('sap-business-partners-page-1.json'))
      .get(path)
      .query({ $expand: expand, $top: '100', $skiptoken: '2' })
      .reply(200, load('sap-business-partners-page-2.json'));

    const { pages } = await readAll(config, 'business_partners');

    expect(pages.map((page) => page.records.map((record) => record.externalId))).toEqual([['1000042', '1000043'], ['1000044']]);
    // 2024-05-02 + PT10H15M00S; the partner never changed counts by its creation (2024-05-03 08:00).
    expect(pages[0].state).toEqual({ cursor: '2024-05-02T10:15:00.000Z', seen: { '1000042': '2024-05-02T10:15:00.000Z', '1000043': '2024-05-02T10:15:00.000Z' } });
    expect(pages[1].state).toEqual({ cursor: '2024-05-03T08:00:00.000Z', seen: { '1000044': '2024-05-03T08:00:00.000Z' } });
    expect(pages[1].rejected).toEqual([
      { field: 'BusinessPartner', reason: "stream 'business_partners': no value in the primary key field(s) BusinessPartner", payload: load('sap-business-partners-page-2.json').d.results[1] },
    ]);
    expect(scope.isDone()).toBe(true);
  });

  it('resumes with $filter on LastChangeDate/LastChangeTime, or the creation date for partners never changed; the second partner of the boundary second arrives', async () => {
    const filter =
      "((LastChangeDate gt datetime'2024-05-02T00:00:00' or (LastChangeDate eq datetime'2024-05-02T00:00:00' and LastChangeTime ge time'PT10H15M00S'))) or " +
      "(LastChangeDate eq null and (CreationDate gt datetime'2024-05-02T00:00:00' or (CreationDate eq datetime'2024-05-02T00:00:00' and CreationTime ge time'PT10H15M00S')))";
    api().get(path).query({ $expand: expand, $orderby: order, $top: '100', $filter: filter }).reply(200, { d: { results: load('sap-business-partners-page-1.json').d.results } });

    const { pages } = await readAll(config, 'business_partners', { cursor: '2024-05-02T10:15:00.000Z', seen: { '1000042': '2024-05-02T10:15:00.000Z' } });

    expect(pages.flatMap((page) => page.records.map((record) => record.externalId))).toEqual(['1000043']);
  });

  it('reads the addresses as a nested stream keyed by partner and address', async () => {
    api().get(path).query(true).reply(200, { d: { results: load('sap-business-partners-page-1.json').d.results } });

    const { pages } = await readAll(config, 'business_partner_addresses');

    expect(pages[0].records.map((record) => record.externalId)).toEqual(['1000042/28451', '1000043/28452', '1000043/28453']);
    expect(pages[0].records[2].data).toMatchObject({ CityName: 'München', _parent: { BusinessPartner: '1000043', BusinessPartnerCategory: '2' } });
  });

  it('retries 429 with Retry-After and 503, and fails at once on 401 naming the definition', async () => {
    api().get(path).query(true).reply(429, '', { 'Retry-After': '5' }).get(path).query(true).reply(503, 'busy').get(path).query(true).reply(200, { d: { results: [] } });
    const { waits } = await readAll(config, 'business_partners');
    expect(waits[0]).toBe(5000);
    expect(waits).toHaveLength(2);

    api().get(path).query(true).once().reply(401, load('sap-error-401.json'));
    const error = (await readAll(config, 'business_partners').catch((caught: unknown) => caught)) as ConnectorError;
    expect(error).toBeInstanceOf(ConnectorError);
    expect([error.kind, error.message]).toEqual(['config', 'The credentials were refused by rest:sap-business-partner (HTTP 401 on GET /s4hanacloud/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner)']);
  });

  it('maps a person and an organisation with address, email and phone', async () => {
    const { definition } = loadDefinition('sap-business-partner.yaml', examples);
    const mapping = compileMapping(parseMapping(definition.mapping, 'sap'));
    const [anna, mueller] = load('sap-business-partners-page-1.json').d.results;
    const context = { source: 'sap', stream: 'business_partners', defaultRegion: 'DE' };

    expect(mapping.map('business_partners', anna, context)).toMatchObject({
      ok: true,
      record: {
        identifiers: [{ scheme: 'sap:business_partner', value: '1000042' }],
        person: { given_name: 'Anna', family_name: 'Schmidt', emails: [{ address: 'anna.schmidt@example.de' }], phones: [{ number: '+496227747474' }], addresses: [{ city: 'Walldorf', country: 'DE' }] },
      },
    });
    expect(mapping.map('business_partners', mueller, context)).toMatchObject({ ok: true, record: { organisation: { name: 'Müller Maschinenbau GmbH' } } });
  });
});

describe('example: GitHub issues (REST, Link header)', () => {
  const github = 'https://api.github.com';
  const config: RestConfig = { definition: 'github-issues.yaml', secrets: { github_token: 'ghp_exampletoken123' } };
  const api = () => nock(github, { reqheaders: { authorization: 'Bearer ghp_exampletoken123', 'x-github-api-version': '2022-11-28' } });

  it('pages by the Link header and resumes with since, keeping both issues updated in the boundary second', async () => {
    const next = 'https://api.github.com/repositories/1296269/issues?state=all&sort=updated&direction=asc&per_page=100&since=2011-04-22T13%3A33%3A48Z&page=2';
    api()
      .get('/repos/octocat/Hello-World/issues')
      .query({ state: 'all', sort: 'updated', direction: 'asc', per_page: '100', since: '2011-04-22T13:33:48Z' })
      .reply(200, load('github-issues-page-1.json'), { Link: `<${next}>; rel="next", <${next.replace('page=2', 'page=2')}>; rel="last"` })
      .get('/repositories/1296269/issues')
      .query({ state: 'all', sort: 'updated', direction: 'asc', per_page: '100', since: '2011-04-22T13:33:48Z', page: '2' })
      .reply(200, load('github-issues-page-2.json'));

    // The last run emitted issue 1 at 13:33:48; issue 2 has the same updated_at and was not read yet.
    const { pages } = await readAll(config, 'issues', { cursor: '2011-04-22T13:33:48.000Z', seen: { '1': '2011-04-22T13:33:48.000Z' } });

    expect(pages.map((page) => page.records.map((record) => record.externalId))).toEqual([['2'], ['3']]);
    expect(pages[1].rejected).toEqual([{ field: 'id', reason: "stream 'issues': no value in the primary key field(s) id", payload: load('github-issues-page-2.json')[1] }]);
    expect(pages[1].state).toEqual({ cursor: '2011-04-23T09:00:00.000Z', seen: { '3': '2011-04-23T09:00:00.000Z' } });

    const { definition } = loadDefinition('github-issues.yaml', examples);
    const mapped = compileMapping(parseMapping(definition.mapping, 'github')).map('issues', load('github-issues-page-1.json')[0], { source: 'gh', stream: 'issues' });
    expect(mapped).toMatchObject({ ok: true, record: { identifiers: [{ scheme: 'github:user_id', value: '1' }], interactions: [{ kind: 'ticket', external_id: '1347', owner: 'hubot', summary: 'Found a bug' }] } });
  });
});
