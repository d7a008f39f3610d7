import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { startHub } from './helpers/cli.js';

interface Started {
  child: ChildProcess;
  base: string;
  key: string;
  output: () => string;
}

/** Starts `hub start` on its embedded PostgreSQL and waits for the lines it prints. */
async function start(hubDir: string): Promise<Started> {
  const child = startHub(['start'], { DATABASE_URL: undefined, HUB_DIR: hubDir, PORT: '0', HUB_CONFIG: undefined });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const deadline = Date.now() + 60_000;
  while (!/Admin key: (hub_\S+)/.test(output)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`hub start did not come up:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { child, base: output.match(/API:\s+(http:\/\/\S+)\/v1\/customers/)![1], key: output.match(/Admin key: (hub_\S+)/)![1], output: () => output };
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function customers(started: Started): Promise<{ id: string }[]> {
  // A hub that went away shows what it printed (a fetch error alone says only "connection refused").
  const response = await fetch(`${started.base}/v1/customers?limit=500`, { headers: { authorization: `Bearer ${started.key}` } }).catch((error: Error) => {
    throw new Error(`${error.message}; exit code ${started.child.exitCode}; the hub printed:\n${started.output()}`, { cause: error });
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: { id: string }[] }).data;
}

describe('npm start on a fresh machine', () => {
  let hubDir: string;
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) await stop(child);
    if (hubDir) await rm(hubDir, { recursive: true, force: true });
  });

  it('serves golden records from the example data within a minute, and keeps data and port across restarts', async () => {
    hubDir = await mkdtemp(join(tmpdir(), 'hub-start-'));
    const began = Date.now();
    const first = await start(hubDir);
    children.push(first.child);
    expect(first.output()).toMatch(/Docs:\s+http:\/\/127\.0\.0\.1:\d+\/docs/);
    let served: { id: string }[] = [];
    while (served.length < 160 && Date.now() - began < 60_000) {
      served = await customers(first);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(served).toHaveLength(160);
    expect(Date.now() - began).toBeLessThan(60_000);
    const { port } = JSON.parse(await readFile(join(hubDir, 'pg.json'), 'utf8'));
    expect(port).not.toBe(5432);
    await stop(first.child);

    const second = await start(hubDir);
    children.push(second.child);
    // The same key (kept for the embedded set-up), the same database port, the data still there.
    expect(second.key).toBe(first.key);
    expect(JSON.parse(await readFile(join(hubDir, 'pg.json'), 'utf8')).port).toBe(port);
    expect((await customers(second)).map((customer) => customer.id).sort()).toEqual(served.map((customer) => customer.id).sort());
    await stop(second.child);
  }, 150_000);
});
