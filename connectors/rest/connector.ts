/**
 * The declarative REST connector: a YAML definition (definition.schema.json) says where the API is,
 * how to sign in, which streams it has, how they page and increment; this module only runs it. It
 * speaks plain JSON REST and OData v2/v4 ($filter on the change timestamp, $top/$skip, __next and
 * @odata.nextLink). Incremental streams ask for `>=` the cursor (minus a lookback) and skip records
 * already emitted with the same key and cursor value.
 */
import { fileURLToPath } from 'node:url';
import { ConnectorError, type CheckResult, type ConnectorContext, type PulledConnector, type RecordPage, type RejectedRecord, type SourceRecord, type StreamDefinition, type StreamState } from '../kit/contract.js';
import { createHttpClient, type HttpClient } from '../kit/http.js';
import { IncrementalCursor } from '../kit/incremental.js';
import { paginate, parseLinkHeader } from '../kit/paginate.js';
import { createSigner, type Signer } from './auth.js';
import type { RestConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };
import { fillTemplates, loadDefinition, type Protocol, type RestDefinition, type RestStream } from './definition.js';
import { cursorFilter, cursorMs, cursorOrder } from './odata.js';

export interface RestConnectorOptions {
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

interface PageRequest {
  /** A path under base_url, or an absolute next link. */
  url: string;
  params: Record<string, unknown>;
}

/** A dotted path into JSON; '' is the value itself; a key that itself has dots (`@odata.nextLink`) is read first. */
export function readPath(value: unknown, path: string | undefined): unknown {
  if (!path) return value;
  if (typeof value === 'object' && value !== null && Object.hasOwn(value, path)) return (value as Record<string, unknown>)[path];
  let node = value;
  for (const key of path.split('.')) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

const defaultSelector: Record<Protocol, string> = { rest: '', odata_v2: 'd.results', odata_v4: 'value' };
const iso = (ms: number) => new Date(ms).toISOString();

function formatParam(ms: number, format: 'iso' | 'date' | 'epoch_seconds' | undefined): string {
  if (format === 'date') return iso(ms).slice(0, 10);
  if (format === 'epoch_seconds') return String(Math.floor(ms / 1000));
  return iso(ms).replace(/\.000Z$/, 'Z');
}

export function createRestConnector(options: RestConnectorOptions = {}): PulledConnector<RestConfig> {
  function prepare(config: RestConfig, ctx: ConnectorContext) {
    const { definition: raw, path } = loadDefinition(config.definition, ctx.baseDir);
    const definition = fillTemplates(raw, config.secrets ?? {}, path);
    const connector = `rest:${definition.name ?? 'definition'}`;
    const signer = createSigner(definition.auth, { connector, sleep: options.sleep, log: ctx.log, now: options.now });
    const http = createHttpClient({
      baseURL: definition.base_url.replace(/\/+$/, ''),
      headers: { Accept: 'application/json', ...definition.headers },
      connector,
      sleep: options.sleep,
      log: ctx.log,
    });
    return { definition, connector, signer, http };
  }

  async function check(config: RestConfig, ctx: ConnectorContext): Promise<CheckResult> {
    try {
      const { definition, connector, signer, http } = prepare(config, ctx);
      const stream = definition.streams[0];
      const protocol = definition.protocol ?? 'rest';
      const walker = new StreamReader(definition, stream, http, signer, connector, undefined);
      const { items } = await walker.fetch(walker.first());
      return { ok: true, message: `${connector}: read ${items.length} record(s) from the first page of '${stream.name}' (${protocol}, ${definition.streams.length} stream(s))` };
    } catch (error) {
      if (error instanceof ConnectorError && error.kind !== 'system') return { ok: false, message: error.message };
      throw error;
    }
  }

  async function* read(name: string, state: StreamState | undefined, config: RestConfig, ctx: ConnectorContext): AsyncGenerator<RecordPage> {
    const { definition, connector, signer, http } = prepare(config, ctx);
    const stream = definition.streams.find((candidate) => candidate.name === name);
    if (!stream) throw new ConnectorError(`The source ${ctx.source} (${connector}) has no stream '${name}'; it has: ${definition.streams.map((s) => s.name).join(', ')}`, 'config');
    yield* new StreamReader(definition, stream, http, signer, connector, state).pages();
  }

  return {
    kind: 'pulled',
    name: 'rest',
    configSchema,
    defaultMappingPath: fileURLToPath(new URL('./mapping.yaml', import.meta.url)),
    // The hub does not pass its directory here, so a relative definition path is read from the working directory.
    streams: (config) =>
      loadDefinition(config.definition, process.cwd()).definition.streams.map(
        (stream): StreamDefinition => ({
          name: stream.name,
          recordSchema: { type: 'object' },
          primaryKey: stream.primary_key,
          ...(stream.incremental ? { cursorField: stream.incremental.cursor_fields[0].field } : {}),
        }),
      ),
    check,
    read,
  };
}

/** Reads one stream of a definition: builds each request, selects the records, checks and de-duplicates them. */
class StreamReader {
  private readonly protocol: Protocol;
  private readonly pageSize: number;
  private readonly cursor: IncrementalCursor | undefined;
  private readonly from: number | undefined;

  constructor(
    private readonly definition: RestDefinition,
    private readonly stream: RestStream,
    private readonly http: HttpClient,
    private readonly signer: Signer,
    private readonly connector: string,
    state: StreamState | undefined,
  ) {
    this.protocol = definition.protocol ?? 'rest';
    this.pageSize = stream.pagination?.page_size ?? 100;
    if (stream.incremental) {
      // Cursor values are kept as ISO text whatever the API writes, so the state reads the same for every API.
      this.cursor = new IncrementalCursor(state, { windowMs: (stream.incremental.lookback_seconds ?? 0) * 1000 });
      this.from = this.cursor.from()?.ms;
    }
  }

  first(): PageRequest {
    const { stream, protocol } = this;
    const params: Record<string, unknown> = { ...stream.params };
    const incremental = stream.incremental;
    if (incremental && protocol !== 'rest') {
      if (this.from !== undefined) {
        const filter = cursorFilter(protocol, incremental.cursor_fields, this.from);
        params.$filter = params.$filter ? `(${String(params.$filter)}) and (${filter})` : filter;
      }
      params.$orderby ??= cursorOrder(incremental.cursor_fields, stream.primary_key);
    } else if (incremental?.request_param && this.from !== undefined) {
      params[incremental.request_param] = formatParam(this.from, incremental.param_format);
    }
    const pagination = stream.pagination ?? { type: protocol === 'rest' ? 'none' : 'odata' };
    switch (pagination.type) {
      case 'page_number':
        params[pagination.page_param ?? 'page'] = pagination.start_page ?? 1;
        params[pagination.size_param ?? 'per_page'] = this.pageSize;
        break;
      case 'offset':
        params[pagination.offset_param ?? 'offset'] = 0;
        params[pagination.size_param ?? 'limit'] = this.pageSize;
        break;
      case 'odata':
        params.$top = this.pageSize;
        break;
      case 'cursor':
      case 'link_header':
        if (pagination.size_param) params[pagination.size_param] = this.pageSize;
        break;
    }
    return { url: stream.path, params };
  }

  async fetch(request: PageRequest): Promise<{ items: unknown[]; next?: PageRequest }> {
    const signed = await this.signer.sign();
    let response;
    try {
      response = await this.http.get<unknown>(request.url, { params: { ...request.params, ...signed.params }, headers: signed.headers });
    } catch (error) {
      // A refused token may have been revoked early: the next run fetches a new one.
      if (error instanceof ConnectorError && error.kind === 'config') this.signer.invalidate();
      throw error;
    }
    const body = response.data;
    const selector = this.stream.record_selector ?? defaultSelector[this.protocol];
    const list = readPath(body, selector);
    if (!Array.isArray(list)) {
      throw new ConnectorError(`${this.connector}: stream '${this.stream.name}': record_selector '${selector}' is not a list in the response of GET ${this.stream.path}`, 'config');
    }
    return { items: list, next: this.nextRequest(request, list, body, response.headers as Record<string, unknown>) };
  }

  private nextRequest(request: PageRequest, items: unknown[], body: unknown, headers: Record<string, unknown>): PageRequest | undefined {
    const pagination = this.stream.pagination ?? { type: this.protocol === 'rest' ? 'none' : 'odata' };
    const full = items.length >= this.pageSize;
    switch (pagination.type) {
      case 'none':
        return undefined;
      case 'page_number': {
        const param = pagination.page_param ?? 'page';
        return full ? { url: request.url, params: { ...request.params, [param]: Number(request.params[param]) + 1 } } : undefined;
      }
      case 'offset': {
        const param = pagination.offset_param ?? 'offset';
        return full ? { url: request.url, params: { ...request.params, [param]: Number(request.params[param]) + items.length } } : undefined;
      }
      case 'cursor': {
        const value = readPath(body, pagination.cursor_path);
        if (pagination.stop_path !== undefined && readPath(body, pagination.stop_path) === (pagination.stop_when ?? true)) return undefined;
        if (value === undefined || value === null || value === '') return undefined;
        return { url: request.url, params: { ...request.params, [pagination.cursor_param!]: value } };
      }
      case 'link_header': {
        const next = parseLinkHeader(typeof headers.link === 'string' ? headers.link : undefined).next;
        return next ? { url: next, params: {} } : undefined;
      }
      case 'odata': {
        const link = this.protocol === 'odata_v2' ? readPath(body, 'd.__next') : readPath(body, '@odata.nextLink');
        // Server-driven paging: the link carries the whole query ($skiptoken included).
        if (typeof link === 'string' && link) return { url: new URL(link, `${this.definition.base_url.replace(/\/+$/, '')}/`).toString(), params: {} };
        return full ? { url: request.url, params: { ...request.params, $skip: Number(request.params.$skip ?? 0) + items.length } } : undefined;
      }
    }
  }

  async *pages(): AsyncGenerator<RecordPage> {
    let done = 0;
    const walk = paginate<unknown, PageRequest>({ connector: this.connector, first: this.first(), fetch: (request) => this.fetch(request) });
    for await (const page of walk) {
      const records: SourceRecord[] = [];
      const rejected: RejectedRecord[] = [];
      for (const item of page.items) this.take(item, records, rejected);
      done += records.length;
      const state = this.cursor ? this.cursor.state() : { complete: page.next === undefined };
      yield { records, ...(rejected.length ? { rejected } : {}), state, progress: { done } };
    }
  }

  /** One item of a page: its records (several when `nested`), each checked for a key and a cursor. */
  private take(item: unknown, records: SourceRecord[], rejected: RejectedRecord[]): void {
    const { stream, cursor } = this;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      rejected.push({ reason: `stream '${stream.name}': a record is not a JSON object`, payload: item });
      return;
    }
    const parent = item as Record<string, unknown>;
    const fields = stream.incremental?.cursor_fields;
    const parentMs = fields ? cursorMs((path) => readPath(parent, path), fields) : undefined;
    let children: Record<string, unknown>[] = [parent];
    if (stream.nested) {
      const list = readPath(parent, stream.nested.path);
      const picked = Object.fromEntries((stream.nested.include_parent ?? []).map((field) => [field, readPath(parent, field)]));
      children = (Array.isArray(list) ? list : []).map((child) => ({ ...(child as Record<string, unknown>), _parent: picked }));
    }
    for (const data of children) {
      const key = stream.primary_key.map((field) => readPath(data, field));
      const missing = stream.primary_key.filter((_field, index) => key[index] === undefined || key[index] === null || key[index] === '');
      if (missing.length) {
        rejected.push({ field: missing[0], reason: `stream '${stream.name}': no value in the primary key field(s) ${missing.join(', ')}`, payload: data });
        continue;
      }
      const externalId = key.map(String).join('/');
      if (!cursor || parentMs === undefined) {
        records.push({ externalId, data });
        continue;
      }
      if (Number.isNaN(parentMs)) {
        const field = fields!.map((f) => f.field).join(', ');
        rejected.push({ externalId, field: fields![0].field, reason: `stream '${stream.name}': no readable change timestamp in ${field}`, payload: data });
        continue;
      }
      if (cursor.accept(externalId, iso(parentMs), data)) records.push({ externalId, data });
    }
  }
}

export const connector = createRestConnector();
