/** Customer 360: the golden record with where each value came from, its source records (split), pins, value and timeline. */
import { useState } from 'preact/hooks';
import { api, type Customer, type Decision, type DecisionResult, type LineageEntry } from '../api.js';
import { ErrorBox, Loading, customerLink, rememberDecision, show, useLoad, when } from '../components.js';
import { navigate } from '../router.js';

/**
 * The attributes a steward pinned: per attribute, the latest pin/choose/unpin decision still in force decides
 * (an unpin ends a pin; an undone decision counts as never taken).
 */
function pinnedAttributes(decisions: Decision[]): Map<string, unknown> {
  const pins = new Map<string, unknown>();
  const latestFirst = [...decisions].sort((a, b) => b.created_at.localeCompare(a.created_at) || Number(b.id) - Number(a.id));
  const seen = new Set<string>();
  for (const decision of latestFirst) {
    if (!decision.attribute || decision.undone_at || !['pin', 'choose', 'unpin'].includes(decision.kind) || seen.has(decision.attribute)) continue;
    seen.add(decision.attribute);
    if (decision.kind !== 'unpin') pins.set(decision.attribute, decision.value);
  }
  return pins;
}

export function CustomerPage({ id }: { id: string }) {
  const customer = useLoad(() => api.customer(id), id);
  const decisions = useLoad(() => api.decisions({ golden_id: id, limit: '200' }), `${id}|${customer.data?.updated_at}`);
  const timeline = useLoad(() => api.timeline(id), id);
  const [error, setError] = useState<Error | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const applied = (result: DecisionResult, text: string) => {
    rememberDecision(result);
    setError(null);
    setNotice(text);
    // A merge may leave this id behind: follow the records to the customer that holds them now.
    if (!result.customers.includes(id) && result.customers[0]) navigate(`/customers/${encodeURIComponent(result.customers[0])}`);
    else customer.reload();
  };
  const act = (run: () => Promise<DecisionResult>, text: (result: DecisionResult) => string) =>
    run().then((result) => applied(result, text(result)), setError);

  return (
    <section class="customer">
      <Loading loaded={customer}>
        {() => {
          const record = customer.data!;
          // A merged id answers with the surviving customer (the API redirects).
          const shownId = record.id;
          return (
            <>
              <header class="page-head">
                <h1>
                  {show(record.attributes.full_name ?? [record.attributes.given_name, record.attributes.family_name].filter(Boolean).join(' ')) || shownId}{' '}
                  <small class="muted">{shownId}</small>
                </h1>
                <span class="muted">
                  created {when(record.created_at)} · updated {when(record.updated_at)}
                </span>
              </header>
              {shownId !== id && <p class="notice">{id} was merged into {shownId}.</p>}
              {notice && <p class="notice">{notice}</p>}
              <ErrorBox error={error} />
              <div class="columns">
                <GoldenRecord
                  customer={record}
                  pins={decisions.data ? pinnedAttributes(decisions.data.items) : new Map()}
                  onPin={(attribute, value, reason) => act(() => api.pin(shownId, attribute, value, reason), () => `Pinned ${attribute}.`)}
                  onUnpin={(attribute) => act(() => api.unpin(shownId, attribute), () => `Unpinned ${attribute}.`)}
                />
                <div>
                  <ValueFigures customer={record} />
                  <SourceRecords
                    customer={record}
                    onSplit={(ids, reason) => act(() => api.split(shownId, ids, reason), (result) => `Split: the records are now in ${result.customers.join(' and ')}.`)}
                  />
                </div>
              </div>
              <h2>Timeline</h2>
              <Loading loaded={timeline}>
                {() =>
                  timeline.data!.data.length === 0 ? (
                    <p class="muted">No interactions.</p>
                  ) : (
                    <ol class="timeline">
                      {timeline.data!.data.map((item, index) => (
                        <li key={index}>
                          <time>{when(item.occurred_at)}</time> <span class="kind">{item.kind}</span> {item.summary ?? ''} {item.status ?? ''}{' '}
                          {item.amount !== undefined ? `${item.amount} ${item.currency ?? ''}` : ''} <small class="muted">{item.source_record.source}</small>
                        </li>
                      ))}
                    </ol>
                  )
                }
              </Loading>
            </>
          );
        }}
      </Loading>
    </section>
  );
}

