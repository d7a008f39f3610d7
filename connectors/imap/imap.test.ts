/** The IMAP connector against a real Dovecot started here (Debian's dovecot-imapd), with a Maildir of realistic messages. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../hub/log.js';
import type { RecordPage, RejectedRecord, SourceRecord, StreamState } from '../kit/contract.js';
import { connector } from './connector.js';
import type { ImapConfig } from './config.gen.js';
import type { MessageData } from './messages.js';
import { hasDovecot, startDovecot, type Dovecot } from './dovecot.js';

const day = 24 * 3600_000;
const rfc2822 = (msAgo: number) => new Date(Date.now() - msAgo).toUTCString().replace('GMT', '+0000');

const messages = {
  repair: `From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <Juergen.Mueller@kunde.de>
To: Support <support@example.com>
Subject: =?UTF-8?Q?Reparaturauftrag_4711_=E2=80=93_Status=3F?=
Date: ${rfc2822(30 * day)}
Message-ID: <m1@kunde.de>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Guten Tag, meine Pumpe ist seit drei Wochen in Reparatur. Wann bekomme ich sie zur=C3=BCck?

--b1
Content-Type: application/pdf; name="auftrag.pdf"
Content-Disposition: attachment; filename="auftrag.pdf"
Content-Transfer-Encoding: base64

QVRUQUNITUVOVC1CT0RZLU1VU1QtTk9ULUJFLURPV05MT0FERUQ=
--b1--
`,
  answer: `From: Support <support@example.com>
To: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen.mueller@kunde.de>
Subject: Re: Reparaturauftrag 4711
Date: ${rfc2822(29 * day)}
Message-ID: <s1@example.com>
In-Reply-To: <m1@kunde.de>
References: <m1@kunde.de>
Content-Type: text/plain; charset=utf-8

Wir kümmern uns darum.

> Guten Tag, meine Pumpe ist seit drei Wochen in Reparatur.
`,
  followUp: `From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen.mueller@kunde.de>
To: support@example.com
Cc: Einkauf <einkauf@kunde.de>
Subject: Re: Re: Reparaturauftrag 4711
Date: ${rfc2822(20 * day)}
Message-ID: <m2@kunde.de>
In-Reply-To: <s1@example.com>
References: <m1@kunde.de>
 <s1@example.com>
Content-Type: text/html; charset=utf-8

<p>Immer noch <b>nichts</b> geh&ouml;rt&nbsp;&amp; keine Antwort.</p>
`,
  seminar: `From: "Ada Lovelace" <ada@example.org>
Reply-To: ada.private@example.net
To: events@example.com
Subject: Anmeldung Seminar
Date: ${rfc2822(3600_000)}
Message-ID: <a1@example.org>
Content-Type: text/plain; charset=utf-8

Ich habe mich angemeldet, aber keine Bestätigung bekommen.
`,
  malformed: `Subject: no sender at all
Date: not a date
Content-Type: text/plain

garbage \x01 body
`,
  internal: `From: colleague@example.com
To: support@example.com
Subject: lunch?
Date: ${rfc2822(2 * day)}
Message-ID: <i1@example.com>
Content-Type: text/plain

12:30?
`,
};

async function readAll(config: ImapConfig, state?: StreamState): Promise<{ records: SourceRecord[]; rejected: RejectedRecord[]; state: StreamState | undefined; pages: RecordPage[] }> {
  const pages: RecordPage[] = [];
  for await (const page of connector.read('messages', state, config, { source: 'mail', log: silentLogger, baseDir: '.' })) pages.push(page);
  return { pages, records: pages.flatMap((page) => page.records), rejected: pages.flatMap((page) => page.rejected ?? []), state: pages.at(-1)?.state };
}

const byId = (records: SourceRecord[]) => Object.fromEntries(records.map((record) => [record.externalId, record.data as MessageData]));

describe.skipIf(!hasDovecot)('IMAP connector against Dovecot', () => {
  let dovecot: Dovecot;
  let config: ImapConfig;

  beforeAll(async () => {
    dovecot = await startDovecot();
    dovecot.deliver('INBOX', '1700000001.m1', messages.repair);
    dovecot.deliver('Sent', '1700000002.s1', messages.answer);
    dovecot.deliver('INBOX', '1700000003.m2', messages.followUp);
    dovecot.deliver('INBOX', '1700000004.a1', messages.seminar);
    dovecot.deliver('INBOX', '1700000005.bad', messages.malformed);
    dovecot.deliver('INBOX', '1700000006.i1', messages.internal);
    config = { host: '127.0.0.1', port: dovecot.port, secure: false, user: dovecot.user, password: dovecot.password, folders: ['INBOX', 'Sent'], own_domains: ['example.com'], awaiting_reply_after_hours: 48, batch_size: 2 };
  });
  afterAll(() => dovecot?.stop());

  it('checks the login and counts the folders', async () => {
    expect(await connector.check(config, { source: 'mail', log: silentLogger, baseDir: '.' })).toEqual({ ok: true, message: `Logged in as ${dovecot.user}; INBOX: 5, Sent: 1 messages.` });
    expect((await connector.check({ ...config, password: 'wrong' }, { source: 'mail', log: silentLogger, baseDir: '.' })).ok).toBe(false);
  });

  it('reads envelopes, References, snippets and thread status; quarantines the malformed message', async () => {
    const { records, rejected, state, pages } = await readAll(config);
    // batch_size 2: INBOX in three pages, Sent in one, then the ageing page.
    expect(pages.length).toBe(5);
    const found = byId(records);
    expect(Object.keys(found).sort()).toEqual(['a1@example.org', 'i1@example.com', 'm1@kunde.de', 'm2@kunde.de', 's1@example.com']);
    expect(found['m1@kunde.de']).toMatchObject({
      direction: 'inbound',
      subject: 'Reparaturauftrag 4711 – Status?',
      from: [{ name: 'Jürgen Müller', address: 'juergen.mueller@kunde.de' }],
      customer: { name: 'Jürgen Müller', address: 'juergen.mueller@kunde.de' },
      own_address: 'support@example.com',
      thread_id: 'm1@kunde.de',
      snippet: 'Guten Tag, meine Pumpe ist seit drei Wochen in Reparatur. Wann bekomme ich sie zurück?',
      attachments: ['auftrag.pdf'],
      status: 'received',
    });
    expect(JSON.stringify(records)).not.toContain('ATTACHMENT-BODY');
    expect(found['s1@example.com']).toMatchObject({ direction: 'outbound', folder: 'Sent', customer: { address: 'juergen.mueller@kunde.de' }, in_reply_to: 'm1@kunde.de', thread_id: 'm1@kunde.de', snippet: 'Wir kümmern uns darum.', status: 'sent' });
    // References folded over two lines, read from the header (it is not in ENVELOPE).
    expect(found['m2@kunde.de']).toMatchObject({ references: ['m1@kunde.de', 's1@example.com'], thread_id: 'm1@kunde.de', cc: [{ name: 'Einkauf', address: 'einkauf@kunde.de' }], snippet: 'Immer noch nichts gehört & keine Antwort.' });
    // Reply-To wins as the customer's address; the company's own addresses are never the customer.
    expect(found['a1@example.org']).toMatchObject({ customer: { address: 'ada.private@example.net' }, own_address: 'events@example.com', status: 'received' });
    expect(found['i1@example.com']).toMatchObject({ direction: 'outbound', customer: null });
    expect(rejected).toEqual([expect.objectContaining({ field: 'from', reason: 'the message has no readable From address', payload: expect.objectContaining({ folder: 'INBOX', subject: 'no sender at all' }) })]);

    // The last message of thread m1 is inbound and 20 days old: awaiting reply (its latest version in the pages).
    const latest = new Map(records.map((record) => [record.externalId, (record.data as MessageData).status]));
    expect(latest.get('m2@kunde.de')).toBe('awaiting_reply');
    expect(latest.get('a1@example.org')).toBe('received');
    expect((state as { folders: Record<string, { last_uid: number }> }).folders).toMatchObject({ INBOX: { last_uid: 5 }, Sent: { last_uid: 1 } });
  });

  it('reads only new messages next time, and an answer clears awaiting reply', async () => {
    const first = await readAll(config);
    const again = await readAll(config, first.state);
    expect(again.records).toEqual([]);

    dovecot.deliver('Sent', '1700000007.s2', `From: support@example.com
To: juergen.mueller@kunde.de
Subject: Re: Reparaturauftrag 4711
Date: ${rfc2822(day)}
Message-ID: <s2@example.com>
In-Reply-To: <m2@kunde.de>
References: <m1@kunde.de> <s1@example.com> <m2@kunde.de>
Content-Type: text/plain

Ihre Pumpe ist unterwegs.
`);
    const next = await readAll(config, again.state);
    expect(next.records.map((record) => [record.externalId, (record.data as MessageData).status])).toEqual([
      ['s2@example.com', 'sent'],
      ['m2@kunde.de', 'answered'],
    ]);
    // The stored version of the re-sent record is complete, not a stub.
    expect(next.records[1].data).toMatchObject({ subject: 'Re: Re: Reparaturauftrag 4711', customer: { address: 'juergen.mueller@kunde.de' } });
  });

  it('re-reads a folder whose UIDVALIDITY changed, with the same record ids (no duplicates)', async () => {
    const first = await readAll(config);
    const before = (first.state as { folders: Record<string, { uidvalidity: string }> }).folders.INBOX.uidvalidity;
    dovecot.setUidValidity('INBOX', Number(before) + 1000);
    const after = await readAll(config, first.state);
    expect(after.records.map((record) => record.externalId).sort()).toEqual(['a1@example.org', 'i1@example.com', 'm1@kunde.de', 'm2@kunde.de']);
    expect((after.state as { folders: Record<string, { uidvalidity: string }> }).folders.INBOX.uidvalidity).toBe(String(Number(before) + 1000));
    expect(new Set(first.records.map((record) => record.externalId))).toEqual(new Set([...after.records.map((record) => record.externalId), 's1@example.com', 's2@example.com']));
  });
});
