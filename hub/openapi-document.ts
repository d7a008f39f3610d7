/** The API's OpenAPI document, built from the routes' schemas without a database (scripts/generate.ts writes it). */
import type { Pool } from './db/database.js';
import { silentLogger } from './log.js';
import { buildApp } from './app.js';

/** Building the routes never queries: a pool that fails loudly proves it. */
const noDatabase = new Proxy({} as Pool, {
  get: (_target, property) => {
    if (property === 'then') return undefined;
    return () => {
      throw new Error(`openApiDocument() needs no database, yet pool.${String(property)} was called.`);
    };
  },
});

export async function openApiDocument(): Promise<object> {
  const app = await buildApp({ pool: noDatabase, config: { sources: [], baseDir: '.', path: 'hub.config.yaml' }, log: silentLogger });
  try {
    await app.ready();
    return app.swagger();
  } finally {
    await app.close();
  }
}
