/**
 * The HTTP client connectors share: axios with retries for what is worth retrying (429, 5xx,
 * network errors, timeouts), `Retry-After` honoured, and failures turned into `ConnectorError`s
 * of the right kind. Error messages never carry headers, query strings or credentials: the hub shows
 * them to users and writes them to logs.
 */
import { setTimeout as delay } from 'node:timers/promises';
import axios, { type AxiosRequestConfig, type AxiosResponse } from 'axios';
import type { Logger } from '../../hub/log.js';
import { ConnectorError } from './contract.js';
import { runLimits } from './run-limits.js';

export interface HttpClientOptions {
  baseURL: string;
  /** Sent with every request (credentials usually). Never copied into errors or logs. */
  headers?: Record<string, string>;
  /** Per attempt, until the last byte of the answer; default 30 000. A source's `limits` override it. */
  timeoutMs?: number;
  /** Retries after the first attempt; default 5. A source's `limits` override it. */
  maxRetries?: number;
  /** The largest answer read; default 64 MB. A source's `limits` override it. */
  maxResponseBytes?: number;
  /** Cap on one wait, whether backoff or `Retry-After`; default 60 000. */
  maxRetryWaitMs?: number;
  /** Connector name, for messages. */
  connector: string;
  /** Waits between attempts, until `signal` aborts; tests pass a fake so they don't wait. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Where retries are reported (warn level). */
  log?: Logger;
}

export interface HttpClient {
  request<T = unknown>(config: AxiosRequestConfig): Promise<AxiosResponse<T>>;
  get<T = unknown>(url: string, config?: AxiosRequestConfig): Promise<AxiosResponse<T>>;
  post<T = unknown>(url: string, data?: unknown, config?: AxiosRequestConfig): Promise<AxiosResponse<T>>;
}

// 408 and 425 ask the client to try again; every 5xx may be a passing outage.
const retryableStatus = (status: number) => status === 408 || status === 425 || status === 429 || status >= 500;
const firstBackoffMs = 1000;
const excerptLength = 200;
const defaultMaxResponseBytes = 64 * 1024 * 1024;

/** An answer labelled JSON that does not parse (cut short, most often): kept as text for the error message. */
class InvalidJsonBody {
  constructor(readonly text: string) {}
}

/**
 * Parses a JSON-labelled body, or marks it invalid. axios alone would hand over the unparsed text, and a connector
 * would then report "no list of records" instead of the broken answer.
 */
function parseJsonBody(data: unknown, headers: Record<string, unknown>): unknown {
  if (typeof data !== 'string' || data === '' || !/\bjson\b/i.test(String(headers['content-type'] ?? ''))) return data;
  try {
    return JSON.parse(data);
  } catch {
    return new InvalidJsonBody(data);
  }
}

export function createHttpClient(options: HttpClientOptions): HttpClient {
  const maxRetryWaitMs = options.maxRetryWaitMs ?? 60_000;
  const sleep = options.sleep ?? ((ms: number, signal?: AbortSignal) => delay(ms, undefined, { signal }).catch(() => undefined));
  const connector = options.connector;
  const instance = axios.create({
    baseURL: options.baseURL,
    headers: options.headers,
    // Every status comes back as a response, so the classification below is the only one.
    validateStatus: () => true,
    transformResponse: [parseJsonBody, ...[axios.defaults.transformResponse ?? []].flat()],
  });

  async function request<T>(config: AxiosRequestConfig): Promise<AxiosResponse<T>> {
    const where = `${(config.method ?? 'GET').toUpperCase()} ${pathOf(config, options.baseURL)}`;
    // Read per request: the limits belong to the run that sends it (connectors build one client per source).
    const limits = runLimits();
    const maxRetries = limits.maxRetries ?? options.maxRetries ?? 5;
    const timeoutMs = limits.requestTimeoutMs ?? options.timeoutMs ?? 30_000;
    const maxResponseBytes = limits.maxResponseBytes ?? options.maxResponseBytes ?? defaultMaxResponseBytes;
    const cancelled = () => new ConnectorError(`${connector}: ${where} was cancelled`, 'transient');
    for (let attempt = 1; ; attempt++) {
      let failure: string;
      let retryAfterMs: number | undefined;
      if (limits.signal?.aborted) throw cancelled();
      // axios's `timeout` only notices a silent socket; this deadline also ends an answer that trickles in.
      const deadline = new AbortController();
      const timer = setTimeout(() => deadline.abort(), timeoutMs);
      const stop = () => deadline.abort();
      limits.signal?.addEventListener('abort', stop, { once: true });
      try {
        const response = await instance.request<T>({ ...config, timeout: timeoutMs, maxContentLength: maxResponseBytes, signal: deadline.signal });
        const status = response.status;
        if (status === 401 || status === 403) {
          throw new ConnectorError(`The credentials were refused by ${connector} (HTTP ${status} on ${where})`, 'config');
        }
        if (status >= 400 && !retryableStatus(status)) {
          const excerpt = excerptOf(response.data, secretsOf(config, options.headers));
          throw new ConnectorError(`${connector}: ${where} failed with HTTP ${status}${excerpt ? `: ${excerpt}` : ''}`, 'config');
        }
        if (status < 400 && !(response.data instanceof InvalidJsonBody)) return response;
        // A broken answer may be a connection cut short: worth another attempt, like a 5xx.
        failure = response.data instanceof InvalidJsonBody ? `HTTP ${status} with a body that is not valid JSON (${response.data.text.length} characters; cut short?)` : `HTTP ${status}`;
        retryAfterMs = parseRetryAfter(response.headers['retry-after']);
      } catch (error) {
        if (error instanceof ConnectorError) throw error;
        // The deadline rejects with its abort reason, not an axios error; the run's signal or a caller's cancels.
        const timedOut = deadline.signal.aborted && !limits.signal?.aborted;
        if (!timedOut && (limits.signal?.aborted || axios.isCancel(error))) throw cancelled();
        // axios errors hold the request config, headers included, so they are never passed on as
        // `cause`: a logger serialising the cause would print the credentials.
        if (!timedOut && !axios.isAxiosError(error)) throw new ConnectorError(`${connector}: ${where} could not be sent`, 'system');
        if (axios.isAxiosError(error) && /maxContentLength/.test(error.message)) {
          throw new ConnectorError(`${connector}: ${where} answered with more than ${maxResponseBytes} bytes (the source's limits.max_response_mb)`, 'config');
        }
        const code = axios.isAxiosError(error) ? error.code : undefined;
        failure = timedOut || code === 'ECONNABORTED' || code === 'ETIMEDOUT' ? `timeout after ${timeoutMs} ms` : (code ?? 'network error');
      } finally {
        clearTimeout(timer);
        limits.signal?.removeEventListener('abort', stop);
      }
      if (attempt > maxRetries) {
        throw new ConnectorError(`${connector}: ${where} failed after ${attempt} attempts (last: ${failure})`, 'transient');
      }
      const waitMs = Math.min(maxRetryWaitMs, retryAfterMs ?? backoffMs(attempt));
      options.log?.warn({ connector, request: where, failure, attempt, waitMs }, 'request failed, retrying');
      await sleep(waitMs, limits.signal);
    }
  }

  return {
    request,
    get: (url, config) => request({ ...config, method: 'GET', url }),
    post: (url, data, config) => request({ ...config, method: 'POST', url, data }),
  };
}

