import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type PgBoss from 'pg-boss';
import { startQueue } from '../hub/queue.js';
import { enforceRetention, retentionSettings } from '../hub/retention.js';
import { housekeeping } from '../hub/webhooks.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { seedQuarantine, seedRecord, seedRun, seedSource } from './helpers/app.js';

describe('retention', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  beforeAll(async () => {
    db = await createTestDatabase();
    boss = await startQueue(db.url, () => undefined);
  });
  afterAll(async () => {
    await boss.stop({ graceful: false, wait: true });
    await db.drop();
  });

  const age = (table: string, column: string, id: number, days: number) => db.pool.query(`update ${table} set ${column} = now() - make_interval(days => $2) where id = $1`, [id, days]);
  const ids = async (table: string) => (await db.pool.query<{ id: string }>(`select id from ${table} order by id`)).rows.map((row) => Number(row.id));

  it('has defaults and reads the environment', () => {
    expect(retentionSettings()).toEqual({ runDays: 90, resolvedQuarantineDays: 30, jobArchiveDays: 7, changeLogDays: 30 });
    process.env.HUB_RUN_RETENTION_DAYS = '10';
    try {
      expect(retentionSettings().runDays).toBe(10);
      process.env.HUB_RUN_RETENTION_DAYS = 'soon';
      expect(() => retentionSettings()).toThrow(/HUB_RUN_RETENTION_DAYS/);
    } finally {
      delete process.env.HUB_RUN_RETENTION_DAYS;
    }
  });

  it('deletes old run history (keeping the last run of each source and runs still referenced), resolved quarantine and archived jobs', async () => {
    await seedSource(db.pool, 'shop');
    await seedSource(db.pool, 'crm');
    const oldRuns = [];
    for (let i = 0; i < 3; i++) oldRuns.push(await seedRun(db.pool, 'shop', { status: i === 1 ? 'failed' : 'succeeded' }));
    const referenced = await seedRun(db.pool, 'shop', { status: 'succeeded' });
    const namedByQuarantine = await seedRun(db.pool, 'shop', { status: 'succeeded' });
    const lastOfShop = await seedRun(db.pool, 'shop', { status: 'succeeded' });
    const onlyOfCrm = await seedRun(db.pool, 'crm', { status: 'succeeded' });
    const recent = await seedRun(db.pool, 'crm', { status: 'succeeded' });
    const running = await seedRun(db.pool, 'crm', { status: 'running' });
    for (const id of [...oldRuns, referenced, namedByQuarantine, lastOfShop, onlyOfCrm]) await age('sync_run', 'finished_at', id, 200);
    await db.pool.query('update sync_run set finished_at = now() - interval \'1 day\' where id = $1', [recent]);
    // crm's old run is not its last: the recent one is.
    const record = await seedRecord(db.pool, { source: 'shop', externalId: 'a' });
    await db.pool.query('update raw_record set last_run_id = $2 where id = $1', [record, referenced]);

    const oldResolved = await seedQuarantine(db.pool, { source: 'shop', stage: 'read', reason: 'old and resolved', resolved: true, runId: oldRuns[0] });
    const newResolved = await seedQuarantine(db.pool, { source: 'shop', stage: 'read', reason: 'recently resolved', resolved: true });
    const open = await seedQuarantine(db.pool, { source: 'shop', stage: 'read', reason: 'still open', runId: namedByQuarantine, line: 3 });
    await age('quarantine', 'resolved_at', oldResolved, 40);
    await age('quarantine', 'resolved_at', newResolved, 5);
    await age('quarantine', 'created_at', open, 400);

    await boss.createQueue('retention-test');
    const oldJob = await boss.send('retention-test', { n: 1 });
    const newJob = await boss.send('retention-test', { n: 2 });
    await db.pool.query("insert into pgboss.archive select j.*, now() - interval '10 days' from pgboss.job j where j.id = $1", [oldJob]);
    await db.pool.query("insert into pgboss.archive select j.*, now() - interval '1 day' from pgboss.job j where j.id = $1", [newJob]);

    const result = await enforceRetention(db.pool);
    expect(result).toMatchObject({ runs: 4, resolvedQuarantine: 1, archivedJobs: 1 });
    expect(await ids('sync_run')).toEqual([referenced, namedByQuarantine, lastOfShop, recent, running].sort((a, b) => a - b));
    expect(await ids('quarantine')).toEqual([newResolved, open]);
    const { rows: archive } = await db.pool.query<{ id: string }>("select id from pgboss.archive where name = 'retention-test'");
    expect(archive.map((row) => row.id)).toEqual([newJob]);

    // Nothing more to delete the second time; the hourly housekeeping runs the same.
    expect(await enforceRetention(db.pool)).toEqual({ runs: 0, resolvedQuarantine: 0, archivedJobs: 0, changes: 0 });
    await housekeeping(db.pool);
    expect(await ids('sync_run')).toHaveLength(5);
  });

  it('honours shorter periods', async () => {
    const settings = { ...retentionSettings(), resolvedQuarantineDays: 1 };
    expect((await enforceRetention(db.pool, settings)).resolvedQuarantine).toBe(1);
  });
});
