/**
 * The Tryton connector against a real Tryton 6.0 server (Debian's tryton-server, party and sale
 * modules, SQLite), started here. Skipped where trytond is not installed.
 */
import { spawnSync } from 'node:child_process';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileMapping, loadMappingFile } from '../../mapping/engine.js';
import type { RecordPage, StreamState } from '../kit/contract.js';
import { readAll, readStream, testContext } from '../kit/testing.js';
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
    // Deletion sweeps only where a test asks for them.
    config = { url: server.url, database: server.database, login: server.login, password: server.password, page_size: 2, deletion_sweep_hours: 0 };
    rpc = createTrytonRpc(createTrytonHttp(config), config);
    const [currency] = await rpc.call<number[]>('model.currency.currency.create', [[{ name: 'Euro', code: 'EUR', symbol: '€' }], {}]);
    const [companyParty, ann, bo, cy] = await rpc.call<number[]>('model.party.party.create', [
      [
        { name: 'Hub GmbH' },
        {
          name: 'Ann Lee',
          contact_mechanisms: [
            [
              'create',
              [
                { type: 'email', value: 'ann@example.com' },
                { type: 'phone', value: '+49 30 1234567' },
                { type: 'email', value: 'ann.lee@private.example' },
                { type: 'mobile', value: '+49 151 23456789' },
                { type: 'email', value: 'ann@old-employer.example', active: false },
              ],
            ],
          ],
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
    expect((ann.contact_mechanisms as unknown[]).length).toBe(5);
    // The active ones by type, for the mapping (the archived email is left out).
    expect(ann.mechanisms).toEqual({ email: ['ann@example.com', 'ann.lee@private.example'], phone: ['+49 30 1234567'], mobile: ['+49 151 23456789'] });
    expect(lastState(pages)).not.toHaveProperty('after_id');

    const mapping = compileMapping(await loadMappingFile(connector.defaultMappingPath));
    expect(mapping.map('parties', ann, { source: 'tryton', stream: 'parties', defaultRegion: 'DE' })).toMatchObject({
      ok: true,
      record: { identifiers: [{ scheme: 'tryton:party_id', value: String(party.ann), verified: true }, { scheme: 'tryton:party_code', value: expect.any(String) }], person: { full_name: 'Ann Lee', emails: [{ address: 'ann@example.com' }, { address: 'ann.lee@private.example' }], phones: [{ number: '+49301234567' }, { number: '+4915123456789' }] } },
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

  it('a change dated before the cursor and committed after the run (a long transaction) arrives in the next run, through the lookback', async () => {
    const read = async (state: StreamState | undefined, options: Partial<TrytonConfig> = {}) => {
      const { records, state: last } = await readAll(connector, 'parties', { ...config, ...options }, state);
      return { emitted: records.map((record) => record.externalId), state: last };
    };
    const first = await read(undefined);
    // The lookback reads the last five minutes again: nothing unchanged comes out of it.
    expect((await read(first.state)).emitted).toEqual([]);

    const [late] = await rpc.call<number[]>('model.party.party.create', [[{ name: 'Di Late', contact_mechanisms: [['create', [{ type: 'email', value: 'di@example.com' }]]] }], {}]);
    // Tryton dates a change by the start of its transaction: one that began a minute before the cursor and committed
    // after the run leaves these dates. Only the database can be told so.
    const minuteBefore = new Date(Date.parse(String(first.state.cursor)) - 60_000).toISOString().replace('T', ' ').replace('Z', '000');
    const script = `import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute('update party_party set create_date = ?, write_date = null where id = ?', (sys.argv[2], int(sys.argv[3])))
db.execute('update party_contact_mechanism set create_date = ?, write_date = null where party = ?', (sys.argv[2], int(sys.argv[3])))
db.commit()`;
    const backdated = spawnSync('python3', ['-c', script, server.databaseFile, minuteBefore, String(late)], { encoding: 'utf8' });
    expect(backdated.stderr).toBe('');

    expect((await read(first.state)).emitted).toEqual([String(late)]);
    // Without a lookback the run starts at the cursor and never sees it.
    expect((await read(first.state, { lookback_seconds: 0 })).emitted).toEqual([]);
  });

  it('a deletion sweep lists the id of every party, archived ones too; one deleted in Tryton is listed no more', async () => {
    const [gone] = await rpc.call<number[]>('model.party.party.create', [[{ name: 'Ed Gone' }], {}]);
    const sweep = async () => (await readStream(connector, 'parties', { ...config, deletion_sweep_hours: 24 })).filter((page) => page.present);

    const before = await sweep();
    // Batches of 2: up to 100 ids per page, so one page, the sweep's start and end.
    expect(before.map((page) => page.sweep)).toEqual([{ start: true, end: true }]);
    expect(before[0].present).toEqual(expect.arrayContaining([party.companyParty, party.ann, party.bo, party.cy, gone].map(String)));

    await rpc.call('model.party.party.delete', [[gone], {}]);
    expect((await sweep())[0].present).toEqual(before[0].present!.filter((id) => id !== String(gone)));
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
