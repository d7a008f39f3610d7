/** Pagination helpers shared by the HTTP connectors: Link headers and a loop-safe page walker. */
import { ConnectorError } from './contract.js';

/**
 * Parses an RFC 8288 `Link` header into `{ rel: url }`, e.g. Shopify's `page_info` links or
 * Freshdesk's and WooCommerce's `rel="next"`. A link with several relations (`rel="next last"`)
 * is listed under each of them. Returns `{}` for a missing or empty header.
 */
export function parseLinkHeader(header: string | null | undefined): Record<string, string> {
  const links: Record<string, string> = {};
  if (!header) return links;
  // Each link is `<url>` followed by `;`-separated parameters; URLs may contain commas and semicolons,
  // so the header is split on the angle brackets rather than on commas.
  for (const match of header.matchAll(/<([^>]*)>([^<]*)/g)) {
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(match[2]);
    if (!rel) continue;
    for (const name of (rel[1] ?? rel[2]).trim().split(/\s+/)) {
      if (name && !(name.toLowerCase() in links)) links[name.toLowerCase()] = match[1];
    }
  }
  return links;
}

/** One fetched page: its items and the request for the page after it, if there is one. */
export interface FetchedPage<Item, Request> {
  items: Item[];
  next?: Request;
}

/** A page as `paginate` yields it, with the request that fetched it (to build checkpoint state from). */
export interface WalkedPage<Item, Request> extends FetchedPage<Item, Request> {
  request: Request;
  /** 1-based page number in this walk. */
  number: number;
}

export interface PaginateOptions<Item, Request> {
  /** Request of the first page: a URL, a cursor, an offset, or any object describing it. */
  first: Request;
  /** Fetches one page; `next` undefined ends the walk. */
  fetch: (request: Request) => Promise<FetchedPage<Item, Request>>;
  /** Identity of a request for loop detection; default: the string itself, or its JSON. */
  key?: (request: Request) => string;
  /** Connector name, for the error message. */
  connector: string;
}

/** How many recent requests are remembered for loop detection: longer loops are cut by the run's page limit. */
export const LOOP_WINDOW = 1000;

/**
 * Walks pages until a page has no `next`. A `next` request equal to one already fetched would loop
 * forever (APIs do return a stale cursor when misused), so it fails the run as a bug ('system')
 * instead of re-reading the same records until the job times out. Only the last LOOP_WINDOW requests
 * are remembered, so a long walk holds bounded memory.
 */
export async function* paginate<Item, Request>(options: PaginateOptions<Item, Request>): AsyncGenerator<WalkedPage<Item, Request>> {
  const key = options.key ?? ((request: Request) => (typeof request === 'string' ? request : JSON.stringify(request)));
  // Page number of each request fetched so far; the key itself may carry an API key in a query
  // string, so it never goes into the message.
  const seen = new Map<string, number>();
  let request: Request | undefined = options.first;
  for (let number = 1; request !== undefined; number++) {
    const first = seen.get(key(request));
    if (first !== undefined) {
      throw new ConnectorError(
        `${options.connector}: page loop detected: page ${number} asks for the same request as page ${first}`,
        'system',
      );
    }
    seen.set(key(request), number);
    // A Map iterates in insertion order: the first key is the oldest.
    if (seen.size > LOOP_WINDOW) seen.delete(seen.keys().next().value!);
    const page = await options.fetch(request);
    yield { ...page, request, number };
    request = page.next;
  }
}
