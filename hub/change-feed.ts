/**
 * The change feed as clients see it: pages of the change log shaped like the API's resources, and its retention.
 * `GET /v1/changes` and webhook deliveries both read through here, so a change looks the same on either path.
 */
import type { Pool } from './db/database.js';
import { HubError } from './errors.js';
import * as sql from './api-sql.js';

/**
 * How long the change log keeps a change. A consumer that falls further behind gets 410 with the oldest valid
 * cursor and re-exports. Overridable with HUB_CHANGE_RETENTION_DAYS.
 */
export const CHANGE_RETENTION_DAYS = Number(process.env.HUB_CHANGE_RETENTION_DAYS ?? 30);

export interface ChangeResource {
  position: number;
  golden_id: string;
  kind: 'created' | 'updated' | 'merged' | 'split' | 'retired';
  changed: string[];
  detail: Record<string, unknown>;
  cause: 'run' | 'decision' | 'api';
  cause_id: string | null;
  actor: string;
  created_at: Date;
  customer: { id: string; attributes: Record<string, unknown>; created_at: Date; updated_at: Date } | null;
}

interface ChangeRow {
  pruned_through: string;
  position: string | null;
  golden_id: string;
  kind: ChangeResource['kind'];
  changed: string[];
  detail: Record<string, unknown>;
  cause: ChangeResource['cause'];
  cause_id: string | null;
  actor: string;
  created_at: Date;
  customer_data: Record<string, unknown> | null;
  customer_created_at: Date | null;
  customer_updated_at: Date | null;
}

export class CursorExpiredError extends Error {
  constructor(readonly oldestAfter: number) {
    super(`Changes up to position ${oldestAfter} were pruned.`);
  }
}

/** The changes after `after`; throws CursorExpiredError when some of them were pruned. */
export async function readChanges(pool: Pool, after: number, limit: number): Promise<ChangeResource[]> {
  const { rows } = await pool.query<ChangeRow>(sql.changesPage(after, limit));
  const horizon = Number(rows[0].pruned_through);
  if (after < horizon) throw new CursorExpiredError(horizon);
  return rows
    .filter((row) => row.position !== null)
    .map((row) => ({
      position: Number(row.position),
      golden_id: row.golden_id,
      kind: row.kind,
      changed: row.changed,
      detail: row.detail,
      cause: row.cause,
      cause_id: row.cause_id,
      actor: row.actor,
      created_at: row.created_at,
      customer: row.customer_data ? { id: row.golden_id, attributes: row.customer_data, created_at: row.customer_created_at!, updated_at: row.customer_updated_at! } : null,
    }));
}

export function cursorExpired(error: CursorExpiredError): HubError {
  return new HubError('HUB_ERR_CURSOR_EXPIRED', { oldest: error.oldestAfter, days: CHANGE_RETENTION_DAYS }, { oldest_after: error.oldestAfter });
}

/** Deletes changes older than the retention (never one an active webhook subscription has yet to deliver). */
export async function pruneChangeLog(pool: Pool, retentionDays = CHANGE_RETENTION_DAYS): Promise<{ prunedThrough: number; deleted: number }> {
  const { rows } = await pool.query<{ pruned_through: string; deleted: number }>(sql.pruneChangeLog(retentionDays));
  return { prunedThrough: Number(rows[0].pruned_through), deleted: rows[0].deleted };
}
