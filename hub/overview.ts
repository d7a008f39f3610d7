/** The steward's overview: totals now and small series per day (`GET /v1/overview`), from the tables the hub keeps anyway. */
import type { Pool } from './db/database.js';
import * as sql from './steward-sql.js';

export interface Overview {
  totals: { golden_records: number; source_records: Record<string, number>; review_open: number; review_oldest_days: number; quarantine_rate: number };
  series: { day: string; golden_records: number; merges_automatic: number; merges_steward: number; review_backlog: number; quarantined: number; records_read: number }[];
}

const DAY_MS = 86_400_000;

export async function overview(pool: Pool): Promise<Overview> {
  const [totals, review, series] = await Promise.all([
    pool.query<{ golden_records: number; source_records: Record<string, number>; quarantine_rate: number }>(sql.overviewTotals()),
    pool.query<{ open: number; oldest: Date | null }>(sql.openReviewSummary()),
    pool.query<Overview['series'][number]>(sql.overviewSeries()),
  ]);
  const { open, oldest } = review.rows[0];
  return {
    totals: {
      ...totals.rows[0],
      review_open: open,
      review_oldest_days: oldest ? Math.floor((Date.now() - oldest.getTime()) / DAY_MS) : 0,
    },
    series: series.rows,
  };
}
