/**
 * The Request Tracker REST2 client: the shared HTTP client under `<url>/REST/2.0`, signed in with an
 * auth token (`Authorization: token <token>`) or Basic auth; and the dates of TicketSQL, which RT reads
 * as wall-clock time in the user's time zone (RT::Date `unknown` format), never as UTC.
 * https://docs.bestpractical.com/rt/5.0.3/RT/REST2.html#Authentication-Methods
 * https://docs.bestpractical.com/rt/5.0.3/query_builder.html
 */
import type { Logger } from '../../hub/log.js';
import { ConnectorError } from '../kit/contract.js';
import { createHttpClient, type HttpClient } from '../kit/http.js';
import type { RtConfig } from './config.gen.js';

export interface RtClientOptions {
  /** Waits between retries; tests pass a fake. */
  sleep?: (ms: number) => Promise<void>;
  log?: Logger;
}

export const rtApiUrl = (config: RtConfig) => `${config.url.replace(/\/+$/, '')}/REST/2.0`;

export function createRtHttp(config: RtConfig, options: RtClientOptions = {}): HttpClient {
  const authorization = 'token' in config.auth
    ? `token ${config.auth.token}`
    : `Basic ${Buffer.from(`${config.auth.username}:${config.auth.password}`).toString('base64')}`;
  return createHttpClient({
    baseURL: rtApiUrl(config),
    headers: { Authorization: authorization, Accept: 'application/json' },
    connector: 'rt',
    sleep: options.sleep,
    log: options.log,
  });
}

const hourMs = 3_600_000;

/** `Intl` parts of an instant in `timeZone`; a config error for a zone name Node does not know. */
function wallParts(ms: number, timeZone: string): Record<string, string> {
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  } catch {
    throw new ConnectorError(`rt: 'timezone' is not an IANA time zone name: '${timeZone}'`, 'config');
  }
  return Object.fromEntries(format.formatToParts(ms).map((part) => [part.type, part.value]));
}

/** The instant as TicketSQL wants it: `YYYY-MM-DD HH:MM:SS` on the wall clock of `timeZone`. */
export function ticketSqlTime(ms: number, timeZone: string): string {
  const p = wallParts(ms, timeZone);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

function offsetMs(ms: number, timeZone: string): number {
  const p = wallParts(ms, timeZone);
  return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(ms / 1000) * 1000;
}

/**
 * The TicketSQL time for a lower bound: the wall clock of `ms`, or of an hour earlier when the clocks go
 * back within the hour after `ms`. That wall-clock hour happens twice and RT may read the later one,
 * which would skip an hour of changes; reading an hour more is only de-duplicated.
 */
export function ticketSqlLowerBound(ms: number, timeZone: string): string {
  return ticketSqlTime(offsetMs(ms + hourMs, timeZone) < offsetMs(ms, timeZone) ? ms - hourMs : ms, timeZone);
}
