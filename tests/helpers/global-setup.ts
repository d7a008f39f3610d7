/**
 * One PostgreSQL server for the whole test run: DATABASE_URL's server when set, else an embedded
 * one in a temporary folder. Test files create their own databases on it (tests/helpers/db.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../hub/db/embedded.js';

declare module 'vitest' {
  export interface ProvidedContext {
    serverUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.DATABASE_URL) {
    project.provide('serverUrl', process.env.DATABASE_URL);
    return async () => undefined;
  }
  const dir = await mkdtemp(join(tmpdir(), 'hub-test-pg-'));
  const embedded = await startEmbeddedPostgres(dir);
  project.provide('serverUrl', embedded.adminUrl);
  return async () => {
    await embedded.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
