/**
 * End-to-end ingest benchmark: N generated source records (people spread over three CSV sources that
 * overlap) go through the real path — raw record stored, mapped, resolved, golden record written — and it
 * prints records per second and peak memory of Node and PostgreSQL together. Then, against everything stored,
 * `--incremental` more records are pushed one per delivery (half of them a new source's records of people already
 * known, half new people), by one sender (at most 1,000 of them) and then by `--senders` at once, and then arriving at
 * `--rate` records per second whether or not the earlier ones are done: records per second, the latency of each (p50 /
 * p95 / p99), and where the CPU went: Node's and PostgreSQL's per record, and how busy the machine's cores were (see
 * `incremental`).
 *
 *   npm run bench:ingest -- --records 100000 --incremental 2000 --senders 50 --rate 1000   (DATABASE_URL, else the embedded PostgreSQL in a temp folder)
 *
 * With DATABASE_URL, `--keep` keeps the database (its name is printed) and `--database NAME` measures the incremental
 * part against one kept before, without ingesting again (a million records take a quarter of an hour to ingest, more
 * on a server without autovacuum). `--remove-source erp|shop|events|crm` then removes that source's records as
 * `hub sources remove` does (out of every golden record, then deleted) and prints records per second.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkConfig } from '../hub/config.js';
import { createDatabaseIfMissing, createPool, databaseUrlWithName } from '../hub/db/database.js';
import { startEmbeddedPostgres } from '../hub/db/embedded.js';
import { migrate } from '../hub/db/migrate.js';
import { silentLogger } from '../hub/log.js';
import { startQueue } from '../hub/queue.js';
import { executeRun, registerSources, requestSync, type Hub } from '../hub/sync.js';
import { acceptRecords } from '../hub/push.js';
import { removeSource } from '../hub/privacy.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '30000' },
    'page-size': { type: 'string', default: '1000' },
    incremental: { type: 'string', default: '1000' },
    senders: { type: 'string', default: '50' },
    rate: { type: 'string', default: '1000' },
    keep: { type: 'boolean', default: false },
    database: { type: 'string' },
    'remove-source': { type: 'string' },
  },
});
if ((values.keep || values.database) && !process.env.DATABASE_URL) throw new Error('--keep and --database need DATABASE_URL (the embedded server lives in a temporary folder)');
const total = Number(values.records);
const sources = ['erp', 'shop', 'events'];

/** Linux reports process CPU time in ticks of 1/100 s (USER_HZ) and resident memory in pages of 4 KiB (x86-64). */
const TICKS_PER_SECOND = 100;
const PAGE_KIB = 4;

/** One process's line of `/proc/<pid>/stat`: its name, parent, CPU ticks so far and resident pages. */
async function processStat(pid: string): Promise<{ name: string; parent: string; ticks: number; pages: number } | undefined> {
  const line = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (line === undefined) return undefined; // it ended in between
  // The name is in parentheses and may hold spaces; the fields after it are numbered from 3 (state).
  const fields = line.slice(line.lastIndexOf(')') + 2).split(' ');
  return { name: line.slice(line.indexOf('(') + 1, line.lastIndexOf(')')), parent: fields[1], ticks: Number(fields[11]) + Number(fields[12]), pages: Number(fields[21]) };
}

/**
 * PostgreSQL's processes, read from /proc (asynchronously, so that sampling does not stall the ingest): the embedded
 * server's postmaster and its children, or with DATABASE_URL every postgres process on the machine.
 */
async function postgresProcesses(postmaster: string | undefined): Promise<{ pid: string; ticks: number; pages: number }[]> {
  const pids = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry));
  const stats = await Promise.all(pids.map(async (pid) => ({ pid, stat: await processStat(pid) })));
  return stats.flatMap(({ pid, stat }) => {
    if (!stat) return [];
    const chosen = postmaster ? pid === postmaster || stat.parent === postmaster : stat.name === 'postgres';
    return chosen ? [{ pid, ...stat }] : [];
  });
}

