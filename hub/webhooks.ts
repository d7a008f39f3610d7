/**
 * Webhook subscriptions and their deliveries.
 *
 * Deliveries run in a polling loop started by the worker, not as pg-boss jobs: order per subscription needs exactly
 * one delivery in flight and a cursor that moves only when a batch is handed to a delivery; jobs would need
 * serialising per subscription and would still have to re-read the cursor. The loop keeps everything in the
 * subscription and delivery rows instead: a lease (not a held connection) lets one process of several deliver a
 * subscription at a time, the next attempt's time survives restarts, and the next batch is never built while an
 * older delivery is open, so events arrive in change-log order even across retries.
 */
import { webhookFailures } from './metrics.js';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { Hub } from './sync.js';
import type { Pool } from './db/database.js';
import { inTransaction } from './db/database.js';
import { readChanges, CursorExpiredError, type ChangeResource } from './change-feed.js';
import { enforceRetention } from './retention.js';
import { IDEMPOTENCY_KEY_HOURS } from './idempotency.js';
import { WEBHOOK_EVENTS, type WebhookEventType } from './routes/schemas.js';
import * as sql from './api-sql.js';
import { openSecret, sealSecret } from './secrets.js';

export { WEBHOOK_EVENTS, type WebhookEventType };

export interface WebhookOptions {
  /** How often the loop looks for work (ms): retries that fell due, failed runs. */
  intervalMs?: number;
  /** How often the loop checks whether the change log moved (ms); a new change starts a pass at once. */
  wakeMs?: number;
  /** The waits before each retry (ms); after the last retry fails the subscription pauses. */
  retryDelaysMs?: number[];
  /** Per attempt (ms). */
  timeoutMs?: number;
  /** Events per delivery. */
  batchSize?: number;
  /** How often retention runs (ms): change log, idempotency keys, old deliveries. */
  housekeepingMs?: number;
  signal?: AbortSignal;
}

/** 7 attempts over about 9 hours, then the subscription pauses. */
export const DEFAULT_RETRY_DELAYS_MS = [10_000, 60_000, 5 * 60_000, 30 * 60_000, 2 * 3_600_000, 6 * 3_600_000];
const DEFAULTS = { intervalMs: 1_000, wakeMs: 100, retryDelaysMs: DEFAULT_RETRY_DELAYS_MS, timeoutMs: 10_000, batchSize: 100, housekeepingMs: 3_600_000 };
/** Succeeded deliveries are kept this long for redelivery. */
const DELIVERY_RETENTION_DAYS = 30;
/** A lease outlives a batch's worst case (timeout × a few), and is renewed per delivery. */
const LEASE_SECONDS = 120;

export interface WebhookEvent {
  id: string;
  type: WebhookEventType;
  created_at: Date;
  data: unknown;
}

export interface DeliveryRow {
  id: string;
  subscription_id: string;
  stream: 'changes' | 'runs';
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  event_count: number;
  first_position: string;
  last_position: string;
  response_status: number | null;
  error: string | null;
  created_at: Date;
  last_attempt_at: Date | null;
  next_attempt_at: Date;
  delivered_at: Date | null;
  body?: string;
  due?: boolean;
}

interface Subscription {
  id: string;
  url: string;
  events: string[];
  secret: string;
  change_cursor: string;
  run_cursor: string;
}

