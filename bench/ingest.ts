/**
 * End-to-end ingest benchmark: N generated source records (people spread over three CSV sources that
 * overlap) go through the real path — raw record stored, mapped, resolved, golden record written — and it
 * prints records per second and peak memory of Node and PostgreSQL together. Then, against everything stored,
 * `--incremental` more records are pushed one per delivery (half of them a new source's records of people already
 * known, half new people), by one sender and then by `--senders` at once: records per second and the latency of
 * each, p50 / p95 / p99 (see `incremental`).
 *
 *   npm run bench:ingest -- --records 100000 --incremental 2000 --senders 50   (DATABASE_URL, else the embedded PostgreSQL in a temp folder)
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { checkConfig } from '../hub/config.js';
import { createDatabaseIfMissing, createPool, databaseUrlWithName } from '../hub/db/database.js';
import { startEmbeddedPostgres } from '../hub/db/embedded.js';
import { migrate } from '../hub/db/migrate.js';
import { silentLogger } from '../hub/log.js';
import { startQueue } from '../hub/queue.js';
import { executeRun, registerSources, requestSync, type Hub } from '../hub/sync.js';
import { acceptRecords } from '../hub/push.js';

const { values } = parseArgs({
  options: { records: { type: 'string', default: '30000' }, 'page-size': { type: 'string', default: '1000' }, incremental: { type: 'string', default: '1000' }, senders: { type: 'string', default: '50' } },
});
const total = Number(values.records);
const sources = ['erp', 'shop', 'events'];

const run = promisify(execFile);

/**
 * Resident memory of PostgreSQL in MiB (Linux `ps`, asynchronous so that sampling does not stall the ingest): the
 * embedded server's postmaster and its children, or with DATABASE_URL every postgres process on the machine.
 */
async function postgresRssMiB(postmaster: string | undefined): Promise<number> {
  const which = postmaster ? ['-p', postmaster, '--ppid', postmaster] : ['-C', 'postgres'];
  const out = (await run('ps', [...which, '-o', 'rss='], { encoding: 'utf8' })).stdout.trim();
  return out ? out.split('\n').reduce((sum, line) => sum + Number(line.trim()), 0) / 1024 : 0;
}

async function writeSources(dir: string): Promise<void> {
  // Each person appears in one to three sources; the shop writes emails in capitals and phones locally.
  const files = Object.fromEntries(sources.map((source) => [source, ['id,email,phone,name,updated']]));
  let written = 0;
  for (let person = 0; written < total; person++) {
    for (const [index, source] of sources.entries()) {
      if (written >= total || (index > 0 && (person * 7 + index) % 3 === 0)) continue;
      const email = source === 'shop' ? `Person.${person}@Example.com` : `person.${person}@example.com`;
      const phone = source === 'shop' ? `030 ${String(1_000_000 + person)}` : `+4930${1_000_000 + person}`;
      files[source].push(`${source[0]}${person},${email},${phone},Person ${person},2025-01-0${index + 1}T10:00:00Z`);
      written++;
    }
  }
  for (const source of sources) await writeFile(join(dir, `${source}.csv`), files[source].join('\n') + '\n');
  await writeFile(
    join(dir, 'people.yaml'),
    `streams:\n  rows:\n    fields:\n      - { target: observed_at, from: updated, transforms: [parse_timestamp] }\n      - { target: person.email, from: email, transforms: [email] }\n      - { target: person.phone, from: phone, transforms: [phone] }\n      - { target: person.full_name, from: name, transforms: [normalise_text] }\n`,
  );
}

/**
 * `count` records pushed one per delivery to the webhook source `crm` (as `POST /v1/receive/crm/rows` stores them,
 * group commit included) by `senders` clients at once, each sending its next record when the last one is answered:
 * even ones are an existing person's record in this new source, odd ones new people. Prints records/s and each
 * record's latency (stored, mapped, matched against its blocks, golden record written, committed).
 */
