/**
 * OData helpers: reading v2's JSON date and time values, and writing the `$filter` that asks for
 * records changed at or after a cursor.
 * v2 JSON format: https://www.odata.org/documentation/odata-version-2-0/json-format/ (dates as "/Date(ms)/")
 * v2 literals: https://www.odata.org/documentation/odata-version-2-0/overview/ (datetime'…', time'…')
 * v4 literals: https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part2-url-conventions.html
 */
import type { Protocol, RestCursorField } from './definition.js';

/** Milliseconds of an OData v2 `/Date(1714644900000)/` (offset suffix allowed), an ISO text, or epoch seconds/ms. */
export function timestampMs(value: unknown): number {
  if (typeof value === 'number') return value > 1e11 ? value : value * 1000;
  if (typeof value !== 'string' || value.trim() === '') return NaN;
  const legacy = /^\/Date\((-?\d+)([+-]\d{4})?\)\/$/.exec(value.trim());
  if (legacy) return Number(legacy[1]);
  const text = value.trim();
  // ISO without an offset is UTC here: SAP and most APIs write their change timestamps in UTC.
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return Date.parse(`${text}T00:00:00Z`);
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)) return Date.parse(`${text.replace(' ', 'T')}Z`);
  return Date.parse(text);
}

/** Milliseconds of an Edm.Time duration `PT10H15M30S` (v2 JSON) or `10:15:30`. */
export function timeOfDayMs(value: unknown): number {
  if (typeof value !== 'string') return NaN;
  const duration = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$/.exec(value.trim());
  const clock = /^(\d{2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?$/.exec(value.trim());
  const parts = duration ?? clock;
  if (!parts) return NaN;
  return ((Number(parts[1] ?? 0) * 60 + Number(parts[2] ?? 0)) * 60 + Number(parts[3] ?? 0)) * 1000;
}

/** A record's cursor: the first of the cursor fields that has a value (a COALESCE), as epoch ms; NaN when none does. */
export function cursorMs(read: (path: string) => unknown, fields: RestCursorField[]): number {
  for (const field of fields) {
    const value = read(field.field);
    if (value === null || value === undefined || value === '') continue;
    const date = timestampMs(value);
    if (!field.time_field) return date;
    // An Edm.DateTime date part is midnight UTC; the time of day comes from its own field.
    const time = timeOfDayMs(read(field.time_field));
    return Number.isNaN(time) ? date : Math.floor(date / 86_400_000) * 86_400_000 + time;
  }
  return NaN;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
const duration = (ms: number) => {
  const seconds = Math.floor(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `PT${pad(Math.floor(seconds / 3600))}H${pad(Math.floor(seconds / 60) % 60)}M${pad(seconds % 60)}S`;
};

function atOrAfter(protocol: Protocol, field: RestCursorField, ms: number): string {
  if (protocol === 'odata_v4') return `${field.field} ge ${iso(ms)}`;
  if (field.odata_type === 'datetimeoffset') return `${field.field} ge datetimeoffset'${iso(ms)}'`;
  if (!field.time_field) return `${field.field} ge datetime'${iso(ms).replace(/Z$/, '')}'`;
  const day = Math.floor(ms / 86_400_000) * 86_400_000;
  const date = `datetime'${iso(day).replace(/Z$/, '')}'`;
  return `(${field.field} gt ${date} or (${field.field} eq ${date} and ${field.time_field} ge time'${duration(ms - day)}'))`;
}

/**
 * `$filter` for records whose cursor is at or after `ms`: for cursor fields f1, f2 (a COALESCE),
 * `(f1 ≥ c) or (f1 eq null and f2 ≥ c)`, so a record never changed since its creation is caught too.
 */
export function cursorFilter(protocol: Protocol, fields: RestCursorField[], ms: number): string {
  const terms = fields.map((field, index) => {
    const nulls = fields.slice(0, index).map((earlier) => `${earlier.field} eq null`);
    return [...nulls, atOrAfter(protocol, field, ms)].join(' and ');
  });
  return terms.length === 1 ? terms[0] : terms.map((term) => `(${term})`).join(' or ');
}

/** `$orderby` of the cursor fields then the key, so pages keep one order while they are read. */
export function cursorOrder(fields: RestCursorField[], key: string[]): string {
  const names = fields.flatMap((field) => (field.time_field ? [field.field, field.time_field] : [field.field]));
  return [...new Set([...names, ...key])].map((name) => `${name.replace(/\./g, '/')} asc`).join(',');
}
