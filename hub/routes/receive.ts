/**
 * The webhook receiver: systems that push post one signed JSON record per request into a named stream of a
 * pushed source (connectors webhook and calls). The signature is verified over the raw body before anything is
 * parsed; a signature is taken once (replay protection), then the record goes through acceptRecords.
 */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import type { Hub } from '../sync.js';
import { acceptRecords } from '../push.js';
import { HubError, errorRef, invalidInput } from '../errors.js';
import { connector as webhook, receiverSettings, type ReceiverSettings } from '../../connectors/webhook/connector.js';
import { readField } from '../../connectors/kit/read-field.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verify } from '../../connectors/webhook/signature.js';
import { connector as calls, callsReceiverSettings } from '../../connectors/calls/connector.js';
import { noQuery } from './schemas.js';

/** One pushed record per request: this is a limit on one record, not a batch. */
export const MAX_RECEIVE_BYTES = 256 * 1024;

/** The connectors whose sources take signed records here, and how each names its receiver settings. */
const receivers: Record<string, (config: any) => ReceiverSettings> = {
  [webhook.name]: receiverSettings,
  [calls.name]: callsReceiverSettings,
};

const name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' } as const;

export const receivedSql = {
  /** Takes a signature once; no row back means it was already taken. */
  claimSignature: (source: string, signature: string, signedAt: Date) => ({
    text: 'insert into received_signature (source, signature, signed_at) values ($1, $2, $3) on conflict do nothing returning signature',
    values: [source, signature, signedAt],
  }),
  releaseSignature: (source: string, signature: string) => ({ text: 'delete from received_signature where source = $1 and signature = $2', values: [source, signature] }),
  /** Signatures whose timestamp left the widest window can no longer be replayed: the verification refuses them first. */
  forgetOldSignatures: (before: Date) => ({ text: 'delete from received_signature where signed_at < $1', values: [before] }),
};

export async function receiveRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;

  // The signature covers the bytes as sent: keep them, parse after verifying.
  app.addContentTypeParser(['application/json', 'text/plain'], { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  app.setErrorHandler((error: FastifyError) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') throw new HubError('HUB_ERR_PAYLOAD_TOO_LARGE', {}, { field: 'body', limit_bytes: MAX_RECEIVE_BYTES });
    throw error;
  });

  function settingsOf(sourceName: string): ReceiverSettings {
    const source = hub.config.sources.find((candidate) => candidate.name === sourceName);
    const settings = source && receivers[source.connector]?.(source.config);
    if (!settings) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'source receiving signed records', id: sourceName });
    return settings;
  }

  function unauthenticated(reason: string): HubError {
    return new HubError('HUB_ERR_SOURCE_UNAUTHENTICATED', { reason }, undefined, { 'www-authenticate': 'HMAC-SHA256 realm="customer-hub receive"' });
  }

  app.post<{ Params: { source: string; stream: string }; Body: Buffer }>(
    '/v1/receive/:source/:stream',
    {
      config: { scope: 'public' },
      bodyLimit: MAX_RECEIVE_BYTES,
      schema: {
        operationId: 'receiveRecord',
        tags: ['ingest'],
        summary: 'Receive one signed JSON record into a stream of a pushed source',
        description: `The body is one JSON object (at most 256 KB). Headers: \`X-Hub-Timestamp\` (unix seconds) and
\`X-Hub-Signature: sha256=<hex>\`, the HMAC-SHA256 of \`<timestamp>.<body>\` with the source's secret. A timestamp outside
the source's window is refused, and so is a signature seen before (a replay). The record's id field makes a repeat an update.`,
        security: [{ signature: [] }],
        params: { type: 'object', additionalProperties: false, required: ['source', 'stream'], properties: { source: name, stream: { type: 'string', pattern: '^[a-z][a-z0-9_]*$' } } },
        querystring: noQuery,
        response: {
          200: {
            description: 'The record was stored.',
            type: 'object',
            additionalProperties: false,
            required: ['external_id', 'status'],
            properties: { external_id: { type: 'string' }, status: { type: 'string', enum: ['created', 'updated', 'unchanged', 'quarantined'] } },
          },
          401: { description: 'Missing or wrong signature, or a timestamp outside the window (HUB_ERR_SOURCE_UNAUTHENTICATED).', ...errorRef },
          404: { description: 'No such source, or it does not take signed records, or no such stream (HUB_ERR_NOT_FOUND).', ...errorRef },
          409: { description: 'This signature was already received: a replay (HUB_ERR_CONFLICT).', ...errorRef },
          413: { description: 'The body is over 256 KB (HUB_ERR_PAYLOAD_TOO_LARGE).', ...errorRef },
          415: { description: 'The body is not application/json (HUB_ERR_UNSUPPORTED_MEDIA_TYPE).', ...errorRef },
        },
      },
    },
    async (request: FastifyRequest<{ Params: { source: string; stream: string }; Body: Buffer }>) => {
      const { source, stream } = request.params;
      const settings = settingsOf(source);
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const header = (key: string) => (typeof request.headers[key] === 'string' ? (request.headers[key] as string) : undefined);
      const checked = verify(settings.secret, { timestamp: header(TIMESTAMP_HEADER), signature: header(SIGNATURE_HEADER) }, body, settings.toleranceSeconds);
      if (!checked.ok) throw unauthenticated(checked.reason);
      if (!settings.streams.includes(stream)) throw new HubError('HUB_ERR_NOT_FOUND', { what: `stream of source ${source}`, id: stream });

      let data: unknown;
      try {
        data = JSON.parse(body.toString('utf8'));
      } catch (error) {
        throw new HubError('HUB_ERR_BAD_REQUEST', { reason: `The body is not valid JSON: ${(error as Error).message}` });
      }
      if (typeof data !== 'object' || data === null || Array.isArray(data)) throw invalidInput('body', 'must be a JSON object (one record)');
      const id = readField(data as Record<string, unknown>, settings.idField);
      if (!((typeof id === 'string' && id.trim() !== '') || (typeof id === 'number' && Number.isFinite(id)))) {
        throw invalidInput(`body/${settings.idField}`, 'is required: the record id (a non-empty string or a number)');
      }

      // Claimed before storing, released if storing fails, so that the sender's retry of the same request succeeds.
      const signedAt = new Date(checked.timestamp * 1000);
      await hub.pool.query(receivedSql.forgetOldSignatures(new Date(Date.now() - 2 * 3600 * 1000)));
      const { rowCount } = await hub.pool.query(receivedSql.claimSignature(source, checked.signature, signedAt));
      if (!rowCount) throw new HubError('HUB_ERR_CONFLICT', { reason: 'This signature was already received (a replay); sign each delivery with its own timestamp.' });
      const externalId = String(id).trim();
      try {
        const counts = await acceptRecords(hub, source, stream, [{ externalId, data: data as Record<string, unknown> }], { cause: 'api', actor: `receive:${source}` });
        const status = counts.quarantined ? 'quarantined' : counts.created ? 'created' : counts.updated ? 'updated' : 'unchanged';
        return { external_id: externalId, status };
      } catch (error) {
        await hub.pool.query(receivedSql.releaseSignature(source, checked.signature));
        throw error;
      }
    },
  );
}
