/**
 * The Shopify connector: customers and orders from the Admin GraphQL API, incremental on `updatedAt`.
 * Each run asks for `updated_at:>='<cursor minus lookback>'` sorted by UPDATED_AT and follows
 * `endCursor`; what the lookback reads again is de-duplicated by id and updatedAt.
 */
import { fileURLToPath } from 'node:url';
import { ConnectorError, type CheckResult, type ConnectorContext, type PulledConnector, type RecordPage, type RejectedRecord, type SourceRecord, type StreamState } from '../kit/contract.js';
import { IdSweep } from '../kit/id-sweep.js';
import { IncrementalCursor } from '../kit/incremental.js';
import { paginate } from '../kit/paginate.js';
import type { ShopifyConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };
import { createShopifyGraphql, createShopifyHttp, legacyId, shopDomain, type ShopifyClientOptions } from './graphql.js';
import { shopifyStreams } from './streams.js';

const recordSchema = { type: 'object', required: ['id', 'updatedAt'], properties: { id: { type: 'string' }, updatedAt: { type: 'string', format: 'date-time' } } };

interface Connection {
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  nodes: Record<string, unknown>[];
}

/** Shopify's search syntax wants a quoted ISO timestamp, to the second. */
const searchTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export function createShopifyConnector(options: ShopifyClientOptions = {}): PulledConnector<ShopifyConfig> {
  const selected = (config: ShopifyConfig) => shopifyStreams.filter((stream) => !config.streams || config.streams.includes(stream.name));

  // https://shopify.dev/docs/api/admin-graphql/2025-01/queries/shop
  async function check(config: ShopifyConfig, ctx: ConnectorContext): Promise<CheckResult> {
    try {
      const client = createShopifyGraphql(createShopifyHttp(config, { ...options, log: ctx.log }), options);
      const data = await client.query<{ shop: { name: string; myshopifyDomain: string } }>('{ shop { name myshopifyDomain } }');
      return { ok: true, message: `Connected to the Shopify store ${data.shop.name} (${data.shop.myshopifyDomain})` };
    } catch (error) {
      if (error instanceof ConnectorError && error.kind !== 'system') return { ok: false, message: error.message };
      throw error;
    }
  }

  async function* read(name: string, state: StreamState | undefined, config: ShopifyConfig, ctx: ConnectorContext): AsyncGenerator<RecordPage> {
    const stream = selected(config).find((candidate) => candidate.name === name);
    if (!stream) throw new ConnectorError(`The Shopify source ${ctx.source} has no stream '${name}'`, 'config');
    const client = createShopifyGraphql(createShopifyHttp(config, { ...options, log: ctx.log }), { ...options, log: ctx.log });
    const cursor = new IncrementalCursor(state, { windowMs: (config.lookback_seconds ?? 300) * 1000 });
    const sweep = stream.idsQuery === undefined ? undefined : { idsQuery: stream.idsQuery, ids: new IdSweep(state, config.deletion_sweep_hours ?? 24, `shopify ${name}`) };
    const checkpoint = () => ({ ...cursor.state(), ...sweep?.ids.checkpoint() });
    /** The stream's connection in a response: its nodes are there whenever the query succeeded. */
    const connectionIn = <T extends { nodes?: unknown }>(data: Record<string, T | undefined>): T => {
      const connection = data[stream.connection];
      if (!connection || !Array.isArray(connection.nodes)) throw new ConnectorError(`shopify: the ${stream.connection} connection is missing from the response`, 'system');
      return connection;
    };
    const from = cursor.from();
    const search = from ? `updated_at:>='${searchTime(from.ms)}'` : null;
    ctx.log.info({ shop: shopDomain(config.shop), stream: name, search }, 'reading Shopify stream');
    let done = 0;
    const pages = paginate<Record<string, unknown>, { after: string | null }>({
      connector: 'shopify',
      first: { after: null },
      fetch: async ({ after }) => {
        const connection = connectionIn(await client.query<Record<string, Connection>>(stream.query, { first: config.page_size ?? 100, after, query: search }));
        const { hasNextPage, endCursor } = connection.pageInfo;
        return { items: connection.nodes, next: hasNextPage && endCursor ? { after: endCursor } : undefined };
      },
    });
    for await (const page of pages) {
      const records: SourceRecord[] = [];
      const rejected: RejectedRecord[] = [];
      for (const node of page.items) {
        const id = legacyId(node?.id);
        if (id === undefined) {
          rejected.push({ reason: `no Shopify GID in 'id' (${JSON.stringify(node?.id) ?? 'missing'})`, field: 'id', payload: node });
        } else if (!cursor.valid(node.updatedAt)) {
          rejected.push({ externalId: id, field: 'updatedAt', reason: `'updatedAt' is not a timestamp (${JSON.stringify(node.updatedAt) ?? 'missing'})`, payload: node });
        } else if (cursor.accept(id, node.updatedAt, node)) {
          records.push({ externalId: id, data: node });
        }
      }
      done += records.length;
      yield { records, ...(rejected.length ? { rejected } : {}), state: checkpoint(), progress: { done } };
    }
    if (!sweep) return;
    // Last, when due, the ids of every customer, 250 (the most Shopify gives) per request.
    const listIds = async (afterId: number, first: number) => {
      const { nodes } = connectionIn(await client.query<Record<string, { nodes: { id?: unknown }[] }>>(sweep.idsQuery, { first, query: `id:>=${afterId + 1}` }));
      const ids = nodes.map((node) => Number(legacyId(node?.id)));
      const bad = nodes.find((_, index) => !Number.isSafeInteger(ids[index]));
      if (bad) throw new ConnectorError(`shopify: a deletion sweep got an id that is not a Shopify GID (${JSON.stringify(bad?.id) ?? 'missing'})`, 'system');
      return ids;
    };
    yield* sweep.ids.pages(listIds, 250, checkpoint, { done });
  }

  return {
    kind: 'pulled',
    name: 'shopify',
    configSchema,
    defaultMappingPath: fileURLToPath(new URL('./mapping.yaml', import.meta.url)),
    streams: (config) => selected(config).map((stream) => ({ name: stream.name, recordSchema, primaryKey: ['id'], cursorField: 'updatedAt' })),
    check,
    read,
  };
}

export const connector = createShopifyConnector();
