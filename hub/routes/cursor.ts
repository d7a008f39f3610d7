/**
 * Opaque cursors: base64url of the sort key of the last item of a page. Clients pass them back as they
 * are; anything this API did not issue is a 400 that names the parameter.
 */
import { invalidInput } from '../errors.js';

export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** Decodes a cursor whose key has the given item types (digits: a string of decimal digits; text: any short string). */
export function decodeCursor(cursor: string, shape: readonly ('digits' | 'integer' | 'text')[], field = 'querystring/cursor'): (string | number)[] {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    key = undefined;
  }
  const valid =
    Array.isArray(key) &&
    key.length === shape.length &&
    key.every((item, index) =>
      shape[index] === 'digits'
        ? typeof item === 'string' && /^-?[0-9]{1,20}$/.test(item)
        : shape[index] === 'text'
          ? typeof item === 'string' && item.length <= 200
          : Number.isSafeInteger(item) && (item as number) >= 0,
    );
  if (!valid) throw invalidInput(field, 'is not a cursor this API returned');
  return key as (string | number)[];
}

/** Reads one row more than asked: its presence says whether there is a next page. */
export function page<T>(rows: T[], limit: number, keyOf: (last: T) => readonly (string | number)[]): { items: T[]; next_cursor: string | null } {
  const items = rows.slice(0, limit);
  return { items, next_cursor: rows.length > limit ? encodeCursor(keyOf(items[items.length - 1])) : null };
}
