/**
 * A real hub for browser tests: a test database with the example sources synced under the probabilistic matcher
 * (so the review queue has pairs), the API listening on a free port with the built workspace at /ui/, two accounts,
 * and Debian's Chromium driven by playwright-core.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { checkConfig, loadConfig } from '../../hub/config.js';
import { buildApp } from '../../hub/app.js';
import { createUser } from '../../hub/users.js';
import { UI_DIST } from '../../hub/routes/ui.js';
import { saveResolutionSettings } from '../../identity-resolution/probabilistic-matcher.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTestHub, syncNow, type TestHub } from '../helpers/hub.js';

export const CHROMIUM = '/usr/bin/chromium';
export const chromiumMissing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium): the browser tests are skipped`;

// Chromium as the machine allows it: no sandbox as root, no GPU, and no calls home (this network refuses them).
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];

export const PASSWORD = 'a long test password';
export const USERS = { steward: 'sam', admin: 'ada' } as const;

export interface Workspace {
  db: TestDatabase;
  hub: TestHub;
  app: FastifyInstance;
  /** http://127.0.0.1:<port> */
  base: string;
  browser: Browser;
  stop(): Promise<void>;
}

/** Builds ui/dist when a checkout has not built it yet (npm install does, through `prepare`). */
function ensureBuiltUi(): void {
  if (!existsSync(`${UI_DIST}index.html`)) execFileSync('npm', ['run', 'build:ui'], { stdio: 'inherit' });
}

export async function startWorkspace(): Promise<Workspace> {
  ensureBuiltUi();
  const db = await createTestDatabase();
  const example = await loadConfig('examples/hub.config.yaml');
  const config = { ...example, resolution: checkConfig({ sources: [], resolution: { matcher: 'probabilistic' } }, 'e2e.yaml').resolution };
  const hub = await startTestHub(db, example.path, config);
  await saveResolutionSettings(db.pool, config.resolution);
  for (const source of config.sources) await syncNow(hub, source.name);
  await createUser(db.pool, USERS.steward, 'steward', PASSWORD);
  await createUser(db.pool, USERS.admin, 'admin', PASSWORD);

  const app = await buildApp(hub);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  // playwright-core starts each browser with a fresh, temporary --user-data-dir of its own (it refuses the flag).
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  return {
    db,
    hub,
    app,
    base,
    browser,
    stop: async () => {
      await browser.close();
      await app.close();
      await hub.stop();
      await db.drop();
    },
  };
}

/** A workspace for the tests of the enclosing describe: started before them (in `current`), stopped after them. */
export function withWorkspace(): { current: Workspace } {
  const holder = {} as { current: Workspace };
  beforeAll(async () => {
    holder.current = await startWorkspace();
  }, 60_000);
  afterAll(async () => {
    await holder.current?.stop();
  });
  return holder;
}

/** A new browser context (its own cookies) signed in through the sign-in page. */
export async function signedInPage(workspace: Workspace, username: string, path = '/ui/'): Promise<Page> {
  const context = await workspace.browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${workspace.base}${path}`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Sign out').waitFor();
  return page;
}

/** The count in "Source records (n)" of the customer page that is open. */
export async function sourceRecordCount(page: Page): Promise<number> {
  const heading = await page.getByRole('heading', { name: /^Source records \(\d+\)$/ }).textContent();
  return Number(/\((\d+)\)/.exec(heading ?? '')![1]);
}

/** Opens a customer's 360 page and answers its number of source records. */
export async function openCustomer(workspace: Workspace, page: Page, id: string): Promise<number> {
  await page.goto(`${workspace.base}/ui/customers/${id}`);
  return sourceRecordCount(page);
}
