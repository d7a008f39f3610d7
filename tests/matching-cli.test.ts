/** Issue 3: `hub resolve` through the real command, with `resolution.matcher: probabilistic` in the configuration. */
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { runHub } from './helpers/cli.js';

describe('hub resolve', { timeout: 180_000 }, () => {
  let db: TestDatabase;
  let dir: string;
  let env: Record<string, string>;
  let config: string;
  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    dir = await mkdtemp(join(tmpdir(), 'hub-resolve-'));
    env = { DATABASE_URL: db.url };
    config = join(dir, 'hub.config.yaml');
    const csv = (rows: string[]) => ['id,given,family,born,street,city,phone', ...rows].join('\n') + '\n';
    await writeFile(join(dir, 'erp.csv'), csv(['1,Jon,Smith,1980-03-14,12 High St,London,', '2,Alice,Brown,,,,+44 20 7946 0018', '3,Maria,Kowalska,1975-06-02,,Leeds,']));
    await writeFile(join(dir, 'shop.csv'), csv(['a,jonathan,smith,1980-03-14,12 high street,london,', 'b,Robert,Green,,,,+44 20 7946 0018', 'c,Maria,Kowalksa,1975-06-02,,Leeds,']));
    await writeFile(
      join(dir, 'people.yaml'),
      `streams:
  rows:
    fields:
      - { target: person.given_name, from: given, transforms: [normalise_text] }
      - { target: person.family_name, from: family, transforms: [normalise_text] }
      - { target: person.birth_date, from: born }
      - { target: person.address.line1, from: street, transforms: [normalise_text] }
      - { target: person.address.city, from: city, transforms: [normalise_text] }
      - { target: person.phone, from: phone, transforms: [phone] }
`,
    );
    const source = (name: string) => `  - name: ${name}\n    connector: csv\n    default_region: GB\n    mapping: people.yaml\n    config:\n      path: ${name}.csv\n      id_column: id\n`;
    await writeFile(config, `resolution:\n  matcher: probabilistic\nsources:\n${source('erp')}${source('shop')}`);
  });
  afterAll(async () => {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const clusters = async () =>
    (await db.pool.query<{ golden_id: string; members: string[] }>(
      `select m.golden_id, array_agg(r.source || ':' || r.external_id order by r.id) as members
       from cluster_membership m join raw_record r on r.id = m.raw_record_id where m.valid_to is null group by m.golden_id order by m.golden_id`,
    )).rows;

  it('syncs with the probabilistic matcher, keeps the prior model on few records, and rebuilds deterministically', async () => {
    for (const name of ['erp', 'shop']) expect((await runHub(['--config', config, 'sync', name], env)).code).toBe(0);
    const synced = await clusters();
    const groups = synced.map((row) => row.members.join(' ')).sort();
    expect(groups).toEqual(['erp:1 shop:a', 'erp:2', 'erp:3 shop:c', 'shop:b']);

    const train = await runHub(['--config', config, 'resolve', '--train'], env);
    expect(train.code).toBe(0);
    // EM on six records would estimate nothing: below resolution.min_training_records the prior model stays.
    expect(train.stdout).toMatch(/model \d+: the prior model: 6 records are fewer than resolution.min_training_records \(1000\)/);

    const first = await runHub(['--config', config, 'resolve', '--full'], env);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('resolved 6 records (probabilistic matcher)');
    const once = await clusters();
    expect(once).toEqual(synced);
    const second = await runHub(['--config', config, 'resolve', '--full'], env);
    expect(second.stdout).toContain('0 created');
    expect(await clusters()).toEqual(once);
  });
});
