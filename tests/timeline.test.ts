/**
 * Issue 5, done-when: one person's timeline from three kinds of source synced by the hub — Freshdesk tickets (nock, the
 * connector's fixture), email threads from a real Dovecot (with awaiting-reply flags per thread) and web events posted to
 * the Segment-compatible ingestion API — newest first, with cursor pagination and filters by kind and time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nock from 'nock';
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { createApiKey } from '../hub/auth.js';
import { checkConfig } from '../hub/config.js';
import { hasDovecot, startDovecot, type Dovecot } from '../connectors/imap/dovecot.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startTestHub, syncNow, type TestHub } from './helpers/hub.js';
import { bearer, buildTestApp } from './helpers/app.js';
import { goldenOf } from './helpers/pipeline.js';

const WRITE_KEY = 'wk_timeline_0123456789';
const hour = 3600_000;
const ago = (ms: number) => new Date(Date.now() - ms);
const rfc2822 = (date: Date) => date.toUTCString().replace('GMT', '+0000');
/** A Date header keeps whole seconds. */
const inSeconds = (date: Date) => new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString();
// Ticket 20 of this page is Ana María Pérez's (Ana.Perez@example.com); ticket 21 is someone else's.
const tickets = JSON.parse(readFileSync(new URL('../connectors/freshdesk/fixtures/tickets-page-1.json', import.meta.url), 'utf8')) as object[];

/** Ana's mail, sent and received by the company's support address (own domain acme.test). */
const at = { a1: ago(240 * hour), s1: ago(216 * hour), b0: ago(170 * hour), s0: ago(144 * hour), b1: ago(120 * hour), c1: ago(hour), s2: ago(hour / 2) };
/** `thread`: the earlier messages of its thread, oldest first (References; the last one is In-Reply-To). */
const mail = (headers: { from: string; to: string; subject: string; date: Date; id: string; thread?: string[] }, body: string) => `From: ${headers.from}
To: ${headers.to}
Subject: ${headers.subject}
Date: ${rfc2822(headers.date)}
Message-ID: <${headers.id}>
${headers.thread ? `In-Reply-To: <${headers.thread.at(-1)}>\nReferences: ${headers.thread.map((id) => `<${id}>`).join(' ')}\n` : ''}Content-Type: text/plain; charset=utf-8

${body}
`;
const ana = '=?UTF-8?Q?Ana_Mar=C3=ADa_P=C3=A9rez?= <ana.perez@example.com>';
const support = 'Support <support@acme.test>';

interface Item {
  kind: string;
  occurred_at: string;
  status?: string;
  summary?: string;
  external_id?: string;
  thread?: { id: string; awaiting_reply: boolean; messages: number; last_message_at: string };
  source_record: { source: string };
}

