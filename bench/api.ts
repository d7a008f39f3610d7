/**
 * `npm run bench:api [-- --records 1000000 --duration 10 --connections 10]`: the API against a bare Fastify route.
 *
 * Builds a database with N golden records (set-based SQL: one source record each, its canonical form, membership,
 * lineage and three interactions), then, in one run and on the same database, drives with autocannon:
 * - a bare Fastify route that reads one golden_record row by primary key with `pg` (the floor of what a route costs);
 * - the same after looking the API key up as the hub does (the floor of a route that checks a key: two round trips);
 * - the customer route's one statement on the bare server (what the database's part of that route costs);
 * - `GET /v1/customers/{id}` with the API key check, rate limit and the full response (lineage, source records, value),
 *   served from the stored documents that the builder built first (timed and printed), and once more with every
 *   document stale (each request computes its answer, as right after a change);
 * - `GET /v1/customers/{id}/timeline` and a name search `GET /v1/customers?name=…` (misspelt names of customers that
 *   exist; where each one ranks is printed).
 * The servers run in a child process, so that autocannon does not share their event loop. Prints requests/s, p99 and
 * the ratio to the bare route (the issue's target: ≥ 0.65 and p99 ≤ 10 ms for the customer route).
 * Uses DATABASE_URL's server (database `hub_bench`) when set, else an embedded PostgreSQL in a temporary folder.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { createDatabaseIfMissing, createPool, databaseUrlWithName, openDatabase, type Pool } from '../hub/db/database.js';
import { migrate } from '../hub/db/migrate.js';
import { createApiKey, hashApiKey } from '../hub/auth.js';
import { customerResource, findApiKey } from '../hub/api-sql.js';
import { checkConfig } from '../hub/config.js';
import { silentLogger } from '../hub/log.js';
import { buildApp } from '../hub/app.js';
import { buildStaleDocuments } from '../hub/customer-documents.js';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '100000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '10' },
    serve: { type: 'string' },
  },
});

/** The child: both servers on one pool each, ports on stdout. */
async function serve(url: string): Promise<void> {
  const bare = Fastify();
  const barePool = createPool(url);
  bare.get<{ Params: { id: string } }>('/bare/:id', async (request) => {
    const { rows } = await barePool.query('select id, status, data, created_at, updated_at from golden_record where id = $1', [request.params.id]);
    return rows[0];
  });
  // The same row after the hub's key lookup (one more round trip): the floor of any route that checks a key.
  bare.get<{ Params: { id: string } }>('/bare-keyed/:id', async (request) => {
    const key = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? '';
    const { rows: keys } = await barePool.query(findApiKey(hashApiKey(key)));
    if (keys.length === 0) throw new Error('unknown key');
    const { rows } = await barePool.query('select id, status, data, created_at, updated_at from golden_record where id = $1', [request.params.id]);
    return rows[0];
  });
  // The customer route's one statement, without the hub's hooks and shaping: what the database's part costs.
  bare.get<{ Params: { id: string } }>('/bare-resource/:id', async (request) => (await barePool.query(customerResource(request.params.id))).rows[0]);
  await bare.listen({ port: 0, host: '127.0.0.1' });
  const hubPool = createPool(url);
  const app = await buildApp({ pool: hubPool, config: checkConfig({ sources: [] }, 'bench.yaml'), log: silentLogger });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (server: { server: { address(): unknown } }) => (server.server.address() as { port: number }).port;
  process.stdout.write(JSON.stringify({ bare: port(bare), hub: port(app) }) + '\n');
  process.on('SIGTERM', () => void Promise.all([bare.close(), app.close()]).then(() => Promise.all([barePool.end(), hubPool.end()])).then(() => process.exit(0)));
}

