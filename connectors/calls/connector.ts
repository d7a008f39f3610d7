/**
 * The calls connector: call-centre and telephony logs pushed by the phone system, one signed JSON record per
 * finished call, through the webhook receiver (hub/routes/receive.ts) into the stream `calls`. Its mapping
 * (mapping.yaml) is also the one to give a csv source that reads the system's CSV export with `stream: calls`.
 */
import { fileURLToPath } from 'node:url';
import type { PushedConnector } from '../kit/contract.js';
import type { ReceiverSettings } from '../webhook/connector.js';
import type { CallsConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };

export const CALLS_STREAM = 'calls';

export const callRecordSchema = {
  type: 'object',
  required: ['call_id', 'caller_number', 'started_at'],
  properties: {
    call_id: { type: ['string', 'number'] },
    caller_number: { type: 'string', description: "The customer's number: the caller of an inbound call, the called party of an outbound one." },
    agent: { type: 'string' },
    direction: { type: 'string', enum: ['inbound', 'outbound', 'in', 'out'] },
    started_at: { type: 'string', format: 'date-time' },
    duration_seconds: { type: ['integer', 'string'] },
    outcome: { type: 'string' },
  },
} as const;

export const connector: PushedConnector<CallsConfig> = {
  kind: 'pushed',
  name: 'calls',
  configSchema,
  defaultMappingPath: fileURLToPath(new URL('./mapping.yaml', import.meta.url)),
  streams: () => [{ name: CALLS_STREAM, recordSchema: callRecordSchema, primaryKey: ['call_id'], cursorField: 'started_at' }],
};

export function callsReceiverSettings(config: CallsConfig): ReceiverSettings {
  return { secret: config.secret, streams: [CALLS_STREAM], idField: 'call_id', toleranceSeconds: config.tolerance_seconds ?? 300 };
}
