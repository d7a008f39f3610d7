/** Opening a source's CSV file: fingerprint, encoding, delimiter and header; its rows are read as a stream. */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import iconv from 'iconv-lite';
import { ConnectorError } from '../kit/contract.js';
import type { CsvConfig } from './config.gen.js';
import { detectDelimiter, sampleChars, tokenizeStream, type CsvRow } from './parse.js';

export interface CsvFile {
  /** Absolute path. */
  path: string;
  /** SHA-256 of the bytes: a changed file restarts the stream from its first row. */
  hash: string;
  encoding: string;
  delimiter: string;
  /** Header names, trimmed, in file order. */
  columns: string[];
  headerLine: number;
  /**
   * The data rows after the header in batches, read from the file again on each call. Throws a transient error at
   * the end when the bytes read were not the ones `hash` was taken from (the file changed while it was read).
   */
  rowBatches(): AsyncGenerator<CsvRow[]>;
}

/** Bytes read at a time: memory stays flat however large the file (a whole file of 512 MB would not fit in a string). */
const partBytes = 2 ** 20;

/**
 * Opens the file: reads it once to fingerprint it and, unless the encoding is given, to find it (a UTF-8 test needs
 * every byte), then its first rows for the delimiter and header. Everything that makes the file unreadable as a
 * whole is a config error naming the path.
 */
export async function openCsvFile(config: CsvConfig, baseDir: string): Promise<CsvFile> {
  const path = resolve(baseDir, config.path);
  const { hash, encoding } = await fingerprint(path, config.encoding ?? 'auto');
  const delimiter = !config.delimiter || config.delimiter === 'auto' ? detectDelimiter(await leadingText(path, encoding)) : config.delimiter;
  const batches = tokenizeStream(decodedParts(path, encoding), delimiter);
  const firstBatch = await batches.next();
  await batches.return(undefined);
  if (firstBatch.done) throw new ConnectorError(`The CSV file ${path} is empty: it has no header row`, 'config');
  const first = firstBatch.value[0];
  if ('error' in first) throw new ConnectorError(`The header of ${path} (line ${first.line}) cannot be read: ${first.error}`, 'config');
  return {
    path,
    hash,
    encoding,
    delimiter,
    columns: columnNames(first.fields, path),
    headerLine: first.line,
    async *rowBatches() {
      let header = true;
      for await (const batch of tokenizeStream(decodedParts(path, encoding, hash), delimiter)) {
        yield header ? batch.slice(1) : batch;
        header = false;
      }
    },
  };
}

/** The file's bytes, part by part; a file that cannot be opened is a config error naming the path and the reason. */
async function* fileParts(path: string): AsyncGenerator<Buffer> {
  try {
    yield* createReadStream(path, { highWaterMark: partBytes });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === undefined) throw error;
    const why = code === 'ENOENT' ? 'the file does not exist' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : code;
    throw new ConnectorError(`Cannot read the CSV file ${path}: ${why}`, 'config');
  }
}

/** The SHA-256 of the file and its encoding: as configured, or (auto) UTF-16 by its BOM, UTF-8 if every byte is, else Windows-1252. */
async function fingerprint(path: string, configured: NonNullable<CsvConfig['encoding']>): Promise<{ hash: string; encoding: string }> {
  const hash = createHash('sha256');
  let encoding: string | undefined = configured === 'latin1' || configured === 'windows-1252' ? configured : undefined;
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  // Bytes that are not UTF-8 are, in the exports this connector meets, Windows' Western code page.
  const notUtf8 = () => {
    if (configured !== 'auto') throw new ConnectorError(`The CSV file ${path} is not valid UTF-8: set encoding to windows-1252, latin1 or auto`, 'config');
    return 'windows-1252';
  };
  let first = true;
  for await (const bytes of fileParts(path)) {
    // Excel's "Unicode text" export is UTF-16 with a BOM (at the start of the file only).
    if (first && configured === 'auto' && bytes[0] === 0xff && bytes[1] === 0xfe) encoding = 'utf-16le';
    if (first && configured === 'auto' && bytes[0] === 0xfe && bytes[1] === 0xff) encoding = 'utf-16be';
    if (encoding === undefined && !isUtf8(utf8, bytes)) encoding = notUtf8();
    hash.update(bytes);
    first = false;
  }
  if (encoding === undefined && !isUtf8(utf8)) encoding = notUtf8();
  return { hash: hash.digest('hex'), encoding: encoding ?? 'utf-8' };
}

/** Whether the next bytes of a stream (none: its end) are UTF-8 so far: `fatal` throws on invalid bytes instead of replacing them. */
function isUtf8(decoder: TextDecoder, bytes?: Buffer): boolean {
  try {
    decoder.decode(bytes, { stream: bytes !== undefined });
    return true;
  } catch {
    return false;
  }
}

/**
 * The file's text, part by part, without a BOM. With `hash`, the bytes are checked against it at the end: a file
 * that changed since it was opened fails the read (transient: the run is tried again and reads it anew).
 */
async function* decodedParts(path: string, encoding: string, hash?: string): AsyncGenerator<string> {
  const decoder = encoding === 'utf-8' ? utf8Decoder() : iconv.getDecoder(encoding);
  const read: Hash | undefined = hash === undefined ? undefined : createHash('sha256');
  const changed = () => new ConnectorError(`The CSV file ${path} changed while it was read; the next attempt reads it again`, 'transient');
  try {
    for await (const bytes of fileParts(path)) {
      read?.update(bytes);
      yield decoder.write(bytes);
    }
    yield decoder.end() ?? '';
  } catch (error) {
    // Bytes that were UTF-8 when the file was opened and are not now were changed.
    throw error instanceof TypeError && read ? changed() : error;
  }
  if (read && read.digest('hex') !== hash) throw changed();
}

function utf8Decoder(): { write(bytes: Buffer): string; end(): string } {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  return { write: (bytes) => decoder.decode(bytes, { stream: true }), end: () => decoder.decode() };
}

/** The first `sampleChars` characters of the file and one more if it has them, for `detectDelimiter`. */
async function leadingText(path: string, encoding: string): Promise<string> {
  let text = '';
  for await (const part of decodedParts(path, encoding)) {
    text += part;
    if (text.length > sampleChars) break;
  }
  return text;
}

/** Trimmed header names; a blank name (a trailing delimiter) becomes `column_<n>`, a repeated one is an error. */
function columnNames(fields: string[], path: string): string[] {
  const names = fields.map((field, index) => field.trim() || `column_${index + 1}`);
  const repeated = names.find((name, index) => names.indexOf(name) !== index);
  if (repeated !== undefined) throw new ConnectorError(`The header of ${path} names the column '${repeated}' twice`, 'config');
  return names;
}
