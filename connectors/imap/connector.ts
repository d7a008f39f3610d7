/**
 * The IMAP connector (imapflow + mailparser): the configured folders, read incrementally by UIDVALIDITY + UID
 * (RFC 3501 §2.3.1.1). Per message it fetches ENVELOPE, INTERNALDATE, BODYSTRUCTURE and the References header
 * (not in ENVELOPE), then the first text part, bounded, for a snippet: attachment bodies are never downloaded.
 * A changed UIDVALIDITY re-reads that folder; records are keyed by Message-ID, so this adds no duplicates.
 */
import { fileURLToPath } from 'node:url';
import type { ImapFlow, FetchMessageObject, MessageStructureObject } from 'imapflow';
import type { ParsedMail, SimpleParserOptions } from 'mailparser';
import { ConnectorError, type ConnectorContext, type PulledConnector, type RecordPage, type RejectedRecord, type SourceRecord, type StreamState } from '../kit/contract.js';
import type { ImapConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };
import { toRecord, updateThreads, type FetchedMessage, type MessageData, type OpenThread } from './messages.js';
import { oauth2AccessToken } from './oauth2.js';

export const MESSAGES_STREAM = 'messages';

interface FolderState {
  uidvalidity: string;
  last_uid: number;
  /** HIGHESTMODSEQ when the server offers CONDSTORE (RFC 7162): unchanged with the same UIDNEXT means nothing to read. */
  highest_modseq?: string;
  uid_next?: number;
}

export interface ImapStreamState extends StreamState {
  folders: Record<string, FolderState>;
  threads: Record<string, OpenThread>;
}

/** Snippets are read from at most this many bytes of the text part. */
const SNIPPET_BYTES = 16 * 1024;

export const connector: PulledConnector<ImapConfig> = {
  kind: 'pulled',
  name: 'imap',
  configSchema,
  defaultMappingPath: fileURLToPath(new URL('./mapping.yaml', import.meta.url)),
  streams: () => [{ name: MESSAGES_STREAM, recordSchema: { type: 'object' }, primaryKey: ['message_id'], cursorField: 'date' }],
  check,
  read,
};

// Loaded when a mailbox is read, not when the hub (or its CLI) starts.
const imapflow = () => import('imapflow');
async function simpleParser(source: Buffer | string, options: SimpleParserOptions = {}): Promise<ParsedMail> {
  return (await import('mailparser')).simpleParser(source, options);
}

/** The login's credentials: a password, the configured access token, or one from the OAuth2 token endpoint. */
type Login = { user: string; pass: string } | { user: string; accessToken: string };

async function connectAs(config: ImapConfig, auth: Login): Promise<ImapFlow> {
  const { ImapFlow } = await imapflow();
  const imap = new ImapFlow({ host: config.host, port: config.port ?? 993, secure: config.secure ?? true, auth, logger: false });
  await imap.connect();
  return imap;
}

interface LoginFailure {
  authenticationFailed?: boolean;
  /** The server's answer to the login, e.g. `NO [AUTHENTICATIONFAILED] Authentication failed.` */
  response?: unknown;
  /** What the server said of a refused bearer token (RFC 7628 §3.2.2), e.g. `{ status: '401' }`. */
  oauthError?: { status?: string };
  message: string;
}

/** Why the login failed, as the server said it: never the credentials (the server does not repeat them). */
function refusal(failure: LoginFailure): string {
  // Without the command's tag: `2 NO […] …` → `NO […] …`.
  const said = typeof failure.response === 'string' && failure.response ? failure.response.replace(/^\S+ (?=(NO|BAD) )/, '') : failure.message;
  return failure.oauthError?.status ? `${said} (OAuth2 status ${failure.oauthError.status})` : said;
}

