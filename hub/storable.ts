/**
 * What PostgreSQL can store, checked before a page is saved: one record it cannot store (a NUL character, text
 * that is not valid Unicode, a field of many megabytes, JSON nested absurdly deep) would otherwise fail the
 * whole page's transaction and with it the run. Such a record is rejected with its reason and quarantined;
 * its quarantined payload is cut down to something storable.
 */
import type { RecordPage, RejectedRecord, SourceRecord } from '../connectors/kit/contract.js';

/** The longest text value a record may carry (bytes of UTF-8); HUB_MAX_FIELD_BYTES overrides. */
export const MAX_FIELD_BYTES = Number(process.env.HUB_MAX_FIELD_BYTES ?? 1024 * 1024);
/** The deepest nesting of objects and arrays a record may have. */
export const MAX_DEPTH = 100;
/** Text values of a quarantined payload are kept up to this many characters. */
const PAYLOAD_TEXT_CHARS = 1000;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// String.prototype.isWellFormed (Node 20) is much faster than the expression; ES2022's typings lack it.
const wellFormed = (text: string): boolean => (text as string & { isWellFormed?: () => boolean }).isWellFormed?.() ?? !LONE_SURROGATE.test(text);

function textProblem(text: string): string | undefined {
  if (text.includes('\u0000')) return 'contains a NUL character (U+0000), which cannot be stored';
  if (!wellFormed(text)) return 'is not valid Unicode (invalid UTF-8 / a lone UTF-16 surrogate)';
  if (text.length > MAX_FIELD_BYTES / 4 && Buffer.byteLength(text) > MAX_FIELD_BYTES) {
    return `is too large (${Buffer.byteLength(text)} bytes; at most ${MAX_FIELD_BYTES} per field)`;
  }
  return undefined;
}

/** The first reason `value` cannot be stored, with the field at fault; undefined when it can. */
export function unstorable(value: unknown): { field: string; reason: string } | undefined {
  const found = firstProblem(value, 0);
  if (!found) return undefined;
  const field = found.path.length ? sanitizeText(found.path.join('.')) : '(record)';
  return { field, reason: found.onKey ? `The name of field '${field}' ${found.problem}.` : `Field '${field}' ${found.problem}.` };
}

/** The path is built only on the way back from a problem: most records have none, and the walk stays cheap. */
function firstProblem(value: unknown, depth: number): { path: string[]; problem: string; onKey?: boolean } | undefined {
  if (typeof value === 'string') {
    const problem = textProblem(value);
    return problem ? { path: [], problem } : undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  if (depth >= MAX_DEPTH) return { path: [], problem: `is nested deeper than ${MAX_DEPTH} levels` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = firstProblem(value[i], depth + 1);
      if (found) return (found.path.unshift(String(i)), found);
    }
    return undefined;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const keyProblem = textProblem(key);
    if (keyProblem) return { path: [key], problem: keyProblem, onKey: true };
    const found = firstProblem((value as Record<string, unknown>)[key], depth + 1);
    if (found) return (found.path.unshift(key), found);
  }
  return undefined;
}

function sanitizeText(text: string): string {
  let clean = text.replace(/\u0000/g, '\ufffd').replace(new RegExp(LONE_SURROGATE.source, 'g'), '\ufffd');
  if (clean.length > PAYLOAD_TEXT_CHARS) clean = `${clean.slice(0, PAYLOAD_TEXT_CHARS)}… (${clean.length - PAYLOAD_TEXT_CHARS} more characters)`;
  return clean;
}

/** A storable copy of a payload to quarantine: text cut down and cleaned, deep nesting cut off. */
export function storablePayload(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return sanitizeText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= 20) return '… (nested deeper)';
  if (Array.isArray(value)) return value.map((item) => storablePayload(item, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [sanitizeText(key), storablePayload(item, depth + 1)]));
}

/** Moves the records PostgreSQL cannot store to the page's rejected input, and makes every rejected payload storable. */
export function screenPage(page: RecordPage): RecordPage {
  const records: SourceRecord[] = [];
  const rejected: RejectedRecord[] = [];
  for (const record of page.records) {
    const problem = unstorable(record.data) ?? (textProblem(record.externalId) ? { field: '(external id)', reason: `The external id ${textProblem(record.externalId)}.` } : undefined);
    if (problem) rejected.push({ externalId: sanitizeText(record.externalId), line: record.line, field: problem.field, reason: problem.reason, payload: record.data });
    else records.push(record);
  }
  if (rejected.length === 0 && !page.rejected?.length) return page;
  const all = [...(page.rejected ?? []), ...rejected].map((entry) => ({
    ...entry,
    externalId: entry.externalId === undefined ? undefined : sanitizeText(entry.externalId),
    field: entry.field === undefined ? undefined : sanitizeText(entry.field),
    reason: sanitizeText(entry.reason),
    payload: storablePayload(entry.payload),
  }));
  return { ...page, records, rejected: all };
}