export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: a receiver recomputes it and rejects old timestamps (replays). */
export function signatureHeader(secret: string, body: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const v1 = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${v1}`;
}

/** Shapes a delivery's JSON number columns (pg answers bigint as text). */
export function deliveryResource(row: DeliveryRow): object {
  const { body: _body, due: _due, subscription_id: _subscription, stream: _stream, ...rest } = row;
  return { ...rest, id: Number(row.id), first_position: Number(row.first_position), last_position: Number(row.last_position) };
}

function changeEvent(change: ChangeResource): WebhookEvent {
  return { id: `change:${change.position}`, type: `customer.${change.kind}`, created_at: change.created_at, data: change };
}

/** POSTs a delivery's body, signed with a fresh timestamp. Any 2xx is success; redirects are not followed. */
async function post(subscription: { id: string | number; url: string; secret: string }, delivery: DeliveryRow, timeoutMs: number): Promise<{ status: number | null; error: string | null }> {
  const body = delivery.body!;
  try {
    const response = await fetch(subscription.url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'customer-hub-webhooks',
        'hub-signature': signatureHeader(subscription.secret, body),
        'hub-delivery': String(delivery.id),
        'hub-subscription': String(subscription.id),
      },
      body,
    });
    await response.body?.cancel().catch(() => undefined);
    return { status: response.status, error: response.status >= 200 && response.status < 300 ? null : `The receiver answered HTTP ${response.status}.` };
  } catch (cause) {
    const error = cause as Error & { cause?: Error };
    if (error.name === 'TimeoutError') return { status: null, error: `No answer within ${timeoutMs} ms.` };
    return { status: null, error: `The request failed: ${error.message}${error.cause ? ` (${error.cause.message})` : ''}` };
  }
}

/** One attempt: records the outcome, and schedules the next attempt or, after the last one, pauses the subscription. */
async function attempt(db: Pick<Pool, 'query'>, subscription: { id: string | number; url: string; secret: string }, delivery: DeliveryRow, options: typeof DEFAULTS): Promise<DeliveryRow> {
  const { status, error } = await post(subscription, delivery, options.timeoutMs);
  if (error === null) return (await db.query<DeliveryRow>(sql.deliverySucceeded(Number(delivery.id), status!))).rows[0];
  const retryIn = options.retryDelaysMs[delivery.attempts] ?? null;
  return (await db.query<DeliveryRow>(sql.deliveryFailed(Number(delivery.id), status, error, retryIn))).rows[0];
}

/** Builds the subscription's next delivery from the events after its cursors, or moves the cursors past unwanted ones. */
async function nextDelivery(pool: Pool, subscription: Subscription, batchSize: number): Promise<'created' | 'skipped' | 'none'> {
  const wants = new Set(subscription.events);
  const id = Number(subscription.id);
  let changes: ChangeResource[];
  try {
    changes = await readChanges(pool, Number(subscription.change_cursor), batchSize);
  } catch (error) {
    // Only a subscription paused longer than the retention gets here: it goes on from the oldest kept change.
    if (!(error instanceof CursorExpiredError)) throw error;
    await pool.query(sql.skipEvents(id, 'changes', error.oldestAfter));
    return 'skipped';
  }
  if (changes.length > 0) {
    const events = changes.filter((change) => wants.has(`customer.${change.kind}`)).map(changeEvent);
    const last = changes[changes.length - 1].position;
    if (events.length === 0) {
      await pool.query(sql.skipEvents(id, 'changes', last));
      return 'skipped';
    }
    const first = Number(events[0].id.slice('change:'.length));
    await pool.query(sql.insertDelivery({ subscriptionId: id, stream: 'changes', first, last, count: events.length, body: JSON.stringify({ events }) }));
    return 'created';
  }
  const { rows: runs } = await pool.query<{ position: string; kind: 'run.failed'; event_created_at: Date; id: string } & Record<string, unknown>>(
    sql.runEventsPage(Number(subscription.run_cursor), batchSize),
  );
  if (runs.length === 0) return 'none';
  const last = Number(runs[runs.length - 1].position);
  const events: WebhookEvent[] = runs
    .filter((row) => wants.has(row.kind))
    .map(({ position, kind, event_created_at, ...run }) => ({ id: `run:${position}`, type: kind, created_at: event_created_at, data: { ...run, id: Number(run.id) } }));
  if (events.length === 0) {
    await pool.query(sql.skipEvents(id, 'runs', last));
    return 'skipped';
  }
  const first = Number(events[0].id.slice('run:'.length));
  await pool.query(sql.insertDelivery({ subscriptionId: id, stream: 'runs', first, last, count: events.length, body: JSON.stringify({ events }) }));
  return 'created';
}

/** Delivers what is due for one subscription, in order, until it is caught up, waiting for a retry, or paused. */
async function serveSubscription(hub: Hub, id: number, owner: string, options: typeof DEFAULTS, signal?: AbortSignal): Promise<void> {
  const { pool } = hub;
  for (let round = 0; round < 1_000 && !signal?.aborted; round++) {
    // Taking the lease also renews it, and re-reads the cursors and whether the subscription is still active.
    const { rows } = await pool.query<Subscription>(sql.leaseSubscription(id, owner, LEASE_SECONDS));
    const subscription = rows[0] && { ...rows[0], secret: openSecret(rows[0].secret) };
    if (!subscription) return;
    const { rows: open } = await pool.query<DeliveryRow>(sql.openDelivery(id));
    const delivery = open[0];
    if (delivery) {
      if (delivery.status === 'failed' || !delivery.due) return;
      const outcome = await attempt(pool, subscription, delivery, options);
      if (outcome.status !== 'succeeded') {
        webhookFailures.inc();
        hub.log.warn({ subscription: id, delivery: Number(delivery.id), attempts: outcome.attempts, error: outcome.error }, outcome.status === 'failed' ? 'webhook paused' : 'webhook delivery failed');
        return;
      }
      continue;
    }
    if ((await nextDelivery(pool, subscription, options.batchSize)) === 'none') return;
  }
}

/** One pass over the active subscriptions (exported for tests; the loop calls it). */
export async function deliverWebhooks(hub: Hub, options: WebhookOptions = {}, owner = `process:${randomUUID()}`): Promise<void> {
  const settings = { ...DEFAULTS, ...options };
  const { rows } = await hub.pool.query<{ id: string }>(sql.activeSubscriptionIds());
  // A few subscriptions at a time: each one is sequential, a slow receiver must not hold back the others.
  const queue = rows.map((row) => Number(row.id));
  const workers = Array.from({ length: Math.min(4, queue.length) }, async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      try {
        await serveSubscription(hub, id, owner, settings, options.signal);
      } catch (error) {
        hub.log.error({ err: error, subscription: id }, 'webhook delivery error');
      } finally {
        await hub.pool.query(sql.releaseSubscription(id, owner)).catch(() => undefined);
      }
    }
  });
  await Promise.all(workers);
}

/** Retention: the change log, run history, quarantine, job archive (hub/retention.ts), idempotency keys, old succeeded deliveries. */
export async function housekeeping(pool: Pool): Promise<void> {
  await enforceRetention(pool);
  await pool.query(sql.pruneIdempotencyKeys(IDEMPOTENCY_KEY_HOURS));
  await pool.query(sql.pruneDeliveries(DELIVERY_RETENTION_DAYS));
}

/**
 * Starts the delivery loop (and the hourly housekeeping) in this process; the worker calls it. Several processes may
 * run it: leases keep each subscription with one of them at a time. Stops when `signal` aborts or on `stop()`.
 */
export function startWebhookDelivery(hub: Hub, options: WebhookOptions = {}): { stop(): Promise<void> } {
  const settings = { ...DEFAULTS, ...options };
  const owner = `process:${randomUUID()}`;
  const stopping = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stopping.signal]) : stopping.signal;
  let lastHousekeeping = 0;
  // Read before each pass: a change committed during the pass starts the next one without waiting.
  const changeLogPosition = () => hub.pool.query<{ position: string }>(sql.changeLogPosition()).then((result) => result.rows[0]?.position, () => undefined);
  const loop = (async () => {
    while (!signal.aborted) {
      const seen = await changeLogPosition();
      try {
        if (Date.now() - lastHousekeeping >= settings.housekeepingMs) {
          lastHousekeeping = Date.now();
          await housekeeping(hub.pool);
        }
        await deliverWebhooks(hub, { ...settings, signal }, owner);
      } catch (error) {
        if (!signal.aborted) hub.log.error({ err: error }, 'webhook loop error');
      }
      // A full pass every intervalMs (retries, failed runs); a cheap look at the change log every wakeMs, so that a
      // change is delivered within about wakeMs rather than a whole interval later.
      const passDue = Date.now() + settings.intervalMs;
      while (!signal.aborted && Date.now() < passDue) {
        await pause(Math.min(settings.wakeMs, passDue - Date.now()), signal);
        if ((await changeLogPosition()) !== seen) break;
      }
    }
  })();
  return {
    stop: async () => {
      stopping.abort();
      await loop;
    },
  };
}

/** Waits `ms`, or less if `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    // The listener goes when the timer fires: one left behind per wait would pile up for the process's life.
    const wake = () => (clearTimeout(timer), resolve());
    const timer = setTimeout(() => (signal.removeEventListener('abort', wake), resolve()), ms);
    signal.addEventListener('abort', wake, { once: true });
  });
}

