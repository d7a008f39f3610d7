/** Helpers for connector tests: read a whole stream, load a JSON fixture, record requests nock saw. */
import { readFileSync } from 'node:fs';
import { silentLogger } from '../../hub/log.js';
import type { ConnectorContext, PulledConnector, RecordPage, SourceRecord, StreamState } from './contract.js';

export const testContext: ConnectorContext = { source: 'test-source', log: silentLogger, baseDir: '.' };

/**
 * Every page of a stream. Their states show each remembered version (`seen`) by its cursor value alone, without the
 * fingerprint of its content (kit/incremental.test.ts tests those), so that tests can spell states out.
 */
export async function readStream<Config>(connector: PulledConnector<Config>, stream: string, config: Config, state?: StreamState): Promise<RecordPage[]> {
  const pages: RecordPage[] = [];
  for await (const page of connector.read(stream, state, config, testContext)) pages.push({ ...page, state: withoutFingerprints(page.state) });
  return pages;
}

/** A whole stream's records and its last state as the hub saves it, fingerprints included: to resume from as a hub would. */
export async function readAll<Config>(connector: PulledConnector<Config>, stream: string, config: Config, state?: StreamState): Promise<{ records: SourceRecord[]; state: StreamState }> {
  const records: SourceRecord[] = [];
  let last = state ?? {};
  for await (const page of connector.read(stream, state, config, testContext)) {
    records.push(...page.records);
    last = page.state;
  }
  return { records, state: last };
}

export function withoutFingerprints(state: StreamState): StreamState {
  if (!state.seen || typeof state.seen !== 'object') return state;
  const seen = Object.entries(state.seen as Record<string, unknown>).map(([id, version]) => [id, Array.isArray(version) ? version[0] : version]);
  return { ...state, seen: Object.fromEntries(seen) };
}

/** A fixture next to the test: `fixture(import.meta.url, 'fixtures/x.json')`. */
export function fixture<T = any>(base: string, path: string): T {
  const text = readFileSync(new URL(path, base), 'utf8');
  return (path.endsWith('.json') ? JSON.parse(text) : text) as T;
}

/** Captures request bodies in a nock body matcher, so a test asserts each one exactly. */
export function bodies(): { seen: unknown[]; match: (body: unknown) => boolean } {
  const seen: unknown[] = [];
  return { seen, match: (body) => (seen.push(body), true) };
}

/** A fake sleep: records each wait, waits for nothing. */
export function fakeSleep(): { waits: number[]; sleep: (ms: number) => Promise<void> } {
  const waits: number[] = [];
  return { waits, sleep: async (ms) => void waits.push(ms) };
}
