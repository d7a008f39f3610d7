/**
 * Issue 7 in a real browser: signing in, splitting a customer, merging two found by search, the audit log and its
 * CSV, and the connectors page, which is for admins only.
 * Headless Chromium against a hub on the example data (the review queue: review.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { chromiumMissing, openCustomer, PASSWORD, signedInPage, sourceRecordCount, withWorkspace, USERS } from './workspace.js';

if (chromiumMissing) console.warn(chromiumMissing);

describe.skipIf(chromiumMissing)('the steward workspace in Chromium', { timeout: 60_000 }, () => {
  const workspace = withWorkspace();

  it('says so when the password is wrong, and signs in when it is right', async () => {
    const page = await (await workspace.current.browser.newContext()).newPage();
    await page.goto(`${workspace.current.base}/ui/review`);
    await page.getByLabel('Username').fill(USERS.steward);
    await page.getByLabel('Password').fill('not the password at all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/username or the password is wrong/);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Review queue' }).waitFor();
    // The session survives a reload (GET /v1/session), and the CSRF token with it.
    await page.reload();
    await page.getByRole('heading', { name: 'Review queue' }).waitFor();
    await page.context().close();
  });

  it('splits a source record off a customer', async () => {
    const { rows } = await workspace.current.db.pool.query<{ golden_id: string }>(
      'select golden_id from cluster_membership where valid_to is null group by golden_id having count(*) >= 2 order by golden_id limit 1',
    );
    const page = await signedInPage(workspace.current, USERS.steward, `/ui/customers/${rows[0].golden_id}`);
    const before = await sourceRecordCount(page);
    await page.locator('.sources input[type=checkbox]').first().check();
    await page.getByRole('button', { name: 'Split ticked records off' }).click();
    const notice = await page.getByText(/^Split: the records are now in cus_\d+ and cus_\d+\.$/).textContent();
    const customers = /in (cus_\d+) and (cus_\d+)/.exec(notice!)!.slice(1);
    expect(customers).toContain(rows[0].golden_id);
    const created = customers.find((id) => id !== rows[0].golden_id)!;
    // The records are shared between the two customers, none lost (which part keeps the id is the resolver's choice).
    const remaining = await openCustomer(workspace.current, page, rows[0].golden_id);
    expect(remaining).toBeGreaterThan(0);
    expect(remaining + (await openCustomer(workspace.current, page, created))).toBe(before);
    await page.context().close();
  });

  it('finds two customers by name and merges them; the audit log lists the merge and exports it as CSV', async () => {
    const { rows } = await workspace.current.db.pool.query<{ family_name: string }>(
      `select data->>'family_name' as family_name from golden_record where status = 'active' and data ? 'family_name'
       group by 1 having count(*) >= 2 order by 1 limit 1`,
    );
    const page = await signedInPage(workspace.current, USERS.steward, `/ui/customers?q=${encodeURIComponent(rows[0].family_name)}`);
    const ticks = page.locator('table.results input[type=checkbox]');
    await ticks.nth(1).waitFor();
    const ids = [(await ticks.nth(0).getAttribute('aria-label'))!.replace('tick ', ''), (await ticks.nth(1).getAttribute('aria-label'))!.replace('tick ', '')];
    await ticks.nth(0).check();
    await ticks.nth(1).check();
    await page.getByRole('button', { name: 'Merge the two customers' }).click();
    await page.waitForURL(/\/ui\/customers\/cus_\d+$/);
    expect(ids).toContain(page.url().split('/').pop());

    await page.locator('header.top nav').getByRole('link', { name: 'Audit log' }).click();
    await page.getByLabel('kind').selectOption('merge_customers');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/kind=merge_customers/);
    const row = page.locator('table.log tbody tr').first();
    await row.getByText(`user:${USERS.steward}`).waitFor();
    expect(await row.textContent()).toContain(ids[0]);
    const csv = await page.request.get(`${workspace.current.base}${await page.getByRole('link', { name: 'Download CSV' }).getAttribute('href')}`);
    expect(csv.headers()['content-type']).toMatch(/^text\/csv/);
    const lines = (await csv.text()).trim().split('\n');
    expect(lines[0]).toMatch(/^id,kind,actor,/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(`merge_customers,user:${USERS.steward}`);
    await page.context().close();
  });

  it('shows a steward without the admin role no connectors link, and the page says admin role needed', async () => {
    const page = await signedInPage(workspace.current, USERS.steward);
    expect(await page.locator('header.top nav').getByRole('link', { name: 'Connectors' }).count()).toBe(0);
    await page.goto(`${workspace.current.base}/ui/connectors`);
    await page.getByRole('alert').getByText(/admin role needed/).waitFor();
    await page.context().close();
  });

  it('shows an admin the connectors: each source with its runs, and sync now', async () => {
    const page = await signedInPage(workspace.current, USERS.admin);
    await page.locator('header.top nav').getByRole('link', { name: 'Connectors' }).click();
    await page.waitForURL(/\/ui\/connectors$/);
    for (const source of workspace.current.hub.config.sources) await page.getByRole('heading', { name: source.name }).waitFor();
    const card = page.locator('article.source').first();
    // Each card loads its runs after the heading shows.
    await card.locator('.runs tbody tr').first().waitFor();
    // Each run's counts, values left out by `on_error: omit` rules among them.
    expect(await card.locator('.runs thead th').allTextContents()).toEqual(['run', 'status', 'trigger', 'finished', 'read', 'created', 'updated', 'quarantined', 'values left out']);
    expect(await card.locator('.runs tbody tr').first().locator('td').last().textContent()).toMatch(/^\d+$/);
    await card.getByRole('button', { name: 'Sync now' }).click();
    await page.getByText(/^Sync of [a-z0-9-]+ (queued|is already queued or running)/).waitFor();
    await page.context().close();
  });
});
