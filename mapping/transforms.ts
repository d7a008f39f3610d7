/**
 * The named transforms a mapping document may use. Each is pure: (value, options, ctx) → value.
 * Empty input (null, undefined, blank text) passes through as undefined, except for `default`;
 * a value that cannot be transformed throws a TransformError that quotes it.
 */
import { isValid, parse, parseISO, format as formatDate } from 'date-fns';
import { isSupportedCountry, parsePhoneNumberFromString } from 'libphonenumber-js/max';
import type { TransformCall, TransformName } from '../openapi/generated/mapping.gen.js';
import { UtcDate } from './utc-date.js';

export interface TransformContext {
  /** ISO 3166-1 alpha-2 region for phone numbers without a country code (the source's setting). */
  defaultRegion?: string;
}

export type Transform<Options> = (value: unknown, options: Options, ctx: TransformContext) => unknown;

export type TransformOptions<Name extends TransformName> = NonNullable<TransformCall[Name]>;

/** A value a transform could not handle; the message is the reason, quoting the value. */
export class TransformError extends Error {
  override name = 'TransformError';
}

export function isEmpty(value: unknown): value is null | undefined | '' {
  return value === null || value === undefined || (typeof value === 'string' && value.trim() === '');
}

/** The value as it goes into a message: quoted, and cut short so one bad cell cannot flood a log. */
export function quote(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return `'${text.length > 80 ? `${text.slice(0, 79)}…` : text}'`;
}

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  // CSV gives text, JSON APIs give numbers and booleans for the same fields.
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new TransformError(`${quote(value)} is not a text value`);
}

/** Wraps a transform of text: empty input gives undefined, numbers and booleans are read as text. */
function textual<Options>(run: (text: string, options: Options, ctx: TransformContext) => unknown): Transform<Options> {
  return (value, options, ctx) => (isEmpty(value) ? undefined : run(text(value), options, ctx));
}

