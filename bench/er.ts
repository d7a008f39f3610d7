/**
 * Identity-resolution benchmark: runs the probabilistic matcher, unsupervised, with the one committed
 * configuration (DEFAULT_CONFIG) on the shared ground-truth data sets and prints accuracy, speed and memory.
 *   npm run bench:er -- --data febrl3|febrl4|fake1000|historical50k|febrl1|febrl2|all|generated [--size N]
 * Truth columns (Febrl's rec_id number, Splink's `cluster`) are read only to score; Febrl's soc_sec_id is
 * never read. The data directory is ../shared/data beside the repository (or $HUB_SHARED_DATA).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { DEFAULT_CONFIG, configHash, resolveBatch, type LinkType, type MatchRecord } from '../identity-resolution/probabilistic/index.js';
import { generatePeople } from './er-generate.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = process.env.HUB_SHARED_DATA ?? resolve(repo, '../shared/data');

interface Labelled {
  records: MatchRecord[];
  /** Truth cluster per record id; scoring only. */
  truth: Map<string, string>;
  linkType: LinkType;
}

type Row = Record<string, string>;

function readCsv(path: string): Row[] {
  // Febrl separates columns with ", "; trimming handles both layouts.
  return parse(readFileSync(path, 'utf8'), { columns: (header: string[]) => header.map((h) => h.trim()), trim: true, skip_empty_lines: true, relax_column_count: true });
}

const blank = (value: string | undefined) => (value && value.length > 0 ? value : undefined);

/** Febrl columns → match record. Not mapped: soc_sec_id (no customer system has it), state. */
function febrlRecord(row: Row, id: string, source: string): MatchRecord {
  return {
    id,
    source,
    givenName: blank(row.given_name),
    familyName: blank(row.surname),
    birthDate: blank(row.date_of_birth),
    emails: [],
    phones: [],
    postcode: blank(row.postcode),
    city: blank(row.suburb),
    address: [row.street_number, row.address_1, row.address_2].filter(Boolean).join(' ') || undefined,
  };
}

const febrlTruth = (recId: string) => recId.split('-')[1];

function febrlDedupe(file: string): Labelled {
  const rows = readCsv(resolve(dataDir, 'febrl', file));
  return {
    records: rows.map((row) => febrlRecord(row, row.rec_id, 'febrl')),
    truth: new Map(rows.map((row) => [row.rec_id, febrlTruth(row.rec_id)])),
    linkType: 'link_and_dedupe',
  };
}

function febrl4(): Labelled {
  const out: Labelled = { records: [], truth: new Map(), linkType: 'link_only' };
  for (const side of ['a', 'b']) {
    for (const row of readCsv(resolve(dataDir, 'febrl', `dataset4${side}.csv`))) {
      const id = `${side}:${row.rec_id}`;
      out.records.push(febrlRecord(row, id, side));
      out.truth.set(id, febrlTruth(row.rec_id));
    }
  }
  return out;
}

function fake1000(): Labelled {
  const rows = readCsv(resolve(dataDir, 'splink', 'fake_1000.csv'));
  return {
    records: rows.map((row) => ({ id: row.unique_id, givenName: blank(row.first_name), familyName: blank(row.surname), birthDate: blank(row.dob), city: blank(row.city), emails: row.email ? [row.email] : [], phones: [] })),
    truth: new Map(rows.map((row) => [row.unique_id, row.cluster])),
    linkType: 'link_and_dedupe',
  };
}

/** Not mapped: gender (the canonical model has none), first_and_surname (a copy of first_name + surname). */
function historical50k(): Labelled {
  const rows = readCsv(resolve(dataDir, 'splink', 'historical_figures_with_errors_50k.csv'));
  return {
    records: rows.map((row) => ({
      id: row.unique_id,
      givenName: blank(row.first_name),
      familyName: blank(row.surname),
      fullName: blank(row.full_name),
      birthDate: blank(row.dob),
      city: blank(row.birth_place),
      postcode: blank(row.postcode_fake),
      jobTitle: blank(row.occupation),
      emails: [],
      phones: [],
    })),
    truth: new Map(rows.map((row) => [row.unique_id, row.cluster])),
    linkType: 'link_and_dedupe',
  };
}

