/**
 * Faulty sources through the hub's sync path: the declarative REST connector against a local HTTP server that
 * answers slowly, trickles, throttles or fails for ever, cuts its JSON short, pages in a circle or never has a last
 * page. Each run ends within its source's limits with an error naming the source, the stream and the reason; the
 * pages stored before the fault stay stored with their checkpoint, and the next run resumes from it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../hub/config.js';
import type { SourceLimits } from '../openapi/generated/hub-config.gen.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startTestHub, syncNow, type TestHub } from './helpers/hub.js';

type Fault = (request: { page: number; cursor: string | null }, response: ServerResponse) => boolean;

/** Two people per full page, each with a change time that moves the stream's cursor. */
const person = (scenario: string, n: number, padding = 400) => ({ id: `${scenario}-${n}`, email: `${scenario}-${n}@example.com`, updated_at: new Date(Date.UTC(2025, 0, 1, 0, 0, n)).toISOString(), padding: 'x'.repeat(padding) });
/** The records of the endless source are large, so that holding its pages would show in the heap. */
const ENDLESS_PADDING = 50_000;
const json = (response: ServerResponse, body: unknown, status = 200, headers: Record<string, string> = {}) => {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
};

/**
 * Each scenario serves its first page well (page 1, or the first request of a cursor walk), then its fault, until
 * it is healed. `requests` keeps what each scenario was asked, for the resume checks.
 */
const faults: Record<string, Fault> = {
  // Never answers within the request timeout.
  slow: (_request, response) => (setTimeout(() => json(response, []), 5000).unref(), true),
  // Headers at once, then one byte at a time: a socket that is never idle, an answer that never ends.
  trickle: (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.write('[');
    const drip = setInterval(() => (response.destroyed ? clearInterval(drip) : response.write(' ')), 50);
    drip.unref();
    return true;
  },
  throttled: (_request, response) => (json(response, { error: 'rate limited' }, 429, { 'retry-after': '0' }), true),
  broken: (_request, response) => (json(response, { error: 'internal' }, 500), true),
  truncated: (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify([person('truncated', 3), person('truncated', 4)]).slice(0, 300));
    return true;
  },
  // The same next cursor again and again.
  'cursor-loop': ({ cursor }, response) => (json(response, { items: [person('cursor-loop', 3)], next: cursor }), true),
  // Always a full page and a next one: every page new, no last page.
  endless: ({ page }, response) => (json(response, [person('endless', 2 * page - 1, ENDLESS_PADDING), person('endless', 2 * page, ENDLESS_PADDING)]), true),
  huge: (_request, response) => (json(response, Array.from({ length: 20 }, (_, i) => person('huge', 10 + i))), true),
  // Throttled with a long Retry-After: the run's time limit ends the wait.
  'over-time': (_request, response) => (json(response, { error: 'rate limited' }, 429, { 'retry-after': '120' }), true),
};

const limitsOf: Record<string, SourceLimits> = {
  slow: { request_timeout_seconds: 0.3, max_retries: 1 },
  trickle: { request_timeout_seconds: 0.5, max_retries: 1 },
  throttled: { max_retries: 3 },
  broken: { max_retries: 2 },
  truncated: { max_retries: 1 },
  'cursor-loop': {},
  endless: { max_pages_per_run: 40 },
  huge: { max_response_mb: 0.004 },
  'over-time': { max_run_minutes: 0.05 },
};

