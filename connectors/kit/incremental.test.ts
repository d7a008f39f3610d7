import { describe, expect, it } from 'vitest';
import { IncrementalCursor } from './incremental.js';

describe('IncrementalCursor', () => {
  const second = '2025-03-01T10:00:00Z';

  it('skips a re-read of the same version, whatever the order of its keys', () => {
    const first = new IncrementalCursor(undefined);
    expect(first.accept('7', second, { id: 7, name: 'Ana', updated_at: second })).toBe(true);

    const next = new IncrementalCursor(first.state());
    expect(next.accept('7', second, { updated_at: second, name: 'Ana', id: 7 })).toBe(false);
    expect(next.state()).toEqual(first.state());
  });

  it('takes a second change made within the same second: same timestamp, other content', () => {
    const first = new IncrementalCursor(undefined);
    first.accept('7', second, { id: 7, email: 'ana@example.com', updated_at: second });
    const saved = first.state();

    const next = new IncrementalCursor(saved);
    expect(next.accept('7', second, { id: 7, email: 'ana.perez@example.com', updated_at: second })).toBe(true);
    expect(next.state().cursor).toBe(second);
    expect(next.state().seen!['7']).not.toEqual(saved.seen!['7']);
    // Read once more, that version is skipped in turn.
    expect(new IncrementalCursor(next.state()).accept('7', second, { id: 7, email: 'ana.perez@example.com', updated_at: second })).toBe(false);
  });

  it('keeps each version as [timestamp, fingerprint] within the lookback, and drops older ones', () => {
    const cursor = new IncrementalCursor(undefined, { windowMs: 60_000 });
    cursor.accept('1', '2025-03-01T09:58:00Z', { id: 1 });
    cursor.accept('2', '2025-03-01T09:59:30Z', { id: 2 });
    cursor.accept('3', second, { id: 3 });

    const { cursor: value, seen } = cursor.state();
    expect(value).toBe(second);
    expect(Object.keys(seen!).sort()).toEqual(['2', '3']);
    expect(seen!['3']).toEqual([second, expect.stringMatching(/^[0-9a-f]{16}$/)]);
  });

  it('reads a state saved before fingerprints: a bare timestamp matches any content of that second', () => {
    const cursor = new IncrementalCursor({ cursor: second, seen: { '7': second } });
    expect(cursor.accept('7', second, { id: 7, anything: true })).toBe(false);
    expect(cursor.accept('7', '2025-03-01T10:00:01Z', { id: 7, anything: true })).toBe(true);
    expect(cursor.state().cursor).toBe('2025-03-01T10:00:01Z');
  });
});
