import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../hub/log.js';
import type { ConnectorContext, RecordPage, StreamState } from '../kit/contract.js';
import type { CsvConfig } from './config.gen.js';
import { connector, type CsvStreamState } from './connector.js';
import { detectDelimiter, longestQuotedField, tokenize, tokenizeStream } from './parse.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const ctx: ConnectorContext = { source: 'test-csv', log: silentLogger, baseDir: fixtures };

async function readAll(config: CsvConfig, state?: StreamState): Promise<RecordPage[]> {
  const pages: RecordPage[] = [];
  for await (const page of connector.read(config.stream ?? 'rows', state, config, ctx)) pages.push(page);
  return pages;
}

const hashOf = (pages: RecordPage[]) => (pages[0].state as CsvStreamState).file_hash;

describe('csv connector: encodings and delimiters', () => {
  it('reads UTF-8 with a BOM and CRLF line ends', async () => {
    const pages = await readAll({ path: 'contacts-utf8-bom.csv', id_column: 'contact_id' });

    expect(pages).toHaveLength(1);
    expect(pages[0].records).toEqual([
      { externalId: 'C1', line: 2, data: { contact_id: 'C1', email: 'ann@example.com', first_name: 'Ann', last_name: 'Lee', company: 'Acme Ltd' } },
      { externalId: 'C2', line: 3, data: { contact_id: 'C2', email: 'bo@example.com', first_name: 'Bo', last_name: 'Ng', company: '' } },
    ]);
    expect(pages[0].rejected).toBeUndefined();
    expect(pages[0].progress).toEqual({ done: 2, total: 2 });
  });

  it('reads Windows-1252 with semicolons, not fooled by decimal commas', async () => {
    const [page] = await readAll({ path: 'kunden-latin1.csv', id_column: 'Kundennr' });

    expect(page.records).toEqual([
      {
        externalId: '1001',
        line: 2,
        data: { Kundennr: '1001', email: 'j.mueller@example.de', first_name: 'Jürgen', last_name: 'Müller', company: 'Bäckerei Müller GmbH', umsatz: '1.234,50' },
      },
      {
        externalId: '1002',
        line: 3,
        data: { Kundennr: '1002', email: 'f.dupont@example.fr', first_name: 'Françoise', last_name: 'Dupont', company: 'Café €uro', umsatz: '99,00' },
      },
    ]);
  });

  it('takes FF FE for a UTF-16 byte order mark only at the start of the file, not where a later part of it begins', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hub-csv-'));
    try {
      // Windows-1252 text whose second MiB, as the file is read, starts with "ÿþ".
      const head = Buffer.from('id;name\n');
      const filler = Buffer.from(Array.from({ length: 2 ** 20 }, (_, i) => (i % 64 === 63 ? '\n' : 'x')).join('').slice(0, 2 ** 20 - head.length - 3) + '\n1;');
      const bytes = Buffer.concat([head, filler, Buffer.from([0xff, 0xfe]), Buffer.from('\n')]);
      expect(bytes.subarray(2 ** 20, 2 ** 20 + 2)).toEqual(Buffer.from([0xff, 0xfe]));
      await writeFile(join(dir, 'late-ff-fe.csv'), bytes);

      const pages = [];
      for await (const page of connector.read('rows', undefined, { path: 'late-ff-fe.csv', page_size: 100_000 }, { ...ctx, baseDir: dir })) pages.push(page);

      const last = pages.flatMap((page) => page.records).at(-1);
      expect(last?.data).toEqual({ id: '1', name: 'ÿþ' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('decodes the same bytes as latin1 when told to (0x80 is a control character there, not €)', async () => {
    const [page] = await readAll({ path: 'kunden-latin1.csv', id_column: 'Kundennr', encoding: 'latin1', delimiter: ';' });

    expect(page.records[1].data.first_name).toBe('Françoise');
    expect(page.records[1].data.company).toBe('Café \u0080uro');
  });

  it('refuses a file that is not UTF-8 when utf-8 is configured', async () => {
    await expect(readAll({ path: 'kunden-latin1.csv', encoding: 'utf-8' })).rejects.toMatchObject({
      kind: 'config',
      message: expect.stringMatching(/kunden-latin1\.csv is not valid UTF-8/),
    });
  });

  it('reads a tab-separated file, keeping commas in values', async () => {
    const [page] = await readAll({ path: 'contacts-tab.csv', id_column: 'id' });

    expect(page.records).toEqual([
      { externalId: '7', line: 2, data: { id: '7', email: 'kai@example.com', first_name: 'Kai', last_name: 'Berg' } },
      { externalId: '8', line: 3, data: { id: '8', email: 'li@example.com', first_name: 'Li', last_name: 'Wu, Jr.' } },
    ]);
  });

  it('reads quoted fields with the delimiter, doubled quotes and line breaks inside, and bare quotes as text', async () => {
    const [page] = await readAll({ path: 'quoted.csv', id_column: 'id' });

    expect(page.records).toEqual([
      { externalId: '1', line: 2, data: { id: '1', name: 'Smith | Sons', note: 'He said "hi"', email: 's@example.com' } },
      { externalId: '2', line: 3, data: { id: '2', name: 'Ann', note: 'first line\nsecond line', email: 'ann@example.com' } },
      { externalId: '3', line: 5, data: { id: '3', name: "O'Brien", note: '5\'11" tall', email: 'ob@example.com' } },
    ]);
  });

  it('detects the delimiter from the header and the next lines, respecting quotes', () => {
    expect(detectDelimiter('a,b,c\n1,2,3\n')).toBe(',');
    expect(detectDelimiter('name;amount\nA;1,50\nB;2,00\n')).toBe(';');
    expect(detectDelimiter('a\tb\n"x;y;z"\t2\n')).toBe('\t');
    expect(detectDelimiter('a|b\n"x,y"|z\n')).toBe('|');
    // A comma inside quoted header names does not count.
    expect(detectDelimiter('"last, first";email\n"Lee, Ann";a@x\n')).toBe(';');
    expect(detectDelimiter('email\na@x\n')).toBe(',');
  });
});

describe('tokenize', () => {
  it('resumes on the next line after a quote that never closes', () => {
    expect([...tokenize('a,b\n1,"x\n2,y', ',')]).toEqual([
      { line: 1, raw: 'a,b', fields: ['a', 'b'] },
      { line: 2, raw: '1,"x', error: 'unterminated quote in field 2', fieldIndex: 1 },
      { line: 3, raw: '2,y', fields: ['2', 'y'] },
    ]);
  });

  it('rejects text after a closing quote and reads the next line', () => {
    expect([...tokenize('"a"b,c\r\nd,e', ',')]).toEqual([
      { line: 1, raw: '"a"b,c', error: 'unexpected text after the closing quote of field 1', fieldIndex: 0 },
      { line: 2, raw: 'd,e', fields: ['d', 'e'] },
    ]);
  });

  it('counts lines with CR-only ends and line breaks inside quotes, and skips blank rows', () => {
    expect([...tokenize('a;b\r"x\r\ny";2\r\r;\r  \r3;', ';')]).toEqual([
      { line: 1, raw: 'a;b', fields: ['a', 'b'] },
      { line: 2, raw: '"x\r\ny";2', fields: ['x\r\ny', '2'] },
      { line: 7, raw: '3;', fields: ['3', ''] },
    ]);
  });
});

describe('tokenizeStream', () => {
  async function* partsOf(parts: string[], read?: { count: number }) {
    for (const part of parts) {
      if (read) read.count++;
      yield part;
    }
  }
  const rowsOf = async (parts: string[], delimiter: string, read?: { count: number }) => {
    const rows = [];
    for await (const batch of tokenizeStream(partsOf(parts, read), delimiter)) rows.push(...batch);
    return rows;
  };
  // Every kind of record end and quote, so that a cut lands inside each: CRLF, lone CR, doubled quotes, line breaks
  // in quotes, a quote error, a blank row, a last row without a line break.
  const text = 'id;note\r\n1;"a ""quoted"" word"\r\n2;"two\r\nlines";x\r3;\n\n"4"x;y\n5;"never closed\n6;last';

  it('reads the same records as the whole text, wherever the text is cut', async () => {
    const whole = [...tokenize(text, ';')];
    expect(whole.map((row) => row.line)).toEqual([1, 2, 3, 5, 7, 8, 9]);
    for (let cut = 0; cut <= text.length; cut++) {
      expect(await rowsOf([text.slice(0, cut), text.slice(cut)], ';')).toEqual(whole);
    }
    expect(await rowsOf([...text], ';')).toEqual(whole);
  });

  it('gives up on a quote still open after longestQuotedField characters instead of holding the rest of the stream', async () => {
    // Parts of a MiB, in long rows: the test is about characters, not rows.
    const lines = `y,${'z'.repeat(1021)}\n`.repeat(1024);
    const parts = ['a,b\n1,"x\n', ...Array.from({ length: Math.ceil((longestQuotedField * 1.5) / lines.length) }, () => lines)];
    const read = { count: 0 };
    let readWhenRejected = 0;
    let rows = 0;
    for await (const batch of tokenizeStream(partsOf(parts, read), ',')) {
      if (batch.some((row) => 'error' in row)) readWhenRejected = read.count;
      rows += batch.length;
    }

    expect(readWhenRejected).toBeGreaterThan(0);
    expect(readWhenRejected).toBeLessThan(parts.length);
    expect(rows).toBe([...tokenize(parts.join(''), ',')].length);
  });
});

describe('csv connector: bad rows', () => {
  it('rejects bad rows with their line number and reason, and loads the rest', async () => {
    const [page] = await readAll({ path: 'bad-rows.csv', id_column: 'customer_id' });

    expect(page.records.map((record) => [record.externalId, record.line])).toEqual([
      ['A1', 2],
      ['A4', 6],
      ['A5', 9],
    ]);
    expect(page.records[1].data).toEqual({
      customer_id: 'A4',
      email: 'di@example.com',
      first_name: 'Di',
      last_name: 'Fox',
      phone: '',
      company: 'Globex, Inc.',
      job_title: 'CFO',
    });
    expect(page.records[2].data.job_title).toBe('Head of\nSales');
    expect(page.rejected).toEqual([
      { line: 3, reason: 'line 3: 6 fields, the header has 7', payload: 'A2,bo@example.com,Bo,Ng,,Acme' },
      { line: 5, field: 'last_name', reason: 'line 5: unterminated quote in field 4', payload: 'A3,cy@example.com,Cy,"Ray,+1 555 0100,Initech,CTO' },
      { line: 7, field: 'customer_id', reason: "line 7: no value in the id column 'customer_id'", payload: ',ed@example.com,Ed,Park,,,' },
      {
        line: 8,
        externalId: 'A1',
        field: 'customer_id',
        reason: "line 8: duplicate id 'A1' in column 'customer_id', first on line 2",
        payload: 'A1,ann.lee@example.com,Ann,Lee,,Acme,CEO',
      },
    ]);
    expect(page.progress).toEqual({ done: 7, total: 7 });
    expect(page.state).toMatchObject({ next_line: 11, complete: true });
  });

  it('ends a file with a header and no rows with one empty, complete page', async () => {
    const pages = await readAll({ path: 'header-only.csv' });

    expect(pages).toEqual([{ records: [], state: { file_hash: hashOf(pages), next_line: 2, complete: true }, progress: { done: 0, total: 0 }, sweep: { start: true, end: true } }]);
  });

  it('numbers rows by line when there is no id column', async () => {
    const [page] = await readAll({ path: 'contacts-tab.csv' });

    expect(page.records.map((record) => record.externalId)).toEqual(['line:2', 'line:3']);
  });
});

describe('csv connector: pages and checkpoints', () => {
  const config: CsvConfig = { path: 'paging.csv', id_column: 'id', page_size: 3 };

  it('pages by page_size, each page with the state that resumes after it', async () => {
    const pages = await readAll(config);
    const hash = hashOf(pages);

    expect(pages.map((page) => page.records.map((record) => record.externalId))).toEqual([['p1', 'p2', 'p3'], ['p4', 'p5', 'p6'], ['p7']]);
    expect(pages.map((page) => page.state)).toEqual([
      { file_hash: hash, next_line: 7, complete: false },
      { file_hash: hash, next_line: 11, complete: false },
      { file_hash: hash, next_line: 12, complete: true },
    ]);
    expect(pages.map((page) => page.progress)).toEqual([
      { done: 3, total: 7 },
      { done: 6, total: 7 },
      { done: 7, total: 7 },
    ]);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('marks the last page complete when the rows fill whole pages', async () => {
    const pages = await readAll({ ...config, page_size: 7 });

    expect(pages).toHaveLength(1);
    expect(pages[0].records).toHaveLength(7);
    expect(pages[0].state).toMatchObject({ complete: true });
  });

  it('resumes from each mid-file state with exactly the remaining rows', async () => {
    const pages = await readAll(config);
    const all = pages.flatMap((page) => page.records);

    for (const [index, page] of pages.entries()) {
      const resumed = await readAll(config, page.state);
      // After the last page a new run sweeps the whole file again.
      const expected = page.state.complete ? all : all.slice((index + 1) * 3);
      expect(resumed.flatMap((next) => next.records)).toEqual(expected);
    }
  });

  it('still finds duplicates of ids read before the checkpoint', async () => {
    const pages = await readAll({ path: 'bad-rows.csv', id_column: 'customer_id', page_size: 2 });
    // Pages of two rows: lines 2-3, 5-6, 7-8, 9; resume before line 7, after A1 was read on line 2.
    const resumeFrom = pages.find((page) => (page.state as CsvStreamState).next_line === 7)!;

    const resumed = await readAll({ path: 'bad-rows.csv', id_column: 'customer_id', page_size: 2 }, resumeFrom.state);

    expect(resumed.flatMap((page) => page.rejected ?? []).map((rejected) => rejected.reason)).toEqual([
      "line 7: no value in the id column 'customer_id'",
      "line 8: duplicate id 'A1' in column 'customer_id', first on line 2",
    ]);
    expect(resumed.flatMap((page) => page.records).map((record) => record.externalId)).toEqual(['A5']);
  });

  it('marks the first page of a sweep from the first line, and its last page; a resumed read starts no sweep', async () => {
    const pages = await readAll(config);
    expect(pages.map((page) => page.sweep)).toEqual(pages.map((_, index) => ({ ...(index === 0 ? { start: true } : {}), ...(index === pages.length - 1 ? { end: true } : {}) })));
    const resumed = await readAll(config, pages[0].state);
    expect(resumed[0].sweep?.start).toBeUndefined();
    expect(resumed[resumed.length - 1].sweep).toEqual({ end: true });
  });

  it('sweeps the whole file again after a complete read, ending in the same state', async () => {
    const pages = await readAll(config);
    const last = pages[pages.length - 1].state;

    const again = await readAll(config, last);
    expect(again.flatMap((page) => page.records)).toEqual(pages.flatMap((page) => page.records));
    expect(again[again.length - 1].state).toEqual(last);
  });

  it('reads a changed file from the start', async () => {
    const stale: CsvStreamState = { file_hash: 'f'.repeat(64), next_line: 10, complete: true };

    const pages = await readAll(config, stale);

    expect(pages.flatMap((page) => page.records)).toHaveLength(7);
    expect(pages[0].records[0].externalId).toBe('p1');
  });

  it('fails a read, transient and before the sweep ends, when the file changes while it is read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hub-csv-'));
    try {
      // Several parts read from the file (and more than the stream reads ahead), so the change lands mid-read.
      const rows = (tag: string) => 'id,name\n' + Array.from({ length: 150_000 }, (_, i) => `${tag}${i},${'n'.repeat(40)}`).join('\n');
      await writeFile(join(dir, 'changing.csv'), rows('a'));
      const pages = connector.read('rows', undefined, { path: 'changing.csv', id_column: 'id', page_size: 100 }, { ...ctx, baseDir: dir })[Symbol.asyncIterator]();
      const first = await pages.next();
      expect(first.done).toBe(false);
      await writeFile(join(dir, 'changing.csv'), rows('b'));

      const seen: RecordPage[] = [];
      const rest = (async () => {
        for (let page = await pages.next(); !page.done; page = await pages.next()) seen.push(page.value);
      })();

      await expect(rest).rejects.toMatchObject({ kind: 'transient', message: expect.stringContaining('changed while it was read') });
      expect(seen.some((page) => page.sweep?.end)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a stream it does not have', async () => {
    const pages = connector.read('orders', undefined, config, ctx)[Symbol.asyncIterator]();

    await expect(pages.next()).rejects.toMatchObject({ kind: 'config', message: "The CSV source test-csv has no stream 'orders'; its stream is 'rows'" });
  });
});

describe('csv connector: check, streams and mapping', () => {
  it('checks a readable file and describes its header', async () => {
    expect(await connector.check({ path: 'kunden-latin1.csv', id_column: 'Kundennr' }, ctx)).toEqual({
      ok: true,
      message: `Read the header of ${fixtures}kunden-latin1.csv: 6 columns (Kundennr, email, first_name, last_name, company, umsatz), windows-1252, delimiter ';'`,
    });
  });

  it('fails the check for a missing file, naming its path', async () => {
    expect(await connector.check({ path: 'nope/missing.csv' }, ctx)).toEqual({
      ok: false,
      message: `Cannot read the CSV file ${fixtures}nope/missing.csv: the file does not exist`,
    });
  });

  it('fails the check when the id column is not in the header', async () => {
    const result = await connector.check({ path: 'contacts-tab.csv', id_column: 'customer_id' }, ctx);

    expect(result.ok).toBe(false);
    expect(result.message).toBe(`The id_column 'customer_id' is not a column of ${fixtures}contacts-tab.csv; its columns are: id, email, first_name, last_name`);
  });

  it('declares one stream keyed by the id column', () => {
    expect(connector.streams({ path: 'x.csv', id_column: 'contact_id' })).toEqual([
      { name: 'rows', recordSchema: { type: 'object', additionalProperties: { type: 'string' } }, primaryKey: ['contact_id'] },
    ]);
    expect(connector.streams({ path: 'x.csv', stream: 'leads' })[0]).toMatchObject({ name: 'leads', primaryKey: [] });
  });

  it('validates configurations with its schema', () => {
    const validate = new Ajv({ strict: false }).compile(connector.configSchema);

    expect(validate({ path: 'a.csv', delimiter: '\t', encoding: 'latin1', page_size: 100, default_region: 'DE' })).toBe(true);
    expect(validate({ path: 'a.csv', delimiter: ';;' })).toBe(false);
    expect(validate({ path: 'a.csv', encoding: 'utf-16' })).toBe(false);
    expect(validate({ path: 'a.csv', separator: ';' })).toBe(false);
  });

  it('ships a default mapping for the rows stream that the mapping schema accepts', async () => {
    const schema = JSON.parse(await readFile(new URL('../../openapi/schemas/mapping.schema.json', import.meta.url), 'utf8'));
    const mapping = parseYaml(await readFile(connector.defaultMappingPath, 'utf8'));
    const validate = new Ajv({ strict: false }).compile(schema);

    expect(validate(mapping)).toBe(true);
    expect(Object.keys(mapping.streams)).toEqual(['rows']);
  });
});