describe('faulty sources', () => {
  let dir: string;
  let db: TestDatabase;
  let hub: TestHub;
  let server: Server;
  const healed = new Set<string>();
  const requests: Record<string, { page: number; cursor: string | null; since: string | null }[]> = {};
  /** Heap in use (after a full collection) when the endless source is asked for page 20 and page 40 (after the warm-up). */
  const heapAtPage = new Map<number, number>();
  let gc: (() => void) | undefined;

  function handle(incoming: IncomingMessage, response: ServerResponse): void {
    const url = new URL(incoming.url ?? '/', 'http://localhost');
    const scenario = url.pathname.split('/')[1];
    const page = Number(url.searchParams.get('page') ?? 1);
    const cursor = url.searchParams.get('cursor');
    const since = url.searchParams.get('updated_since');
    (requests[scenario] ??= []).push({ page, cursor, since });
    if (scenario === 'endless' && (page === 20 || page === 40) && gc) {
      gc();
      heapAtPage.set(page, process.memoryUsage().heapUsed);
    }
    const cursorWalk = scenario === 'cursor-loop';
    const first = cursorWalk ? cursor === null : page === 1;
    if (healed.has(scenario)) return json(response, cursorWalk ? { items: [], next: null } : []);
    if (first && since === null) return json(response, cursorWalk ? { items: [person(scenario, 1), person(scenario, 2)], next: 'again' } : [person(scenario, 1), person(scenario, 2)]);
    faults[scenario]({ page, cursor }, response);
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hub-faulty-sources-'));
    server = createServer(handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    await writeFile(join(dir, 'people.yaml'), 'streams:\n  people:\n    fields:\n      - { target: observed_at, from: updated_at, transforms: [parse_timestamp] }\n      - { target: person.email, from: email, transforms: [email] }\n');
    const sources = [];
    for (const scenario of Object.keys(faults)) {
      const pagination = scenario === 'cursor-loop' ? { type: 'cursor', cursor_param: 'cursor', cursor_path: 'next', page_size: 2 } : { type: 'page_number', page_size: 2 };
      const definition = {
        name: scenario,
        base_url: `${base}/${scenario}`,
        streams: [
          {
            name: 'people',
            path: '/people',
            primary_key: ['id'],
            ...(scenario === 'cursor-loop' ? { record_selector: 'items' } : {}),
            pagination,
            incremental: { cursor_fields: [{ field: 'updated_at' }], request_param: 'updated_since' },
          },
        ],
      };
      await writeFile(join(dir, `${scenario}.yaml`), JSON.stringify(definition));
      sources.push({ name: scenario, connector: 'rest', mapping: 'people.yaml', limits: limitsOf[scenario], config: { definition: join(dir, `${scenario}.yaml`) } });
    }
    db = await createTestDatabase();
    hub = await startTestHub(db, undefined, checkConfig({ sources }, join(dir, 'hub.config.yaml')));
  }, 60_000);
  afterAll(async () => {
    await hub?.stop();
    await db?.drop();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  const stored = async (source: string) =>
    (await db.pool.query<{ external_id: string }>('select external_id from raw_record where source = $1 order by id', [source])).rows.map((row) => row.external_id);
  const checkpoint = async (source: string) => (await db.pool.query<{ state: { cursor?: string } }>('select state from stream_state where source = $1', [source])).rows[0]?.state;

  /** Syncs a faulty source: the run fails in time with its reason; the first page and its checkpoint are kept; after the fault is healed the next run resumes. */
  async function failsAndResumes(scenario: string, reason: RegExp, withinMs: number, firstPage = [`${scenario}-1`, `${scenario}-2`]) {
    const started = Date.now();
    const run = await syncNow(hub, scenario);
    const took = Date.now() - started;
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(new RegExp(`^source '${scenario}', stream 'people': `));
    expect(run.error).toMatch(reason);
    expect(took).toBeLessThan(withinMs);
    expect((await stored(scenario)).slice(0, firstPage.length)).toEqual(firstPage);
    const kept = await checkpoint(scenario);
    expect(kept?.cursor).toBe(person(scenario, firstPage.length).updated_at);

    healed.add(scenario);
    const before = requests[scenario].length;
    const next = await syncNow(hub, scenario);
    expect(next).toMatchObject({ status: 'succeeded', error: null, created: 0 });
    // The next run asks from the kept cursor, not from the beginning.
    expect(Date.parse(requests[scenario][before].since ?? '')).toBe(Date.parse(kept!.cursor!));
    return { run, requests: requests[scenario].slice(0, before) };
  }

  it('a source slower than the request timeout: bounded attempts, then a timeout error', async () => {
    const { requests: sent } = await failsAndResumes('slow', /GET \/slow\/people failed after 2 attempts \(last: timeout after 300 ms\)/, 5000);
    expect(sent.filter((request) => request.page === 2)).toHaveLength(2);
  }, 30_000);

  it('a source that trickles its answer byte by byte: the timeout covers the whole answer, not only a silent socket', async () => {
    await failsAndResumes('trickle', /failed after 2 attempts \(last: timeout after 500 ms\)/, 5000);
  }, 30_000);

  it('429 for ever: the configured retries, then an error naming the status', async () => {
    const { requests: sent } = await failsAndResumes('throttled', /failed after 4 attempts \(last: HTTP 429\)/, 5000);
    expect(sent.filter((request) => request.page === 2)).toHaveLength(4);
  }, 30_000);

  it('500 for ever: backoff, the configured retries, then an error naming the status', async () => {
    const { requests: sent } = await failsAndResumes('broken', /failed after 3 attempts \(last: HTTP 500\)/, 10_000);
    expect(sent.filter((request) => request.page === 2)).toHaveLength(3);
  }, 30_000);

  it('JSON cut short: retried, then an error that says the body is not valid JSON', async () => {
    await failsAndResumes('truncated', /failed after 2 attempts \(last: HTTP 200 with a body that is not valid JSON \(300 characters; cut short\?\)\)/, 10_000);
  }, 30_000);

  it('the same next cursor again and again: the loop is cut at the first repeat', async () => {
    const { requests: sent } = await failsAndResumes('cursor-loop', /page loop detected: page 3 asks for the same request as page 2/, 5000, ['cursor-loop-1', 'cursor-loop-2', 'cursor-loop-3']);
    expect(sent.map((request) => request.cursor)).toEqual([null, 'again']);
  }, 30_000);

  it('a source that always has another page: cut at max_pages_per_run, with memory flat in the number of pages', async () => {
    // A full collection before each reading, so the figures are what is held, not garbage not yet collected.
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
    const { run, requests: sent } = await failsAndResumes('endless', /more than 40 pages in one run \(limits\.max_pages_per_run\)/, 30_000, Array.from({ length: 80 }, (_, i) => `endless-${i + 1}`));
    // 40 pages stored, the 41st fetched and refused; nothing more was asked for.
    expect(sent.map((request) => request.page)).toEqual(Array.from({ length: 41 }, (_, i) => i + 1));
    expect(run).toMatchObject({ read: 80, created: 80 });
    // Pages 20 to 39 carried 40 records of 50 KB (2 MB as text): holding them would show; reading them in turn does not.
    const growth = heapAtPage.get(40)! - heapAtPage.get(20)!;
    expect(growth).toBeLessThan(1024 * 1024);
  }, 60_000);

  it('an answer larger than max_response_mb fails the run without reading it whole', async () => {
    await failsAndResumes('huge', /answered with more than 4194 bytes \(the source's limits\.max_response_mb\)/, 5000);
  }, 30_000);

  it('a run longer than max_run_minutes stops, even in the middle of a long Retry-After', async () => {
    const { requests: sent } = await failsAndResumes('over-time', /the run took longer than its limit of 0\.05 minutes \(limits\.max_run_minutes\) after 1 pages/, 10_000);
    // Retry-After asked for two minutes: the run ended at its three-second limit instead.
    expect(sent.filter((request) => request.page === 2)).toHaveLength(1);
  }, 30_000);
});
