/**
 * The webhook connector: a pushed source for systems that push one JSON record per request, signed, into a
 * named stream (POST /v1/receive/{source}/{stream}, hub/routes/receive.ts). The record is kept as received,
 * keyed by its `id_field`.
 */
import { fileURLToPath } from 'node:url';
import type { PushedConnector } from '../kit/contract.js';
import type { WebhookConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };

export const connector: PushedConnector<WebhookConfig> = {
  kind: 'pushed',
  name: 'webhook',
  configSchema,
  defaultMappingPath: fileURLToPath(new URL('./mapping.yaml', import.meta.url)),
  streams: (config) => config.streams.map((name) => ({ name, recordSchema: { type: 'object' }, primaryKey: [config.id_field ?? 'id'] })),
};

/** What the receiver needs of a source whose records arrive signed: the webhook connector's and the calls connector's settings. */
export interface ReceiverSettings {
  secret: string;
  streams: string[];
  idField: string;
  toleranceSeconds: number;
}

export function receiverSettings(config: WebhookConfig): ReceiverSettings {
  return { secret: config.secret, streams: config.streams, idField: config.id_field ?? 'id', toleranceSeconds: config.tolerance_seconds ?? 300 };
}