/** Resident memory of PostgreSQL's processes in MiB. */
async function postgresRssMiB(postmaster: string | undefined): Promise<number> {
  return (await postgresProcesses(postmaster)).reduce((sum, { pages }) => sum + pages * PAGE_KIB, 0) / 1024;
}

/**
 * CPU seconds used so far by this process and by each of PostgreSQL's (by process id), and the machine's CPU time
 * (`/proc/stat`): all, idle, stolen.
 */
interface CpuTimes {
  node: number;
  postgres: Map<string, number>;
  machine: { all: number; idle: number; steal: number };
}

async function cpuTimes(postmaster: string | undefined): Promise<CpuTimes> {
  const { user, system } = process.cpuUsage();
  const postgres = new Map((await postgresProcesses(postmaster)).map(({ pid, ticks }) => [pid, ticks / TICKS_PER_SECOND]));
  // cpu  user nice system idle iowait irq softirq steal …, summed over the cores.
  const [, ...ticks] = (await readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/).map(Number);
  const all = ticks.slice(0, 8).reduce((sum, value) => sum + value, 0) / TICKS_PER_SECOND;
  return { node: (user + system) / 1e6, postgres, machine: { all, idle: (ticks[3] + ticks[4]) / TICKS_PER_SECOND, steal: ticks[7] / TICKS_PER_SECOND } };
}

/**
 * Where the CPU of `records` records went between two readings: Node's (all its threads: the event loop, V8's
 * compiler and collector) and PostgreSQL's milliseconds per record, how busy the machine's cores were and how much of
 * their time the hypervisor took (steal: another guest ran). PostgreSQL's is summed per process: a backend that started
 * in between counts whole, one that ended in between (a closed connection) is missed since the earlier reading.
 */