const GIVEN_NAMES = [
  'Anna', 'Ben', 'Clara', 'David', 'Emma', 'Felix', 'Greta', 'Hugo', 'Ida', 'Jonas', 'Karin', 'Lukas', 'Maria', 'Noah', 'Olga', 'Paul',
  'Rosa', 'Simon', 'Tanja', 'Uwe', 'Vera', 'Walter', 'Xenia', 'Yusuf', 'Zoe', 'Amir', 'Beatriz', 'Carlos', 'Dana', 'Erik', 'Fatima', 'George',
  'Hanna', 'Ivan', 'Julia', 'Kenji', 'Laura', 'Mehmet', 'Nina', 'Oscar', 'Priya', 'Quentin', 'Rahul', 'Sofia', 'Thomas', 'Ursula', 'Victor', 'Wanda',
  'Yara', 'Zeynep', 'Agnes', 'Bruno', 'Chloe', 'Dmitri', 'Elena', 'Frank', 'Gemma', 'Henrik', 'Irene', 'John', 'Katya', 'Leon', 'Mila', 'Nils',
];
const FAMILY_ROOTS = [
  'smith', 'johnson', 'brown', 'garcia', 'miller', 'davis', 'martinez', 'lopez', 'wilson', 'anderson', 'taylor', 'moore', 'jackson', 'white',
  'harris', 'clark', 'lewis', 'walker', 'young', 'king', 'wright', 'torres', 'nguyen', 'hill', 'flores', 'green', 'adams', 'nelson', 'baker',
  'campbell', 'mitchell', 'carter', 'roberts', 'muller', 'schmidt', 'schneider', 'fischer', 'weber', 'wagner', 'becker', 'hoffmann', 'kowal',
  'nowak', 'wisniew', 'murphy', 'kelly', 'byrne', 'walsh', 'rossi', 'russo', 'ferrari', 'esposito', 'bianchi', 'romano', 'dubois', 'laurent',
  'lefebvre', 'moreau', 'tanaka', 'suzuki', 'watanabe', 'yamamoto', 'novak', 'horvat', 'petrov', 'ivanov', 'jensen', 'nielsen', 'hansen',
  'larsen', 'okafor', 'adeyemi', 'mensah', 'haddad', 'khalil', 'yilmaz', 'demir', 'kaya', 'sato', 'kim', 'park', 'chen', 'wang', 'zhang',
  'singh', 'patel', 'sharma', 'gupta', 'silva', 'santos', 'pereira', 'costa', 'oliveira', 'fernandes', 'jansen', 'visser', 'bakker', 'dekker',
  'lindqvist', 'virtanen',
];
const FAMILY_ENDINGS = ['', 'son', 'er', 'ova', 'ski', 'man', 'ez', 'berg', 'ley', 'ton'];
const sqlArray = (words: string[]) => `array[${words.map((word) => `'${word}'`).join(', ')}]`;

/** The given and family name of bench customer number `g` (an SQL integer expression), as jsonb_build_object pairs. */
const benchName = (g: string) =>
  `'first', (${sqlArray(GIVEN_NAMES)})[1 + ${g} % ${GIVEN_NAMES.length}],
   'last', initcap((${sqlArray(FAMILY_ROOTS)})[1 + (${g} / ${GIVEN_NAMES.length}) % ${FAMILY_ROOTS.length}]
     || (${sqlArray(FAMILY_ENDINGS)})[1 + (${g} / ${GIVEN_NAMES.length * FAMILY_ROOTS.length}) % ${FAMILY_ENDINGS.length}])`;

/** A name with two neighbouring letters of each word swapped, as a hurried typist would ("Jonh Smtih"). */
const withTypos = (name: string) => name.split(' ').map((word) => (word.length < 3 ? word : word[0] + word[2] + word[1] + word.slice(3))).join(' ');