async function incremental(hub: Hub, count: number, senders: number): Promise<void> {
  const people = Math.floor(total / 2);
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const sender = async () => {
    for (let i = next++; i < count; i = next++) {
      const person = i % 2 === 0 ? (i * 7919) % people : total + i + senders * count;
      const id = `c${senders}-${i}`;
      const row = { id, email: `person.${person}@example.com`, phone: `+4930${1_000_000 + person}`, name: `Person ${person}`, updated: '2025-02-01T10:00:00Z' };
      const t = performance.now();
      await acceptRecords(hub, 'crm', 'rows', [{ externalId: id, data: row }], { cause: 'api', actor: 'receive:crm' });
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: senders }, sender));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(0);
  console.log(
    `incremental, ${senders} sender${senders > 1 ? 's' : ''}: ${count} records pushed one per delivery against ${total} stored: ${Math.round(count / seconds)} records/s; latency p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, p99 ${at(0.99)} ms`,
  );
}

const dir = await mkdtemp(join(tmpdir(), 'hub-bench-ingest-'));
const pgDir = await mkdtemp(join(tmpdir(), 'hub-bench-pg-'));
const embedded = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres(pgDir);
const serverUrl = process.env.DATABASE_URL ?? embedded!.adminUrl;
const name = `hub_bench_${Date.now()}`;
await createDatabaseIfMissing(serverUrl, name);
const url = databaseUrlWithName(serverUrl, name);
const pool = createPool(url);
try {
  await migrate(pool);
  await writeSources(dir);
  const config = checkConfig(
    {
      sources: [
        ...sources.map((source) => ({ name: source, connector: 'csv', default_region: 'DE', mapping: 'people.yaml', config: { path: `${source}.csv`, id_column: 'id', page_size: Number(values['page-size']) } })),
        // Where the incremental records arrive.
        { name: 'crm', connector: 'webhook', default_region: 'DE', mapping: 'people.yaml', config: { secret: 'whsec_bench-only-secret-0123456789', streams: ['rows'] } },
      ],
    },
    join(dir, 'hub.config.yaml'),
  );
  await registerSources(pool, config);
  const boss = await startQueue(url, () => undefined);
  const hub: Hub = { pool, config, log: silentLogger, boss };
  // The first line of postmaster.pid is the server's process id.
  const postmaster = embedded ? (await readFile(join(pgDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0].trim() : undefined;
  let peakNode = 0;
  let peakPostgres = 0;
  const sample = setInterval(() => {
    peakNode = Math.max(peakNode, process.memoryUsage().rss / 2 ** 20);
    void postgresRssMiB(postmaster).then((mib) => (peakPostgres = Math.max(peakPostgres, mib)), () => undefined);
  }, 500);
  const started = performance.now();
  let read = 0;
  for (const source of sources) {
    const { runId } = await requestSync(hub, source, 'cli');
    const run = await executeRun(hub, runId);
    if (run.status !== 'succeeded') throw new Error(`run of ${source} failed: ${run.error}`);
    read += run.read;
  }
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sample);
  const golden = (await pool.query("select count(*)::int as n from golden_record where status = 'active'")).rows[0].n;
  await boss.stop({ graceful: false, wait: true });
  console.log(`ingest: ${read} source records → ${golden} golden records in ${seconds.toFixed(1)} s = ${Math.round(read / seconds)} records/s end to end`);
  console.log(`peak memory: node ${peakNode.toFixed(0)} MiB, postgres ${peakPostgres.toFixed(0)} MiB (${postmaster ? 'the embedded server' : 'all postgres processes on this machine'})`);
  for (const senders of [1, Number(values.senders)]) await incremental(hub, Number(values.incremental), senders);
  console.log(`reproduce: npm run bench:ingest -- --records ${total} --page-size ${values['page-size']} --incremental ${values.incremental} --senders ${values.senders}${process.env.DATABASE_URL ? ' (with DATABASE_URL)' : ''}`);
} finally {
  await pool.end();
  await createPool(serverUrl, 1).query(`drop database if exists ${name} with (force)`).catch(() => undefined);
  await embedded?.stop();
  await rm(dir, { recursive: true, force: true });
  await rm(pgDir, { recursive: true, force: true });
}
