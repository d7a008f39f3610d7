import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compileMapping, loadMappingFile } from '../../mapping/engine.js';
import { ConnectorError } from '../kit/contract.js';
import { bodies, fakeSleep, fixture, readStream } from '../kit/testing.js';
import type { TrytonConfig } from './config.gen.js';
import { connector as defaultConnector, createTrytonConnector } from './connector.js';
import { createTrytonHttp, trytonDatetime } from './rpc.js';
import { trytonStreams } from './streams.js';
import { writeCustomer } from './write-back.js';

const server = 'http://tryton.example.test:8000';
// Deletion sweeps are tested against the real server (tryton.server.test.ts); here the incremental read alone.
const config: TrytonConfig = { url: server, database: 'hub', login: 'admin', password: 'admin-pass', page_size: 2, deletion_sweep_hours: 0 };
const load = (name: string) => fixture(import.meta.url, `fixtures/${name}`);
const session = `Session ${Buffer.from('admin:1:4aaae05bb2fa63f105ed8f915bd3ec8b378a12c43ddc5281d14014431a72b071').toString('base64')}`;
const [parties, sales] = trytonStreams;
const result = (value: unknown) => ({ id: 0, result: value });

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

function setup() {
  const { waits, sleep } = fakeSleep();
  return { waits, connector: createTrytonConnector({ sleep }) };
}
const login = () => nock(server).post('/hub/', { id: 1, method: 'common.db.login', params: ['admin', { password: 'admin-pass' }, 'en'] }).reply(200, load('login.json'));
const api = () => nock(server, { reqheaders: { authorization: session } });

