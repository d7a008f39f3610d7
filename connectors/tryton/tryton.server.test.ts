/**
 * The Tryton connector against a real Tryton 6.0 server (Debian's tryton-server, party and sale
 * modules, SQLite), started here. Skipped where trytond is not installed.
 */
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileMapping, loadMappingFile } from '../../mapping/engine.js';
import type { RecordPage, StreamState } from '../kit/contract.js';
import { readStream, testContext } from '../kit/testing.js';
import type { TrytonConfig } from './config.gen.js';
import { connector } from './connector.js';
import { createTrytonHttp, createTrytonRpc, type TrytonRpc } from './rpc.js';
import { startTrytonServer, trytonInstalled, type TrytonServer } from './test-server.js';
import { writeCustomer } from './write-back.js';

const ids = (pages: RecordPage[]) => pages.flatMap((page) => page.records.map((record) => record.externalId));
const lastState = (pages: RecordPage[]) => pages.at(-1)!.state;

describe.skipIf(!trytonInstalled)('tryton: a real server', () => {
  let server: TrytonServer;
  let config: TrytonConfig;
  let rpc: TrytonRpc;
  const party: Record<string, number> = {};

  beforeAll(async () => {
    // Other test files may have left nock intercepting; this one talks to a real local server.
    nock.restore();
    server = await startTrytonServer();
    config = { url: server.url, database: server.database, login: server.login, password: server.password, page_size: 2 };
    rpc = createTrytonRpc(createTrytonHttp(config), config);
    const [currency] = await rpc.call<number[]>('model.currency.currency.create', [[{ name: 'Euro', code: 'EUR', symbol: '€' }], {}]);
    const [companyParty, ann, bo, cy] = await rpc.call<number[]>('model.party.party.create', [
      [
        { name: 'Hub GmbH' },
        {
          name: 'Ann Lee',
          contact_mechanisms: [['create', [{ type: 'email', value: 'ann@example.com' }, { type: 'phone', value: '+49 30 1234567' }]]],
          addresses: [['create', [{ street: 'Hauptstraße 1', postal_code: '10115', city: 'Berlin' }]]],
        },
        { name: 'Bo Ng', contact_mechanisms: [['create', [{ type: 'email', value: 'bo@example.com' }]]] },
        { name: 'Cy Ray', active: false },
      ],
      {},
    ]);
    Object.assign(party, { companyParty, ann, bo, cy });
    const [company] = await rpc.call<number[]>('model.company.company.create', [[{ party: companyParty, currency }], {}]);
    await rpc.call('model.res.user.write', [[1], { companies: [['add', [company]]], company }, {}]);
    const [address] = await rpc.call<number[]>('model.party.address.search', [[['party', '=', ann]], 0, 1, null, {}]);
    await rpc.call('model.sale.sale.create', [[{ company, party: ann, currency, reference: 'PO-7', invoice_address: address, shipment_address: address }], { company }]);
  }, 300_000);

  afterAll(async () => {
    await server?.stop();
    nock.activate();
  });

  it('check signs in and counts the parties; a wrong password is refused at once', async () => {
    expect(await connector.check(config, testContext)).toEqual({ ok: true, message: `Signed in to Tryton database hub as admin (user 1); 4 parties` });
    const refused = await connector.check({ ...config, password: 'wrong' }, testContext);
    expect(refused).toEqual({ ok: false, message: 'The credentials were refused by tryton (HTTP 401 on POST /hub/)' });
  });

  it('reads every party, archived too, never edited (write_date NULL) too, with mechanisms and addresses, in batches', async () => {
    const pages = await readStream(connector, 'parties', config);

    expect(ids(pages)).toEqual([party.companyParty, party.ann, party.bo, party.cy].map(String));
    expect(pages.slice(0, -1).every((page) => typeof page.state.after_id === 'number')).toBe(true);
    const ann = pages.flatMap((page) => page.records).find((record) => record.externalId === String(party.ann))!.data;
    expect(ann).toMatchObject({ name: 'Ann Lee', email: 'ann@example.com', phone: '+49 30 1234567', write_date: null, addresses: [{ street: 'Hauptstraße 1', city: 'Berlin' }] });
    expect((ann.contact_mechanisms as unknown[]).length).toBe(2);
    expect(lastState(pages)).not.toHaveProperty('after_id');

    const mapping = compileMapping(await loadMappingFile(connector.defaultMappingPath));
    expect(mapping.map('parties', ann, { source: 'tryton', stream: 'parties', defaultRegion: 'DE' })).toMatchObject({
      ok: true,
      record: { identifiers: [{ scheme: 'tryton:party_id', value: String(party.ann), verified: true }, { scheme: 'tryton:party_code', value: expect.any(String) }], person: { full_name: 'Ann Lee', emails: [{ address: 'ann@example.com' }], phones: [{ number: '+49301234567' }] } },
    });
  });

  it('resumes a run from a mid-run checkpoint with exactly the remaining parties', async () => {
    const pages = await readStream(connector, 'parties', config);
    const resumed = await readStream(connector, 'parties', config, pages[0].state);
    expect(ids(resumed)).toEqual(ids(pages).slice(2));
  });

  it('a second run reads nothing; an edited email (the party itself untouched) and a write-back bring the party again', async () => {
    const first = lastState(await readStream(connector, 'parties', config));
    expect(ids(await readStream(connector, 'parties', config, first))).toEqual([]);

    const [mechanism] = await rpc.call<number[]>('model.party.contact_mechanism.search', [[['party', '=', party.bo], ['type', '=', 'email']], 0, 1, null, {}]);
    await rpc.call('model.party.contact_mechanism.write', [[mechanism], { value: 'bo.ng@example.com' }, {}]);
    const second = await readStream(connector, 'parties', config, first);
    expect(ids(second)).toEqual([String(party.bo)]);
    expect(second.flatMap((page) => page.records)[0].data).toMatchObject({ email: 'bo.ng@example.com', write_date: null });

    const calls = await writeCustomer(createTrytonHttp(config), config, String(party.bo), { email: 'bo.ng@example.com', phone: '+44 20 7946 0000' });
    expect(calls).toEqual([{ method: 'model.party.contact_mechanism.create', params: [[{ party: party.bo, type: 'phone', value: '+44 20 7946 0000' }], {}] }]);
    const third = await readStream(connector, 'parties', config, lastState(second));
    expect(third.flatMap((page) => page.records.map((record) => record.data.phone))).toEqual(['+44 20 7946 0000']);
  });

  it('reads sales with state, total, currency code, and maps a draft as a quote', async () => {
    const pages = await readStream(connector, 'sales', config);
    const [sale] = pages.flatMap((page) => page.records);
    expect(sale.data).toMatchObject({ reference: 'PO-7', state: 'draft', party: party.ann, currency_code: 'EUR', total_amount: '0' });
    const mapping = compileMapping(await loadMappingFile(connector.defaultMappingPath));
    expect(mapping.map('sales', sale.data, { source: 'tryton', stream: 'sales' })).toMatchObject({
      ok: true,
      record: { identifiers: [{ value: String(party.ann) }], interactions: [{ kind: 'quote', status: 'draft', amount: 0, currency: 'EUR' }] },
    });
    const again = await readStream(connector, 'sales', config, lastState(pages) as StreamState);
    expect(ids(again)).toEqual([]);
  });
});
