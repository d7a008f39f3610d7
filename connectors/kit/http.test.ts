import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConnectorError } from './contract.js';
import { createHttpClient, parseRetryAfter, type HttpClientOptions } from './http.js';
import { LOOP_WINDOW, paginate, parseLinkHeader } from './paginate.js';

const base = 'https://api.example.test';

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

function client(overrides: Partial<HttpClientOptions> = {}) {
  const sleep = vi.fn(async (_ms: number) => {});
  return { sleep, http: createHttpClient({ baseURL: base, connector: 'acme', sleep, ...overrides }) };
}

async function failure(promise: Promise<unknown>): Promise<ConnectorError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ConnectorError);
  return error as ConnectorError;
}

describe('createHttpClient', () => {
  it('waits as long as Retry-After (seconds) asks after a 429, then returns the response', async () => {
    const scope = nock(base)
      .get('/v1/customers')
      .reply(429, 'slow down', { 'Retry-After': '7' })
      .get('/v1/customers')
      .reply(200, { customers: [{ id: 1 }] });
    const { http, sleep } = client();

    const response = await http.get<{ customers: { id: number }[] }>('/v1/customers');

    expect(response.data).toEqual({ customers: [{ id: 1 }] });
    expect(sleep.mock.calls.map(([ms]) => ms)).toEqual([7000]);
    expect(scope.isDone()).toBe(true);
  });

  it('honours Retry-After given as an HTTP date', async () => {
    const at = new Date(Date.now() + 5000).toUTCString();
    nock(base).get('/v1/x').reply(503, '', { 'Retry-After': at }).get('/v1/x').reply(200, 'ok');
    const { http, sleep } = client();

    await http.get('/v1/x');

    // The date has one-second resolution, so the wait is between 4 and 5 seconds.
    const waited = sleep.mock.calls[0][0];
    expect(waited).toBeGreaterThan(3000);
    expect(waited).toBeLessThanOrEqual(5000);
  });

  it('caps a long Retry-After at maxRetryWaitMs', async () => {
    nock(base).get('/v1/x').reply(429, '', { 'Retry-After': '3600' }).get('/v1/x').reply(200, 'ok');
    const { http, sleep } = client({ maxRetryWaitMs: 10_000 });

    await http.get('/v1/x');

    expect(sleep.mock.calls.map(([ms]) => ms)).toEqual([10_000]);
  });

  it('retries a 500 with jittered backoff, then returns the response', async () => {
    const scope = nock(base).post('/v1/search', { q: 'a' }).reply(500).post('/v1/search', { q: 'a' }).reply(200, { hits: 0 });
    const { http, sleep } = client();

    const response = await http.post('/v1/search', { q: 'a' });

    expect(response.status).toBe(200);
    expect(sleep).toHaveBeenCalledTimes(1);
    expect(sleep.mock.calls[0][0]).toBeGreaterThanOrEqual(500);
    expect(sleep.mock.calls[0][0]).toBeLessThanOrEqual(1000);
    expect(scope.isDone()).toBe(true);
  });

  it('backs off exponentially and throws a transient error naming connector, method, path and status when retries run out', async () => {
    const scope = nock(base).get('/v1/orders').query(true).times(4).reply(503, 'down');
    const { http, sleep } = client({ maxRetries: 3 });

    const error = await failure(http.get('/v1/orders', { params: { api_key: 'k3y-in-query', page: 2 } }));

    expect(error.kind).toBe('transient');
    expect(error.message).toBe('acme: GET /v1/orders failed after 4 attempts (last: HTTP 503)');
    expect(scope.isDone()).toBe(true);
    const waits = sleep.mock.calls.map(([ms]) => ms);
    expect(waits).toHaveLength(3);
    [1000, 2000, 4000].forEach((base, i) => {
      expect(waits[i]).toBeGreaterThanOrEqual(base / 2);
      expect(waits[i]).toBeLessThanOrEqual(base);
    });
  });

  it.each([401, 403])('throws a config error at once on %i, without retrying', async (status) => {
    // Two interceptors: the second still pending proves exactly one request was made.
    const scope = nock(base).get('/v1/me').times(2).reply(status, { error: 'invalid token' });
    const { http, sleep } = client();

    const error = await failure(http.get('/v1/me'));

    expect(error.kind).toBe('config');
    expect(error.message).toBe(`The credentials were refused by acme (HTTP ${status} on GET /v1/me)`);
    expect(scope.pendingMocks()).toHaveLength(1);
    expect(sleep).not.toHaveBeenCalled();
  });

  it('throws a config error with the status and a short body excerpt on other 4xx', async () => {
    const scope = nock(base).get('/v1/nope').times(2).reply(404, { error: 'Not Found', detail: 'x'.repeat(500) });
    const { http } = client();

    const error = await failure(http.get('/v1/nope'));

    expect(error.kind).toBe('config');
    expect(error.message).toMatch(/^acme: GET \/v1\/nope failed with HTTP 404: \{"error":"Not Found","detail":"x+…$/);
    expect(error.message.length).toBeLessThan(300);
    expect(scope.pendingMocks()).toHaveLength(1);
  });

  it('retries a request that timed out', async () => {
    // A generous timeout for the fast answer: a loaded CI machine must not time it out too.
    nock(base).get('/v1/slow').delay(3000).reply(200, 'late').get('/v1/slow').reply(200, 'fast');
    const { http, sleep } = client({ timeoutMs: 500 });

    const response = await http.get<string>('/v1/slow');

    expect(response.data).toBe('fast');
    expect(sleep).toHaveBeenCalledTimes(1);
  });

  it('reports timeouts when every attempt times out', async () => {
    nock(base).get('/v1/slow').times(2).delay(300).reply(200, 'late');
    const { http } = client({ timeoutMs: 50, maxRetries: 1 });

    const error = await failure(http.get('/v1/slow'));

    expect(error.kind).toBe('transient');
    expect(error.message).toBe('acme: GET /v1/slow failed after 2 attempts (last: timeout after 50 ms)');
  });

  it('retries network errors', async () => {
    // An Error instance: nock 14 crashes on a plain-object replyWithError.
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    nock(base).get('/v1/x').replyWithError(reset).get('/v1/x').reply(200, 'ok');
    const { http, sleep } = client();

    expect((await http.get('/v1/x')).data).toBe('ok');
    expect(sleep).toHaveBeenCalledTimes(1);
  });

  it('keeps credentials out of errors, even when the server echoes them', async () => {
    const token = 'sk_live_51Hsecret0123456789';
    const apiKey = 'ak-0f9e8d7c6b5a';
    nock(base)
      .get('/v1/customers')
      .query(true)
      .reply(400, (uri, _body) => `bad request ${uri} with Authorization: Bearer ${token}`)
      .get('/v2/customers')
      .query(true)
      .times(2)
      .reply(502);
    const { http } = client({ headers: { Authorization: `Bearer ${token}` }, maxRetries: 1 });

    const rejected = await failure(http.get(`/v1/customers?api_key=${apiKey}&limit=5`));
    const exhausted = await failure(http.get('/v2/customers', { params: { consumer_secret: apiKey } }));

    for (const error of [rejected, exhausted]) {
      const everything = JSON.stringify({ ...error, message: error.message, stack: error.stack, cause: error.cause });
      expect(everything).not.toContain(token);
      expect(everything).not.toContain(apiKey);
    }
    expect(rejected.message).toBe(
      'acme: GET /v1/customers failed with HTTP 400: bad request /v1/customers?api_key=[redacted]&limit=5 with Authorization: [redacted]',
    );
    expect(exhausted.message).toBe('acme: GET /v2/customers failed after 2 attempts (last: HTTP 502)');
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, and ignores what it cannot read', () => {
    expect(parseRetryAfter('120')).toBe(120_000);
    expect(parseRetryAfter('1.5')).toBe(1500);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT')).toBe(0);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('parseLinkHeader', () => {
  it('reads Shopify-style page_info links', () => {
    const header =
      '<https://shop.example.test/admin/api/2025-01/customers.json?limit=250&page_info=abc,def>; rel="previous", ' +
      '<https://shop.example.test/admin/api/2025-01/customers.json?limit=250&page_info=ghi>; rel="next"';
    expect(parseLinkHeader(header)).toEqual({
      previous: 'https://shop.example.test/admin/api/2025-01/customers.json?limit=250&page_info=abc,def',
      next: 'https://shop.example.test/admin/api/2025-01/customers.json?limit=250&page_info=ghi',
    });
  });

  it('reads several relations, unquoted rel values and extra parameters', () => {
    const header = '</items?page=3>; rel="next last"; title="end", </items?page=1>;rel=first';
    expect(parseLinkHeader(header)).toEqual({ next: '/items?page=3', last: '/items?page=3', first: '/items?page=1' });
  });

  it('returns no links for a missing header', () => {
    expect(parseLinkHeader(undefined)).toEqual({});
    expect(parseLinkHeader('')).toEqual({});
  });
});

describe('paginate', () => {
  it('follows Link rel="next" until there is none', async () => {
    nock(base)
      .get('/v1/items')
      .reply(200, [1, 2], { Link: `<${base}/v1/items?page_info=p2>; rel="next"` })
      .get('/v1/items')
      .query({ page_info: 'p2' })
      .reply(200, [3], { Link: `<${base}/v1/items>; rel="previous"` });
    const { http } = client();

    const pages = [];
    for await (const page of paginate({
      connector: 'acme',
      first: '/v1/items',
      fetch: async (url: string) => {
        const response = await http.get<number[]>(url);
        return { items: response.data, next: parseLinkHeader(response.headers.link).next };
      },
    })) {
      pages.push({ number: page.number, request: page.request, items: page.items });
    }

    expect(pages).toEqual([
      { number: 1, request: '/v1/items', items: [1, 2] },
      { number: 2, request: `${base}/v1/items?page_info=p2`, items: [3] },
    ]);
  });

  it('fails with a system error when a next request repeats an earlier one', async () => {
    const cursors: Record<string, string | undefined> = { a: 'b', b: 'c', c: 'b' };
    const seen: string[] = [];
    const walk = async () => {
      for await (const page of paginate({
        connector: 'acme',
        first: { cursor: 'a' },
        fetch: async (request: { cursor: string }) => {
          const next = cursors[request.cursor];
          return { items: [request.cursor], next: next ? { cursor: next } : undefined };
        },
      })) {
        seen.push(...page.items);
      }
    };

    const error = await failure(walk());

    expect(error.kind).toBe('system');
    expect(error.message).toBe('acme: page loop detected: page 4 asks for the same request as page 2');
    expect(seen).toEqual(['a', 'b', 'c']);
  });

  it('remembers the last LOOP_WINDOW requests only: a longer loop is left to the page limit of the run', async () => {
    // Requests 0, 1, …, LOOP_WINDOW, then 0 again (forgotten by then), then LOOP_WINDOW again (remembered).
    const order = [...Array.from({ length: LOOP_WINDOW + 1 }, (_, i) => i), 0, LOOP_WINDOW];
    let fetched = 0;
    const walk = async () => {
      for await (const _page of paginate({ connector: 'acme', first: 0, fetch: async () => ({ items: [], next: order[++fetched] }) }));
    };

    const error = await failure(walk());

    expect(error.message).toBe(`acme: page loop detected: page ${LOOP_WINDOW + 3} asks for the same request as page ${LOOP_WINDOW + 1}`);
  });
});
