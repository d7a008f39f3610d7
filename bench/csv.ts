/**
 * `npm run bench:csv [-- --rows 6000000]`: the CSV connector reading a large export, page by page as a sync reads it.
 *
 * Writes a file of `--rows` people (about 110 bytes a row: 6,000,000 rows make a file above the 512 MiB a single
 * JavaScript string can hold) to a temporary folder, reads it through the connector with 1,000-row pages, and prints
 * rows per second and the peak memory of the process, which should not grow with the file.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connector } from '../connectors/csv/connector.js';
import { silentLogger } from '../hub/log.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' } } });
const rows = Number(values.rows);
const dir = await mkdtemp(join(tmpdir(), 'hub-bench-csv-'));
try {
  const path = join(dir, 'people.csv');
  const out = createWriteStream(path);
  out.write('id;first_name;last_name;email;phone;street;postcode;city\n');
  for (let i = 0; i < rows; i++) {
    const line = `k${i};Anna-${i % 977};Schmidt-${i % 7919};anna.${i}@example.com;+49 30 ${1_000_000 + i};Hauptstraße ${i % 200};${10_000 + (i % 89_999)};Berlin\n`;
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  const bytes = (await stat(path)).size;

  let peak = 0;
  const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
  const started = performance.now();
  let read = 0;
  for await (const page of connector.read('rows', undefined, { path, id_column: 'id', page_size: 1000 }, { source: 'bench', log: silentLogger, baseDir: dir })) {
    read += page.records.length + (page.rejected?.length ?? 0);
  }
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sample);
  peak = Math.max(peak, process.memoryUsage().rss);
  if (read !== rows) throw new Error(`read ${read} rows of ${rows}`);
  console.log(`csv: ${rows} rows, ${(bytes / 2 ** 20).toFixed(0)} MiB, read in ${seconds.toFixed(1)} s = ${Math.round(rows / seconds)} rows/s; peak memory ${(peak / 2 ** 20).toFixed(0)} MiB`);
  console.log(`reproduce: npm run bench:csv -- --rows ${rows}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