const DATA_SETS: Record<string, (size: number) => Labelled> = {
  febrl3: () => febrlDedupe('dataset3.csv'),
  febrl4: () => febrl4(),
  fake1000: () => fake1000(),
  historical50k: () => historical50k(),
  febrl1: () => febrlDedupe('dataset1.csv'),
  febrl2: () => febrlDedupe('dataset2.csv'),
  generated: (size) => generatePeople(size, 7),
};

const pairsIn = (bySource: Map<string, number>, linkOnly: boolean) => {
  let n = 0;
  let same = 0;
  for (const count of bySource.values()) {
    n += count;
    same += (count * (count - 1)) / 2;
  }
  return linkOnly ? (n * (n - 1)) / 2 - same : (n * (n - 1)) / 2;
};

/** Pairwise precision/recall/F1 over all pairs within clusters, and B-cubed F1. */
function score(clusters: string[][], data: Labelled, sourceOf: Map<string, string>) {
  const linkOnly = data.linkType === 'link_only';
  const group = (ids: Iterable<string>, key: (id: string) => string) => {
    const out = new Map<string, Map<string, number>>();
    for (const id of ids) {
      const k = key(id);
      const bySource = out.get(k) ?? new Map<string, number>();
      bySource.set(sourceOf.get(id)!, (bySource.get(sourceOf.get(id)!) ?? 0) + 1);
      out.set(k, bySource);
    }
    return out;
  };
  let predicted = 0;
  let truePositive = 0;
  let bPrecision = 0;
  let bRecall = 0;
  const truthSize = new Map<string, number>();
  for (const t of data.truth.values()) truthSize.set(t, (truthSize.get(t) ?? 0) + 1);
  for (const cluster of clusters) {
    predicted += pairsIn(group(cluster, () => '').get('')!, linkOnly);
    for (const bySource of group(cluster, (id) => data.truth.get(id)!).values()) truePositive += pairsIn(bySource, linkOnly);
    const overlap = new Map<string, number>();
    for (const id of cluster) overlap.set(data.truth.get(id)!, (overlap.get(data.truth.get(id)!) ?? 0) + 1);
    for (const id of cluster) {
      const common = overlap.get(data.truth.get(id)!)!;
      bPrecision += common / cluster.length;
      bRecall += common / truthSize.get(data.truth.get(id)!)!;
    }
  }
  let actual = 0;
  for (const bySource of group(data.truth.keys(), (id) => data.truth.get(id)!).values()) actual += pairsIn(bySource, linkOnly);
  const precision = predicted ? truePositive / predicted : 1;
  const recall = actual ? truePositive / actual : 1;
  const n = data.truth.size;
  const [bp, br] = [bPrecision / n, bRecall / n];
  return { precision, recall, f1: (2 * precision * recall) / (precision + recall || 1), bcubedPrecision: bp, bcubedRecall: br, bcubedF1: (2 * bp * br) / (bp + br), truePairs: actual, predictedPairs: predicted };
}

