/**
 * Serves the steward workspace (ui/, built to ui/dist by `npm run build:ui`) at /ui/. The files are public:
 * what they call is the protected API. Client-side routes (/ui/review/pair-3) answer index.html.
 */
import { readFile } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { HubError } from '../errors.js';

export const UI_DIST = fileURLToPath(new URL('../../ui/dist/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

// Everything the workspace loads comes from the hub itself: no CDN, no inline script.
const CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

async function readDistFile(distDir: string, relative: string): Promise<Buffer | undefined> {
  const path = resolve(distDir, relative);
  // A path that climbs out of ui/dist (../) is simply not a file of the workspace.
  if (!path.startsWith(distDir.endsWith(sep) ? distDir : distDir + sep)) return undefined;
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
    throw error;
  }
}

function send(reply: FastifyReply, file: string, body: Buffer) {
  // Vite puts a content hash in every asset's name, so assets never change under their name; index.html must be asked again.
  const cacheControl = file.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache';
  return reply
    .header('content-type', CONTENT_TYPES[extname(file)] ?? 'application/octet-stream')
    .header('cache-control', cacheControl)
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', CONTENT_SECURITY_POLICY)
    .send(body);
}

export async function uiRoutes(app: FastifyInstance, options: { distDir?: string } = {}): Promise<void> {
  const distDir = options.distDir ?? UI_DIST;
  const route = { config: { scope: 'public' as const }, schema: { hide: true } };

  app.get('/ui', route, async (_request, reply) => reply.redirect('/ui/', 301));

  app.get<{ Params: { '*': string } }>('/ui/*', route, async (request, reply) => {
    const file = request.params['*'] || 'index.html';
    const body = await readDistFile(distDir, file);
    if (body) return send(reply, file, body);
    // A missing asset is a 404; any other path is a page of the workspace, which index.html routes.
    if (file !== 'index.html' && (file.startsWith('assets/') || extname(file) !== '')) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'file of the steward workspace', id: file });
    const index = await readDistFile(distDir, 'index.html');
    if (!index) throw new HubError('HUB_ERR_UNAVAILABLE', { reason: 'The steward workspace is not built: run `npm run build:ui` (npm install runs it too), then reload.' });
    return send(reply, 'index.html', index);
  });
}