async function connect(config: ImapConfig, ctx: ConnectorContext): Promise<ImapFlow> {
  const methods = [config.password, config.access_token, config.oauth2].filter((given) => given !== undefined).length;
  if (methods !== 1) throw new ConnectorError(`The IMAP source ${ctx.source}: set exactly one of password, access_token and oauth2.`, 'config');
  const credential = config.password !== undefined ? 'password' : config.access_token !== undefined ? 'access token' : 'access token from the oauth2 token endpoint';
  try {
    if (config.password !== undefined) return await connectAs(config, { user: config.user, pass: config.password });
    if (config.access_token !== undefined) return await connectAs(config, { user: config.user, accessToken: config.access_token });
    const oauth2 = config.oauth2!;
    const token = await oauth2AccessToken(oauth2, ctx);
    try {
      return await connectAs(config, { user: config.user, accessToken: token.accessToken });
    } catch (error) {
      // A cached token may have been revoked before its expiry: one more try with a new one.
      if (!token.cached || !(error as LoginFailure).authenticationFailed) throw error;
      return await connectAs(config, { user: config.user, accessToken: (await oauth2AccessToken(oauth2, ctx, true)).accessToken });
    }
  } catch (error) {
    if (error instanceof ConnectorError) throw error;
    const failure = error as LoginFailure;
    // imapflow's error objects are not kept as the cause: a logger would print all they hold; the message says what matters.
    if (failure.authenticationFailed) {
      throw new ConnectorError(`The IMAP source ${ctx.source}: ${config.host} refused the login of ${config.user} with the ${credential}: ${refusal(failure)}`, 'config');
    }
    if (failure.message === 'Unsupported authentication mechanism') {
      throw new ConnectorError(`The IMAP source ${ctx.source}: ${config.host} offers no login by ${config.password !== undefined ? 'password (PLAIN or LOGIN)' : 'OAuth2 (XOAUTH2 or OAUTHBEARER)'}.`, 'config');
    }
    throw new ConnectorError(`The IMAP source ${ctx.source} cannot connect to ${config.host}: ${failure.message}`, 'transient');
  }
}

