/**
 * The built-in `hub` source: data that originates in the hub (a consent change through the API, later a
 * steward's values). It goes the way of every source, raw → mapped → resolved, so it has lineage like
 * any other value. Each record names the golden record it is about (identifier scheme `hub:golden_id`).
 */
import { fileURLToPath } from 'node:url';
import type { PushedConnector } from '../kit/contract.js';
import type { HubSourceConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };

export const HUB_SOURCE = 'hub';

/** A consent decision taken in the hub for one golden record. */
export interface ConsentRecord extends Record<string, unknown> {
  golden_id: string;
  email_marketing: 'opt_in' | 'opt_out';
  /** ISO 8601 time of the decision. */
  at: string;
  actor: string;
}

export const hubConnector: PushedConnector<HubSourceConfig> = {
  kind: 'pushed',
  name: 'hub',
  configSchema,
  defaultMappingPath: fileURLToPath(new URL('./mapping.yaml', import.meta.url)),
  streams: () => [
    {
      name: 'consent',
      recordSchema: {
        type: 'object',
        required: ['golden_id', 'email_marketing', 'at', 'actor'],
        properties: {
          golden_id: { type: 'string' },
          email_marketing: { enum: ['opt_in', 'opt_out'] },
          at: { type: 'string', format: 'date-time' },
          actor: { type: 'string' },
        },
      },
      primaryKey: ['golden_id'],
    },
  ],
};
