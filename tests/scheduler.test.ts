import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startHub } from './helpers/cli.js';

const exited = (child: ChildProcess) => new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));

describe('two hub processes on one database', () => {
  let db: TestDatabase;
  let dir: string;
  const workers: ChildProcess[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'hub-schedule-'));
    await writeFile(join(dir, 'people.csv'), 'id,email\n1,ada@example.com\n2,alan@example.com\n');
    // Every two seconds, so that a few ticks pass during the test.
    await writeFile(join(dir, 'hub.config.yaml'), `sync_on_start: false\nsources:\n  - name: people\n    connector: csv\n    schedule: "*/2 * * * * *"\n    config:\n      path: people.csv\n      id_column: id\n`);
  });
  afterAll(async () => {
    for (const worker of workers) worker.kill('SIGKILL');
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('run each scheduled sync once per tick, and each run once', async () => {
    for (let i = 0; i < 2; i++) workers.push(startHub(['--config', join(dir, 'hub.config.yaml'), 'worker'], { DATABASE_URL: db.url }));
    const finishedRuns = async () => Number((await db.pool.query("select count(*) from sync_run where trigger = 'schedule' and status = 'succeeded'")).rows[0].count);
    const deadline = Date.now() + 40_000;
    while ((await finishedRuns()) < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 500));
    for (const worker of workers) worker.kill('SIGTERM');
    await Promise.all(workers.map(exited));

    const { rows: runs } = await db.pool.query<{ id: string; scheduled_for: Date; status: string; created: number; unchanged: number }>(
      "select id, scheduled_for, status, created, unchanged from sync_run where trigger = 'schedule' order by scheduled_for",
    );
    expect(runs.filter((run) => run.status === 'succeeded').length).toBeGreaterThanOrEqual(4);
    // Both processes fire every tick; a tick that yielded two runs would show two runs less than two seconds apart.
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i].scheduled_for.getTime() - runs[i - 1].scheduled_for.getTime()).toBeGreaterThanOrEqual(2000);
    }
    // Each run's job ran once: the records were created once, and every later run found them unchanged.
    const succeeded = runs.filter((run) => run.status === 'succeeded');
    expect(succeeded.reduce((sum, run) => sum + run.created, 0)).toBe(2);
    expect(succeeded.slice(1).every((run) => run.unchanged === 2)).toBe(true);
    const { rows: jobs } = await db.pool.query<{ n: number }>("select count(*)::int as n from pgboss.job where name = 'sync'");
    expect(jobs[0].n).toBe(runs.length);
  }, 60_000);
});
