/** Small pieces every page uses: loading state, errors, values, and the last decision (which `u` undoes). */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, api, type Decision, type DecisionResult } from './api.js';
import { href } from './router.js';

export interface Loaded<T> {
  data: T | null;
  error: ApiError | Error | null;
  loading: boolean;
  reload: () => void;
}

/** Loads once per change of `key` (and on reload()), keeping the previous data while a reload runs. */
export function useLoad<T>(load: () => Promise<T>, key: string): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: Error | null; loading: boolean }>({ data: null, error: null, loading: true });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    let current = true;
    setState((previous) => ({ ...previous, loading: true }));
    load().then(
      (data) => current && setState({ data, error: null, loading: false }),
      (error: Error) => current && setState({ data: null, error, loading: false }),
    );
    return () => {
      current = false;
    };
  }, [key, generation]);
  const reload = useCallback(() => setGeneration((n) => n + 1), []);
  return { ...state, reload };
}

export function ErrorBox({ error }: { error: Error | null | undefined }) {
  if (!error) return null;
  const message = error instanceof ApiError && error.status === 403 ? `${error.message} (admin role needed for this page or action)` : error.message;
  return (
    <p class="error" role="alert">
      {message}
    </p>
  );
}

export function Loading({ loaded, children }: { loaded: Loaded<unknown>; children: () => ComponentChildren }) {
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  if (loaded.data === null) return <p class="muted">Loading…</p>;
  return <>{children()}</>;
}

/** A table's header row. */
export function TableHead({ columns }: { columns: string[] }) {
  return (
    <thead>
      <tr>
        {columns.map((column, index) => (
          <th key={index}>{column}</th>
        ))}
      </tr>
    </thead>
  );
}

export function show(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.map(show).join(', ');
  // Keys sorted: the same address reads the same whichever order its source (or jsonb) gave the keys in.
  if (typeof value === 'object')
    return Object.entries(value as Record<string, unknown>)
      .sort(([a], [b]) => a.localeCompare(b))
      .filter(([, v]) => v !== null && v !== undefined && v !== '')
      .map(([k, v]) => `${k}: ${show(v)}`)
      .join('; ');
  return String(value);
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toISOString().slice(0, 16).replace('T', ' ');
}

export const customerLink = (id: string) => (
  <a href={href(`/customers/${encodeURIComponent(id)}`)} key={id}>
    {id}
  </a>
);

/** Several customers, comma-separated. */
export const customerLinks = (ids: string[]) => ids.map((id, index) => [index > 0 && ', ', customerLink(id)]);

// The last decision taken in this tab: the queue's `u` and the undo bar act on it. Kept in sessionStorage so that
// a reload does not lose the way back.
const LAST_DECISION_KEY = 'hub.last-decision';
let lastDecision: DecisionResult | null = JSON.parse(sessionStorage.getItem(LAST_DECISION_KEY) ?? 'null');
const listeners = new Set<() => void>();

export function rememberDecision(result: DecisionResult | null): void {
  lastDecision = result;
  if (result) sessionStorage.setItem(LAST_DECISION_KEY, JSON.stringify(result));
  else sessionStorage.removeItem(LAST_DECISION_KEY);
  for (const listener of listeners) listener();
}

export function useLastDecision(): DecisionResult | null {
  const [value, setValue] = useState(lastDecision);
  useEffect(() => {
    const update = () => setValue(lastDecision);
    listeners.add(update);
    return () => void listeners.delete(update);
  }, []);
  return value;
}

/** Undoes a decision (the undo bar forgets it, if it was the last); answers what to tell the steward. */
export async function undoDecision(decision: Decision): Promise<string> {
  const undone = await api.undo(decision.id);
  if (lastDecision?.decision.id === decision.id) rememberDecision(null);
  return `Undid ${describeDecision(decision)}; now ${undone.customers.join(', ') || 'no customer'}.`;
}

export async function undoLastDecision(): Promise<string> {
  return lastDecision ? undoDecision(lastDecision.decision) : 'Nothing to undo.';
}

export function describeDecision(decision: Decision): string {
  return `${decision.kind.replace('_', ' ')} ${decision.review_item_id ?? decision.golden_ids.join(' + ')}`;
}

/** The bar under the header: what was just decided, where the records are now, and a way back. */
export function LastDecisionBar() {
  const last = useLastDecision();
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<Error | null>(null);
  useEffect(() => {
    if (last) setMessage(null);
  }, [last]);
  if (!last && !message && !error) return null;
  const undo = () => undoLastDecision().then(setMessage, setError);
  return (
    <div class="decision-bar" role="status">
      {last ? (
        <>
          <span>
            Decided: <strong>{describeDecision(last.decision)}</strong> → {customerLinks(last.customers)}
          </span>
          <button type="button" onClick={undo} title="Undo (u)">
            Undo
          </button>
        </>
      ) : (
        <span>{message}</span>
      )}
      <ErrorBox error={error} />
    </div>
  );
}
