/**
 * The answer of `GET /v1/customers/{id}` kept ready as a serialized document (table `customer_document`), so that
 * the route reads one row by primary key instead of assembling lineage, members and value on every request.
 *
 * Writes mark documents stale in their own transactions (hub/db/migrations/0013_customer_document.sql); a stale or
 * missing document is computed on the next read and stored, and the builder (`startDocumentBuilder`, in every API
 * process) rebuilds stale ones in batches meanwhile. A document is served only while it is of this hub's variant
 * (version, schemas, reporting currency) and its day-counting figures (recency, ages) still hold: it is never older
 * than the data it shows.
 */
import { createHash } from 'node:crypto';
import fastJson from 'fast-json-stringify';
import pkg from '../package.json' with { type: 'json' };
import type { Pool } from './db/database.js';
import type { Hub } from './sync.js';
import type { Logger } from './log.js';
import { customerValueOf, type Reporting, type ValueRow } from './customer-value.js';
import { sharedSchemas } from './routes/schemas.js';
import * as sql from './api-sql.js';

/** One row of customerResource: where the id leads, and the whole resource of the id asked for. */
export interface ResourceRow extends ValueRow {
  id: string;
  status: 'active' | 'merged' | 'retired' | 'erased';
  depth: number;
  data: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  lineage: Record<string, object[]>;
  alternates: Record<string, object[]>;
  source_records: object[];
}

/** The customer resource (schema `Customer`) of a row of customerResource. */
export function customerOf(row: ResourceRow, reporting: Reporting | undefined): object {
  return {
    id: row.id,
    status: row.status,
    attributes: row.data,
    lineage: row.lineage,
    alternates: row.alternates,
    source_records: row.source_records,
    value: customerValueOf(row, reporting),
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export interface DocumentFormat {
  /** The route's JSON for a customer resource (the same compiled serializer as Fastify's for schema `Customer`). */
  serialize(customer: object): string;
  /** Documents of another variant are not served (another hub version, other schemas, another reporting currency). */
  variant: string;
}

/** Compiled on first use: the schemas do not change while the hub runs, the reporting currency only shapes the variant. */
let compiled: { serialize: (customer: object) => string; schemasHash: string } | undefined;

/** The format of documents under this reporting currency (none: no reporting figures). */
export function documentFormat(reporting: Reporting | undefined): DocumentFormat {
  if (!compiled) {
    const schemas = sharedSchemas();
    compiled = {
      serialize: fastJson({ $ref: 'Customer#' }, { schema: Object.fromEntries(schemas.map((schema) => [schema.$id, schema as fastJson.Schema])) }),
      schemasHash: createHash('sha256').update(JSON.stringify(schemas)).digest('hex'),
    };
  }
  const variant = createHash('sha256')
    .update(JSON.stringify({ version: pkg.version, schemas: compiled.schemasHash, reporting: reporting ?? null }))
    .digest('hex')
    .slice(0, 16);
  return { serialize: compiled.serialize, variant };
}

export interface StoredDocument {
  /** The generation read before computing (0: no row yet). */
  generation: string;
  body: string | null;
}

/** The stored document of a golden id, with its body when it may be served. */
export async function readDocument(pool: Pool, id: string, format: DocumentFormat): Promise<StoredDocument> {
  const { rows } = await pool.query<StoredDocument>(sql.customerDocument(id, format.variant));
  return rows[0] ?? { generation: '0', body: null };
}

/** Stores documents computed after reading their generations (skipped where a write made them stale meanwhile). */
export async function storeDocuments(pool: Pool, documents: { id: string; generation: string; body: string | null; validUntil: Date | null }[], format: DocumentFormat): Promise<void> {
  for (const statement of sql.storeCustomerDocuments(documents, format.variant)) await pool.query(statement);
}

/** Rebuilds up to `limit` stale or expired documents; returns how many it looked at (0: none left). */
export async function buildStaleDocuments(pool: Pool, reporting: Reporting | undefined, limit = 200): Promise<number> {
  const format = documentFormat(reporting);
  const { rows: stale } = await pool.query<{ id: string; generation: string }>(sql.staleCustomerDocuments(limit));
  if (stale.length === 0) return 0;
  const { rows } = await pool.query<ResourceRow & { asked_id: string }>(sql.customerResources(stale.map((row) => row.id)));
  const resources = new Map(rows.map((row) => [row.asked_id, row]));
  await storeDocuments(
    pool,
    stale.map(({ id, generation }) => {
      const row = resources.get(id);
      // Only an active record has a document; merged, retired and erased ones answer from their current state.
      const active = row !== undefined && row.depth === 0 && row.status === 'active';
      return { id, generation, body: active ? format.serialize(customerOf(row, reporting)) : null, validUntil: active ? row.valid_until : null };
    }),
    format,
  );
  return stale.length;
}

/** How often an idle builder looks for stale documents. */
const BUILD_INTERVAL_MS = 2_000;

/**
 * Keeps documents current in the background: whenever writes made some stale, rebuilds them batch by batch. Several
 * processes may build at once (a document is stored only if no write came between). Returns the stop function.
 */
export function startDocumentBuilder(hub: Hub, log: Logger): () => Promise<void> {
  let stopped = false;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    await hub.pool.query(sql.staleOtherVariants(documentFormat(hub.config.reporting).variant)).catch((error: Error) => log.warn({ error: error.message }, 'could not mark documents of another hub version stale'));
    while (!stopped) {
      try {
        while (!stopped && (await buildStaleDocuments(hub.pool, hub.config.reporting)) > 0);
      } catch (error) {
        log.warn({ error: (error as Error).message }, 'building customer documents failed; retrying');
      }
      if (!stopped) await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, BUILD_INTERVAL_MS).unref();
      });
    }
  })();
  return async () => {
    stopped = true;
    wake?.();
    await loop;
  };
}
