/**
 * CSV tokenising for the CSV connector: RFC 4180 quoting, quoted fields over several lines, and a
 * line number and raw text for every row, so one bad row is reported and the next one read.
 *
 * Written here rather than with csv-parse because, after a quote error, csv-parse (6.2) resumes
 * mid-record and drops the good rows that follow, and an unclosed quote swallows the rest of the
 * file; it also miscounts lines inside quoted fields with CRLF endings.
 */

/** One record of the file: its fields, or why it could not be read. `raw` never includes the line break. */
export type CsvRow =
  | { line: number; raw: string; fields: string[] }
  | { line: number; raw: string; error: string; fieldIndex: number };

/** Delimiters `detectDelimiter` chooses from, in order of preference when they tie. */
export const delimiterCandidates = [',', ';', '\t', '|'] as const;

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
const sampleLines = 50;
/** Characters of a file `detectDelimiter` reads at most. */
export const sampleChars = 64 * 1024;

/** Where a tokenizer stopped: the offset of the first record it did not yield, and that record's line. */
export interface TokenizerStop {
  pos: number;
  line: number;
}

/**
 * A quoted field still open after this many characters of a stream is read as never closed: without the cap, one
 * stray quote would hold the rest of a file in memory waiting for its closing quote.
 */
export const longestQuotedField = 16 * 2 ** 20;

/**
 * Yields every record of `text` that has a non-blank field. Line breaks are LF, CRLF or a lone CR
 * (Excel for Mac). A quote opens a quoted field only as its first character; elsewhere it is kept
 * as text (`5'11"`). After a quote error the reading resumes on the line after the opening quote:
 * an unbalanced quote is far more often a typo than a real multi-line field.
 *
 * `more`: `text` is a part of a stream with more to come; the tokenizer stops before the first record that the
 * next part could change (one not followed by text after its line break, or a quote still open) and returns
 * where it stopped. `line`: the line `text` starts on.
 */
export function* tokenize(text: string, delimiter: string, { line: firstLine = 1, more = false } = {}): Generator<CsvRow, TokenizerStop> {
  const separator = delimiter.charCodeAt(0);
  const end = text.length;
  let pos = 0;
  let line = firstLine;
  while (pos < end) {
    const start = pos;
    const startLine = line;
    const fields: string[] = [];
    let error: string | undefined;
    let errorField = 0;
    let quoteStart = 0;
    let quoteLine = 0;
    for (;;) {
      if (text.charCodeAt(pos) !== QUOTE) {
        let stop = pos;
        for (let c = text.charCodeAt(stop); stop < end && c !== separator && c !== LF && c !== CR; c = text.charCodeAt(++stop));
        fields.push(text.slice(pos, stop));
        pos = stop;
      } else {
        quoteStart = pos;
        quoteLine = line;
        let value = '';
        let from = pos + 1;
        for (;;) {
          const close = text.indexOf('"', from);
          if (close === -1 && more && end - quoteStart < longestQuotedField) return { pos: start, line: startLine };
          if (close === -1) {
            errorField = fields.length;
            error = `unterminated quote in field ${errorField + 1}`;
            break;
          }
          value += text.slice(from, close);
          if (text.charCodeAt(close + 1) === QUOTE) {
            value += '"';
            from = close + 2;
          } else {
            pos = close + 1;
            break;
          }
        }
        if (error) break;
        line += countLineBreaks(text, quoteStart, pos);
        fields.push(value);
        const next = text.charCodeAt(pos);
        if (pos < end && next !== separator && next !== LF && next !== CR) {
          errorField = fields.length - 1;
          // Closed on a later line, the quote was most likely never meant to be closed on its own.
          error =
            line === quoteLine
              ? `unexpected text after the closing quote of field ${errorField + 1}`
              : `unterminated quote in field ${errorField + 1}`;
          break;
        }
      }
      if (text.charCodeAt(pos) !== separator || pos >= end) break;
      pos++;
    }
    if (error) {
      const stop = endOfLine(text, quoteStart);
      if (more && skipLineBreak(text, stop) >= end) return { pos: start, line: startLine };
      yield { line: startLine, raw: text.slice(start, stop), error, fieldIndex: errorField };
      pos = skipLineBreak(text, stop);
      line = quoteLine + 1;
      continue;
    }
    const raw = text.slice(start, pos);
    const next = skipLineBreak(text, pos);
    // A record that reaches the end of a part may go on in the next one (a CR's LF among it).
    if (more && next >= end) return { pos: start, line: startLine };
    if (next > pos) line++;
    pos = next;
    if (fields.some((field) => field.trim() !== '')) yield { line: startLine, raw, fields };
  }
  return { pos, line };
}