function cpuSummary(before: CpuTimes, after: CpuTimes, records: number): string {
  const postgres = [...after.postgres].reduce((sum, [pid, seconds]) => sum + seconds - (before.postgres.get(pid) ?? 0), 0);
  const perRecord = (seconds: number) => ((seconds * 1000) / records).toFixed(2);
  const all = after.machine.all - before.machine.all;
  const percent = (seconds: number) => `${Math.round((seconds / all) * 100)}%`;
  return (
    `CPU per record: node ${perRecord(after.node - before.node)} ms, PostgreSQL ${perRecord(postgres)} ms; ` +
    `the ${cpus().length} cores ${percent(all - (after.machine.idle - before.machine.idle))} busy (steal ${percent(after.machine.steal - before.machine.steal)})`
  );
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

/** How the incremental records arrive: `senders` clients each sending the next when the last is answered, or `rate` per second. */
type Arrival = { senders: number } | { rate: number };

/**
 * `count` records pushed one per delivery to the webhook source `crm` (as `POST /v1/receive/crm/rows` stores them,
 * group commit included): even ones are an existing person's record in this new source, odd ones new people. With
 * `rate`, record i arrives at i / rate seconds, answered or not, and its latency counts from then (a slow answer does not
 * slow the arrivals down, so it shows in the latency instead of hiding in a lower rate). Prints records/s, each
 * record's latency (stored, mapped, matched against its blocks, golden record written, committed) and the CPU the
 * records cost (cpuSummary).
 */
async function incremental(hub: Hub, count: number, arrival: Arrival, postmaster: string | undefined): Promise<void> {
  // Every person has an ERP record; records of earlier runs on a kept database: ids and new people continue after them.
  const { rows } = await hub.pool.query<{ people: number; offset: number; stored: number }>(
    "select count(*) filter (where source = 'erp')::int as people, count(*) filter (where source = 'crm')::int as offset, count(*)::int as stored from raw_record",
  );
  const { people, offset, stored } = rows[0];
  const recordOf = (i: number) => {
    const person = i % 2 === 0 ? ((offset + i) * 7919) % people : 3 * people + offset + i;
    const id = `c${offset + i}`;
    return { externalId: id, data: { id, email: `person.${person}@example.com`, phone: `+4930${1_000_000 + person}`, name: `Person ${person}`, updated: '2025-02-01T10:00:00Z' } };
  };
  const push = (i: number) => acceptRecords(hub, 'crm', 'rows', [recordOf(i)], { cause: 'api', actor: 'receive:crm' });
  const latencies: number[] = [];
  const cpuBefore = await cpuTimes(postmaster);
  const started = performance.now();
  if ('senders' in arrival) {
    let next = 0;
    const sender = async () => {
      for (let i = next++; i < count; i = next++) {
        const t = performance.now();
        await push(i);
        latencies.push(performance.now() - t);
      }
    };
    await Promise.all(Array.from({ length: arrival.senders }, sender));
  } else {
    const pending: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const due = started + (i * 1000) / arrival.rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      pending.push(push(i).then(() => void latencies.push(performance.now() - due)));
    }
    await Promise.all(pending);
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuSummary(cpuBefore, await cpuTimes(postmaster), count);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(0);
  const how = 'senders' in arrival ? `by ${arrival.senders} sender${arrival.senders > 1 ? 's' : ''}` : `arriving at ${arrival.rate} records/s`;
  console.log(
    `incremental, ${how}: ${count} records pushed one per delivery against ${stored} stored: ${Math.round(count / seconds)} records/s; latency p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, p99 ${at(0.99)} ms; ${cpu}`,
  );
}

const dir = await mkdtemp(join(tmpdir(), 'hub-bench-ingest-'));
const pgDir = await mkdtemp(join(tmpdir(), 'hub-bench-pg-'));
const embedded = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres(pgDir);
const serverUrl = process.env.DATABASE_URL ?? embedded!.adminUrl;
const name = values.database ?? `hub_bench_${Date.now()}`;
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
  if (!values.database) {
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
    console.log(`ingest: ${read} source records → ${golden} golden records in ${seconds.toFixed(1)} s = ${Math.round(read / seconds)} records/s end to end`);
    console.log(`peak memory: node ${peakNode.toFixed(0)} MiB, postgres ${peakPostgres.toFixed(0)} MiB (${postmaster ? 'the embedded server' : 'all postgres processes on this machine'})`);
  }
  await boss.stop({ graceful: false, wait: true });
  // Statistics and dead rows of what is stored, as autovacuum would keep them (a server may run without it: this
  // machine's does, and a kept database has the rows of earlier runs).
  await pool.query('vacuum analyze');
  const count = Number(values.incremental);
  // The first delivery of a process loads the match model (its term frequencies grow with the records): apart.
  await incremental(hub, 1, { senders: 1 }, postmaster);
  // One sender waits for every answer: at most 1,000 records, or a long run takes minutes there.
  await incremental(hub, Math.min(count, 1000), { senders: 1 }, postmaster);
  await incremental(hub, count, { senders: Number(values.senders) }, postmaster);
  await incremental(hub, count, { rate: Number(values.rate) }, postmaster);
  const removing = values['remove-source'];
  if (removing) {
    const started = performance.now();
    const removal = await removeSource(pool, removing, 'bench');
    const seconds = (performance.now() - started) / 1000;
    console.log(`source removal: ${removal.raw_records} records of ${removing} removed in ${seconds.toFixed(1)} s = ${Math.round(removal.raw_records / seconds)} records/s`);
  }
  const options = values.database ? `--database ${name}` : `--records ${total} --page-size ${values['page-size']}`;
  const removeOption = removing ? ` --remove-source ${removing}` : '';
  console.log(`reproduce: npm run bench:ingest -- ${options} --incremental ${count} --senders ${values.senders} --rate ${values.rate}${removeOption}${process.env.DATABASE_URL ? ' (with DATABASE_URL)' : ''}`);
  if (values.keep) console.log(`kept: database ${name} (measure again with --database ${name}; drop it when done)`);
} finally {
  await pool.end();
  if (!values.keep && !values.database) await createPool(serverUrl, 1).query(`drop database if exists ${name} with (force)`).catch(() => undefined);
  await embedded?.stop();
  await rm(dir, { recursive: true, force: true });
  await rm(pgDir, { recursive: true, force: true });
}
