/**
 * The change log: every change of a golden record, at a position that follows commit order, so a reader
 * asking for everything after position N never misses a row that committed late. Append at the end of a
 * transaction: the counter row stays locked until commit.
 */
import type { PoolClient } from '../hub/db/database.js';
import { appendChangeRows, type ChangeRow } from './sql.js';

export type ChangeKind = 'created' | 'updated' | 'merged' | 'split' | 'retired' | 'erased';

/** Why a golden record changed: a sync run, a steward decision, an API call or a source's removal; and who did it. */
export interface ChangeCause {
  cause: 'run' | 'decision' | 'api' | 'source_removal';
  causeId?: string;
  actor: string;
}

export interface Change {
  goldenId: string;
  kind: ChangeKind;
  changed?: string[];
  detail?: Record<string, unknown>;
}

export async function appendChanges(client: PoolClient, changes: Change[], cause: ChangeCause): Promise<void> {
  if (changes.length === 0) return;
  await client.query(appendChangeRows(changeRows(changes, cause)));
}

/** The rows of the change log that record `changes` (appendChangeRows; a resolution pass writes them with the rest, sql.writePass). */
export function changeRows(changes: Change[], cause: ChangeCause): ChangeRow[] {
  return changes.map((change) => ({
    goldenId: change.goldenId,
    kind: change.kind,
    changed: change.changed ?? [],
    detail: change.detail ?? {},
    cause: cause.cause,
    causeId: cause.causeId ?? null,
    actor: cause.actor,
  }));
}
