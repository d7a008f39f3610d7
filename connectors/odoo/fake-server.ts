/**
 * An Odoo server for tests (nock on POST /jsonrpc), answering authenticate, fields_get, search_read and search from an
 * array of records that a test changes between runs (archived ones, `active: false`, only with `active_test: false`).
 * It evaluates the domains the connector sends and sends write_date in whole seconds, as every version does, but
 * compares it as `comparison` says: with the stored microseconds before 18.4 (`> '10:15:00'` matches 10:15:00.48, `= '10:15:00'` does not), in whole seconds from 18.4 on
 * (odoo/odoo#203626). No real Odoo runs here: it is not in Debian's packages.
 */
import nock from 'nock';
import { utcMs } from '../kit/incremental.js';

/** A record as Odoo stores it: write_date in microseconds since the epoch (PostgreSQL's now() of its transaction). */
export interface StoredRecord {
  id: number;
  writtenUs: number;
  /** The other fields search_read sends. */
  [field: string]: unknown;
}

/** A naive UTC `YYYY-MM-DD HH:MM:SS` as microseconds since the epoch. */
export const microsecondsOf = (text: string) => utcMs(text) * 1000;

/** Starts the fake at `url`; the count of search_read calls it answered and the arguments of each search call. */
export function fakeOdoo(url: string, records: StoredRecord[], comparison: 'microseconds' | 'whole seconds'): { searchRead: number; searches: unknown[][] } {
  const calls = { searchRead: 0, searches: [] as unknown[][] };
  const scale = (us: number) => (comparison === 'microseconds' ? us : Math.floor(us / 1_000_000));
  const compare = (stored: number, operator: string, value: unknown): boolean => {
    const [left, right] = [scale(stored), scale(microsecondsOf(String(value)))];
    const outcomes: Record<string, boolean> = { '=': left === right, '>': left > right, '>=': left >= right, '<': left < right, '<=': left <= right };
    if (!(operator in outcomes)) throw new Error(`fake Odoo: operator ${operator} on write_date`);
    return outcomes[operator];
  };
  const leaf = (record: StoredRecord, [field, operator, value]: unknown[]): boolean => {
    if (field === 'write_date') return compare(record.writtenUs, String(operator), value);
    if (field === 'id' && (operator === 'in' || operator === 'not in')) return (value as number[]).includes(record.id) === (operator === 'in');
    if (field === 'id' && operator === '>') return record.id > Number(value);
    throw new Error(`fake Odoo: term ${JSON.stringify([field, operator, value])}`);
  };
  // A domain in Polish notation: '|', '&' and '!' take the terms after them, the rest are ANDed.
  const matches = (record: StoredRecord, domain: unknown[]): boolean => {
    let at = 0;
    const term = (): boolean => {
      const next = domain[at++];
      if (next === '|' || next === '&') {
        const [left, right] = [term(), term()];
        return next === '|' ? left || right : left && right;
      }
      if (next === '!') return !term();
      return leaf(record, next as unknown[]);
    };
    let all = true;
    while (at < domain.length) all = term() && all;
    return all;
  };
  nock(url)
    .persist()
    .post('/jsonrpc')
    .reply(200, (_uri, body) => {
      const { id, params } = body as { id: number; params: { service: string; args: unknown[] } };
      const result = (value: unknown) => ({ jsonrpc: '2.0', id, result: value });
      if (params.service === 'common') return result(2);
      const [, , , , method, positional, kwargs] = params.args as [unknown, unknown, unknown, string, string, unknown[][], { limit: number; order: string; context?: { active_test?: boolean } }];
      if (method === 'fields_get') return result({});
      if (method !== 'search_read' && method !== 'search') throw new Error(`fake Odoo: method ${method}`);
      if (method === 'search') calls.searches.push([positional[0], kwargs]);
      else calls.searchRead++;
      const byDate = kwargs.order === 'write_date asc, id asc';
      if (!byDate && kwargs.order !== 'id asc') throw new Error(`fake Odoo: order ${kwargs.order}`);
      // As Odoo, archived records are left out unless the context says active_test: false.
      const found = records
        .filter((record) => (record.active !== false || kwargs.context?.active_test === false) && matches(record, positional[0]))
        .sort((a, b) => (byDate ? a.writtenUs - b.writtenUs : 0) || a.id - b.id)
        .slice(0, kwargs.limit);
      if (method === 'search') return result(found.map((record) => record.id));
      return result(found.map(({ writtenUs, ...fields }) => ({ ...fields, write_date: new Date(writtenUs / 1000).toISOString().slice(0, 19).replace('T', ' ') })));
    });
  return calls;
}
