import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startHub } from './helpers/cli.js';
import { waitFor } from './helpers/wait.js';
import { startTestHub, syncNow } from './helpers/hub.js';
import { checkConfig } from '../hub/config.js';

const ROWS = 6000;

/**
 * What a sync leaves behind, without ids that depend on timing (a killed transaction still consumes sequence
 * numbers): each record with its content, the first record of its cluster, and its golden record's values.
 */
async function finalState(db: TestDatabase) {
  const { rows } = await db.pool.query(
    `select r.external_id, r.content_hash, min(r.external_id) over (partition by g.id) as cluster, g.data
     from raw_record r join cluster_membership m on m.raw_record_id = r.id and m.valid_to is null join golden_record g on g.id = m.golden_id
     where r.source = 'people' order by r.external_id`,
  );
  const changes = await db.pool.query("select kind, count(*)::int as n from change_log group by kind order by kind");
  return { records: rows, changes: changes.rows };
}

describe('a worker killed in the middle of a sync', () => {
  let dir: string;
  let killed: TestDatabase;
  let reference: TestDatabase;
  let stopped: TestDatabase | undefined;
  const workers: ChildProcess[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hub-faults-'));
    const lines = ['id,email,name'];
    // Every tenth person appears twice, so clusters have more than one member.
    for (let i = 0; i < ROWS; i++) lines.push(`${i},person${i - (i % 10 === 1 ? 1 : 0)}@example.com,Person ${i}`);
    await writeFile(join(dir, 'people.csv'), lines.join('\n') + '\n');
    await writeFile(join(dir, 'people.yaml'), 'streams:\n  rows:\n    fields:\n      - { target: person.email, from: email, transforms: [email] }\n      - { target: person.full_name, from: name }\n');
    await writeFile(join(dir, 'hub.config.yaml'), 'sources:\n  - name: people\n    connector: csv\n    mapping: people.yaml\n    config: { path: people.csv, id_column: id, page_size: 100 }\n');
    killed = await createTestDatabase();
    reference = await createTestDatabase();
  });
  afterAll(async () => {
    for (const worker of workers) if (worker.exitCode === null) worker.kill('SIGKILL');
    await stopped?.drop();
    await killed.drop();
    await reference.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('resumes from the last checkpoint in the next worker, ending as an uninterrupted run would', async () => {
    const env = { DATABASE_URL: killed.url };
    const first = startHub(['--config', join(dir, 'hub.config.yaml'), 'worker'], env);
    workers.push(first);
    const run = async () => (await killed.pool.query('select id, status, read, created, unchanged from sync_run order by id limit 1')).rows[0];
    await waitFor(async () => (await run())?.read >= 1000, { timeoutMs: 60_000, intervalMs: 100, what: 'the first pages' });
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    const interrupted = await run();
    expect(interrupted.status).toBe('running');
    expect(interrupted.read).toBeLessThan(ROWS);

    const second = startHub(['--config', join(dir, 'hub.config.yaml'), 'worker'], env);
    workers.push(second);
    await waitFor(async () => (await run()).status === 'succeeded', { timeoutMs: 90_000, intervalMs: 100, what: 'the recovered run' });
    second.kill('SIGTERM');
    await new Promise((resolve) => second.once('exit', resolve));

    // Pages and their counts commit together: the resumed run neither skipped nor repeated a row.
    expect(await run()).toMatchObject({ read: ROWS, created: ROWS, unchanged: 0 });

    const hub = await startTestHub(reference, undefined, checkConfig({ sources: [{ name: 'people', connector: 'csv', mapping: 'people.yaml', config: { path: 'people.csv', id_column: 'id', page_size: 100 } }] }, join(dir, 'hub.config.yaml')));
    try {
      expect(await syncNow(hub, 'people')).toMatchObject({ status: 'succeeded', read: ROWS, created: ROWS });
    } finally {
      await hub.stop();
    }
    const [after, expected] = [await finalState(killed), await finalState(reference)];
    expect(after.records).toHaveLength(ROWS);
    expect(after).toEqual(expected);
  }, 200_000);

  it('on SIGTERM finishes the page in hand, puts the run back in the queue, and exits; the job is retried', async () => {
    stopped = await createTestDatabase();
    const env = { DATABASE_URL: stopped.url };
    const run = async () => (await stopped!.pool.query('select id, status, read, created, error from sync_run order by id limit 1')).rows[0];
    const first = startHub(['--config', join(dir, 'hub.config.yaml'), 'worker'], env);
    workers.push(first);
    await waitFor(async () => (await run())?.read >= 500, { timeoutMs: 60_000, intervalMs: 100, what: 'the first pages' });
    const exit = new Promise<number | null>((resolve) => first.once('exit', resolve));
    first.kill('SIGTERM');
    expect(await exit).toBe(0);
    const released = await run();
    expect(released).toMatchObject({ status: 'queued', error: null });
    expect(released.read).toBeLessThan(ROWS);

    const second = startHub(['--config', join(dir, 'hub.config.yaml'), 'worker'], env);
    workers.push(second);
    await waitFor(async () => (await run()).status === 'succeeded', { timeoutMs: 90_000, intervalMs: 100, what: 'the retried run' });
    second.kill('SIGTERM');
    expect(await run()).toMatchObject({ read: ROWS, created: ROWS });
  }, 200_000);
});
