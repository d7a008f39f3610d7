/** The workspace's files at /ui/ (hub/routes/ui.ts): assets, client-side routes, and a clear answer when it is not built. */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerErrorHandling } from '../hub/errors.js';
import { uiRoutes } from '../hub/routes/ui.js';

let root: string;

async function appServing(distDir: string): Promise<FastifyInstance> {
  const app = Fastify();
  registerErrorHandling(app);
  await app.register(uiRoutes, { distDir });
  await app.ready();
  return app;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hub-ui-'));
  await mkdir(join(root, 'dist/assets'), { recursive: true });
  await writeFile(join(root, 'dist/index.html'), '<!doctype html><title>workspace</title>');
  await writeFile(join(root, 'dist/assets/index-abc123.js'), 'console.log("app")');
  await writeFile(join(root, 'secret.txt'), 'outside the build');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('serving the steward workspace', () => {
  it('answers index.html at /ui/, for client-side routes too, and never caches it', async () => {
    const app = await appServing(join(root, 'dist'));
    for (const url of ['/ui/', '/ui/review/pair-3?kind=pair', '/ui/customers/cus_42']) {
      const response = await app.inject(url);
      expect(response.statusCode, url).toBe(200);
      expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(response.headers['cache-control']).toBe('no-cache');
      expect(response.headers['content-security-policy']).toContain("script-src 'self'");
      expect(response.body).toBe('<!doctype html><title>workspace</title>');
    }
    const redirect = await app.inject('/ui');
    expect(redirect.statusCode).toBe(301);
    expect(redirect.headers.location).toBe('/ui/');
    await app.close();
  });

  it('serves hashed assets for a year, and a missing asset or a path out of the build is a 404', async () => {
    const app = await appServing(join(root, 'dist'));
    const asset = await app.inject('/ui/assets/index-abc123.js');
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(asset.body).toBe('console.log("app")');
    for (const url of ['/ui/assets/index-gone.js', '/ui/..%2fsecret.txt', '/ui/%2e%2e/secret.txt']) {
      const response = await app.inject(url);
      expect(response.statusCode, url).toBe(404);
      expect(response.body).not.toContain('outside the build');
    }
    await app.close();
  });

  it('says to run npm run build:ui when the workspace is not built', async () => {
    const app = await appServing(join(root, 'not-built'));
    const response = await app.inject('/ui/review');
    expect(response.statusCode).toBe(503);
    expect(response.json().error).toEqual({ code: 'HUB_ERR_UNAVAILABLE', message: expect.stringContaining('npm run build:ui') });
    await app.close();
  });
});
