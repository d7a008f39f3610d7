/**
 * A local HTTP server standing in for a vendor API in CLI tests (the `hub` process cannot use nock): each
 * request is answered by the first route whose method and path match, from the connectors' own fixtures.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface StubRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  headers: IncomingMessage['headers'];
}

export interface StubAnswer {
  status?: number;
  headers?: Record<string, string>;
  body: unknown;
}

export type StubRoute = (request: StubRequest, base: string) => StubAnswer | undefined;

export interface StubApi {
  base: string;
  requests: StubRequest[];
  close(): Promise<void>;
}

export async function startStubApi(routes: StubRoute[]): Promise<StubApi> {
  const requests: StubRequest[] = [];
  let base = '';
  const server: Server = createServer((incoming, response) => {
    let text = '';
    incoming.on('data', (chunk) => (text += chunk));
    incoming.on('end', () => {
      const url = new URL(incoming.url ?? '/', base);
      const request: StubRequest = { method: incoming.method ?? 'GET', path: url.pathname, query: url.searchParams, body: text ? JSON.parse(text) : undefined, headers: incoming.headers };
      requests.push(request);
      const answer = routes.map((route) => route(request, base)).find(Boolean) ?? { status: 404, body: { error: `no stub for ${request.method} ${request.path}` } };
      response.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers });
      response.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { base, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
