import { describe, expect, it } from 'vitest';
import { ConnectorError, type RecordPage } from './contract.js';
import { IdSweep } from './id-sweep.js';

/** A source's ids listed as the connectors ask for them: the next `limit` after `afterId`, ascending. */
const listOf = (all: number[]) => async (afterId: number, limit: number) => all.filter((id) => id > afterId).slice(0, limit);

async function pagesOf(sweep: IdSweep, list: (afterId: number, limit: number) => Promise<unknown>): Promise<RecordPage[]> {
  const pages: RecordPage[] = [];
  for await (const page of sweep.pages(list as (afterId: number, limit: number) => Promise<number[]>, 2, () => sweep.checkpoint(), { done: 0 })) pages.push(page);
  return pages;
}

describe('IdSweep', () => {
  it('lists every id once, the first page marked as the start and the last as the end, then is not due again', async () => {
    const sweep = new IdSweep(undefined, 24, 'test');
    const pages = await pagesOf(sweep, listOf([3, 5, 8, 13, 21]));
    expect(pages.map((page) => [page.present, page.sweep])).toEqual([
      [['3', '5'], { start: true }],
      [['8', '13'], {}],
      [['21'], { end: true }],
    ]);
    expect(pages[1].state).toEqual({ sweep_after_id: 13 });
    expect(await pagesOf(new IdSweep(pages[2].state, 24, 'test'), listOf([3]))).toEqual([]);
  });

  it('fails, instead of listing for ever or marking live records deleted, when the ids do not follow the last one', async () => {
    const ignoresTheBound = async () => [3, 5];
    await expect(pagesOf(new IdSweep(undefined, 24, 'test model'), ignoresTheBound)).rejects.toThrow(
      new ConnectorError('test model: a deletion sweep got id 3 after 5; it lists integer ids in ascending order after the last one', 'system'),
    );
    await expect(pagesOf(new IdSweep(undefined, 24, 'test model'), async () => [3, '5'])).rejects.toThrow(/got id "5" after 3/);
    await expect(pagesOf(new IdSweep(undefined, 24, 'test model'), async () => ({ ids: [3] }))).rejects.toThrow(/got \{"ids":\[3\]\} instead of a list of ids/);
  });
});
