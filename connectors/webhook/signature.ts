/**
 * Signed pushes: HMAC-SHA256 over `<timestamp>.<raw body>` with the source's secret, the scheme of Stripe and
 * Slack webhooks. The timestamp bounds how long a captured request stays usable; within that window the hub
 * accepts each signature once (hub/routes/receive.ts keeps the seen ones).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TIMESTAMP_HEADER = 'x-hub-timestamp';
export const SIGNATURE_HEADER = 'x-hub-signature';

/** The `X-Hub-Signature` value for a body sent at `timestamp` (unix seconds): what a sender computes. */
export function sign(secret: string, timestamp: number | string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
}

export type Verification = { ok: true; signature: string; timestamp: number } | { ok: false; reason: string };

/** Checks the headers of one request against the secret, the body and the clock. */
export function verify(secret: string, headers: { timestamp?: string; signature?: string }, body: Buffer, toleranceSeconds: number, now = Date.now()): Verification {
  if (!headers.timestamp || !/^\d{1,12}$/.test(headers.timestamp)) return { ok: false, reason: 'X-Hub-Timestamp is required: the time of sending in unix seconds.' };
  if (!headers.signature || !/^sha256=[0-9a-f]{64}$/i.test(headers.signature)) return { ok: false, reason: 'X-Hub-Signature is required: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">.' };
  const timestamp = Number(headers.timestamp);
  if (Math.abs(now / 1000 - timestamp) > toleranceSeconds) {
    return { ok: false, reason: `X-Hub-Timestamp is more than ${toleranceSeconds} seconds from the hub's clock; sign each request when sending it.` };
  }
  const expected = Buffer.from(sign(secret, headers.timestamp, body).slice('sha256='.length), 'hex');
  const given = Buffer.from(headers.signature.slice('sha256='.length), 'hex');
  if (!timingSafeEqual(expected, given)) return { ok: false, reason: 'X-Hub-Signature does not match the body and timestamp.' };
  return { ok: true, signature: headers.signature.toLowerCase(), timestamp };
}
