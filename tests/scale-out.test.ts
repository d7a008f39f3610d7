/**
 * Scale-out: four `hub worker` processes on one database with a scheduled source. Every tick yields one run,
 * every run one job executed once, runs of a source never overlap, and the final state equals a single-process run.
 */
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../hub/config.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startHub } from './helpers/cli.js';
import { startTestHub, syncNow } from './helpers/hub.js';

const WORKERS = 4;
const ROWS = 400;
const exited = (child: ChildProcess) => new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));

/** Records with their content, cluster (by its first record) and golden values: no ids that depend on timing. */
async function finalState(db: TestDatabase) {
  const { rows } = await db.pool.query(
    `select r.external_id, r.content_hash, min(r.external_id) over (partition by g.id) as cluster, g.data
     from raw_record r join cluster_membership m on m.raw_record_id = r.id and m.valid_to is null join golden_record g on g.id = m.golden_id
     where r.source = 'people' order by r.external_id`,
  );
  const golden = await db.pool.query("select status, count(*)::int as n from golden_record group by status order by status");
  return { records: rows, golden: golden.rows };
}

describe(`${WORKERS} hub worker processes on one database`, () => {
  let db: TestDatabase;
  let reference: TestDatabase;
  let dir: string;
  const workers: ChildProcess[] = [];
  const mappingYaml = 'streams:\n  rows:\n    fields:\n      - { target: person.email, from: email, transforms: [email] }\n      - { target: person.full_name, from: name }\n';
  beforeAll(async () => {
    db = await createTestDatabase();
    reference = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'hub-scale-out-'));
    const lines = ['id,email,name'];
    // Every fifth person appears twice, so resolution merges records into clusters.
    for (let i = 0; i < ROWS; i++) lines.push(`${i},person${i - (i % 5 === 1 ? 1 : 0)}@example.com,Person ${i}`);
    await writeFile(join(dir, 'people.csv'), lines.join('\n') + '\n');
    await writeFile(join(dir, 'people.yaml'), mappingYaml);
    await writeFile(
      join(dir, 'hub.config.yaml'),
      'sync_on_start: false\nsources:\n  - name: people\n    connector: csv\n    mapping: people.yaml\n    schedule: "*/2 * * * * *"\n    config: { path: people.csv, id_column: id, page_size: 50 }\n',
    );
  });
  afterAll(async () => {
    for (const worker of workers) if (worker.exitCode === null) worker.kill('SIGKILL');
    await Promise.all(workers.map(exited));
    await db.drop();
    await reference.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('run each tick once, each job once, never two runs of a source at a time, and end as one process would', async () => {
    const output: string[] = [];
    for (let i = 0; i < WORKERS; i++) {
      const worker = startHub(['--config', join(dir, 'hub.config.yaml'), 'worker'], { DATABASE_URL: db.url });
      worker.stderr!.on('data', (chunk) => output.push(`worker ${i}: ${chunk}`));
      workers.push(worker);
    }
    const finishedRuns = async () => Number((await db.pool.query("select count(*) from sync_run where trigger = 'schedule' and status = 'succeeded'")).rows[0].count);
    const deadline = Date.now() + 60_000;
    while ((await finishedRuns()) < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 500));
    for (const worker of workers) worker.kill('SIGTERM');
    expect(await Promise.all(workers.map(exited)), output.join('')).toEqual(workers.map(() => 0));

    const { rows: runs } = await db.pool.query<{ id: string; scheduled_for: Date; status: string; created: number; unchanged: number; read: number; started_at: Date | null; finished_at: Date | null }>(
      "select id, scheduled_for, status, created, unchanged, read, started_at, finished_at from sync_run where trigger = 'schedule' order by scheduled_for",
    );
    const succeeded = runs.filter((run) => run.status === 'succeeded');
    expect(succeeded.length).toBeGreaterThanOrEqual(5);
    expect(runs.every((run) => run.status === 'succeeded' || run.status === 'queued' || run.status === 'running')).toBe(true);
    // Four processes fire every tick: one run per tick (ticks at least two seconds apart), and one at a time.
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i].scheduled_for.getTime() - runs[i - 1].scheduled_for.getTime()).toBeGreaterThanOrEqual(2000);
      if (runs[i].started_at && runs[i - 1].finished_at) expect(runs[i].started_at!.getTime()).toBeGreaterThanOrEqual(runs[i - 1].finished_at!.getTime());
    }
    // Each run executed once: the records were created once, every later run read the whole file and found it unchanged.
    expect(succeeded.reduce((sum, run) => sum + run.created, 0)).toBe(ROWS);
    expect(succeeded.every((run) => run.read === ROWS)).toBe(true);
    expect(succeeded.slice(1).every((run) => run.unchanged === ROWS)).toBe(true);
    // One job per run, none retried.
    const { rows: jobs } = await db.pool.query<{ n: number; retried: number }>(
      "select count(*)::int as n, count(*) filter (where retry_count > 0)::int as retried from pgboss.job where name = 'sync'",
    );
    expect(jobs[0]).toEqual({ n: runs.length, retried: 0 });

    // The same file synced once by a single process.
    const hub = await startTestHub(reference, undefined, checkConfig({ sources: [{ name: 'people', connector: 'csv', mapping: 'people.yaml', config: { path: 'people.csv', id_column: 'id', page_size: 50 } }] }, join(dir, 'hub.config.yaml')));
    try {
      expect(await syncNow(hub, 'people')).toMatchObject({ status: 'succeeded', read: ROWS, created: ROWS });
    } finally {
      await hub.stop();
    }
    const [after, expected] = [await finalState(db), await finalState(reference)];
    expect(after.records).toHaveLength(ROWS);
    expect(after).toEqual(expected);
  }, 120_000);
});