const emailPattern =
  /^[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+(?:\.[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+)*@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?\.)+(?:\p{L}{2,}|xn--[a-z0-9-]+)$/u;

function emailAddress(input: string): string {
  const address = input.trim().toLowerCase();
  if (!emailPattern.test(address)) throw new TransformError(`${quote(input)} is not an email address`);
  return address;
}

// Parsing against a UtcDate reads wall-clock text as UTC, whatever the process's time zone.
const utcReference = new UtcDate(0);
const isoDate = /^\d{4}-\d{2}-\d{2}$/;
// An offset at the end of an ISO timestamp's time part (a date alone ends in '-dd', which is no offset).
const isoOffset = /[T ]\d.*(?:Z|[+-]\d{2}(?::?\d{2})?)$/i;

function parsed(date: Date): Date | undefined {
  // date-fns reads 'yyyy' as one to four digits, so '1.2.24' would be the year 24.
  return isValid(date) && date.getUTCFullYear() >= 1000 ? date : undefined;
}

/** Whether a date-fns format carries its own zone or instant (X, x, t, T outside quoted text). */
function formatHasZone(format: string): boolean {
  return /[XxtT]/.test(format.replace(/'[^']*'/g, ''));
}

function offsetMinutes(timezone: string): number {
  if (timezone === 'UTC') return 0;
  const [hours, minutes] = timezone.slice(1).split(':').map(Number);
  return (timezone.startsWith('-') ? -1 : 1) * (hours * 60 + minutes);
}

const decimalPatterns = {
  '.': /^[+-]?(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d+)?$/,
  ',': /^[+-]?(?:\d+|\d{1,3}(?:\.\d{3})+)(?:,\d+)?$/,
};

// Honorifics go before a name is split; 'M.' needs its dot, since a bare 'M' is an initial.
const honorific = /^(?:dr|prof|mr|mrs|ms|mme|herr|frau)\.?$|^m\.$/i;
const particles = new Set(['van', 'von', 'der', 'den', 'de', 'da', 'di', 'du', 'del', 'la', 'le', 'ten', 'ter']);

function nameWords(input: string): string[] {
  const words = input.split(/\s+/).filter(Boolean);
  while (words.length && honorific.test(words[0])) words.shift();
  return words;
}

function splitFullName(input: string): { given?: string; family?: string } {
  const joined = (words: string[]) => words.join(' ') || undefined;
  const comma = input.indexOf(',');
  if (comma >= 0) return { family: joined(nameWords(input.slice(0, comma))), given: joined(nameWords(input.slice(comma + 1))) };
  const words = nameWords(input);
  if (words.length <= 1) return { family: words[0] };
  // Particles before the last word belong to the family name; the first word always stays the given name.
  let start = words.length - 1;
  while (start > 1 && particles.has(words[start - 1].toLowerCase())) start--;
  return { given: joined(words.slice(0, start)), family: joined(words.slice(start)) };
}

export const transforms: { [Name in TransformName]: Transform<TransformOptions<Name>> } = {
  trim: textual((input) => input.trim()),
  lower_case: textual((input) => input.toLowerCase()),
  upper_case: textual((input) => input.toUpperCase()),
  normalise_text: textual((input) => input.normalize('NFKC').replace(/\s+/g, ' ').trim()),
  email: textual(emailAddress),

  phone: textual((input, options, ctx) => {
    const region = options.default_region ?? ctx.defaultRegion?.toUpperCase();
    if (region !== undefined && !isSupportedCountry(region)) throw new TransformError(`'${region}' is not a known phone region`);
    const number = parsePhoneNumberFromString(input, region);
    if (!number?.isValid()) {
      throw new TransformError(`${quote(input)} is not a valid phone number (${region ? `region ${region}` : 'no default region'})`);
    }
    return number.number;
  }),

  parse_date: textual((input, options) => {
    const format = options.format ?? 'yyyy-MM-dd';
    const trimmed = input.trim();
    const date = options.format || isoDate.test(trimmed) ? parsed(parse(trimmed, format, utcReference)) : undefined;
    if (!date) throw new TransformError(`${quote(input)} is not a valid date (expected ${format})`);
    return date.toISOString().slice(0, 10);
  }),

  parse_timestamp: textual((input, options) => {
    const trimmed = input.trim();
    // OData v2 (SAP) writes times as /Date(milliseconds)/, optionally with an offset that does not change the instant.
    const odata = !options.format && /^\/Date\((-?\d+)([+-]\d{4})?\)\/$/.exec(trimmed);
    if (odata) return new Date(Number(odata[1])).toISOString();
    const date = parsed(options.format ? parse(trimmed, options.format, utcReference) : parseISO(trimmed, { in: (value) => new UtcDate(value) }));
    if (!date) throw new TransformError(`${quote(input)} is not a valid timestamp (expected ${options.format ?? 'ISO 8601'})`);
    const zoned = options.format ? formatHasZone(options.format) : isoOffset.test(trimmed);
    // Text without an offset is wall-clock time in the configured zone, read above as if UTC.
    return new Date(date.getTime() - (zoned ? 0 : offsetMinutes(options.timezone ?? 'UTC') * 60_000)).toISOString();
  }),

  decimal: (value, options) => {
    if (typeof value === 'number' && Number.isFinite(value)) return value;
    if (isEmpty(value)) return undefined;
    const separator = options.decimal_separator ?? '.';
    const input = text(value);
    const compact = input.replace(/\s/g, '');
    // Thousands separators must group by three, so '12,50' read with '.' is an error rather than 1250.
    if (!decimalPatterns[separator].test(compact)) {
      throw new TransformError(`${quote(input)} is not a decimal number (decimal separator '${separator}')`);
    }
    return Number(separator === '.' ? compact.replaceAll(',', '') : compact.replaceAll('.', '').replace(',', '.'));
  },

  split_full_name: textual((input, options) => splitFullName(input)[options.part]),

  map_values: textual((input, options) => {
    const key = input.trim().toLowerCase();
    const match = Object.keys(options.values).find((from) => from.trim().toLowerCase() === key);
    if (match !== undefined) return options.values[match];
    if (options.default !== undefined) return options.default;
    throw new TransformError(`${quote(input)} is not one of: ${Object.keys(options.values).join(', ')}`);
  }),

  domain_from_email: textual((input) => emailAddress(input).split('@')[1]),

  default: (value, options) => (isEmpty(value) ? options.value : value),

  empty_if: (value, options) => {
    if (isEmpty(value)) return undefined;
    const key = text(value).trim().toLowerCase();
    return options.values.some((placeholder) => String(placeholder).trim().toLowerCase() === key) ? undefined : value;
  },
};

function formatProblem(format: string): string | undefined {
  // A format that cannot read back its own output would reject every value.
  try {
    const sample = formatDate(new UtcDate(Date.UTC(2001, 1, 3, 4, 5, 6, 7)), format);
    if (isValid(parse(sample, format, utcReference))) return undefined;
    return `format '${format}' cannot be parsed`;
  } catch (error) {
    return `format '${format}' is not a date-fns format: ${(error as Error).message}`;
  }
}

/** Checks of transform options that their JSON Schema cannot express; each returns what is wrong, if anything. */
export const optionChecks: { [Name in TransformName]?: (options: TransformOptions<Name>) => string | undefined } = {
  phone: (options) =>
    options.default_region === undefined || isSupportedCountry(options.default_region)
      ? undefined
      : `default_region '${options.default_region}' is not a known phone region`,
  parse_date: (options) => (options.format === undefined ? undefined : formatProblem(options.format)),
  parse_timestamp: (options) => (options.format === undefined ? undefined : formatProblem(options.format)),
};