/** N customers, set-based, in a fresh database (ids 1..N line up across the tables). */
async function seed(pool: Pool, n: number): Promise<void> {
  // customer_value is filled last: a database whose seeding was interrupted is not taken for a finished one.
  const { rows } = await pool.query<{ customers: number; valued: number }>(
    "select (select count(*)::int from golden_record where status = 'active') as customers, (select count(*)::int from customer_value) as valued",
  );
  if (rows[0].customers === n && rows[0].valued === n) return;
  if (rows[0].customers !== 0) throw new Error(`The bench database holds ${rows[0].customers} customers (${rows[0].valued} with their value), not ${n}: drop it (or use another) first.`);
  const started = Date.now();
  const step = async (label: string, text: string) => {
    const t = Date.now();
    await pool.query(text);
    console.log(`  ${label}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  };
  console.log(`generating ${n.toLocaleString('en')} golden records…`);
  await pool.query("insert into source (name, connector) values ('bench', 'csv') on conflict do nothing");
  // Names as varied as real ones: 64 given names, 1,000 family names (100 roots from many countries, 10 endings).
  // Numbered names ("Given17 Family17") share most of their trigrams with every other record, which turns a
  // typo-tolerant search into a scan of the table.
  await step('raw records', `insert into raw_record (source, stream, external_id, data, content_hash)
    select 'bench', 'customers', g::text, jsonb_build_object('id', g, ${benchName('g')}, 'email', 'person' || g || '@example.com'), md5(g::text)
    from generate_series(1, ${n}) g`);
  await step('canonical records', `insert into canonical_record (raw_record_id, source, data, observed_at)
    select id, 'bench', jsonb_build_object('person', jsonb_build_object('given_name', data ->> 'first', 'family_name', data ->> 'last',
      'emails', jsonb_build_array(jsonb_build_object('address', data ->> 'email')))), now() - (id % 1000) * interval '1 hour' from raw_record`);
  await step('match keys', `insert into match_key (raw_record_id, kind, value) select id, 'email', data ->> 'email' from raw_record`);
  await step('golden records', `insert into golden_record (id, seq, data)
    select 'cus_' || id, id, jsonb_build_object('given_name', data ->> 'first', 'family_name', data ->> 'last', 'email', data ->> 'email', 'emails', jsonb_build_array(data ->> 'email'))
    from raw_record`);
  await pool.query(`select setval('golden_record_seq', ${n})`);
  await step('memberships', `insert into cluster_membership (raw_record_id, golden_id, cause, detail) select id, 'cus_' || id, 'rule', '{"rule": "shared_key"}' from raw_record`);
  await step('lineage', `insert into attribute_lineage (golden_id, attribute, value, raw_record_id, source, observed_at, survived)
    select 'cus_' || r.id, a.attribute, to_jsonb(r.data ->> a.field), r.id, 'bench', now(), true
    from raw_record r cross join (values ('given_name', 'first'), ('family_name', 'last'), ('email', 'email'), ('emails', 'email')) as a(attribute, field)`);
  await step('interactions', `insert into interaction (raw_record_id, ordinal, kind, occurred_at, data)
    select r.id, k.ordinal, k.kind, now() - ((r.id * (k.ordinal + 7)) % 700) * interval '1 day',
      jsonb_build_object('kind', k.kind, 'occurred_at', now() - ((r.id * (k.ordinal + 7)) % 700) * interval '1 day', 'amount', (r.id % 500) + 10, 'currency', 'EUR',
        'status', k.status, 'owner', 'Agent ' || (r.id % 40), 'thread_id', 't' || r.id, 'external_id', k.kind || '-' || r.id)
    from raw_record r cross join (values (0, 'order', 'paid'), (1, 'ticket', 'open'), (2, 'email', 'received')) as k(ordinal, kind, status)`);
  await step('customer value', `insert into customer_value (golden_id, first_order_at, last_order_at, order_count)
    select 'cus_' || raw_record_id, min(occurred_at), max(occurred_at), count(*) from interaction where kind = 'order' group by raw_record_id`);
  await step('analyze', 'analyze');
  console.log(`  done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

/** Builds every customer's stored document, as the builder of a hub process does after a sync; prints its rate. */
async function buildDocuments(pool: Pool): Promise<void> {
  const started = Date.now();
  let built = 0;
  let shown = 0;
  for (let batch; (batch = await buildStaleDocuments(pool, undefined, 500)) > 0; ) {
    built += batch;
    if (Date.now() - shown > 10_000) {
      shown = Date.now();
      console.log(`  documents: ${built.toLocaleString('en')} built…`);
    }
  }
  const seconds = (Date.now() - started) / 1000;
  if (built > 0) console.log(`  documents: ${built.toLocaleString('en')} built in ${seconds.toFixed(0)} s (${Math.round(built / seconds).toLocaleString('en')} per second)`);
  await pool.query('vacuum analyze customer_document');
}

interface Figures {
  name: string;
  requests: number;
  p99: number;
  p50: number;
  errors: number;
  non2xx: number;
}

async function drive(name: string, port: number, path: () => string, headers: Record<string, string>, duration: number, connections: number): Promise<Figures> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration,
    headers,
    requests: [{ setupRequest: (request) => ({ ...request, path: path() }) }],
  });
  return { name, requests: result.requests.average, p99: result.latency.p99, p50: result.latency.p50, errors: result.errors, non2xx: result.non2xx };
}

