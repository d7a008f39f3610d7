/**
 * `npm run bench:freshness [-- --pushed 40 --polled 8 --poll-seconds 5]`: how long a change in a source takes to
 * reach the API and a webhook receiver.
 *
 * Starts `hub start` (API, worker, scheduler) in a child process on a fresh database, subscribes a local receiver to
 * customer changes, then changes one customer again and again:
 * - pushed: a signed record to `POST /v1/receive/{source}/{stream}`; the clock starts when the request is sent;
 * - polled: a row of a CSV source synced on a schedule every N seconds; the clock starts when the file is written,
 *   so the figures include the wait for the next tick (N/2 on average) — they are also given as multiples of N.
 * For each change: the time until `GET /v1/customers/{id}` shows it, and until the receiver gets its delivery.
 * Prints p50, p95 and max; the target is p95 ≤ 2 s for pushed changes.
 * Uses DATABASE_URL's server (database `hub_bench_freshness`, dropped first) when set, else an embedded PostgreSQL
 * in a temporary folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { databaseUrlWithName, openDatabase } from '../hub/db/database.js';
import { sign } from '../connectors/webhook/signature.js';

const { values: args } = parseArgs({
  options: {
    pushed: { type: 'string', default: '40' },
    polled: { type: 'string', default: '8' },
    'poll-seconds': { type: 'string', default: '5' },
  },
});
const pushedChanges = Number(args.pushed);
const polledChanges = Number(args.polled);
const pollSeconds = Number(args['poll-seconds']);
if (!(pollSeconds >= 1 && pollSeconds <= 59 && Number.isInteger(pollSeconds))) throw new Error('--poll-seconds must be a whole number from 1 to 59 (a cron seconds step).');

const SECRET = randomBytes(24).toString('hex');
const ADMIN_KEY = `bench_${randomBytes(24).toString('hex')}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A database for the hub: a fresh one on DATABASE_URL's server, else an embedded server in `dir`. */
async function database(dir: string): Promise<{ url: string; close(): Promise<void> }> {
  if (!process.env.DATABASE_URL) {
    const embedded = await openDatabase({ hubDir: dir });
    return { url: embedded.url, close: () => embedded.close() };
  }
  const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await admin.connect();
  await admin.query('drop database if exists hub_bench_freshness with (force)');
  await admin.query('create database hub_bench_freshness');
  await admin.end();
  return { url: databaseUrlWithName(process.env.DATABASE_URL, 'hub_bench_freshness'), close: async () => undefined };
}

/** `hub start` in a child process; resolves with its API base URL. */
function startHub(configPath: string, databaseUrl: string): { child: ChildProcess; base: Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'hub/cli.ts', '--config', configPath, 'start'], {
    env: { ...process.env, DATABASE_URL: databaseUrl, HUB_ADMIN_KEY: ADMIN_KEY, HUB_ENCRYPTION_KEY: randomBytes(32).toString('hex'), PORT: '0', HUB_LOG_LEVEL: 'error', HUB_RATE_LIMIT_PER_MINUTE: '1000000' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = new Promise<string>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk) => {
      output += chunk;
      const found = /API:\s+(http:\/\/\S+)\/v1\/customers/.exec(output);
      if (found) resolve(found[1]);
    });
    child.once('exit', (code) => reject(new Error(`the hub exited with ${code}`)));
  });
  return { child, base };
}