describe('tryton: parties (fixtures)', () => {
  it('reads in id batches with mechanisms and addresses; the checkpoint keeps the run anchor until the run completes; a record without dates is quarantined', async () => {
    const sent = bodies();
    login();
    api()
      .post('/hub/', sent.match).reply(200, load('parties-batch-1.json'))
      .post('/hub/', sent.match).reply(200, load('mechanisms-batch-1.json'))
      .post('/hub/', sent.match).reply(200, load('addresses-batch-1.json'))
      .post('/hub/', sent.match).reply(200, load('parties-batch-2.json'))
      .post('/hub/', sent.match).reply(200, result([]))
      .post('/hub/', sent.match).reply(200, result([]))
      .post('/hub/', sent.match).reply(200, result([]));
    const { connector } = setup();

    const pages = await readStream(connector, 'parties', config);

    const search = (id: number, model: string, domain: unknown[], limit: number | null, fields: string[]) => ({ id, method: `model.${model}.search_read`, params: [domain, 0, limit, [['id', 'ASC']], fields, { active_test: false }] });
    expect(sent.seen).toEqual([
      search(2, 'party.party', [['id', '>', 0]], 2, parties.fields),
      search(3, 'party.contact_mechanism', [['party', 'in', [1, 2]]], null, parties.children[0].fields),
      search(4, 'party.address', [['party', 'in', [1, 2]]], null, parties.children[1].fields),
      search(5, 'party.party', [['id', '>', 2]], 2, parties.fields),
      search(6, 'party.contact_mechanism', [['party', 'in', [3, 4]]], null, parties.children[0].fields),
      search(7, 'party.address', [['party', 'in', [3, 4]]], null, parties.children[1].fields),
      search(8, 'party.party', [['id', '>', 4]], 2, parties.fields),
    ]);
    expect(pages.map((page) => page.records.map((record) => record.externalId))).toEqual([['1', '2'], ['3'], []]);
    expect(pages[0].records[1].data).toMatchObject({
      write_date: null,
      create_date: '2024-05-02T10:15:00.250000Z',
      addresses: [{ street: 'Hauptstraße 1', country_code: 'DE' }],
      contact_mechanisms: [{ type: 'email', value: 'ann@example.com' }, { type: 'phone' }],
    });
    expect(pages[0].state).toEqual({ cursor: '2024-05-02T10:15:00.250000Z', seen: { '2': '2024-05-02T10:15:00.250000Z' }, anchor: null, after_id: 2 });
    expect(pages[1].state).toEqual({ cursor: '2024-05-02T10:15:00.250000Z', seen: { '2': '2024-05-02T10:15:00.250000Z', '3': '2024-05-02T10:15:00.250000Z' }, anchor: null, after_id: 4 });
    expect(pages[2].state).toEqual({ cursor: '2024-05-02T10:15:00.250000Z', seen: { '2': '2024-05-02T10:15:00.250000Z', '3': '2024-05-02T10:15:00.250000Z' } });
    expect(pages[1].rejected).toEqual([{ externalId: '4', field: 'create_date', reason: 'party.party 4 has neither write_date nor create_date', payload: load('parties-batch-2.json').result[1] }]);
  });

  it('resumes from the cursor: asks for changes at or after it minus the lookback on the party and its mechanisms and addresses, and skips what it emitted', async () => {
    const sent = bodies();
    login();
    api()
      .post('/hub/', sent.match).reply(200, load('parties-batch-2.json'))
      .post('/hub/').reply(200, result([]))
      .post('/hub/').reply(200, result([]))
      .post('/hub/', sent.match).reply(200, result([]));
    const { connector } = setup();

    const pages = await readStream(connector, 'parties', config, { cursor: '2024-05-02T10:15:00.250000Z', seen: { '2': '2024-05-02T10:15:00.250000Z' } });

    // Five minutes (the default lookback) before the cursor.
    const at = trytonDatetime('2024-05-02T10:10:00.250000Z');
    expect(at).toEqual({ __class__: 'datetime', year: 2024, month: 5, day: 2, hour: 10, minute: 10, second: 0, microsecond: 250000 });
    const changed = ['OR', ['write_date', '>=', at], ['create_date', '>=', at], ['contact_mechanisms.write_date', '>=', at], ['contact_mechanisms.create_date', '>=', at], ['addresses.write_date', '>=', at], ['addresses.create_date', '>=', at]];
    expect((sent.seen[0] as { params: unknown[] }).params[0]).toEqual([['id', '>', 0], changed]);
    expect((sent.seen[1] as { params: unknown[] }).params[0]).toEqual([['id', '>', 4], changed]);
    // Bo shares the boundary time with Ann (emitted last run): Bo arrives.
    expect(pages.flatMap((page) => page.records.map((record) => record.externalId))).toEqual(['3']);
  });

  it('retries 429 (Retry-After) and 500; a wrong password fails at once naming tryton', async () => {
    login();
    api()
      .post('/hub/').reply(429, 'Too Many Requests', { 'Retry-After': '2' })
      .post('/hub/').reply(500, 'Internal Server Error')
      .post('/hub/').reply(200, result([]));
    const { connector, waits } = setup();
    expect(await readStream(connector, 'sales', config)).toEqual([{ records: [], state: { seen: {} }, progress: { done: 0 } }]);
    expect(waits[0]).toBe(2000);
    expect(waits).toHaveLength(2);

    const scope = nock(server).post('/hub/').once().reply(401, '<title>401 Unauthorized</title>');
    const error = (await readStream(connector, 'parties', config).catch((caught: unknown) => caught)) as ConnectorError;
    expect(error).toBeInstanceOf(ConnectorError);
    expect([error.kind, error.message]).toEqual(['config', 'The credentials were refused by tryton (HTTP 401 on POST /hub/)']);
    expect(scope.isDone()).toBe(true);
  });

  it('reads sales with Decimal and date values as text, and maps a quotation as a quote', async () => {
    login();
    api().post('/hub/').reply(200, load('sales.json'));
    const [page] = await readStream(setup().connector, 'sales', config);
    expect(page.records[0].data).toMatchObject({ total_amount: '119.00', sale_date: '2024-05-03', currency_code: 'EUR', state: 'quotation' });
    expect(sales.model).toBe('sale.sale');
    const mapping = compileMapping(await loadMappingFile(defaultConnector.defaultMappingPath));
    expect(mapping.map('sales', page.records[0].data, { source: 't', stream: 'sales' })).toMatchObject({
      ok: true,
      record: { interactions: [{ kind: 'quote', external_id: 'S1', amount: 119, currency: 'EUR', status: 'quotation' }] },
    });
  });
});

describe('tryton: write-back (fixtures)', () => {
  it('rewrites the existing email mechanism and creates a phone one', async () => {
    const sent = bodies();
    login();
    api()
      .post('/hub/', sent.match).reply(200, result([{ id: 1, value: 'ann@example.com' }]))
      .post('/hub/', sent.match).reply(200, result(null))
      .post('/hub/', sent.match).reply(200, result([]))
      .post('/hub/', sent.match).reply(200, result([7]));

    await writeCustomer(createTrytonHttp(config), config, '2', { email: 'ann.lee@example.com', phone: '+49 30 7654321' });

    const find = (id: number, type: string) => ({ id, method: 'model.party.contact_mechanism.search_read', params: [[['party', '=', 2], ['type', '=', type]], 0, 1, [['sequence', 'ASC'], ['id', 'ASC']], ['id', 'value'], {}] });
    expect(sent.seen).toEqual([
      find(2, 'email'),
      { id: 3, method: 'model.party.contact_mechanism.write', params: [[1], { value: 'ann.lee@example.com' }, {}] },
      find(4, 'phone'),
      { id: 5, method: 'model.party.contact_mechanism.create', params: [[{ party: 2, type: 'phone', value: '+49 30 7654321' }], {}] },
    ]);
  });
});
