/** Who decided what, when and why: filters map onto the API's query, the CSV comes from the same query. */
import { useState } from 'preact/hooks';
import { api, type Decision } from '../api.js';
import { ErrorBox, Loading, customerLinks, show, undoDecision, useLoad, when, TableHead } from '../components.js';
import { navigate } from '../router.js';

const KINDS = ['merge', 'keep_apart', 'defer', 'split', 'merge_customers', 'pin', 'unpin', 'choose'];
const FILTERS = ['actor', 'kind', 'golden_id', 'since', 'until'] as const;

export function AuditPage({ search }: { search: URLSearchParams }) {
  const filters = Object.fromEntries(FILTERS.map((name) => [name, search.get(name) || undefined]));
  const key = search.toString();
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const log = useLoad(() => api.decisions({ ...filters, cursor, limit: '100' }), `${key}|${cursor}`);
  const [error, setError] = useState<Error | null>(null);
  const undo = (decision: Decision) => undoDecision(decision).then(log.reload, setError);
  const apply = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const params = new URLSearchParams();
    for (const name of FILTERS) {
      const value = String(form.get(name) ?? '').trim();
      if (value) params.set(name, name === 'since' || name === 'until' ? new Date(value).toISOString() : value);
    }
    setCursor(undefined);
    navigate(`/audit${params.size ? `?${params}` : ''}`);
  };
  const local = (iso?: string) => (iso ? iso.slice(0, 16) : '');
  return (
    <section class="audit">
      <header class="page-head">
        <h1>Audit log</h1>
        <a class="button" href={api.decisionsCsvUrl(filters)} download="decisions.csv">
          Download CSV
        </a>
      </header>
      <form class="filters-form" onSubmit={apply}>
        <input name="actor" placeholder="actor, e.g. user:ada" defaultValue={filters.actor} aria-label="actor" />
        <select name="kind" defaultValue={filters.kind ?? ''} aria-label="kind">
          <option value="">any kind</option>
          {KINDS.map((kind) => (
            <option key={kind} value={kind}>
              {kind}
            </option>
          ))}
        </select>
        <input name="golden_id" placeholder="customer, e.g. cus_42" defaultValue={filters.golden_id} aria-label="customer" />
        <label>
          since <input name="since" type="datetime-local" defaultValue={local(filters.since)} />
        </label>
        <label>
          until <input name="until" type="datetime-local" defaultValue={local(filters.until)} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ErrorBox error={error} />
      <Loading loaded={log}>
        {() => (
          <>
            <table class="log">
              <TableHead columns={['when', 'who', 'what', 'customers', 'details', 'why', '']} />
              <tbody>
                {log.data!.items.map((decision) => (
                  <tr key={decision.id} class={decision.undone_at ? 'undone' : ''}>
                    <td>{when(decision.created_at)}</td>
                    <td>{decision.actor}</td>
                    <td>
                      {decision.kind} {decision.review_item_id && <small class="muted">{decision.review_item_id}</small>}
                    </td>
                    <td>{customerLinks(decision.golden_ids)}</td>
                    <td>
                      {decision.attribute && `${decision.attribute} = ${show(decision.value)}`}
                      {decision.raw_record_ids.length > 0 && <small class="muted"> records {decision.raw_record_ids.join(', ')}</small>}
                    </td>
                    <td>{decision.reason ?? ''}</td>
                    <td>
                      {decision.undone_at ? (
                        <small class="muted">
                          undone {when(decision.undone_at)} by {decision.undone_by}
                        </small>
                      ) : (
                        <button type="button" onClick={() => undo(decision)}>
                          Undo
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {log.data!.items.length === 0 && <p class="muted">No decisions match.</p>}
            {log.data!.next_cursor && (
              <button type="button" onClick={() => setCursor(log.data!.next_cursor ?? undefined)}>
                Older decisions
              </button>
            )}
          </>
        )}
      </Loading>
    </section>
  );
}