describe.skipIf(!hasDovecot)("a customer's timeline: tickets, email threads and web events", () => {
  let db: TestDatabase;
  let dovecot: Dovecot;
  let hub: TestHub;
  let app: FastifyInstance;
  let key: string;
  let customer: string;

  const timeline = async (query: string): Promise<{ data: Item[]; next_cursor: string | null }> => {
    const response = await app.inject({ url: `/v1/customers/${customer}/timeline${query}`, headers: bearer(key) });
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  /** Each item as `kind:id`, with its thread's flag for emails. */
  const labels = (items: Item[]) => items.map((item) => `${item.kind}:${item.external_id}${item.thread ? (item.thread.awaiting_reply ? ' (awaiting)' : ' (not awaiting)') : ''}`);

  beforeAll(async () => {
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
    db = await createTestDatabase();
    dovecot = await startDovecot();
    dovecot.deliver('INBOX', '1700000001.a1', mail({ from: ana, to: support, subject: 'Pumpe defekt', date: at.a1, id: 'a1@example.com' }, 'Meine Pumpe läuft nicht mehr.'));
    dovecot.deliver('Sent', '1700000002.s1', mail({ from: support, to: ana, subject: 'Re: Pumpe defekt', date: at.s1, id: 's1@acme.test', thread: ['a1@example.com'] }, 'Bitte schicken Sie sie ein.'));
    // Thread b0: asked, answered, asked again five days ago: the thread as a whole awaits a reply.
    dovecot.deliver('INBOX', '1700000003.b0', mail({ from: ana, to: support, subject: 'Rechnung falsch', date: at.b0, id: 'b0@example.com' }, 'Die Rechnung ist doppelt.'));
    dovecot.deliver('Sent', '1700000004.s0', mail({ from: support, to: ana, subject: 'Re: Rechnung falsch', date: at.s0, id: 's0@acme.test', thread: ['b0@example.com'] }, 'Wir prüfen das.'));
    dovecot.deliver('INBOX', '1700000005.b1', mail({ from: ana, to: support, subject: 'Re: Re: Rechnung falsch', date: at.b1, id: 'b1@example.com', thread: ['b0@example.com', 's0@acme.test'] }, 'Und?'));
    dovecot.deliver('INBOX', '1700000006.c1', mail({ from: ana, to: support, subject: 'Termin', date: at.c1, id: 'c1@example.com' }, 'Passt Dienstag?'));
    const config = checkConfig(
      {
        sources: [
          { name: 'helpdesk', connector: 'freshdesk', config: { domain: 'acme', api_key: '${FRESHDESK_KEY}', streams: ['tickets'] } },
          {
            name: 'mailbox',
            connector: 'imap',
            config: { host: '127.0.0.1', port: dovecot.port, secure: false, user: dovecot.user, password: '${MAIL_PASSWORD}', folders: ['INBOX', 'Sent'], own_domains: ['acme.test'], awaiting_reply_after_hours: 48 },
          },
          { name: 'website', connector: 'segment', config: { write_keys: ['${WEB_WRITE_KEY}'], form_events: ['Seminar Registered', 'Contact Form Submitted'] } },
        ],
      },
      'test.yaml',
      { FRESHDESK_KEY: 'fd_timeline_key', MAIL_PASSWORD: dovecot.password, WEB_WRITE_KEY: WRITE_KEY },
    );
    hub = await startTestHub(db, undefined, config);
    app = await buildTestApp(hub);
    key = await createApiKey(db.pool, 'reader', ['read']);

    // Freshdesk's ticket list, and its deleted and spam tickets (none), as the connector asks for them on a first run (connectors/freshdesk/README.md).
    const freshdesk = nock('https://acme.freshdesk.com', { reqheaders: { authorization: `Basic ${Buffer.from('fd_timeline_key:X').toString('base64')}` } })
      .get('/api/v2/tickets')
      .query({ updated_since: '2000-01-01T00:00:00Z', order_by: 'updated_at', order_type: 'asc', include: 'requester', per_page: '100', page: '1' })
      .reply(200, tickets)
      .get('/api/v2/tickets')
      .query({ filter: 'deleted', per_page: '100', page: '1' })
      .reply(200, [])
      .get('/api/v2/tickets')
      .query({ filter: 'spam', per_page: '100', page: '1' })
      .reply(200, []);
    expect((await syncNow(hub, 'helpdesk')).status).toBe('succeeded');
    expect(freshdesk.isDone()).toBe(true);
    expect((await syncNow(hub, 'mailbox')).status).toBe('succeeded');

    // The website: the visitor identifies as Ana, then submits two forms.
    const events = [
      { type: 'identify', userId: 'u-ana', traits: { email: 'Ana.Perez@example.com', name: 'Ana María Pérez' }, timestamp: ago(80 * hour).toISOString(), messageId: 'web-identify-1' },
      { type: 'track', userId: 'u-ana', event: 'Seminar Registered', timestamp: ago(48 * hour).toISOString(), messageId: 'web-seminar-1' },
      { type: 'track', userId: 'u-ana', event: 'Product Viewed', timestamp: ago(30 * hour).toISOString(), messageId: 'web-view-1' },
      { type: 'track', userId: 'u-ana', event: 'Contact Form Submitted', timestamp: ago(6 * hour).toISOString(), messageId: 'web-contact-1' },
    ];
    const ingest = await app.inject({
      method: 'POST',
      url: '/v1/ingest/batch',
      headers: { authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}` },
      payload: { batch: events },
    });
    expect(ingest.statusCode, ingest.body).toBe(200);

    customer = (await goldenOf(db.pool, 'helpdesk', '20'))!;
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await hub?.stop();
    await dovecot?.stop();
    await db?.drop();
    nock.cleanAll();
    nock.enableNetConnect();
  });

  it('shows every kind of the person, newest first, with the thread of each email and whether it awaits a reply', async () => {
    const { data, next_cursor } = await timeline('?limit=50');
    expect(next_cursor).toBeNull();
    expect(labels(data)).toEqual([
      'email:c1@example.com (not awaiting)', // inbound, but younger than 48 hours
      'web_event:web-contact-1',
      'web_event:web-seminar-1',
      'email:b1@example.com (awaiting)', // the thread's last message: inbound, 5 days old, unanswered
      'email:s0@acme.test (awaiting)', // an earlier answer in the same thread: the flag is the thread's
      'email:b0@example.com (awaiting)',
      'email:s1@acme.test (not awaiting)', // the answer is the last message: the thread is answered
      'email:a1@example.com (not awaiting)',
      'ticket:20',
    ]);
    expect(data.map((item) => item.source_record.source)).toEqual(['mailbox', 'website', 'website', 'mailbox', 'mailbox', 'mailbox', 'mailbox', 'mailbox', 'helpdesk']);
    const times = data.map((item) => Date.parse(item.occurred_at));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    const threadB = { id: 'b0@example.com', awaiting_reply: true, messages: 3, last_message_at: inSeconds(at.b1) };
    expect(data.slice(3, 6).map((item) => [item.status, item.thread])).toEqual([
      ['awaiting_reply', threadB],
      ['sent', threadB],
      ['received', threadB],
    ]);
    expect(data[6].thread).toEqual({ id: 'a1@example.com', awaiting_reply: false, messages: 2, last_message_at: inSeconds(at.s1) });
    expect(data[8]).toMatchObject({ kind: 'ticket', summary: 'Support needed..', status: 'open', occurred_at: '2015-08-24T11:56:51.000Z' });
    expect(data[8].thread).toBeUndefined();
    expect(data[1]).toMatchObject({ summary: 'Contact Form Submitted' });
  });

  it('pages with the cursor: every item once, in the same order', async () => {
    const all = labels((await timeline('?limit=50')).data);
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const page: { data: Item[]; next_cursor: string | null } = await timeline(`?limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      pages.push(labels(page.data));
      cursor = page.next_cursor;
    } while (cursor);
    expect(pages.map((page) => page.length)).toEqual([4, 4, 1]);
    expect(pages.flat()).toEqual(all);
  });

  it('filters by kind and by time, and pages within a filter', async () => {
    expect(labels((await timeline('?kind=email')).data)).toEqual([
      'email:c1@example.com (not awaiting)',
      'email:b1@example.com (awaiting)',
      'email:s0@acme.test (awaiting)',
      'email:b0@example.com (awaiting)',
      'email:s1@acme.test (not awaiting)',
      'email:a1@example.com (not awaiting)',
    ]);
    expect(labels((await timeline('?kind=ticket&kind=web_event')).data)).toEqual(['web_event:web-contact-1', 'web_event:web-seminar-1', 'ticket:20']);
    const since = ago(7 * 24 * hour).toISOString();
    const until = ago(24 * hour).toISOString();
    expect(labels((await timeline(`?since=${since}&until=${until}`)).data)).toEqual(['web_event:web-seminar-1', 'email:b1@example.com (awaiting)', 'email:s0@acme.test (awaiting)']);
    const first = await timeline(`?kind=email&since=${since}&limit=1`);
    expect(labels(first.data)).toEqual(['email:c1@example.com (not awaiting)']);
    const second = await timeline(`?kind=email&since=${since}&limit=2&cursor=${encodeURIComponent(first.next_cursor!)}`);
    expect(labels(second.data)).toEqual(['email:b1@example.com (awaiting)', 'email:s0@acme.test (awaiting)']);
    expect(second.next_cursor).toBeNull();
  });

  it('clears the awaiting-reply flag of the thread once the reply is synced', async () => {
    dovecot.deliver('Sent', '1700000007.s2', mail({ from: support, to: ana, subject: 'Re: Rechnung falsch', date: at.s2, id: 's2@acme.test', thread: ['b0@example.com', 's0@acme.test', 'b1@example.com'] }, 'Wir haben sie storniert.'));
    expect((await syncNow(hub, 'mailbox')).status).toBe('succeeded');
    const { data } = await timeline('?kind=email');
    expect(labels(data)).toEqual([
      'email:s2@acme.test (not awaiting)',
      'email:c1@example.com (not awaiting)',
      'email:b1@example.com (not awaiting)',
      'email:s0@acme.test (not awaiting)',
      'email:b0@example.com (not awaiting)',
      'email:s1@acme.test (not awaiting)',
      'email:a1@example.com (not awaiting)',
    ]);
    expect(data[2]).toMatchObject({ status: 'answered', thread: { id: 'b0@example.com', awaiting_reply: false, messages: 4, last_message_at: inSeconds(at.s2) } });
  });

  it('drops a ticket marked spam in Freshdesk once the next listing of spam tickets names it', async () => {
    // A day later the listing is due again; the ticket marked spam is gone from the changes and is in filter=spam.
    await db.pool.query("update stream_state set state = state - 'swept_at' where source = 'helpdesk'");
    const freshdesk = nock('https://acme.freshdesk.com')
      .get('/api/v2/tickets')
      .query((query) => 'updated_since' in query)
      .reply(200, [])
      .get('/api/v2/tickets')
      .query({ filter: 'deleted', per_page: '100', page: '1' })
      .reply(200, [])
      .get('/api/v2/tickets')
      .query({ filter: 'spam', per_page: '100', page: '1' })
      .reply(200, [{ ...(tickets.find((ticket) => (ticket as { id: number }).id === 20) as object), spam: true }]);
    expect(await syncNow(hub, 'helpdesk')).toMatchObject({ status: 'succeeded', deleted: 1 });
    expect(freshdesk.isDone()).toBe(true);

    expect(labels((await timeline('?kind=ticket')).data)).toEqual([]);
    expect(labels((await timeline('?limit=50')).data)).not.toContain('ticket:20');
    expect((await timeline('?limit=50')).data.length).toBeGreaterThan(0);
  });
});