/**
 * `tokenize` over a stream of text parts: the same records, in a batch per part (one await per part, not per
 * record), holding only the text not yet read.
 */
export async function* tokenizeStream(parts: AsyncIterable<string>, delimiter: string): AsyncGenerator<CsvRow[]> {
  let pending = '';
  let line = 1;
  for await (const part of parts) {
    pending += part;
    const rows = tokenize(pending, delimiter, { line, more: true });
    const batch: CsvRow[] = [];
    let step = rows.next();
    for (; !step.done; step = rows.next()) batch.push(step.value);
    if (batch.length) yield batch;
    pending = pending.slice(step.value.pos);
    line = step.value.line;
  }
  const last = [...tokenize(pending, delimiter, { line })];
  if (last.length) yield last;
}

/**
 * Picks the delimiter of a file from its first lines: the candidate that splits the header into
 * the most consistent field count over the next rows (quotes respected), then the one giving more
 * fields. A decimal comma in a `;` file splits rows evenly but not the header, so the header must
 * contain the delimiter. A single-column file gets `,`.
 */
export function detectDelimiter(text: string): string {
  const counts = sampleCounts(text);
  let best: { delimiter: string; consistency: number; fields: number } | undefined;
  for (const [index, delimiter] of delimiterCandidates.entries()) {
    const perRow = counts.map((row) => row[index]);
    const header = perRow[0] ?? 0;
    if (header === 0) continue;
    const rest = perRow.slice(1);
    const consistency = rest.length ? rest.filter((count) => count === header).length / rest.length : 1;
    if (!best || consistency > best.consistency || (consistency === best.consistency && header > best.fields)) {
      best = { delimiter, consistency, fields: header };
    }
  }
  return best?.delimiter ?? ',';
}

/** Occurrences of each candidate outside quotes, per non-blank record of the sample. */
function sampleCounts(text: string): number[][] {
  const rows: number[][] = [];
  let row = delimiterCandidates.map(() => 0);
  let blank = true;
  let quoted = false;
  const limit = Math.min(text.length, sampleChars);
  for (let i = 0; i < limit && rows.length < sampleLines; i++) {
    const char = text[i];
    // Toggling on every quote reads `""` inside a quoted field as two toggles, which is right.
    if (char === '"') quoted = !quoted;
    else if (!quoted && (char === '\n' || char === '\r')) {
      if (!blank) rows.push(row);
      row = delimiterCandidates.map(() => 0);
      blank = true;
      continue;
    } else if (!quoted) {
      const index = (delimiterCandidates as readonly string[]).indexOf(char);
      if (index >= 0) row[index]++;
    }
    if (char.trim() !== '') blank = false;
  }
  // A record cut by the sample's end would count short; keep it only when it is the whole file.
  if (!blank && (limit === text.length || rows.length === 0)) rows.push(row);
  return rows;
}

function countLineBreaks(text: string, from: number, to: number): number {
  let breaks = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === LF) breaks++;
    else if (c === CR) {
      breaks++;
      if (text.charCodeAt(i + 1) === LF) i++;
    }
  }
  return breaks;
}

function endOfLine(text: string, from: number): number {
  let i = from;
  for (let c = text.charCodeAt(i); i < text.length && c !== LF && c !== CR; c = text.charCodeAt(++i));
  return i;
}

function skipLineBreak(text: string, pos: number): number {
  if (text.charCodeAt(pos) === CR) return text.charCodeAt(pos + 1) === LF ? pos + 2 : pos + 1;
  return text.charCodeAt(pos) === LF ? pos + 1 : pos;
}
