/**
 * The CSV connector: one file, one stream of rows keyed by a column (or by line number). A bad row is
 * rejected with its line number and the rest of the file loads. The checkpoint is the file's hash and
 * the next line to read, so a crash mid-file resumes at the next page; a changed file, or a file read to
 * its end, is read again from the start.
 */
import { fileURLToPath } from 'node:url';
import { ConnectorError, sweepMarks, type PulledConnector, type ConnectorContext, type RecordPage, type RejectedRecord, type SourceRecord, type StreamState } from '../kit/contract.js';
import type { CsvConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };
import type { CsvRow } from './parse.js';
import { openCsvFile, type CsvFile } from './source-file.js';

/** The checkpoint of a CSV stream. */
export interface CsvStreamState extends StreamState {
  file_hash: string;
  /** First line not yet read: rows starting on an earlier line are covered by earlier pages. */
  next_line: number;
  /** Every row of the file with this hash has been read. */
  complete: boolean;
}

const recordSchema = { type: 'object', additionalProperties: { type: 'string' } };

export const connector: PulledConnector<CsvConfig> = {
  kind: 'pulled',
  name: 'csv',
  configSchema,
  defaultMappingPath: fileURLToPath(new URL('./mapping.yaml', import.meta.url)),
  streams: (config) => [{ name: streamName(config), recordSchema, primaryKey: config.id_column ? [config.id_column] : [] }],
  check,
  read,
};

function streamName(config: CsvConfig): string {
  return config.stream ?? 'rows';
}

async function check(config: CsvConfig, ctx: ConnectorContext): Promise<{ ok: boolean; message: string }> {
  try {
    const file = await openCsvFile(config, ctx.baseDir);
    idColumnIndex(file, config);
    const delimiter = file.delimiter === '\t' ? 'tab' : `'${file.delimiter}'`;
    return {
      ok: true,
      message: `Read the header of ${file.path}: ${file.columns.length} columns (${file.columns.join(', ')}), ${file.encoding}, delimiter ${delimiter}`,
    };
  } catch (error) {
    if (error instanceof ConnectorError && error.kind === 'config') return { ok: false, message: error.message };
    throw error;
  }
}

async function* read(stream: string, state: StreamState | undefined, config: CsvConfig, ctx: ConnectorContext): AsyncGenerator<RecordPage> {
  if (stream !== streamName(config)) {
    throw new ConnectorError(`The CSV source ${ctx.source} has no stream '${stream}'; its stream is '${streamName(config)}'`, 'config');
  }
  const file = await openCsvFile(config, ctx.baseDir);
  const idColumn = idColumnIndex(file, config);
  const previous = csvState(state);
  // A file has no cursor: every run sweeps it whole (the hub finds what changed by content hash),
  // except that a run interrupted mid-file resumes at its checkpoint while the file is unchanged.
  const resumeAt = previous?.file_hash === file.hash && !previous.complete ? previous.next_line : 0;
  let total = 0;
  for await (const batch of file.rowBatches()) total += batch.length;
  ctx.log.info(
    { path: file.path, encoding: file.encoding, delimiter: file.delimiter, rows: total, resumeAt, changed: previous ? previous.file_hash !== file.hash : undefined },
    'reading CSV file',
  );

  const pageSize = config.page_size ?? 500;
  const firstLineOfId = new Map<string, number>();
  let records: SourceRecord[] = [];
  let rejected: RejectedRecord[] = [];
  let done = 0;
  let nextLine = Math.max(resumeAt, file.headerLine + 1);
  // Every read from the first line is a full sweep of the file: rows no longer in it were deleted.
  let sweepStart = resumeAt === 0;
  const page = (complete: boolean): RecordPage => {
    const sweep = sweepMarks(sweepStart, complete);
    sweepStart = false;
    return {
      records,
      ...(rejected.length ? { rejected } : {}),
      state: { file_hash: file.hash, next_line: nextLine, complete } satisfies CsvStreamState,
      progress: { done, total },
      sweep,
    };
  };
  for await (const batch of file.rowBatches()) {
    for (const row of batch) {
      // Rows before the checkpoint are still parsed: duplicate ids are found against the whole file.
      const result = toRecord(row, file.columns, idColumn, firstLineOfId);
      if (row.line < resumeAt) {
        done++;
        continue;
      }
      // A full page is held back until the next row shows it is not the last, so the last page says complete.
      if (records.length + rejected.length === pageSize) {
        nextLine = row.line;
        yield page(false);
        records = [];
        rejected = [];
      }
      if ('reason' in result) rejected.push(result);
      else records.push(result);
      done++;
      nextLine = row.line + lineCount(row.raw);
    }
  }
  yield page(true);
}

/** The state if it is one this connector wrote; anything else reads the file from the start. */
function csvState(state: StreamState | undefined): CsvStreamState | undefined {
  if (!state || typeof state.file_hash !== 'string' || typeof state.next_line !== 'number') return undefined;
  return { file_hash: state.file_hash, next_line: state.next_line, complete: state.complete === true };
}

function idColumnIndex(file: CsvFile, config: CsvConfig): number | undefined {
  if (config.id_column === undefined) return undefined;
  const index = file.columns.indexOf(config.id_column);
  if (index < 0) {
    throw new ConnectorError(`The id_column '${config.id_column}' is not a column of ${file.path}; its columns are: ${file.columns.join(', ')}`, 'config');
  }
  return index;
}

function toRecord(row: CsvRow, columns: string[], idColumn: number | undefined, firstLineOfId: Map<string, number>): SourceRecord | RejectedRecord {
  const reject = (reason: string, extra: Partial<RejectedRecord> = {}): RejectedRecord => ({
    line: row.line,
    reason: `line ${row.line}: ${reason}`,
    payload: row.raw,
    ...extra,
  });
  if ('error' in row) return reject(row.error, columns[row.fieldIndex] === undefined ? {} : { field: columns[row.fieldIndex] });
  if (row.fields.length !== columns.length) return reject(`${row.fields.length} fields, the header has ${columns.length}`);
  const data = Object.fromEntries(columns.map((column, index) => [column, row.fields[index]]));
  if (idColumn === undefined) return { externalId: `line:${row.line}`, data, line: row.line };
  const column = columns[idColumn];
  // Spaces around an id are an artefact of the export, never part of the id; the data keeps them.
  const id = row.fields[idColumn].trim();
  if (id === '') return reject(`no value in the id column '${column}'`, { field: column });
  const first = firstLineOfId.get(id);
  if (first !== undefined) return reject(`duplicate id '${id}' in column '${column}', first on line ${first}`, { externalId: id, field: column });
  firstLineOfId.set(id, row.line);
  return { externalId: id, data, line: row.line };
}

/** Physical lines a row spans: quoted fields may hold line breaks. */
function lineCount(raw: string): number {
  return 1 + (raw.match(/\r\n|\r|\n/g)?.length ?? 0);
}