async function check(config: ImapConfig, ctx: ConnectorContext): Promise<{ ok: boolean; message: string }> {
  try {
    const imap = await connect(config, ctx);
    try {
      const counts: string[] = [];
      for (const folder of config.folders ?? ['INBOX']) {
        const status = await imap.status(folder, { messages: true });
        counts.push(`${folder}: ${status ? (status.messages ?? 0) : 'not found'}`);
      }
      return { ok: true, message: `Logged in as ${config.user}; ${counts.join(', ')} messages.` };
    } finally {
      await imap.logout().catch(() => undefined);
    }
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
}

function stateOf(state: StreamState | undefined): ImapStreamState {
  const given = state as Partial<ImapStreamState> | undefined;
  return { folders: { ...(given?.folders ?? {}) }, threads: { ...(given?.threads ?? {}) } };
}

/** The first inline text part (plain before html), and the names of the attachments, from BODYSTRUCTURE. */
function parts(node: MessageStructureObject | undefined): { text?: { part: string; html: boolean }; attachments: string[] } {
  const attachments: string[] = [];
  let plain: string | undefined;
  let html: string | undefined;
  const walk = (item: MessageStructureObject) => {
    if (item.childNodes?.length) return item.childNodes.forEach(walk);
    const attachment = item.disposition === 'attachment' || Boolean(item.dispositionParameters?.filename);
    if (attachment) attachments.push(item.dispositionParameters?.filename ?? item.parameters?.name ?? item.type);
    else if (item.type === 'text/plain') plain ??= item.part ?? '1';
    else if (item.type === 'text/html') html ??= item.part ?? '1';
  };
  if (node) walk(node);
  return { text: plain ? { part: plain, html: false } : html ? { part: html, html: true } : undefined, attachments };
}

async function snippetOf(text: string, html: boolean, length: number): Promise<string> {
  // mailparser's own html-to-text (entities, tags, scripts), on the part alone.
  const plain = html ? ((await simpleParser(`Content-Type: text/html; charset=utf-8\r\n\r\n${text}`)).text ?? '') : text;
  // Quoted replies (`> …`) and the line introducing them say nothing new.
  const lines = plain.split(/\r?\n/).filter((line) => !line.startsWith('>'));
  return lines.join(' ').replace(/\s+/g, ' ').trim().slice(0, length);
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

async function* read(stream: string, state: StreamState | undefined, config: ImapConfig, ctx: ConnectorContext): AsyncGenerator<RecordPage> {
  if (stream !== MESSAGES_STREAM) throw new ConnectorError(`The IMAP source ${ctx.source} has no stream '${stream}'.`, 'config');
  const current = stateOf(state);
  const ownDomains = (config.own_domains ?? []).map((domain) => domain.toLowerCase());
  const afterHours = config.awaiting_reply_after_hours ?? 48;
  const batch = config.batch_size ?? 200;
  const imap = await connect(config, ctx);
  try {
    for (const folder of config.folders ?? ['INBOX']) {
      const box = await imap.mailboxOpen(folder, { readOnly: true }).catch((error: Error) => {
        throw new ConnectorError(`The folder '${folder}' cannot be opened: ${error.message}`, 'config', { cause: error });
      });
      const uidvalidity = String(box.uidValidity);
      let folderState: FolderState | undefined = current.folders[folder];
      if (folderState && folderState.uidvalidity !== uidvalidity) {
        ctx.log.warn({ source: ctx.source, folder, was: folderState.uidvalidity, now: uidvalidity }, 'UIDVALIDITY changed: reading the folder again');
        folderState = undefined;
      }
      folderState ??= { uidvalidity, last_uid: 0 };
      const modseq = box.highestModseq === undefined ? undefined : String(box.highestModseq);
      if (modseq !== undefined && folderState.highest_modseq === modseq && folderState.uid_next === box.uidNext) continue;

      while (folderState.last_uid + 1 < box.uidNext) {
        if (ctx.signal?.aborted) return;
        const from = folderState.last_uid + 1;
        const to = Math.min(from + batch - 1, box.uidNext - 1);
        const fetched: FetchMessageObject[] = [];
        for await (const message of imap.fetch(`${from}:${to}`, { uid: true, envelope: true, internalDate: true, bodyStructure: true, headers: ['references'] }, { uid: true })) {
          if (message.uid >= from) fetched.push(message);
        }
        const records: SourceRecord[] = [];
        const rejected: RejectedRecord[] = [];
        for (const message of fetched) {
          const { text, attachments } = parts(message.bodyStructure);
          let snippet = '';
          if (text && (config.snippet_chars ?? 280) > 0) {
            // Only the text part, at most SNIPPET_BYTES of it: never an attachment's body.
            const download = await imap.download(String(message.uid), text.part, { uid: true, maxBytes: SNIPPET_BYTES });
            if (download && 'content' in download && download.content) snippet = await snippetOf(await readStream(download.content), text.html, config.snippet_chars ?? 280);
          }
          const header = message.headers ? await simpleParser(message.headers, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true }) : undefined;
          const references = header?.references === undefined ? [] : Array.isArray(header.references) ? header.references : header.references.split(/\s+/);
          const result = toRecord({ folder, uid: message.uid, envelope: message.envelope as FetchedMessage['envelope'], internalDate: message.internalDate as Date | undefined, references, snippet, attachments }, ownDomains);
          if ('data' in result) records.push(result);
          else rejected.push(result);
        }
        folderState = { ...folderState, last_uid: to };
        current.folders[folder] = folderState;
        yield { records: withThreads(current, records, afterHours), rejected, state: { ...current } };
      }
      current.folders[folder] = { ...folderState, highest_modseq: modseq, uid_next: box.uidNext };
    }
    // Threads age without new mail: mark those now past the limit.
    const aged = updateThreads(current.threads, [], new Date(), afterHours);
    yield { records: aged.map((data) => ({ externalId: data.message_id, data })), state: { ...current } };
  } finally {
    await imap.logout().catch(() => undefined);
  }
}

/** The page's records with their thread status, plus earlier messages whose status the page changed. */
function withThreads(current: ImapStreamState, records: SourceRecord[], afterHours: number): SourceRecord[] {
  const changed = new Map(updateThreads(current.threads, records.map((record) => record.data as MessageData), new Date(), afterHours).map((data) => [data.message_id, data]));
  const awaiting = new Set(Object.values(current.threads).filter((thread) => thread.awaiting).map((thread) => thread.message.message_id));
  const page = records.map((record) => {
    const data = record.data as MessageData;
    const status = changed.get(data.message_id)?.status ?? (awaiting.has(data.message_id) ? 'awaiting_reply' : data.status);
    changed.delete(data.message_id);
    return { ...record, data: { ...data, status } };
  });
  return [...page, ...[...changed.values()].map((data) => ({ externalId: data.message_id, data }))];
}
