/**
 * Issue 7 in a real browser: a steward works the review queue: opens a pair, merges it, sees the customer change,
 * undoes it; resolves a conflict. Headless Chromium against a hub on the example data.
 */
import { describe, expect, it } from 'vitest';
import { chromiumMissing, openCustomer, signedInPage, sourceRecordCount, withWorkspace, USERS } from './workspace.js';

if (chromiumMissing) console.warn(chromiumMissing);

describe.skipIf(chromiumMissing)('the review queue in Chromium', { timeout: 60_000 }, () => {
  const workspace = withWorkspace();

  it('works from the keyboard: j moves, d defers (the item leaves the queue), u undoes, ? lists the keys', async () => {
    const page = await signedInPage(workspace.current, USERS.steward, '/ui/review?kind=pair');
    const items = page.locator('.queue li');
    await items.first().waitFor();
    const before = await items.count();
    expect(before).toBeGreaterThan(1);
    await page.keyboard.press('j');
    await expect.poll(() => items.nth(1).getAttribute('class')).toBe('selected');
    const second = (await items.nth(1).locator('a').getAttribute('href'))!.split('/').pop()!.split('?')[0];
    await page.keyboard.press('d');
    await page.locator('.decision-bar').getByText(`Decided: defer ${second}`).waitFor();
    await expect.poll(() => items.count()).toBe(before - 1);
    await page.keyboard.press('u');
    await page.getByText(new RegExp(`^Undid defer ${second}`)).first().waitFor();
    await expect.poll(() => items.count()).toBe(before);
    await page.keyboard.press('?');
    await page.getByLabel('Keyboard shortcuts').getByText('undo the last decision').waitFor();
    await page.context().close();
  });

  it('opens a pair, merges it (the next item opens), shows the merged customer, and undoes the merge', async () => {
    const page = await signedInPage(workspace.current, USERS.steward, '/ui/review?kind=pair');
    await page.locator('.queue li').first().waitFor();
    // The keyboard: Enter opens the selected (first) item.
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/ui\/review\/pair-\d+/);
    const itemUrl = page.url();
    await page.getByRole('img', { name: 'Match weight waterfall' }).waitFor();
    const [left, right] = await page.locator('.side-by-side thead a').allTextContents();
    expect(left).toMatch(/^cus_\d+$/);
    expect(right).toMatch(/^cus_\d+$/);
    expect(left).not.toBe(right);
    const probe = await page.context().newPage();
    const countOf = (id: string) => openCustomer(workspace.current, probe, id);
    const [leftCount, rightCount] = [await countOf(left), await countOf(right)];

    await page.getByRole('button', { name: /^Merge/ }).click();
    const bar = page.locator('.decision-bar');
    await bar.getByText(/Decided: merge pair-\d+/).waitFor();
    // The next item opened in place of the decided one.
    await expect.poll(() => page.url()).not.toBe(itemUrl);
    const merged = (await bar.locator('a').first().textContent())!;
    expect([left, right]).toContain(merged);

    await bar.locator('a').first().click();
    await page.waitForURL(new RegExp(`/ui/customers/${merged}$`));
    expect(await sourceRecordCount(page)).toBe(leftCount + rightCount);
    const other = merged === left ? right : left;
    // The other customer's records moved into the merged one: its id now leads to the survivor.
    await page.goto(`${workspace.current.base}/ui/customers/${other}`);
    await page.getByText(`${other} was merged into ${merged}.`).waitFor();

    await page.getByRole('button', { name: 'Undo' }).click();
    const undone = (await page.locator('.decision-bar').getByText(/^Undid merge pair-\d+/).textContent())!;
    // Restored: two customers again, holding the records as before the merge (the resolver may name them anew).
    const now = [...undone.matchAll(/cus_\d+/g)].map((match) => match[0]);
    expect(now).toHaveLength(2);
    const counts: number[] = [];
    for (const id of now) counts.push(await countOf(id));
    expect(counts.sort()).toEqual([leftCount, rightCount].sort());
    await page.context().close();
  });

  it('resolves a conflict by choosing a value, which the customer then shows pinned until unpinned', async () => {
    const page = await signedInPage(workspace.current, USERS.steward, '/ui/review?kind=conflict');
    await page.locator('.queue li').first().getByRole('link').click();
    await page.waitForURL(/\/ui\/review\/conflict-/);
    const [, goldenId, attribute] = /conflict-(cus_\d+)-([a-z_]+)/.exec(page.url())!;
    const candidates = page.locator('form.conflict tbody tr');
    await candidates.first().waitFor();
    // The value that does not survive now: choosing it must change the golden record.
    const rowCount = await candidates.count();
    let chosen = -1;
    for (let i = 0; i < rowCount && chosen < 0; i++) if (!(await candidates.nth(i).textContent())!.includes('survives')) chosen = i;
    expect(chosen).toBeGreaterThanOrEqual(0);
    const value = (await candidates.nth(chosen).locator('td').nth(1).textContent())!;
    await candidates.nth(chosen).getByRole('radio').check();
    await page.getByRole('button', { name: 'Choose this value' }).click();
    await page.locator('.decision-bar').getByText(/Decided: choose conflict-/).waitFor();

    await page.goto(`${workspace.current.base}/ui/customers/${goldenId}`);
    const row = page.locator(`tr[data-attribute="${attribute}"]`);
    await row.getByText('pinned').waitFor();
    expect(await row.locator('.value').textContent()).toContain(value);
    // Unpinned, the attribute is the survivorship rules' again.
    await row.getByRole('button', { name: 'Unpin' }).click();
    await page.getByText(`Unpinned ${attribute}.`).waitFor();
    await expect.poll(() => row.getByText('pinned').count()).toBe(0);
    await page.context().close();
  });

});
