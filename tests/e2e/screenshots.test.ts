/**
 * The README's pictures of the workspace (docs/screenshots/*.png), taken from a hub on the example data.
 * Only with HUB_SCREENSHOTS=1 (`npm run screenshots`): they are documentation, not a check for every test run.
 */
import { mkdir, stat } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { chromiumMissing, signedInPage, withWorkspace, USERS } from './workspace.js';

const OUT = 'docs/screenshots';

describe.runIf(process.env.HUB_SCREENSHOTS === '1' && !chromiumMissing)('screenshots of the steward workspace', { timeout: 60_000 }, () => {
  const workspace = withWorkspace();
  beforeAll(async () => {
    await mkdir(OUT, { recursive: true });
  });

  it('takes the queue, a pair with its waterfall, a customer 360, the overview and the connectors', async () => {
    const page = await signedInPage(workspace.current, USERS.admin);
    const shoot = async (name: string) => {
      await page.screenshot({ path: `${OUT}/${name}.png`, fullPage: true });
      return name;
    };
    const taken: string[] = [];

    await page.goto(`${workspace.current.base}/ui/review`);
    await page.locator('.queue li').first().waitFor();
    await page.keyboard.press('?');
    taken.push(await shoot('review-queue'));
    await page.keyboard.press('?');

    await page.goto(`${workspace.current.base}/ui/review?kind=pair`);
    await page.locator('.queue li').first().waitFor();
    await page.keyboard.press('Enter');
    await page.getByRole('img', { name: 'Match weight waterfall' }).waitFor();
    taken.push(await shoot('pair-detail'));

    const { rows } = await workspace.current.db.pool.query<{ golden_id: string }>(
      'select golden_id from cluster_membership where valid_to is null group by golden_id order by count(*) desc, golden_id limit 1',
    );
    await page.goto(`${workspace.current.base}/ui/customers/${rows[0].golden_id}`);
    await page.getByRole('heading', { name: /^Source records/ }).waitFor();
    await page.getByText('Timeline').waitFor();
    taken.push(await shoot('customer-360'));

    await page.goto(`${workspace.current.base}/ui/overview`);
    await page.locator('.charts .chart').first().waitFor();
    taken.push(await shoot('overview'));

    await page.goto(`${workspace.current.base}/ui/connectors`);
    await page.locator('article.source .runs').first().waitFor();
    taken.push(await shoot('connectors'));

    // A page that rendered nothing compresses to a few hundred bytes.
    for (const name of taken) expect((await stat(`${OUT}/${name}.png`)).size, name).toBeGreaterThan(10_000);
  });
});