/** A webhook receiver: the time the first delivery carrying each given name arrived. */
async function startReceiver(): Promise<{ url: string; arrivals: Map<string, number>; close(): Promise<void> }> {
  const arrivals = new Map<string, number>();
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const at = Date.now();
      for (const event of (JSON.parse(body) as { events: { data: { customer: { attributes: { given_name?: string } } | null } }[] }).events) {
        const name = event.data.customer?.attributes.given_name;
        if (name && !arrivals.has(name)) arrivals.set(name, at);
      }
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hooks`;
  return { url, arrivals, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function api<T>(base: string, path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const response = await fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json', ...init.headers } });
  return { status: response.status, body: (await response.json().catch(() => undefined)) as T };
}

/** Polls until `check` holds; the time it first held, or undefined after `timeoutMs`. */
async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return Date.now();
    await sleep(everyMs);
  }
  return undefined;
}

interface Sample {
  api: number;
  webhook: number;
}

/** One change: `change()` makes it and answers when its clock starts; then both arrivals are awaited. */
async function measure(base: string, customerId: () => Promise<string | undefined>, arrivals: Map<string, number>, name: string, change: () => Promise<number>, timeoutMs: number): Promise<Sample> {
  const started = await change();
  const shown = await until(async () => {
    const id = await customerId();
    if (!id) return false;
    const { body } = await api<{ attributes?: { given_name?: string } }>(base, `/v1/customers/${id}`);
    return body.attributes?.given_name === name;
  }, timeoutMs, 10);
  const delivered = await until(() => arrivals.has(name), timeoutMs, 5);
  if (shown === undefined || delivered === undefined) throw new Error(`the change to ${name} did not reach the ${shown === undefined ? 'API' : 'webhook receiver'} within ${timeoutMs / 1000} s`);
  return { api: shown - started, webhook: arrivals.get(name)! - started };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function report(label: string, values: number[], unit: { per?: number } = {}): { p95: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const [p50, p95, max] = [percentile(sorted, 50), percentile(sorted, 95), sorted[sorted.length - 1]];
  const ms = (value: number) => `${String(Math.round(value)).padStart(6)} ms`;
  const relative = unit.per ? `   (${[p50, p95, max].map((value) => (value / unit.per!).toFixed(2)).join(' / ')} × N)` : '';
  console.log(`${label.padEnd(44)} p50 ${ms(p50)}   p95 ${ms(p95)}   max ${ms(max)}${relative}`);
  return { p95 };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hub-bench-freshness-'));
  // Its own folder: the embedded server takes the folder it is given over, and it must reach it.
  const dbDir = await mkdtemp(join(tmpdir(), 'hub-bench-freshness-pg-'));
  const db = await database(dbDir);
  const receiver = await startReceiver();
  const csvPath = join(dir, 'polled.csv');
  const writeRow = (name: string) => writeFile(csvPath, `id,email,given,updated\nc1,polled@example.com,${name},${new Date().toISOString()}\n`);
  await writeRow('Initial');
  await writeFile(join(dir, 'polled.yaml'), 'streams:\n  rows:\n    fields:\n      - { target: observed_at, from: updated, transforms: [parse_timestamp] }\n      - { target: person.email, from: email, transforms: [email] }\n      - { target: person.given_name, from: given }\n');
  await writeFile(
    join(dir, 'hub.config.yaml'),
    [
      'sync_on_start: false',
      'sources:',
      '  - name: pushed',
      '    connector: webhook',
      `    config: { secret: "${SECRET}", streams: [records] }`,
      '  - name: polled',
      '    connector: csv',
      `    schedule: "*/${pollSeconds} * * * * *"`,
      '    mapping: polled.yaml',
      `    config: { path: ${csvPath}, id_column: id }`,
      '',
    ].join('\n'),
  );
  const hub = startHub(join(dir, 'hub.config.yaml'), db.url);
  try {
    const base = await hub.base;
    const subscribed = await api<{ id: number }>(base, '/v1/webhooks', {
      method: 'POST',
      body: JSON.stringify({ url: receiver.url, events: ['customer.created', 'customer.updated', 'customer.merged'] }),
    });
    if (subscribed.status !== 201) throw new Error(`subscribing the receiver answered HTTP ${subscribed.status}: ${JSON.stringify(subscribed.body)}`);
    const lookup = (source: string) => {
      let found: string | undefined;
      return async () => (found ??= (await api<{ data?: { customer: { id: string } }[] }>(base, `/v1/lookup?source=${source}&id=c1`)).body?.data?.[0]?.customer.id);
    };

    const push = async (name: string) => {
      const body = JSON.stringify({ id: 'c1', email: 'pushed@example.com', first_name: name, updated_at: new Date().toISOString() });
      const timestamp = Math.floor(Date.now() / 1000);
      const started = Date.now();
      const answer = await fetch(`${base}/v1/receive/pushed/records`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-timestamp': String(timestamp), 'x-hub-signature': sign(SECRET, timestamp, body) }, body });
      if (answer.status !== 200) throw new Error(`POST /v1/receive answered HTTP ${answer.status}: ${await answer.text()}`);
      return started;
    };
    const pushedCustomer = lookup('pushed');
    const pushed: Sample[] = [];
    // The first change creates the customer; it is measured like the others.
    for (let i = 1; i <= pushedChanges; i++) {
      pushed.push(await measure(base, pushedCustomer, receiver.arrivals, `Pushed${i}`, () => push(`Pushed${i}`), 30_000));
      // Changes spread over time, so each one finds the delivery loop at a different point of its cycle.
      await sleep(Math.random() * 500);
    }

    const polledCustomer = lookup('polled');
    const polled: Sample[] = [];
    for (let i = 1; i <= polledChanges; i++) {
      const name = `Polled${i}`;
      polled.push(await measure(base, polledCustomer, receiver.arrivals, name, async () => (await writeRow(name), Date.now()), pollSeconds * 1000 + 30_000));
      await sleep(Math.random() * pollSeconds * 1000);
    }

    console.log(`\nfreshness: ${pushedChanges} pushed changes, ${polledChanges} changes of a source polled every N = ${pollSeconds} s`);
    console.log(`command: npm run bench:freshness -- --pushed ${pushedChanges} --polled ${polledChanges} --poll-seconds ${pollSeconds}\n`);
    report('pushed (POST /v1/receive) → API', pushed.map((sample) => sample.api));
    const target = report('pushed (POST /v1/receive) → webhook delivery', pushed.map((sample) => sample.webhook));
    report(`polled (every ${pollSeconds} s) → API`, polled.map((sample) => sample.api), { per: pollSeconds * 1000 });
    report(`polled (every ${pollSeconds} s) → webhook delivery`, polled.map((sample) => sample.webhook), { per: pollSeconds * 1000 });
    console.log(`\ntarget p95 ≤ 2000 ms for pushed changes (API and webhook): ${target.p95 <= 2000 ? 'met' : 'MISSED'}`);
  } finally {
    hub.child.kill('SIGTERM');
    await new Promise((resolve) => (hub.child.exitCode !== null ? resolve(undefined) : hub.child.once('exit', resolve)));
    await receiver.close();
    await db.close();
    await rm(dir, { recursive: true, force: true });
    await rm(dbDir, { recursive: true, force: true });
  }
}

await main();