async function main(): Promise<void> {
  if (args.serve) return serve(args.serve);
  const records = Number(args.records);
  const duration = Number(args.duration);
  const connections = Number(args.connections);
  let dir: string | undefined;
  let database: { url: string; pool: Pool; close(): Promise<void> };
  if (process.env.DATABASE_URL) {
    await createDatabaseIfMissing(process.env.DATABASE_URL, 'hub_bench');
    const url = databaseUrlWithName(process.env.DATABASE_URL, 'hub_bench');
    const pool = createPool(url);
    database = { url, pool, close: () => pool.end() };
  } else {
    dir = await mkdtemp(join(tmpdir(), 'hub-bench-api-'));
    database = await openDatabase({ hubDir: dir });
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/api.ts', '--serve', database.url], {
    // The limiter runs (its cost is part of the route) but never trips.
    env: { ...process.env, HUB_RATE_LIMIT_PER_MINUTE: '1000000000', HUB_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await migrate(database.pool);
    await seed(database.pool, records);
    await buildDocuments(database.pool);
    const key = await createApiKey(database.pool, `bench ${Date.now()}`, ['read']);
    const ports = await new Promise<{ bare: number; hub: number }>((resolve, reject) => {
      child.stdout!.once('data', (chunk) => resolve(JSON.parse(String(chunk))));
      child.once('exit', (code) => reject(new Error(`the server process exited with ${code}`)));
    });
    const auth = { authorization: `Bearer ${key}` };
    const randomId = () => `cus_${1 + Math.floor(Math.random() * records)}`;
    // Names of customers that exist, misspelt: the search must rank the right one first among a million.
    const { rows: people } = await database.pool.query<{ name: string }>(
      "select concat_ws(' ', data ->> 'given_name', data ->> 'family_name') as name from golden_record where id = any($1::text[])",
      [[1, 2, 3, 4, 5].map(() => randomId())],
    );
    const searches = people.map((person) => ({ person: person.name, name: withTypos(person.name) }));
    const names = searches.map((search) => search.name);
    console.log(`\n${records.toLocaleString('en')} golden records; ${connections} connections, ${duration} s per route (after a 2 s warm-up each)`);
    const runs: [string, number, () => string, Record<string, string>][] = [
      ['bare Fastify + pg, one row by primary key', ports.bare, () => `/bare/${randomId()}`, {}],
      ['the same after the key lookup (bare, 2 queries)', ports.bare, () => `/bare-keyed/${randomId()}`, auth],
      ['its statement alone (bare, 1 query)', ports.bare, () => `/bare-resource/${randomId()}`, {}],
      ['GET /v1/customers/{id} (key, full response)', ports.hub, () => `/v1/customers/${randomId()}`, auth],
      ['GET /v1/customers/{id}/timeline', ports.hub, () => `/v1/customers/${randomId()}/timeline`, auth],
      ['GET /v1/customers?name= (typo-tolerant search)', ports.hub, () => `/v1/customers?limit=10&name=${encodeURIComponent(names[Math.floor(Math.random() * names.length)])}`, auth],
    ];
    // Each search alone first (the load could leave slow searches running): how long it takes, and where the first
    // customer with the misspelt name ranks (1 = first; the data holds each name about records / 64,000 times).
    const ranks: string[] = [];
    for (const search of searches) {
      const started = Date.now();
      const response = await fetch(`http://127.0.0.1:${ports.hub}/v1/customers?limit=10&name=${encodeURIComponent(search.name)}`, { headers: auth });
      const ms = Date.now() - started;
      if (!response.ok) {
        ranks.push(`"${search.name}" → HTTP ${response.status} after ${ms} ms`);
        continue;
      }
      const { data } = (await response.json()) as { data: { attributes: { given_name?: string; family_name?: string } }[] };
      const found = data.findIndex(({ attributes }) => `${attributes.given_name} ${attributes.family_name}` === search.person);
      ranks.push(`"${search.name}" → ${found < 0 ? 'not in the first 10' : `#${found + 1}`} in ${ms} ms`);
    }
    const searchReport = `search, one at a time: ${ranks.join('; ')}`;
    const figures: Figures[] = [];
    for (const [name, port, path, headers] of runs) {
      await drive(name, port, path, headers, 2, connections);
      figures.push(await drive(name, port, path, headers, duration, connections));
    }
    await database.pool.query('update customer_document set body = null');
    figures.push(await drive('GET /v1/customers/{id}, documents stale', ports.hub, () => `/v1/customers/${randomId()}`, auth, duration, connections));
    const bare = figures[0].requests;
    console.log(`\n${'route'.padEnd(50)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'ratio'.padStart(6)}  errors/non-2xx`);
    for (const f of figures) {
      console.log(`${f.name.padEnd(50)} ${f.requests.toFixed(0).padStart(8)} ${String(f.p50).padStart(7)} ${String(f.p99).padStart(7)} ${(f.requests / bare).toFixed(2).padStart(6)}  ${f.errors}/${f.non2xx}`);
    }
    console.log(`\n${searchReport}`);
    const customer = figures[3];
    console.log(`\ntarget for GET /v1/customers/{id}: ratio ≥ 0.65 (${(customer.requests / bare).toFixed(2)}), p99 ≤ 10 ms (${customer.p99})`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 500));
    await database.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

await main();
