import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createApiKey } from '../hub/auth.js';
import { checkConfig } from '../hub/config.js';
import { silentLogger } from '../hub/log.js';
import { normaliseOrganisationName, organisationDomain, organisationKeys } from '../identity-resolution/organisations.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, buildTestApp } from './helpers/app.js';
import { changesAfter, golden, goldenOf, ingest, lastPosition } from './helpers/pipeline.js';

describe('organisation keys', () => {
  it('folds legal forms, case, accents, punctuation and "&"/"and"', () => {
    const acme = normaliseOrganisationName('Acme');
    for (const name of ['Acme Ltd.', 'ACME Limited', 'Acme, Inc.', 'acme plc', 'Acme GmbH', 'Acme GmbH & Co. KG', 'ACME S.A.', 'Acme B.V.', 'Acme Corp']) {
      expect(normaliseOrganisationName(name), name).toBe(acme);
    }
    expect(acme).toBe('acme');
    expect(normaliseOrganisationName('Isar Druck & Medien')).toBe(normaliseOrganisationName('isar druck and medien'));
    expect(normaliseOrganisationName('Nestlé S.A.')).toBe('nestle');
    expect(normaliseOrganisationName('Müller + Söhne GmbH')).toBe('muller and sohne');
    expect(normaliseOrganisationName('Kowalski Sp. z o.o.')).toBe('kowalski');
    expect(normaliseOrganisationName('Dupont S.à r.l.')).toBe('dupont');
    // Only trailing legal forms go: a name that is nothing else keeps no key, a word inside a name stays.
    expect(normaliseOrganisationName('GmbH')).toBe('');
    expect(normaliseOrganisationName('The Co-operative Bank plc')).toBe('the co operative bank');
  });

  it('takes domains from websites and work emails, never from free-mail providers', () => {
    expect(organisationDomain('https://www.Acme.com/about')).toBe('acme.com');
    expect(organisationDomain('jane@sub.acme.co.uk')).toBe('sub.acme.co.uk');
    for (const address of ['jane@gmail.com', 'JANE@Outlook.com', 'jane@web.de', 'www.hotmail.com', 'not a domain']) expect(organisationDomain(address), address).toBeUndefined();
    expect(
      organisationKeys({
        person: { emails: [{ address: 'jane@gmail.com' }, { address: 'jane@acme.de' }] },
        organisation: { name: 'Acme GmbH', vat_number: 'de 123.456-789', domain: 'gmail.com' },
      }),
    ).toEqual([
      { kind: 'domain', value: 'acme.de' },
      { kind: 'name', value: 'acme' },
      { kind: 'vat', value: 'DE123456789' },
    ]);
    expect(organisationKeys({ person: { emails: [{ address: 'jane@acme.de' }] } })).toEqual([]);
  });
});

