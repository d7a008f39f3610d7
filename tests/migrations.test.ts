import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listMigrations, migrate } from '../hub/db/migrate.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

describe('migrations', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
  });
  afterAll(() => db.drop());

  it('applies every migration once, then nothing', async () => {
    const all = (await listMigrations()).map((migration) => migration.version);
    expect(await migrate(db.pool, { dryRun: true })).toEqual(all);
    expect(await migrate(db.pool)).toEqual(all);
    expect(await migrate(db.pool)).toEqual([]);
  });

  it('applies them once when several processes start together', async () => {
    const results = await Promise.all([migrate(db.pool), migrate(db.pool), migrate(db.pool)]);
    expect(results.flat()).toEqual([]);
  });

  it('creates the extensions the matcher needs', async () => {
    const { rows } = await db.pool.query<{ extname: string }>('select extname from pg_extension order by extname');
    expect(rows.map((row) => row.extname)).toEqual(expect.arrayContaining(['citext', 'fuzzystrmatch', 'pg_trgm', 'unaccent']));
    const similarity = await db.pool.query<{ s: number }>("select similarity('Jonathan', 'Jonathon') as s");
    expect(similarity.rows[0].s).toBeGreaterThan(0.4);
  });

  it('refuses a database newer than the hub', async () => {
    await db.pool.query("insert into schema_migration (version) values ('9999_from_the_future')");
    await expect(migrate(db.pool)).rejects.toThrow(/newer than this hub/);
    await db.pool.query("delete from schema_migration where version = '9999_from_the_future'");
  });
});