function GoldenRecord({
  customer,
  pins,
  onPin,
  onUnpin,
}: {
  customer: Customer;
  pins: Map<string, unknown>;
  onPin: (attribute: string, value: unknown, reason?: string) => void;
  onUnpin: (attribute: string) => void;
}) {
  const [editing, setEditing] = useState<string | null>(null);
  const attributes = [...new Set([...Object.keys(customer.attributes), ...Object.keys(customer.alternates ?? {})])].sort();
  const origin = (entries: LineageEntry[] | undefined) =>
    (entries ?? []).map((entry, index) => (
      <span key={index} class="origin" title={`raw record ${entry.raw_record_id}, observed ${when(entry.observed_at)}`}>
        {entry.source}
      </span>
    ));
  return (
    <table class="golden">
      <caption>Golden record: each value with its source</caption>
      <tbody>
        {attributes.map((attribute) => {
          const candidates = [...(customer.lineage[attribute] ?? []), ...(customer.alternates?.[attribute] ?? [])];
          const options = [...new Map(candidates.map((entry) => [JSON.stringify(entry.value), entry.value])).values()];
          return (
            <tr key={attribute} data-attribute={attribute}>
              <th>{attribute}</th>
              <td>
                <span class="value">{show(customer.attributes[attribute])}</span> {pins.has(attribute) && <span class="pin">pinned</span>} {origin(customer.lineage[attribute])}
                {(customer.alternates?.[attribute]?.length ?? 0) > 0 && (
                  <details>
                    <summary>{customer.alternates[attribute].length} other value(s)</summary>
                    <ul>
                      {customer.alternates[attribute].map((entry, index) => (
                        <li key={index}>
                          {show(entry.value)} <small class="muted">{entry.source}, {when(entry.observed_at)}</small>
                        </li>
                      ))}
                    </ul>
                  </details>
                )}
                {editing === attribute && (
                  <PinForm
                    attribute={attribute}
                    options={options.length ? options : [customer.attributes[attribute]]}
                    onCancel={() => setEditing(null)}
                    onPin={(value, reason) => {
                      setEditing(null);
                      onPin(attribute, value, reason);
                    }}
                  />
                )}
              </td>
              <td class="actions">
                {pins.has(attribute) ? (
                  <button type="button" onClick={() => onUnpin(attribute)}>
                    Unpin
                  </button>
                ) : (
                  // Lists (emails, phones) are not pinned as a whole: their primary value (email, phone) is.
                  editing !== attribute &&
                  !Array.isArray(customer.attributes[attribute]) && (
                    <button type="button" onClick={() => setEditing(attribute)}>
                      Pin…
                    </button>
                  )
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function PinForm({ attribute, options, onPin, onCancel }: { attribute: string; options: unknown[]; onPin: (value: unknown, reason?: string) => void; onCancel: () => void }) {
  const [chosen, setChosen] = useState(0);
  const [reason, setReason] = useState('');
  return (
    <form
      class="pin-form"
      onSubmit={(event) => {
        event.preventDefault();
        onPin(options[chosen], reason || undefined);
      }}
    >
      <select aria-label={`value of ${attribute}`} value={String(chosen)} onChange={(e) => setChosen(Number(e.currentTarget.value))}>
        {options.map((option, index) => (
          <option key={index} value={String(index)}>
            {show(option)}
          </option>
        ))}
      </select>
      <input placeholder="Reason (optional)" value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
      <button type="submit" class="primary">
        Pin value
      </button>
      <button type="button" class="link" onClick={onCancel}>
        Cancel
      </button>
    </form>
  );
}

function SourceRecords({ customer, onSplit }: { customer: Customer; onSplit: (rawRecordIds: number[], reason?: string) => void }) {
  const [ticked, setTicked] = useState<Set<string>>(new Set());
  const [reason, setReason] = useState('');
  const toggle = (id: string) => setTicked((previous) => {
    const next = new Set(previous);
    if (!next.delete(id)) next.add(id);
    return next;
  });
  const canSplit = ticked.size > 0 && ticked.size < customer.source_records.length;
  return (
    <form
      class="sources card"
      onSubmit={(event) => {
        event.preventDefault();
        onSplit([...ticked].map(Number), reason || undefined);
        setTicked(new Set());
      }}
    >
      <h2>Source records ({customer.source_records.length})</h2>
      <table>
        <tbody>
          {customer.source_records.map((record) => (
            <tr key={record.raw_record_id}>
              <td>
                <input
                  type="checkbox"
                  aria-label={`split off ${record.source} ${record.external_id}`}
                  checked={ticked.has(String(record.raw_record_id))}
                  onChange={() => toggle(String(record.raw_record_id))}
                />
              </td>
              <td>
                <strong>{record.source}</strong>/{record.stream} #{record.external_id}
              </td>
              <td class="muted">
                {record.cause} since {when(record.since)}
                {record.omitted_values.map((omitted) => (
                  <div key={omitted.field}>
                    left out {omitted.field}: {omitted.reason}
                  </div>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="decide">
        <input placeholder="Reason (optional)" value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        <button type="submit" disabled={!canSplit} title="The ticked records leave this customer and form a new one">
          Split ticked records off
        </button>
      </div>
    </form>
  );
}

function ValueFigures({ customer }: { customer: Customer }) {
  const value = customer.value;
  if (!value) return null;
  const revenue = Object.entries(value.revenue).map(([currency, amount]) => `${amount.toLocaleString()} ${currency}`).join(', ') || '—';
  const figures: [string, string][] = [
    ['segment', value.segment],
    ['revenue', revenue],
    ['orders (365 days)', String(value.rfm.frequency_365_days)],
    ['last order', value.rfm.recency_days === null ? '—' : `${value.rfm.recency_days} days ago`],
    ['open quotes', String(value.open_quotes.count)],
    ['open tickets', String(value.open_tickets.count)],
    ['emails awaiting reply', String(value.emails_awaiting_reply.count)],
    ['last contact', value.last_contact ? `${when(value.last_contact.at)} (${value.last_contact.kind})` : '—'],
    ['owner', value.owner ?? '—'],
  ];
  return (
    <dl class="figures card">
      {figures.map(([label, text]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{text}</dd>
        </div>
      ))}
    </dl>
  );
}
