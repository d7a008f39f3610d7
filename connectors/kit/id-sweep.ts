/**
 * Deletion sweeps by id, for sources whose incremental reads never show a deleted record (Odoo, Tryton, Shopify):
 * once per period, after the incremental read, every id of the stream is listed in id order and handed to the hub as
 * ids only (RecordPage.present), the first page marked as the start of a sweep and the last as its end. The hub then
 * marks the records no page listed as deleted. A sweep cut short goes on from its last id in the next run; nothing is
 * deleted before it ends.
 */
import { ConnectorError, sweepMarks, type RecordPage, type StreamState } from './contract.js';

/** The sweep's part of a checkpoint: when the last sweep ended and, while one is under way, the last id it listed. */
export interface IdSweepState extends StreamState {
  swept_at?: string;
  sweep_after_id?: number;
}

/** Whether a sweep every `everyHours` (0: never) is due, the last one having ended at `sweptAt` (none yet: due). */
export function sweepDue(sweptAt: string | undefined, everyHours: number): boolean {
  return everyHours > 0 && (sweptAt === undefined || Date.now() - Date.parse(sweptAt) >= everyHours * 3_600_000);
}

export class IdSweep {
  private sweptAt: string | undefined;
  private afterId: number | undefined;

  /** `everyHours`: how often a sweep is due; 0 never starts one (one under way still ends). `what` names the list in errors. */
  constructor(
    state: StreamState | undefined,
    private readonly everyHours: number,
    private readonly what: string,
  ) {
    this.sweptAt = typeof state?.swept_at === 'string' ? state.swept_at : undefined;
    this.afterId = typeof state?.sweep_after_id === 'number' ? state.sweep_after_id : undefined;
  }

  /** What every checkpoint of the stream carries, so that an incremental page does not forget the sweep. */
  checkpoint(): IdSweepState {
    return { ...(this.sweptAt ? { swept_at: this.sweptAt } : {}), ...(this.afterId === undefined ? {} : { sweep_after_id: this.afterId }) };
  }

  private due(): boolean {
    return this.afterId !== undefined || sweepDue(this.sweptAt, this.everyHours);
  }

  /**
   * The pages of a sweep, when one is due or under way. `list(afterId, limit)` answers the next ids after `afterId` in
   * ascending order; `checkpoint()` the stream's whole checkpoint (which includes this sweep's).
   */
  async *pages(list: (afterId: number, limit: number) => Promise<number[]>, idsPerPage: number, checkpoint: () => StreamState, progress: RecordPage['progress']): AsyncGenerator<RecordPage> {
    if (!this.due()) return;
    for (;;) {
      const start = this.afterId === undefined;
      const ids = checkedIds(await list(this.afterId ?? 0, idsPerPage), this.afterId ?? 0, this.what);
      const end = ids.length < idsPerPage;
      if (end) [this.sweptAt, this.afterId] = [new Date().toISOString(), undefined];
      else this.afterId = ids.at(-1);
      yield { records: [], present: ids.map(String), state: checkpoint(), progress, sweep: sweepMarks(start, end) };
      if (end) return;
    }
  }
}

/**
 * The ids of one page, each an integer greater than the one before it (the first greater than `afterId`): a source that
 * ignored the bound would list the same ids for ever, and one that listed something else would mark live records deleted.
 */
function checkedIds(ids: unknown, afterId: number, what: string): number[] {
  if (!Array.isArray(ids)) throw new ConnectorError(`${what}: a deletion sweep got ${JSON.stringify(ids) ?? 'nothing'} instead of a list of ids`, 'system');
  let previous = afterId;
  for (const id of ids) {
    if (!Number.isSafeInteger(id) || id <= previous) {
      throw new ConnectorError(`${what}: a deletion sweep got id ${JSON.stringify(id) ?? 'missing'} after ${previous}; it lists integer ids in ascending order after the last one`, 'system');
    }
    previous = id;
  }
  return ids;
}
