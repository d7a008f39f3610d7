import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startTestHub, syncNow, type TestHub } from './helpers/hub.js';
import { lastPosition, changesAfter } from './helpers/pipeline.js';

interface ExpectedGolden {
  person: number;
  members: string[];
  emails: string[];
  email?: string;
  phone?: string;
  email_marketing?: string;
}

describe('the example data, end to end', () => {
  let db: TestDatabase;
  let hub: TestHub;
  const expected: ExpectedGolden[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
    hub = await startTestHub(db);
    expected.push(...JSON.parse(await readFile('examples/expected-golden.json', 'utf8')));
  });
  afterAll(async () => {
    await hub.stop();
    await db.drop();
  });

  it('syncs the three example sources', async () => {
    const runs = [];
    for (const source of ['crm-contacts', 'tradeshow-2025', 'shop-orders']) runs.push(await syncNow(hub, source));
    expect(runs.map((run) => [run.source, run.status, run.read, run.created, run.quarantined])).toEqual([
      ['crm-contacts', 'succeeded', 120, 120, 0],
      ['tradeshow-2025', 'succeeded', 102, 101, 2],
      ['shop-orders', 'succeeded', 90, 90, 0],
    ]);
  });

  it('builds exactly the expected golden records', async () => {
    const { rows } = await db.pool.query<{ member: string; golden_id: string }>(
      `select r.source || ':' || r.external_id as member, m.golden_id
       from cluster_membership m join raw_record r on r.id = m.raw_record_id where m.valid_to is null`,
    );
    const goldenOf = new Map(rows.map((row) => [row.member, row.golden_id]));
    const clusters = new Map<string, string[]>();
    for (const row of rows) clusters.set(row.golden_id, [...(clusters.get(row.golden_id) ?? []), row.member].sort());
    const actual = [...clusters.values()].sort((a, b) => a[0].localeCompare(b[0]));
    const wanted = expected.map((golden) => golden.members).sort((a, b) => a[0].localeCompare(b[0]));
    expect(actual).toEqual(wanted);

    const { rows: golden } = await db.pool.query<{ id: string; data: Record<string, unknown> }>("select id, data from golden_record where status = 'active'");
    expect(golden).toHaveLength(expected.length);
    const data = new Map(golden.map((row) => [row.id, row.data]));
    for (const person of expected) {
      const attributes = data.get(goldenOf.get(person.members[0])!)!;
      expect({ person: person.person, email: attributes.email, emails: [...(attributes.emails as string[])].sort(), phone: attributes.phone, consent: (attributes.email_marketing as { status?: string } | undefined)?.status }).toEqual({
        person: person.person,
        email: person.email,
        emails: person.emails,
        phone: person.phone,
        consent: person.email_marketing,
      });
    }
  });

  it('quarantines the bad trade-show rows with line number, field and reason', async () => {
    const { rows } = await db.pool.query('select external_id, line, field, stage, reason from quarantine order by id');
    expect(rows).toEqual([
      { external_id: null, line: 102, field: null, stage: 'read', reason: expect.stringMatching(/8 fields.*9/) },
      { external_id: 'TS-9002', line: null, field: 'email', stage: 'map', reason: expect.stringMatching(/ivo\.brandt\(at\)example\.org/) },
    ]);
  });

  it('links every person to one of the six companies, never through the trade show’s free-mail domain', async () => {
    const { rows } = await db.pool.query<{ name: string; domains: string[]; people: number }>(
      `select o.data ->> 'name' as name, o.data -> 'domains' as domains,
         (select count(*)::int from golden_record g where g.status = 'active' and g.data ->> 'organisation_id' = o.id) as people
       from organisation o where o.status = 'active' order by o.data ->> 'name'`,
    );
    expect(rows.map((row) => [row.name, row.domains])).toEqual([
      ['Alpen Solar AG', ['alpensolar.de']],
      ['Elbe Medical GmbH', ['elbe-medical.de']],
      ['Havel Software GmbH', ['havelsoft.de']],
      ['Isar Druck & Medien', ['isardruck.de']],
      ['Nordwind Logistik GmbH', ['nordwind-logistik.de']],
      ['Rheinmetallbau KG', ['rheinmetallbau.de']],
    ]);
    expect(rows.reduce((sum, row) => sum + row.people, 0)).toBe(expected.length);
  });

  it('puts the orders on the customers’ timelines', async () => {
    const { rows } = await db.pool.query<{ n: number }>(
      `select count(*)::int as n from interaction i join cluster_membership m on m.raw_record_id = i.raw_record_id and m.valid_to is null`,
    );
    expect(rows[0].n).toBe(90);
  });

  it('changes nothing when the same files are synced again', async () => {
    const before = await lastPosition(db.pool);
    const run = await syncNow(hub, 'tradeshow-2025');
    expect(run).toMatchObject({ status: 'succeeded', read: 102, created: 0, updated: 0, unchanged: 101, quarantined: 0 });
    expect(await changesAfter(db.pool, before)).toEqual([]);
  });
});
