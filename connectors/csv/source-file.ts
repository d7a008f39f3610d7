/** Opening a source's CSV file: bytes, fingerprint, encoding, delimiter and header. */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import iconv from 'iconv-lite';
import { ConnectorError } from '../kit/contract.js';
import type { CsvConfig } from './config.gen.js';
import { detectDelimiter, tokenize, type CsvRow } from './parse.js';

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
  /** The data rows after the header; each call reads from the start again. */
  rows(): Generator<CsvRow>;
}

/**
 * Reads the whole file into memory: the fingerprint and the UTF-8 test need every byte anyway,
 * and the files this connector is for (lists, exports) are megabytes, not gigabytes.
 * Everything that makes the file unreadable as a whole is a config error naming the path.
 */
export async function openCsvFile(config: CsvConfig, baseDir: string): Promise<CsvFile> {
  const path = resolve(baseDir, config.path);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'the file does not exist' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : String(code ?? error);
    throw new ConnectorError(`Cannot read the CSV file ${path}: ${why}`, 'config');
  }
  const { text, encoding } = decode(bytes, config.encoding ?? 'auto', path);
  const delimiter = !config.delimiter || config.delimiter === 'auto' ? detectDelimiter(text) : config.delimiter;
  const header = tokenize(text, delimiter).next();
  if (header.done) throw new ConnectorError(`The CSV file ${path} is empty: it has no header row`, 'config');
  const first = header.value;
  if ('error' in first) throw new ConnectorError(`The header of ${path} (line ${first.line}) cannot be read: ${first.error}`, 'config');
  return {
    path,
    hash: createHash('sha256').update(bytes).digest('hex'),
    encoding,
    delimiter,
    columns: columnNames(first.fields, path),
    headerLine: first.line,
    *rows() {
      const rows = tokenize(text, delimiter);
      rows.next();
      yield* rows;
    },
  };
}

function decode(bytes: Buffer, encoding: NonNullable<CsvConfig['encoding']>, path: string): { text: string; encoding: string } {
  if (encoding === 'latin1' || encoding === 'windows-1252') return { text: iconv.decode(bytes, encoding), encoding };
  if (encoding === 'auto') {
    // Excel's "Unicode text" export is UTF-16 with a BOM; iconv-lite strips the BOM.
    if (bytes[0] === 0xff && bytes[1] === 0xfe) return { text: iconv.decode(bytes, 'utf-16le'), encoding: 'utf-16le' };
    if (bytes[0] === 0xfe && bytes[1] === 0xff) return { text: iconv.decode(bytes, 'utf-16be'), encoding: 'utf-16be' };
  }
  try {
    // `fatal` rejects invalid bytes instead of replacing them, which is the UTF-8 test; the BOM is dropped.
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), encoding: 'utf-8' };
  } catch {
    // Bytes that are not UTF-8 are, in the exports this connector meets, Windows' Western code page.
    if (encoding === 'auto') return { text: iconv.decode(bytes, 'windows-1252'), encoding: 'windows-1252' };
    throw new ConnectorError(`The CSV file ${path} is not valid UTF-8: set encoding to windows-1252, latin1 or auto`, 'config');
  }
}

/** Trimmed header names; a blank name (a trailing delimiter) becomes `column_<n>`, a repeated one is an error. */
function columnNames(fields: string[], path: string): string[] {
  const names = fields.map((field, index) => field.trim() || `column_${index + 1}`);
  const repeated = names.find((name, index) => names.indexOf(name) !== index);
  if (repeated !== undefined) throw new ConnectorError(`The header of ${path} names the column '${repeated}' twice`, 'config');
  return names;
}
