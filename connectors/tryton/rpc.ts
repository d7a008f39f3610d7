/**
 * Tryton's JSON-RPC: `POST /<database>/` with `{id, method, params}`. `common.db.login(login,
 * {password}, language)` returns `[user_id, session]`, sent afterwards as
 * `Authorization: Session base64(login:user_id:session)`. Model methods are `model.<name>.<method>` with
 * the context as the last parameter. Datetimes, dates and decimals travel as `{"__class__": …}` objects.
 * https://docs.tryton.org/projects/server/en/6.0/ (server), encoding as in trytond/protocols/jsonrpc.py of the 6.0 server
 */
import type { Logger } from '../../hub/log.js';
import { ConnectorError } from '../kit/contract.js';
import { createHttpClient, type HttpClient } from '../kit/http.js';
import type { TrytonConfig } from './config.gen.js';

export interface TrytonClientOptions {
  sleep?: (ms: number) => Promise<void>;
  log?: Logger;
}

export interface TrytonRpc {
  call<T>(method: string, params: unknown[]): Promise<T>;
  login(): Promise<number>;
}

export function createTrytonHttp(config: TrytonConfig, options: TrytonClientOptions = {}): HttpClient {
  return createHttpClient({
    baseURL: `${config.url.replace(/\/+$/, '')}/${encodeURIComponent(config.database)}`,
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    connector: 'tryton',
    sleep: options.sleep,
    log: options.log,
  });
}

export function createTrytonRpc(http: HttpClient, config: TrytonConfig): TrytonRpc {
  let nextId = 1;
  let authorization: string | undefined;
  let userId: number | undefined;

  async function post<T>(method: string, params: unknown[]): Promise<T> {
    const response = await http.post<{ result?: T; error?: [string, unknown] }>('/', { id: nextId++, method, params }, authorization ? { headers: { Authorization: authorization } } : {});
    const body = response.data;
    if (body?.error) {
      const [name, detail] = body.error;
      const text = Array.isArray(detail) ? detail.filter((part) => typeof part === 'string' && part).join(': ') : String(detail ?? '');
      if (/LoginException|AccessError|NotLogged/.test(name)) throw new ConnectorError(`The credentials were refused by tryton (${name}${text ? `: ${text}` : ''})`, 'config');
      throw new ConnectorError(`tryton: ${method} failed: ${name}${text ? `: ${text}` : ''}`.slice(0, 400), 'config');
    }
    if (!body || !('result' in body)) throw new ConnectorError(`tryton: ${method} returned no result`, 'system');
    return body.result as T;
  }

  async function login(): Promise<number> {
    if (userId !== undefined) return userId;
    // A wrong password is answered with HTTP 401, which the HTTP client turns into a config error.
    const result = await post<[number, string] | null>('common.db.login', [config.login, { password: config.password }, 'en']);
    if (!Array.isArray(result)) throw new ConnectorError(`The credentials were refused by tryton (login ${config.login} on database ${config.database})`, 'config');
    userId = result[0];
    authorization = `Session ${Buffer.from(`${config.login}:${result[0]}:${result[1]}`).toString('base64')}`;
    return userId;
  }

  return {
    login,
    async call<T>(method: string, params: unknown[]) {
      await login();
      return post<T>(method, params);
    },
  };
}

/** Tryton's JSON objects as plain JSON: datetimes as ISO UTC text (microseconds kept), dates as YYYY-MM-DD, decimals as text. */
export function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (!value || typeof value !== 'object') return value;
  const object = value as Record<string, unknown>;
  const pad = (n: unknown, size = 2) => String(n).padStart(size, '0');
  switch (object.__class__) {
    case 'datetime':
      return `${pad(object.year, 4)}-${pad(object.month)}-${pad(object.day)}T${pad(object.hour)}:${pad(object.minute)}:${pad(object.second)}.${pad(object.microsecond ?? 0, 6)}Z`;
    case 'date':
      return `${pad(object.year, 4)}-${pad(object.month)}-${pad(object.day)}`;
    case 'Decimal':
      return object.decimal;
    case 'timedelta':
      return object.seconds;
    case 'bytes':
      return object.base64;
  }
  return Object.fromEntries(Object.entries(object).map(([key, child]) => [key, plain(child)]));
}

/** ISO text (as `plain` writes it) back into Tryton's datetime object, to the microsecond. */
export function trytonDatetime(iso: string): Record<string, unknown> {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z?$/.exec(iso);
  if (!match) throw new ConnectorError(`tryton: '${iso}' is not a cursor this connector wrote`, 'system');
  const [, year, month, day, hour, minute, second, fraction = '0'] = match;
  return {
    __class__: 'datetime',
    year: Number(year),
    month: Number(month),
    day: Number(day),
    hour: Number(hour),
    minute: Number(minute),
    second: Number(second),
    microsecond: Number(fraction.padEnd(6, '0')),
  };
}