function run(name: string, size: number) {
  const loadStart = performance.now();
  const data = DATA_SETS[name](size);
  const loadMs = performance.now() - loadStart;
  const sourceOf = new Map(data.records.map((r) => [r.id, r.source ?? '']));
  let heapPeak = process.memoryUsage().heapUsed;
  let blocking = { kept: 0, truePairs: 0 };
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  const result = resolveBatch(data.records, {
    linkType: data.linkType,
    hooks: {
      phase: () => (heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)),
      candidates: (pairs, records) => {
        // Truth per record index first: two map look-ups per pair would weigh on the timed run at a million records.
        const truthOf = records.map((record) => data.truth.get(record.id));
        let kept = 0;
        for (let p = 0; p < pairs.count; p++) if (truthOf[pairs.left[p]] === truthOf[pairs.right[p]]) kept++;
        blocking = { kept, truePairs: 0 };
      },
    },
  });
  const seconds = (performance.now() - start) / 1000;
  // CPU seconds beside the wall clock: on a shared machine the process waits for a core, and the wall clock counts that too.
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const figures = score(result.clusters, data, sourceOf);
  const rssPeakMb = process.resourceUsage().maxRSS / 1024;
  const f = (x: number) => x.toFixed(4);
  console.log(`\n== ${name}: ${data.records.length} records (${data.linkType}), config ${result.configHash}`);
  console.log(`blocking: ${result.stats.blocking.pairs} candidate pairs, recall ${f(blocking.kept / figures.truePairs)} (${blocking.kept} of ${figures.truePairs} true pairs)`);
  for (const rule of result.stats.blocking.rules) {
    console.log(`  ${rule.name.padEnd(28)} new ${String(rule.newPairs).padStart(9)}  all ${String(rule.pairs).padStart(9)}  oversized blocks ${rule.oversizedBlocks} (${rule.recordsInOversizedBlocks} records)`);
  }
  console.log(`training: λ=${result.model.parameters.lambda.toExponential(3)} (candidates ${result.stats.training.candidateLambda.toFixed(4)}); ` + result.stats.training.rules.map((r) => `${r.name} λ=${Number.isNaN(r.lambda) ? '-' : r.lambda.toFixed(3)}/${r.iterations}it`).join(', '));
  if (process.argv.includes('--verbose')) {
    for (const c of result.model.parameters.comparisons) console.log(`  ${c.name.padEnd(14)} ` + c.levels.map((l) => `${l.label.slice(0, 18)} m=${l.m.toFixed(3)} u=${l.u.toExponential(1)}`).join(' | '));
  }
  console.log(`pairwise: precision ${f(figures.precision)} recall ${f(figures.recall)} F1 ${f(figures.f1)} (${figures.predictedPairs} predicted pairs)`);
  console.log(`B-cubed: precision ${f(figures.bcubedPrecision)} recall ${f(figures.bcubedRecall)} F1 ${f(figures.bcubedF1)}; clusters ${result.clusters.length} (largest ${result.clusters.reduce((largest, c) => Math.max(largest, c.length), 0)}); reviews ${result.reviews.length} (${result.reviews.filter((r) => r.reason === 'chaining_guard').length} from the chaining guard)`);
  console.log(`speed: ${(data.records.length / seconds).toFixed(0)} records/s (${seconds.toFixed(2)} s; CPU ${cpuSeconds.toFixed(2)} s; load ${(loadMs / 1000).toFixed(2)} s; phases ms ${JSON.stringify(result.stats.millis)})`);
  console.log(`memory: peak RSS ${rssPeakMb.toFixed(0)} MB, peak heap used (sampled per phase) ${(heapPeak / 1048576).toFixed(0)} MB`);
}

const args = process.argv.slice(2);
const option = (flag: string, fallback: string) => {
  const at = args.indexOf(flag);
  return at >= 0 && args[at + 1] ? args[at + 1] : fallback;
};
const data = option('--data', 'all');
const size = Number(option('--size', '10000'));
if (!process.env.BENCH_ER_CHILD) console.log(`config ${configHash(DEFAULT_CONFIG)} (identity-resolution/probabilistic/config.ts), data ${dataDir}`);
if (data === 'all') {
  // One process per data set, so each peak-memory figure is its own.
  for (const name of ['febrl3', 'febrl4', 'fake1000', 'historical50k']) {
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--data', name, ...(args.includes('--verbose') ? ['--verbose'] : [])], { stdio: 'inherit', env: { ...process.env, BENCH_ER_CHILD: '1' } });
    if (child.status !== 0) process.exit(child.status ?? 1);
  }
} else {
  if (!DATA_SETS[data]) throw new Error(`unknown data set "${data}"; one of ${Object.keys(DATA_SETS).join(', ')}, all`);
  if (data !== 'generated' && !existsSync(dataDir)) throw new Error(`no data at ${dataDir}: set HUB_SHARED_DATA`);
  run(data, size);
}
