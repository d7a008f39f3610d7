/**
 * Pure parts of the IMAP connector: a fetched message's envelope and headers become a record, and the open
 * threads (last message inbound) are tracked so that one left unanswered too long is marked awaiting reply.
 */
import { createHash } from 'node:crypto';
import type { RejectedRecord, SourceRecord } from '../kit/contract.js';

export interface Address {
  name?: string;
  address?: string;
}

/** What the connector fetched of one message (ENVELOPE, the References header, a text snippet). */
export interface FetchedMessage {
  folder: string;
  uid: number;
  envelope?: {
    /** A Date, or the header's text when imapflow could not read it. */
    date?: Date | string;
    subject?: string;
    messageId?: string;
    inReplyTo?: string;
    from?: Address[];
    replyTo?: Address[];
    to?: Address[];
    cc?: Address[];
  };
  internalDate?: Date | string;
  references: string[];
  snippet: string;
  attachments: string[];
}

export type Direction = 'inbound' | 'outbound';

/** The record's data: what the mapping reads. */
export interface MessageData extends Record<string, unknown> {
  message_id: string;
  folder: string;
  date: string;
  subject: string | null;
  direction: Direction;
  from: Address[];
  to: Address[];
  cc: Address[];
  reply_to: Address[];
  in_reply_to: string | null;
  references: string[];
  thread_id: string;
  customer: Address | null;
  own_address: string | null;
  snippet: string;
  attachments: string[];
  status: 'received' | 'sent' | 'awaiting_reply' | 'answered';
}

/** An open thread: its last message is inbound; kept (with that message's data) until answered. */
export interface OpenThread {
  last_at: string;
  awaiting: boolean;
  message: MessageData;
}

const clean = (list: Address[] | undefined): Address[] =>
  (list ?? []).filter((item) => item.address).map((item) => ({ ...(item.name ? { name: item.name } : {}), address: item.address!.toLowerCase() }));

export function isOwn(address: string | undefined, ownDomains: string[]): boolean {
  const domain = address?.split('@')[1]?.toLowerCase();
  return Boolean(domain && ownDomains.some((own) => domain === own || domain.endsWith(`.${own}`)));
}

/** `<a@b>` → `a@b`: message ids compare without their brackets. */
export const bare = (id: string | undefined): string | undefined => id?.trim().replace(/^<|>$/g, '') || undefined;

function validDate(value: Date | string | undefined): Date | undefined {
  const date = value === undefined ? undefined : new Date(value);
  return date && !Number.isNaN(date.getTime()) ? date : undefined;
}

/** A message as a record, or why it cannot be one (no sender, no date). */
export function toRecord(message: FetchedMessage, ownDomains: string[]): SourceRecord | RejectedRecord {
  const envelope = message.envelope ?? {};
  const from = clean(envelope.from);
  const date = validDate(envelope.date) ?? validDate(message.internalDate);
  const payload = { folder: message.folder, uid: message.uid, subject: envelope.subject ?? null, message_id: envelope.messageId ?? null };
  if (from.length === 0) return { reason: 'the message has no readable From address', field: 'from', payload, externalId: bare(envelope.messageId) };
  if (!date) return { reason: 'the message has no readable date', field: 'date', payload, externalId: bare(envelope.messageId) };
  const to = clean(envelope.to);
  const cc = clean(envelope.cc);
  const replyTo = clean(envelope.replyTo);
  const direction: Direction = isOwn(from[0].address, ownDomains) ? 'outbound' : 'inbound';
  const customers = direction === 'inbound' ? [...replyTo, ...from] : [...to, ...cc];
  const customer = customers.find((item) => !isOwn(item.address, ownDomains)) ?? null;
  const own = direction === 'outbound' ? from[0] : [...to, ...cc].find((item) => isOwn(item.address, ownDomains));
  // Without a Message-ID the key must still survive a UIDVALIDITY change: hash what identifies the message.
  const messageId =
    bare(envelope.messageId) ?? `sha256:${createHash('sha256').update(JSON.stringify([date.toISOString(), from[0].address, envelope.subject ?? ''])).digest('hex').slice(0, 32)}`;
  const references = message.references.map(bare).filter((id): id is string => Boolean(id));
  const inReplyTo = bare(envelope.inReplyTo) ?? null;
  const data: MessageData = {
    message_id: messageId,
    folder: message.folder,
    date: date.toISOString(),
    subject: envelope.subject ?? null,
    direction,
    from,
    to,
    cc,
    reply_to: replyTo,
    in_reply_to: inReplyTo,
    references,
    // The thread's root: the first reference, else the message replied to, else the message itself.
    thread_id: references[0] ?? inReplyTo ?? messageId,
    customer,
    own_address: own?.address ?? null,
    snippet: message.snippet,
    attachments: message.attachments,
    status: direction === 'inbound' ? 'received' : 'sent',
  };
  return { externalId: messageId, data };
}

/**
 * Follows the threads through newly read messages (in date order) and returns the records to store again:
 * open threads now older than `afterHours` become awaiting_reply; an awaiting thread that got an answer goes back
 * to answered, and one that got a newer inbound message to received (only a thread's last message awaits). `threads` is updated in place (it lives in the stream state).
 */
export function updateThreads(threads: Record<string, OpenThread>, records: MessageData[], now: Date, afterHours: number): MessageData[] {
  const changed = new Map<string, MessageData>();
  for (const message of [...records].sort((a, b) => a.date.localeCompare(b.date))) {
    const open = threads[message.thread_id];
    if (open && open.last_at > message.date) continue;
    if (message.direction === 'inbound') {
      // A newer inbound message takes the wait over: the earlier one no longer stands for the thread.
      if (open?.awaiting) changed.set(open.message.message_id, { ...open.message, status: 'received' });
      threads[message.thread_id] = { last_at: message.date, awaiting: false, message: { ...message, status: 'received' } };
    } else if (open) {
      if (open.awaiting) changed.set(open.message.message_id, { ...open.message, status: 'answered' });
      delete threads[message.thread_id];
    }
  }
  const limit = now.getTime() - afterHours * 3600_000;
  for (const thread of Object.values(threads)) {
    if (!thread.awaiting && Date.parse(thread.last_at) <= limit) {
      thread.awaiting = true;
      thread.message = { ...thread.message, status: 'awaiting_reply' };
      changed.set(thread.message.message_id, thread.message);
    }
  }
  return [...changed.values()];
}
