import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { runHub } from './helpers/cli.js';
import { peopleMapping, writePeopleSource } from './helpers/people-source.js';

describe('the hub command', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    dir = await mkdtemp(join(tmpdir(), 'hub-cli-'));
    env = { DATABASE_URL: db.url };
    // The first mapping reads the dates the American way: wrong for this file.
    await writePeopleSource(dir, ['1,ada@example.com,Ada,10.12.1815', '2,alan@example.com,Alan,23.06.1912', '3,grace@example.com,Grace,09.12.1906', '4,broken@example.com,Broken'], 'MM/dd/yyyy');
    await writeFile(
      join(dir, 'hub.config.yaml'),
      `sources:\n  - name: people\n    connector: csv\n    mapping: people.yaml\n    config:\n      path: people.csv\n      id_column: id\n  - name: missing\n    connector: csv\n    config:\n      path: nowhere.csv\n`,
    );
  });
  afterAll(async () => {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('validates a configuration and names the key and the reason of each problem', async () => {
    const good = await runHub(['config', 'validate', 'examples/hub.config.yaml']);
    expect(good).toMatchObject({ code: 0, stdout: expect.stringContaining('is valid: 3 source(s)') });

    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, `colour: blue\nsources:\n  - name: shop\n    connector: nosuch\n    config: {}\n  - name: crm\n    connector: csv\n    schedule: "every day"\n    config:\n      path: \${NOT_SET_ANYWHERE}\n`);
    const result = await runHub(['config', 'validate', bad], { NOT_SET_ANYWHERE: undefined });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('sources[1].config.path: environment variable NOT_SET_ANYWHERE is not set');
    const second = await runHub(['config', 'validate', bad], { NOT_SET_ANYWHERE: 'x.csv' });
    expect(second.stderr).toContain('colour: is not a known key');
    await writeFile(bad, `sources:\n  - name: shop\n    connector: nosuch\n    config: {}\n  - name: crm\n    connector: csv\n    schedule: "every day"\n    config:\n      path: x.csv\n      colour: blue\n`);
    const third = await runHub(['config', 'validate', bad]);
    expect(third.stderr).toContain("sources[0].connector: unknown connector 'nosuch'");
    expect(third.stderr).toContain("sources[1].schedule: 'every day' is not a valid cron expression");
    expect(third.stderr).toContain('sources[1].config.colour: is not a known key');
  });

  it('migrates, and says what it would do first', async () => {
    const dry = await runHub(['--config', join(dir, 'hub.config.yaml'), 'migrate', '--dry-run'], env);
    expect(dry).toMatchObject({ code: 0, stdout: expect.stringContaining('would apply: 0001_init') });
    const { rows } = await db.pool.query("select to_regclass('golden_record') as table");
    expect(rows[0].table).toBeNull();
    expect((await runHub(['--config', join(dir, 'hub.config.yaml'), 'migrate'], env)).stdout).toContain('applied: 0001_init');
    expect((await runHub(['--config', join(dir, 'hub.config.yaml'), 'migrate'], env)).stdout).toContain('up to date');
  });

  it('checks a source', async () => {
    const ok = await runHub(['--config', join(dir, 'hub.config.yaml'), 'check', 'people'], env);
    expect(ok).toMatchObject({ code: 0, stdout: expect.stringMatching(/people: ok: .*4 columns/) });
    const missing = await runHub(['--config', join(dir, 'hub.config.yaml'), 'check', 'missing'], env);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain('nowhere.csv');
  });

  it('syncs a source with progress and counts, quarantining what does not map; remap loads it after the mapping is fixed', async () => {
    const sync = await runHub(['--config', join(dir, 'hub.config.yaml'), 'sync', 'people'], env);
    expect(sync.code).toBe(0);
    expect(sync.stdout).toMatch(/run \d+ succeeded: read 4, created 3, updated 0, unchanged 0, quarantined 4/);
    const open = async () => (await db.pool.query('select external_id, line, field, stage, reason from quarantine where resolved_at is null order by id')).rows;
    expect(await open()).toEqual([
      { external_id: null, line: 5, field: null, stage: 'read', reason: expect.stringContaining('line 5') },
      { external_id: '1', line: null, field: 'born', stage: 'map', reason: expect.stringContaining('MM/dd/yyyy') },
      { external_id: '2', line: null, field: 'born', stage: 'map', reason: expect.stringContaining('MM/dd/yyyy') },
      { external_id: '3', line: null, field: 'born', stage: 'map', reason: expect.stringContaining('MM/dd/yyyy') },
    ]);
    const golden = async () => (await db.pool.query("select data->>'birth_date' as born from golden_record where status = 'active' order by 1")).rows.map((row) => row.born);
    expect(await golden()).toEqual([]);

    await writeFile(join(dir, 'people.yaml'), peopleMapping('dd.MM.yyyy'));
    const remap = await runHub(['--config', join(dir, 'hub.config.yaml'), 'remap', 'people'], env);
    expect(remap.code).toBe(0);
    expect(remap.stdout).toMatch(/run \d+ succeeded: read 3, created 0, updated 3, unchanged 0, quarantined 0/);
    expect((await open()).map((row) => row.stage)).toEqual(['read']);
    expect(await golden()).toEqual(['1815-12-10', '1906-12-09', '1912-06-23']);
  });

  it('fails with a clear message for an unknown source', async () => {
    const result = await runHub(['--config', join(dir, 'hub.config.yaml'), 'sync', 'nosuch'], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("There is no source named 'nosuch'");
  });
});