describe('organisations in resolution', () => {
  let db: TestDatabase;
  let app: FastifyInstance;
  let key: string;
  const organisationOf = async (source: string, id: string) => (await golden(db.pool, (await goldenOf(db.pool, source, id))!)).data.organisation_id as string | undefined;
  const get = async (url: string) => {
    const response = await app.inject({ method: 'GET', url, headers: bearer(key) });
    return { status: response.statusCode, headers: response.headers, body: response.json() };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await buildTestApp({ pool: db.pool, config: checkConfig({ sources: [] }, 'test.yaml'), log: silentLogger });
    key = await createApiKey(db.pool, 'reader', ['read']);
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('links two people of one company, named differently in two sources, to one organisation', async () => {
    await ingest(db.pool, 'crm', [{ id: 'c1', email: 'ann@havelsoft.de', given: 'Ann', family: 'Berg', company: 'Havel Software GmbH', updated: '2025-01-01T10:00:00Z' }]);
    await ingest(db.pool, 'shop', [{ id: 's1', email: 'bob@havelsoft.de', given: 'Bob', family: 'Kühn', company: 'HAVEL SOFTWARE', updated: '2025-02-01T10:00:00Z' }]);
    const havel = await organisationOf('crm', 'c1');
    expect(havel).toMatch(/^org_\d+$/);
    expect(await organisationOf('shop', 's1')).toBe(havel);

    const { status, body } = await get(`/v1/organisations/${havel}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ id: havel, name: 'Havel Software GmbH', names: ['Havel Software GmbH', 'HAVEL SOFTWARE'], domains: ['havelsoft.de'], identifiers: [], people_count: 2 });
    expect(body.people).toEqual([
      { id: await goldenOf(db.pool, 'crm', 'c1'), full_name: 'Ann Berg', email: 'ann@havelsoft.de' },
      { id: await goldenOf(db.pool, 'shop', 's1'), full_name: 'Bob Kühn', email: 'bob@havelsoft.de' },
    ]);
    // The customer resource names its organisation.
    expect((await get(`/v1/customers/${await goldenOf(db.pool, 'crm', 'c1')}`)).body.attributes.organisation_id).toBe(havel);
  });

  it('keeps the organisation of a customer when a record without a company joins it', async () => {
    await ingest(db.pool, 'crm', [{ id: 'c9', email: 'ida@spreewerk.de', given: 'Ida', family: 'Lenz', company: 'Spreewerk GmbH', updated: '2025-01-01T10:00:00Z' }]);
    const spreewerk = await organisationOf('crm', 'c9');
    expect(spreewerk).toMatch(/^org_\d+$/);
    // The shop's record names no company: its pass does not re-cluster organisations, yet the customer keeps its link.
    await ingest(db.pool, 'shop', [{ id: 's9', email: 'ida@spreewerk.de', given: 'Ida', family: 'Lenz', updated: '2025-02-01T10:00:00Z' }]);
    expect(await goldenOf(db.pool, 'shop', 's9')).toBe(await goldenOf(db.pool, 'crm', 'c9'));
    expect(await organisationOf('shop', 's9')).toBe(spreewerk);
  });

  it('matches a VAT number across two sources whatever its spacing, and answers a name search', async () => {
    await ingest(db.pool, 'erp', [{ id: 'e1', email: 'cfo@zeta-holdings.co.uk', company: 'Zeta Holdings Ltd', vat: 'GB 123 4567 89', updated: '2025-01-01T10:00:00Z' }]);
    await ingest(db.pool, 'crm', [{ id: 'c2', email: 'buyer@zeta.example', company: 'Zeta Group', vat: 'gb123456789', updated: '2025-02-01T10:00:00Z' }]);
    const zeta = await organisationOf('erp', 'e1');
    expect(await organisationOf('crm', 'c2')).toBe(zeta);
    const { body } = await get(`/v1/organisations/${zeta}`);
    expect(body).toMatchObject({ name: 'Zeta Holdings Ltd', names: ['Zeta Holdings Ltd', 'Zeta Group'], identifiers: [{ scheme: 'vat', value: 'GB123456789' }], people_count: 2 });
    expect(body.domains.sort()).toEqual(['zeta-holdings.co.uk', 'zeta.example']);

    const search = await get('/v1/organisations?name=zeta%20grup');
    expect(search.status).toBe(200);
    expect(search.body.data.map((organisation: { id: string }) => organisation.id)).toEqual([zeta]);
    expect(search.body.data[0].score).toBeGreaterThan(0);
  });

  it('never links companies through a free-mail domain, or a domain under which records name different companies', async () => {
    await ingest(db.pool, 'fair', [
      { id: 'f1', email: 'kim@gmail.com', company: 'Alpen Solar AG', updated: '2025-01-01T10:00:00Z' },
      { id: 'f2', email: 'lou@gmail.com', company: 'Nordwind Logistik GmbH', updated: '2025-01-01T10:00:00Z' },
      { id: 'f3', email: 'max@mail.example', company: 'Elbe Medical GmbH', updated: '2025-01-01T10:00:00Z' },
      { id: 'f4', email: 'nia@mail.example', company: 'Isar Druck & Medien', updated: '2025-01-01T10:00:00Z' },
    ]);
    const organisations = await Promise.all(['f1', 'f2', 'f3', 'f4'].map((id) => organisationOf('fair', id)));
    expect(new Set(organisations).size).toBe(4);
    const { body } = await get(`/v1/organisations/${organisations[0]}`);
    expect(body.domains).toEqual([]);
    expect((await get(`/v1/organisations/${organisations[2]}`)).body.domains).toEqual([]);
  });

  it('moves a person who changes company to the new organisation', async () => {
    const ann = (await goldenOf(db.pool, 'crm', 'c1'))!;
    const havel = await organisationOf('crm', 'c1');
    const zeta = await organisationOf('erp', 'e1');
    const before = await lastPosition(db.pool);
    await ingest(db.pool, 'crm', [{ id: 'c1', email: 'ann@havelsoft.de', given: 'Ann', family: 'Berg', company: 'Zeta Group', vat: 'GB123456789', updated: '2025-03-01T10:00:00Z' }]);
    expect(await organisationOf('crm', 'c1')).toBe(zeta);
    expect((await get(`/v1/organisations/${havel}`)).body.people.map((person: { id: string }) => person.id)).toEqual([await goldenOf(db.pool, 'shop', 's1')]);
    expect((await get(`/v1/organisations/${zeta}`)).body.people_count).toBe(3);
    expect(await changesAfter(db.pool, before)).toEqual([expect.objectContaining({ golden_id: ann, kind: 'updated', changed: ['organisation', 'organisation_id'] })]);
  });

  it('merges organisations that a new record links, and relinks their people', async () => {
    await ingest(db.pool, 'crm', [
      { id: 'o1', email: 'pia@gmail.com', company: 'Omega Ltd', updated: '2025-01-01T10:00:00Z' },
      { id: 'o2', email: 'raj@gmail.com', company: 'Omega Trading GmbH', regno: 'HRB 4711', updated: '2025-01-01T10:00:00Z' },
    ]);
    const [omega, omegaTrading] = [(await organisationOf('crm', 'o1'))!, (await organisationOf('crm', 'o2'))!];
    expect(omega).not.toBe(omegaTrading);
    const raj = (await goldenOf(db.pool, 'crm', 'o2'))!;
    const before = await lastPosition(db.pool);
    // A company record (no person) with Omega's name and Omega Trading's registration number: one organisation.
    await ingest(db.pool, 'erp', [{ id: 'x1', company: 'OMEGA', regno: 'HRB4711', updated: '2025-02-01T10:00:00Z' }]);
    expect(await organisationOf('crm', 'o1')).toBe(omega);
    expect(await organisationOf('crm', 'o2')).toBe(omega);
    expect(await changesAfter(db.pool, before)).toEqual([expect.objectContaining({ golden_id: raj, kind: 'updated', changed: ['organisation_id'] })]);
    const moved = await get(`/v1/organisations/${omegaTrading}`);
    expect(moved.status).toBe(308);
    expect(moved.headers.location).toBe(`/v1/organisations/${omega}`);
    expect((await get(`/v1/organisations/${omega}`)).body).toMatchObject({ identifiers: [{ scheme: 'registration_number', value: 'HRB4711' }], people_count: 2 });
    expect((await get('/v1/organisations/org_999999')).status).toBe(404);
  });

  it('retires an organisation whose only record no longer maps', async () => {
    await ingest(db.pool, 'crm', [{ id: 'q1', email: 'sam@quill.example', company: 'Quill & Co', updated: '2025-01-01T10:00:00Z' }]);
    const quill = (await organisationOf('crm', 'q1'))!;
    await ingest(db.pool, 'crm', [{ id: 'q1', email: 'sam(at)quill.example', company: 'Quill & Co', updated: '2025-01-02T10:00:00Z' }]);
    const { rows } = await db.pool.query('select status from organisation where id = $1', [quill]);
    expect(rows).toEqual([{ status: 'retired' }]);
    expect((await get(`/v1/organisations/${quill}`)).status).toBe(404);
  });
});
