/**
 * Re-queue of one quarantined record after a fix: its kept raw record is mapped again with the source's current
 * mapping and resolved, the way `hub remap` does for a whole source (mapRawRecords closes the entry when it maps).
 */
import { inTransaction } from './db/database.js';
import { MappingConfigError } from '../mapping/engine.js';
import { HubError } from './errors.js';
import { mapRawRecords } from './ingest.js';
import { resolveAndRefreshValue } from './customer-value.js';
import { loadSourceMapping, UnknownSourceError, type Hub } from './sync.js';
import * as sql from './sql.js';

export type RequeueOutcome = { status: 'accepted' } | { status: 'still_quarantined'; reason: string };

/** The mapping as it is now on disk; a source gone from the configuration or a broken mapping file is the caller's to fix. */
async function currentMapping(hub: Hub, source: string) {
  try {
    return await loadSourceMapping(hub.config, source);
  } catch (error) {
    if (error instanceof UnknownSourceError) throw new HubError('HUB_ERR_CONFLICT', { reason: `Source '${source}' is no longer in the configuration; its records cannot be mapped.` });
    if (error instanceof MappingConfigError) throw new HubError('HUB_ERR_CONFLICT', { reason: `The mapping of source '${source}' is not valid: ${error.message}` });
    throw error;
  }
}

export async function requeueQuarantined(hub: Hub, entryId: number, actor: string): Promise<RequeueOutcome> {
  return inTransaction(hub.pool, async (client) => {
    const openEntry = async () => {
      const entry = (await client.query<{ source: string; raw_record_id: string | null; resolved_at: Date | null }>(sql.quarantineEntry(entryId))).rows[0];
      if (!entry) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'quarantine entry', id: entryId });
      if (entry.resolved_at) throw new HubError('HUB_ERR_CONFLICT', { reason: `Quarantine entry ${entryId} is resolved already.` });
      // Input that could not even be read was never kept as a record: only the source can send it again (a sync).
      if (entry.raw_record_id === null) throw new HubError('HUB_ERR_CONFLICT', { reason: `Quarantine entry ${entryId} holds input that could not be read; fix it at the source and sync again.` });
      return { source: entry.source, rawRecordId: Number(entry.raw_record_id) };
    };
    const { source, rawRecordId } = await openEntry();
    const target = await currentMapping(hub, source);
    // The record first, then its entries: the order of a sync page (its upsert, then mapRawRecords), so the two
    // wait for each other instead of deadlocking; under the lock the entry is read again, a requeue may have won.
    await client.query(sql.lockRawRecord(rawRecordId));
    await openEntry();
    const { touched } = await mapRawRecords(client, [rawRecordId], target, null);
    await resolveAndRefreshValue(client, touched, { cause: 'api', causeId: `quarantine:${entryId}`, actor });
    const { rows: open } = await client.query<{ reason: string }>(sql.openQuarantineOfRecord(rawRecordId));
    return open.length ? { status: 'still_quarantined', reason: open[0].reason } : { status: 'accepted' };
  });
}