// The API's side.

export async function createSubscription(pool: Pool, input: { url: string; events: string[]; description: string | null; createdBy: string }): Promise<{ id: number; secret: string }> {
  const secret = newSecret();
  const { rows } = await pool.query<{ id: string }>(sql.insertSubscription({ ...input, secret: sealSecret(secret) }));
  return { id: Number(rows[0].id), secret };
}

export class NothingToRedeliverError extends Error {}

/**
 * Sends a delivery again now, once: by default the failed one that paused the subscription (success resumes it);
 * any earlier delivery by id (a receiver that lost it). Answers the delivery with the attempt's outcome.
 */
export async function redeliver(hub: Hub, subscriptionId: number, deliveryId?: number): Promise<DeliveryRow | undefined> {
  const { rows: subscriptions } = await hub.pool.query<{ url: string; secret: string }>({
    text: 'select url, secret from webhook_subscription where id = $1',
    values: [subscriptionId],
  });
  const subscription = subscriptions[0] && { ...subscriptions[0], secret: openSecret(subscriptions[0].secret) };
  if (!subscription) return undefined;
  let delivery: DeliveryRow | undefined;
  if (deliveryId === undefined) {
    delivery = (await hub.pool.query<DeliveryRow>(sql.openDelivery(subscriptionId))).rows[0];
    if (!delivery || delivery.status !== 'failed') throw new NothingToRedeliverError('The subscription has no failed delivery; name one with `delivery_id`.');
  } else {
    delivery = (await hub.pool.query<DeliveryRow>(sql.getDelivery(subscriptionId, deliveryId))).rows[0];
    if (!delivery) throw new NothingToRedeliverError(`The subscription has no delivery ${deliveryId}.`);
  }
  // A manual attempt of the failed delivery has no retries: failing again keeps the subscription paused.
  const options = delivery.status === 'failed' ? { ...DEFAULTS, retryDelaysMs: [] } : DEFAULTS;
  if (delivery.status === 'succeeded') {
    // A repeat for the receiver: the recorded outcome stays as it was, whatever this attempt gives.
    const { status, error } = await post({ id: subscriptionId, ...subscription }, delivery, options.timeoutMs);
    return { ...delivery, response_status: status, error };
  }
  // The failed delivery (or a pending one waiting for its retry): a manual attempt; if it fails the subscription stays paused.
  return inTransaction(hub.pool, async (client) => {
    await client.query({ text: 'select 1 from webhook_subscription where id = $1 for update', values: [subscriptionId] });
    const outcome = await attempt(client, { id: subscriptionId, ...subscription }, delivery!, options);
    if (outcome.status === 'succeeded') await client.query(sql.resumeAfterRedelivery(subscriptionId));
    return outcome;
  });
}
