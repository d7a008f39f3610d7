/** The IMAP connector against a real Dovecot started here (Debian's dovecot-imapd), with a Maildir of realistic messages. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../hub/log.js';
import { ConnectorError, type RecordPage, type RejectedRecord, type SourceRecord, type StreamState } from '../kit/contract.js';
import { connector } from './connector.js';
import type { ImapConfig } from './config.gen.js';
import { updateThreads, type MessageData, type OpenThread } from './messages.js';
import { hasDovecot, startAuthorizationServer, startDovecot, type AuthorizationServer, type Dovecot } from './dovecot.js';

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
    const refused = await connector.check({ ...config, password: 'wrong' }, { source: 'mail', log: silentLogger, baseDir: '.' });
    expect(refused).toEqual({ ok: false, message: expect.stringContaining('The IMAP source mail: 127.0.0.1 refused the login of support@example.com with the password: ') });
    expect(refused.message).not.toContain('wrong');
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

/** Failure of a read, as the hub's job would see it. */
async function readFailure(config: ImapConfig): Promise<ConnectorError> {
  const error = await readAll(config).then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(ConnectorError);
  return error as ConnectorError;
}

describe.skipIf(!hasDovecot)('IMAP connector with OAuth2 (XOAUTH2) against Dovecot with its oauth2 passdb', () => {
  let dovecot: Dovecot;
  let authorization: AuthorizationServer;
  let base: ImapConfig;

  beforeAll(async () => {
    authorization = await startAuthorizationServer('support@example.com');
    dovecot = await startDovecot({ oauth2IntrospectionUrl: authorization.introspectionUrl });
    dovecot.deliver('INBOX', '1700000004.a1', messages.seminar);
    base = { host: '127.0.0.1', port: dovecot.port, secure: false, user: dovecot.user, folders: ['INBOX'], own_domains: ['example.com'] };
  });
  afterAll(async () => {
    await dovecot?.stop();
    await authorization?.stop();
  });

  it('syncs with an access token the introspection endpoint calls active', async () => {
    const { records } = await readAll({ ...base, access_token: authorization.issue() });
    expect(records.map((record) => record.externalId)).toEqual(['a1@example.org']);
  });

  it('fails fast on an expired token, naming the source and the reason but not the token', async () => {
    const token = authorization.issue();
    authorization.revoke();
    const failure = await readFailure({ ...base, access_token: token });
    expect(failure.kind).toBe('config');
    expect(failure.message).toBe(
      'The IMAP source mail: 127.0.0.1 refused the login of support@example.com with the access token: NO [AUTHENTICATIONFAILED] Authentication failed. (OAuth2 status 401)',
    );
    expect(failure.message).not.toContain(token);
    expect(failure.cause).toBeUndefined();
  });

  it('fetches access tokens with the refresh token, reuses them, and fetches a new one when the server refuses a cached one', async () => {
    const oauth2 = { token_url: authorization.tokenUrl, client_id: authorization.clientId, client_secret: authorization.clientSecret, refresh_token: authorization.refreshToken };
    const grantsBefore = authorization.grants.length;
    expect(await connector.check({ ...base, oauth2 }, { source: 'mail', log: silentLogger, baseDir: '.' })).toEqual({ ok: true, message: `Logged in as ${dovecot.user}; INBOX: 1 messages.` });
    expect((await readAll({ ...base, oauth2 })).records.map((record) => record.externalId)).toEqual(['a1@example.org']);
    expect(authorization.grants.slice(grantsBefore)).toEqual(['refresh_token']);

    authorization.revoke();
    expect((await readAll({ ...base, oauth2 })).records.map((record) => record.externalId)).toEqual(['a1@example.org']);
    expect(authorization.grants.slice(grantsBefore)).toEqual(['refresh_token', 'refresh_token']);
  });

  it('uses the client-credentials grant without a refresh token', async () => {
    const oauth2 = { token_url: authorization.tokenUrl, client_id: authorization.clientId, client_secret: authorization.clientSecret, scope: 'https://outlook.office365.com/.default' };
    expect((await readAll({ ...base, oauth2 })).records.map((record) => record.externalId)).toEqual(['a1@example.org']);
    expect(authorization.grants.at(-1)).toBe('client_credentials');
  });

  it('fails fast when the token endpoint refuses the refresh token or the client, without the secrets in the message', async () => {
    const oauth2 = { token_url: authorization.tokenUrl, client_id: authorization.clientId, client_secret: authorization.clientSecret, refresh_token: 'refresh-revoked' };
    const badGrant = await readFailure({ ...base, oauth2 });
    expect(badGrant.kind).toBe('config');
    expect(badGrant.message).toBe(
      'the token endpoint of the IMAP source mail: POST /token failed with HTTP 400: {"error":"invalid_grant","error_description":"The refresh token has expired or been revoked."}',
    );
    // (Another scope: the token cached for this client and refresh token would be used without asking the endpoint.)
    const badClient = await readFailure({ ...base, oauth2: { ...oauth2, refresh_token: authorization.refreshToken, client_secret: 'not-the-secret', scope: 'https://mail.google.com/' } });
    expect(badClient.message).toBe('The credentials were refused by the token endpoint of the IMAP source mail (HTTP 401 on POST /token)');
    for (const failure of [badGrant, badClient]) {
      for (const secret of ['refresh-revoked', authorization.refreshToken, authorization.clientSecret, 'not-the-secret']) expect(failure.message).not.toContain(secret);
    }
  });

  it('refuses a configuration with more than one way to log in', async () => {
    const failure = await readFailure({ ...base, password: 'x', access_token: 'y' });
    expect(failure.message).toBe('The IMAP source mail: set exactly one of password, access_token and oauth2.');
  });
});

describe('thread status', () => {
  const message = (id: string, direction: 'inbound' | 'outbound', date: string): MessageData => ({
    message_id: id, folder: 'INBOX', date, subject: null, direction, from: [], to: [], cc: [], reply_to: [], in_reply_to: null, references: [],
    thread_id: 't1', customer: null, own_address: null, snippet: '', attachments: [], status: direction === 'inbound' ? 'received' : 'sent',
  });
  const statuses = (records: MessageData[]) => records.map((record) => [record.message_id, record.status]);

  it('keeps only the last message of a thread awaiting: a newer inbound message takes the wait over, an answer ends it', () => {
    const threads: Record<string, OpenThread> = {};
    expect(statuses(updateThreads(threads, [message('m1', 'inbound', '2026-01-01T00:00:00.000Z')], new Date('2026-01-04T00:00:00Z'), 48))).toEqual([['m1', 'awaiting_reply']]);
    expect(statuses(updateThreads(threads, [message('m2', 'inbound', '2026-01-04T00:00:00.000Z')], new Date('2026-01-04T01:00:00Z'), 48))).toEqual([['m1', 'received']]);
    expect(statuses(updateThreads(threads, [], new Date('2026-01-07T00:00:00Z'), 48))).toEqual([['m2', 'awaiting_reply']]);
    expect(statuses(updateThreads(threads, [message('s1', 'outbound', '2026-01-07T01:00:00.000Z')], new Date('2026-01-07T02:00:00Z'), 48))).toEqual([['m2', 'answered']]);
    expect(threads).toEqual({});
  });
});
