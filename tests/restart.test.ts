/**
 * PostgreSQL restarted in the middle of a sync and of API traffic. The test starts its own embedded server
 * (never the shared one), a `hub worker` and a `hub api` process on it, stops the server mid-sync, checks that
 * the API answers 503 (and /ready 503) without crashing, starts the server again, and waits for the sync to
 * complete with every record stored once.
 */
import { chmod, mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabaseIfMissing, databaseUrlWithName } from '../hub/db/database.js';
import { freePort, startEmbeddedPostgres, type EmbeddedDatabase } from '../hub/db/embedded.js';
import { startHub } from './helpers/cli.js';
import { waitFor } from './helpers/wait.js';

const ROWS = 8000;
const ADMIN_KEY = 'hub_restart_test_admin_key_0123456789';

/** While the server is down a check fails: that means "not yet". */
const failingMeansNotYet = (check: () => Promise<boolean>) => () => check().catch(() => false);

const exited = (child: ChildProcess) => new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe('PostgreSQL restarted during a sync and API traffic', () => {
  let dir: string;
  let embedded: EmbeddedDatabase | undefined;
  let url: string;
  let port: number;
  const processes: ChildProcess[] = [];
  const output: string[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hub-restart-'));
    // As root, PostgreSQL runs as `postgres`, which must reach the data folder inside this one.
    await chmod(dir, 0o755);
    embedded = await startEmbeddedPostgres(join(dir, 'home'));
    await createDatabaseIfMissing(embedded.adminUrl, 'hub');
    url = databaseUrlWithName(embedded.adminUrl, 'hub');
    const lines = ['id,email,name'];
    for (let i = 0; i < ROWS; i++) lines.push(`${i},person${i}@example.com,Person ${i}`);
    await writeFile(join(dir, 'people.csv'), lines.join('\n') + '\n');
    await writeFile(join(dir, 'people.yaml'), 'streams:\n  rows:\n    fields:\n      - { target: person.email, from: email, transforms: [email] }\n      - { target: person.full_name, from: name }\n');
    await writeFile(join(dir, 'hub.config.yaml'), 'sources:\n  - name: people\n    connector: csv\n    mapping: people.yaml\n    config: { path: people.csv, id_column: id, page_size: 50 }\n');
    port = await freePort();
  }, 120_000);
  afterAll(async () => {
    for (const child of processes) if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(processes.map(exited));
    await embedded?.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 while the database is away, never crashes, reconnects, and the sync completes with every record once', async () => {
    const env = { DATABASE_URL: url, HUB_ADMIN_KEY: ADMIN_KEY, PORT: String(port), HUB_LOG_LEVEL: 'warn' };
    const worker = startHub(['--config', join(dir, 'hub.config.yaml'), 'worker'], env);
    processes.push(worker);
    worker.stderr!.on('data', (chunk) => output.push(`worker: ${chunk}`));
    const run = async () => (await query<{ id: string; status: string; read: number; created: number; unchanged: number }>(url, 'select id, status, read, created, unchanged from sync_run order by id limit 1'))[0];
    await waitFor(failingMeansNotYet(async () => (await run())?.read > 0), { timeoutMs: 60_000, intervalMs: 200, what: 'the sync to start' });

    const api = startHub(['--config', join(dir, 'hub.config.yaml'), 'api'], env);
    processes.push(api);
    api.stderr!.on('data', (chunk) => output.push(`api: ${chunk}`));
    const base = `http://127.0.0.1:${port}`;
    const get = (path: string) => fetch(base + path, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: AbortSignal.timeout(15_000) });
    await waitFor(failingMeansNotYet(async () => (await get('/ready')).status === 200), { timeoutMs: 60_000, intervalMs: 200, what: 'the API to be ready' });
    expect((await get('/v1/customers?limit=5')).status).toBe(200);

    // API traffic throughout: every answer is 200 or 503, never a 500 and never a refused connection.
    const statuses = new Map<string, number>();
    let traffic = true;
    const load = (async () => {
      while (traffic) {
        for (const path of ['/v1/customers?limit=5', '/v1/sources', '/ready']) {
          const status = await get(path).then((response) => (response.body?.cancel(), String(response.status)), (error) => `error: ${(error as Error).cause ?? error}`);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    await waitFor(failingMeansNotYet(async () => (await run()).read >= 1000), { timeoutMs: 60_000, intervalMs: 200, what: 'a part of the sync' });
    const before = await run();
    expect(before.status).toBe('running');
    expect(before.read).toBeLessThan(ROWS);

    // The database goes away in the middle of the sync.
    await embedded!.stop();
    embedded = undefined;
    for (let i = 0; i < 3; i++) {
      const customers = await get('/v1/customers?limit=5');
      expect(customers.status).toBe(503);
      expect((await customers.json()).error.code).toBe('HUB_ERR_UNAVAILABLE');
      const ready = await get('/ready');
      expect(ready.status).toBe(503);
      expect((await ready.json()).checks.database).toBe('failing');
      expect((await fetch(`${base}/health`)).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    expect(worker.exitCode, output.join('').slice(-4000)).toBeNull();
    expect(api.exitCode, output.join('').slice(-4000)).toBeNull();

    // Back on the same folder: same port, same data.
    embedded = await startEmbeddedPostgres(join(dir, 'home'));
    await waitFor(failingMeansNotYet(async () => (await get('/ready')).status === 200), { timeoutMs: 60_000, intervalMs: 200, what: 'the API to be ready again' });
    expect((await get('/v1/customers?limit=5')).status).toBe(200);
    await waitFor(failingMeansNotYet(async () => (await run()).status === 'succeeded'), { timeoutMs: 150_000, intervalMs: 200, what: 'the sync to complete' });
    expect(worker.exitCode, output.join('').slice(-4000)).toBeNull();
    expect(api.exitCode, output.join('').slice(-4000)).toBeNull();
    traffic = false;
    await load;
    expect([...statuses.keys()].sort()).toEqual(['200', '503']);
    // No listener piles up in a long-running process.
    expect(output.join('')).not.toContain('MaxListenersExceededWarning');

    const after = await run();
    expect(after).toMatchObject({ status: 'succeeded', read: ROWS, created: ROWS, unchanged: 0 });
    const [counts] = await query<{ raw: number; distinct_ids: number; golden: number; open_memberships: number }>(
      url,
      `select (select count(*)::int from raw_record where source = 'people') as raw,
              (select count(distinct external_id)::int from raw_record where source = 'people') as distinct_ids,
              (select count(*)::int from golden_record where status = 'active') as golden,
              (select count(*)::int from cluster_membership where valid_to is null) as open_memberships`,
    );
    expect(counts).toEqual({ raw: ROWS, distinct_ids: ROWS, golden: ROWS, open_memberships: ROWS });
    expect((await query<{ n: number }>(url, 'select count(*)::int as n from sync_run'))[0].n).toBe(1);

    for (const child of [api, worker]) child.kill('SIGTERM');
    const codes = await Promise.all([exited(api), exited(worker)]);
    expect(codes, output.join('').slice(-3000)).toEqual([0, 0]);
  }, 300_000);
});
