/**
 * Records that arrive rather than being pulled: pushed sources (event ingestion, webhooks) and the
 * built-in `hub` source. Each delivery is stored like a page of a sync — raw, mapped, resolved, with
 * lineage — in one transaction; deliveries that arrive while one is being stored wait and are then stored
 * together (group commit), so that a burst costs a few transactions instead of one each. Two groups of a lane are
 * stored at once: resolution passes over unrelated records run side by side (identity-resolution/sql.ts lockForPass),
 * so PostgreSQL and Node work on one group while the other waits for a round trip.
 */
import { inTransaction, STORE_ATTEMPTS, type Pool } from './db/database.js';
import type { SourceRecord } from '../connectors/kit/contract.js';
import { ConnectorError } from '../connectors/kit/contract.js';
import { HUB_SOURCE, type ConsentRecord } from '../connectors/hub/connector.js';
import type { ChangeCause } from '../identity-resolution/change-log.js';
import { noCounts, storePage, type Counts, type RecordOutcome } from './ingest.js';
import { loadSourceMapping, sourceAndConnector, type Hub } from './sync.js';

interface Delivery {
  records: SourceRecord[];
  resolve(counts: Counts): void;
  reject(error: unknown): void;
}

/** Deliveries waiting for one source, stream and cause; the groups of them in their transactions and their external ids. */
interface Lane {
  waiting: Delivery[];
  storing: number;
  storingIds: Set<string>;
}

/** At most this many records are stored in one group (a page of a sync is about as large). */
const MAX_GROUP_RECORDS = 1_000;
/** Groups of one lane in their transactions at once (four were slower: smaller groups, more transactions for the same CPU). */
const GROUPS_AT_ONCE = 2;

const lanes = new WeakMap<Pool, Map<string, Lane>>();

/**
 * The next group: deliveries in arrival order, up to MAX_GROUP_RECORDS, stopping before a delivery that repeats an
 * external id of the group or of a group being stored (a page keeps only the last record of an id; two deliveries of
 * one record are stored one after the other, as they arrived). Empty when the first waiting delivery must wait.
 */
function nextGroup(waiting: Delivery[], storingIds: ReadonlySet<string>): Delivery[] {
  const ids = new Set<string>();
  let records = 0;
  let taken = 0;
  for (const delivery of waiting) {
    if (delivery.records.some((record) => storingIds.has(record.externalId))) break;
    if (taken > 0 && (records + delivery.records.length > MAX_GROUP_RECORDS || delivery.records.some((record) => ids.has(record.externalId)))) break;
    for (const record of delivery.records) ids.add(record.externalId);
    records += delivery.records.length;
    taken++;
  }
  return waiting.splice(0, taken);
}

/** One delivery's share of its group's outcomes. */
function countsOf(records: SourceRecord[], outcomes: Map<string, RecordOutcome>): Counts {
  const counts = noCounts();
  const seen = new Set<string>();
  counts.read = records.length;
  for (const record of records) {
    // A record repeated within a delivery is counted once, as storePage counts it.
    if (seen.has(record.externalId)) {
      counts.unchanged++;
      continue;
    }
    seen.add(record.externalId);
    const outcome = outcomes.get(record.externalId) ?? 'quarantined';
    if (outcome === 'skipped') counts.skipped = (counts.skipped ?? 0) + 1;
    else counts[outcome]++;
  }
  return counts;
}

/** Starts the next groups of a lane while fewer than GROUPS_AT_ONCE are stored; each one done starts the next. */
function storeGroups(hub: Hub, lane: Lane, source: string, stream: string, cause: ChangeCause): void {
  while (lane.storing < GROUPS_AT_ONCE && lane.waiting.length > 0) {
    const group = nextGroup(lane.waiting, lane.storingIds);
    if (group.length === 0) return;
    const records = group.flatMap((delivery) => delivery.records);
    lane.storing++;
    for (const record of records) lane.storingIds.add(record.externalId);
    void storeGroup(hub, group, records, source, stream, cause).finally(() => {
      lane.storing--;
      for (const record of records) lane.storingIds.delete(record.externalId);
      storeGroups(hub, lane, source, stream, cause);
    });
  }
}

/**
 * Stores one group in one transaction. A group that waits for a lock of resolution holds the rows it stored, so a
 * resolver that needs one of them closes a cycle; PostgreSQL then fails one of the two with a deadlock and that group
 * is stored again from the start.
 */
async function storeGroup(hub: Hub, group: Delivery[], records: SourceRecord[], source: string, stream: string, cause: ChangeCause): Promise<void> {
  try {
    const target = await loadSourceMapping(hub.config, source);
    const { outcomes } = await inTransaction(hub.pool, (client) => storePage(client, { stream, runId: null, target, cause }, { records, state: {} }), { attempts: STORE_ATTEMPTS });
    for (const delivery of group) delivery.resolve(countsOf(delivery.records, outcomes));
  } catch (error) {
    for (const delivery of group) delivery.reject(error);
  }
}

/** Stores pushed records (raw, mapped, resolved) and answers what became of them, once they are committed. */
export async function acceptRecords(hub: Hub, source: string, stream: string, records: SourceRecord[], cause: ChangeCause): Promise<Counts> {
  const { connector, source: config } = sourceAndConnector(hub.config, source);
  if (connector.kind !== 'pushed') throw new ConnectorError(`Source '${source}' is pulled by sync runs; it does not accept pushed records.`, 'config');
  if (!connector.streams(config.config).some((definition) => definition.name === stream)) {
    throw new ConnectorError(`Source '${source}' has no stream '${stream}'.`, 'config');
  }
  let byLane = lanes.get(hub.pool);
  if (!byLane) lanes.set(hub.pool, (byLane = new Map()));
  const key = JSON.stringify([source, stream, cause.cause, cause.causeId ?? null, cause.actor]);
  let lane = byLane.get(key);
  if (!lane) byLane.set(key, (lane = { waiting: [], storing: 0, storingIds: new Set() }));
  const counts = new Promise<Counts>((resolve, reject) => lane.waiting.push({ records, resolve, reject }));
  storeGroups(hub, lane, source, stream, cause);
  return counts;
}

/** Records a consent decision taken in the hub (through the API) for one golden record. */
export async function recordConsent(hub: Hub, goldenId: string, status: ConsentRecord['email_marketing'], actor: string, at = new Date()): Promise<Counts> {
  const data: ConsentRecord = { golden_id: goldenId, email_marketing: status, at: at.toISOString(), actor };
  return acceptRecords(hub, HUB_SOURCE, 'consent', [{ externalId: goldenId, data }], { cause: 'api', actor });
}
