/**
 * An inclusive cursor with de-duplication, for streams ordered by a change timestamp. Requests ask for
 * `>=` the cursor (minus an optional lookback), so records sharing the boundary timestamp are read
 * again rather than lost (Airbyte #10782, #14732); the versions already emitted (id, timestamp and a fingerprint
 * of the content) are kept in the state and skipped. The fingerprint matters where timestamps are in seconds: a record
 * changed twice within one second and read between the two changes comes back with the same timestamp, and must not
 * be skipped. The cursor never moves backwards.
 */
import { contentHash } from '../../hub/stable-json.js';
import type { StreamState } from './contract.js';

/** The checkpoint of an incremental stream: the cursor and the records emitted at or near it. */
export interface IncrementalState extends StreamState {
  /** Greatest cursor value emitted so far, as the source wrote it. */
  cursor?: string;
  /**
   * id → [cursor value, fingerprint of the content], for records emitted within `windowMs` of the cursor. A bare
   * cursor value, as states saved before fingerprints hold, stands for any content.
   */
  seen?: Record<string, SeenVersion | string>;
}

type SeenVersion = [value: string, fingerprint?: string];

/** A short hash of a record as the source sent it, whatever the order of its keys: enough to tell two versions apart. */
function fingerprintOf(content: unknown): string {
  return contentHash(content).slice(0, 16);
}

export interface IncrementalOptions {
  /** How far before the cursor records are re-read and remembered (the lookback); 0 remembers only the boundary. */
  windowMs?: number;
  /** The cursor value as epoch milliseconds; default Date.parse. NaN marks a value that cannot be a cursor. */
  toMs?: (value: string) => number;
}

export class IncrementalCursor {
  private cursor: string | undefined;
  private cursorMs: number;
  private readonly seen: Map<string, SeenVersion>;
  private readonly windowMs: number;
  readonly toMs: (value: string) => number;

  constructor(state: StreamState | undefined, options: IncrementalOptions = {}) {
    this.windowMs = options.windowMs ?? 0;
    this.toMs = options.toMs ?? ((value) => Date.parse(value));
    const cursor = typeof state?.cursor === 'string' ? state.cursor : undefined;
    this.cursor = cursor !== undefined && !Number.isNaN(this.toMs(cursor)) ? cursor : undefined;
    this.cursorMs = this.cursor === undefined ? -Infinity : this.toMs(this.cursor);
    const seen = state?.seen && typeof state.seen === 'object' ? (state.seen as Record<string, unknown>) : {};
    this.seen = new Map(
      Object.entries(seen).flatMap(([id, entry]): [string, SeenVersion][] => {
        if (typeof entry === 'string') return [[id, [entry]]];
        return Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'string' ? [[id, [entry[0], entry[1]]]] : [];
      }),
    );
  }

  /** The cursor to ask from: the saved one minus the lookback, or undefined on a first run. */
  from(): { value: string; ms: number } | undefined {
    return this.cursor === undefined ? undefined : { value: this.cursor, ms: this.cursorMs - this.windowMs };
  }

  get value(): string | undefined {
    return this.cursor;
  }

  /** Whether `value` can be a cursor (callers reject records whose value cannot). */
  valid(value: unknown): value is string {
    return typeof value === 'string' && !Number.isNaN(this.toMs(value));
  }

  /**
   * Takes one record's id, cursor value and content: false when the same version was already emitted (a
   * boundary or lookback re-read), true when it is new, and then it counts towards the cursor.
   */
  accept(id: string, value: string, content: unknown): boolean {
    const fingerprint = fingerprintOf(content);
    const [seenValue, seenFingerprint = fingerprint] = this.seen.get(id) ?? [];
    if (seenValue === value && seenFingerprint === fingerprint) return false;
    this.seen.set(id, [value, fingerprint]);
    const ms = this.toMs(value);
    // An older value than the cursor (a late write, a clock skew) is emitted but never moves the cursor back.
    if (ms > this.cursorMs) {
      this.cursor = value;
      this.cursorMs = ms;
    }
    return true;
  }

  /**
   * The state to save with the page just read: entries too old to be re-read are dropped. A stream not
   * ordered by the cursor passes the time its unfinished read started from, to keep the entries it may meet again.
   */
  state(keepFromMs = Infinity): IncrementalState {
    const oldest = Math.min(this.cursorMs - this.windowMs, keepFromMs);
    for (const [id, [value]] of this.seen) if (this.toMs(value) < oldest) this.seen.delete(id);
    return this.cursor === undefined ? { seen: {} } : { cursor: this.cursor, seen: Object.fromEntries(this.seen) };
  }
}

/** A naive UTC timestamp `YYYY-MM-DD HH:MM:SS` (Odoo's `write_date`) or ISO text without offset, read as UTC. */
export function utcMs(value: string): number {
  const text = value.trim().replace(' ', 'T');
  return Date.parse(/[zZ]|[+-]\d{2}:?\d{2}$/.test(text) ? text : `${text}Z`);
}