/**
 * `Retry-After` as milliseconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3). Undefined when
 * absent or unreadable, so the caller falls back to its own backoff.
 */
export function parseRetryAfter(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Exponential backoff with equal jitter, so that many syncs throttled together don't return together. */
function backoffMs(attempt: number): number {
  const base = firstBackoffMs * 2 ** (attempt - 1);
  return base / 2 + Math.random() * (base / 2);
}

/** The URL path only: query strings often carry API keys (WooCommerce, Freshdesk). */
function pathOf(config: AxiosRequestConfig, baseURL: string): string {
  try {
    const url = config.url ?? '';
    // As axios combines them: a relative URL is appended to the base URL's path, not resolved against it.
    if (/^[a-z][a-z\d+\-.]*:\/\//i.test(url)) return new URL(url).pathname;
    const base = config.baseURL ?? baseURL;
    return new URL(url ? `${base.replace(/\/+$/, '')}/${url.replace(/^\/+/, '')}` : base).pathname;
  } catch {
    return '(invalid URL)';
  }
}

/** A one-line start of the error body, redacted before it is cut so no secret is left half shown. */
function excerptOf(data: unknown, secrets: string[]): string {
  if (data === undefined || data === null) return '';
  const text = data instanceof InvalidJsonBody ? data.text : typeof data === 'string' ? data : Buffer.isBuffer(data) ? data.toString('utf8') : (JSON.stringify(data) ?? '');
  const flat = secrets.reduce((result, secret) => result.split(secret).join('[redacted]'), text).replace(/\s+/g, ' ').trim();
  return flat.length > excerptLength ? `${flat.slice(0, excerptLength)}…` : flat;
}

const sensitiveName = /auth|token|key|secret|passw|signature|cookie|session/i;

/**
 * Values that must not appear in a message even if the server echoes them in its error body:
 * credential-like headers and query parameters, and basic-auth passwords.
 */
function secretsOf(config: AxiosRequestConfig, defaultHeaders: Record<string, string> | undefined): string[] {
  const secrets: string[] = [];
  const add = (name: string, value: unknown) => {
    if (!sensitiveName.test(name) || value === undefined || value === null) return;
    const text = String(value);
    // `Bearer <token>` or `Basic <base64>`: the token alone may be echoed too.
    secrets.push(text, ...text.split(/\s+/).slice(1));
  };
  for (const [name, value] of Object.entries({ ...defaultHeaders, ...(config.headers as Record<string, unknown> | undefined) })) add(name, value);
  for (const [name, value] of Object.entries((config.params as Record<string, unknown> | undefined) ?? {})) add(name, value);
  try {
    for (const [name, value] of new URL(config.url ?? '', 'http://placeholder').searchParams) add(name, value);
  } catch {
    // An unparseable URL has no query to scrub.
  }
  if (config.auth?.password) secrets.push(config.auth.password);
  // Short values would blank out ordinary words of the body.
  return secrets.filter((secret) => secret.length >= 4).sort((a, b) => b.length - a.length);
}
