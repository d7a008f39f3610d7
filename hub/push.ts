/**
 * Records that arrive rather than being pulled: pushed sources (event ingestion, webhooks) and the
 * built-in `hub` source. Each delivery is stored like a page of a sync — raw, mapped, resolved, with
 * lineage — in one transaction.
 */
import { inTransaction } from './db/database.js';
import type { SourceRecord } from '../connectors/kit/contract.js';
import { ConnectorError } from '../connectors/kit/contract.js';
import { HUB_SOURCE, type ConsentRecord } from '../connectors/hub/connector.js';
import type { ChangeCause } from '../identity-resolution/change-log.js';
import { storePage, type Counts } from './ingest.js';
import { loadSourceMapping, sourceAndConnector, type Hub } from './sync.js';

export async function acceptRecords(hub: Hub, source: string, stream: string, records: SourceRecord[], cause: ChangeCause): Promise<Counts> {
  const { connector, source: config } = sourceAndConnector(hub.config, source);
  if (connector.kind !== 'pushed') throw new ConnectorError(`Source '${source}' is pulled by sync runs; it does not accept pushed records.`, 'config');
  if (!connector.streams(config.config).some((definition) => definition.name === stream)) {
    throw new ConnectorError(`Source '${source}' has no stream '${stream}'.`, 'config');
  }
  const target = await loadSourceMapping(hub.config, source);
  return inTransaction(hub.pool, (client) => storePage(client, { stream, runId: null, target, cause }, { records, state: {} }));
}

/** Records a consent decision taken in the hub (through the API) for one golden record. */
export async function recordConsent(hub: Hub, goldenId: string, status: ConsentRecord['email_marketing'], actor: string, at = new Date()): Promise<Counts> {
  const data: ConsentRecord = { golden_id: goldenId, email_marketing: status, at: at.toISOString(), actor };
  return acceptRecords(hub, HUB_SOURCE, 'consent', [{ externalId: goldenId, data }], { cause: 'api', actor });
}
