/**
 * The review queue and its items. Built for speed: j/k move, Enter opens, m/s/d decide, u undoes the last decision,
 * and after a decision the next item opens, all without a page reload.
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api, type ConflictDetail, type DecisionResult, type Explanation, type PairDetail, type ReviewItem, type SideRecord } from '../api.js';
import { ErrorBox, Loading, customerLink, customerLinks, rememberDecision, show, undoLastDecision, useLoad, when, TableHead } from '../components.js';
import { Waterfall } from '../charts.js';
import { href, navigate } from '../router.js';

const SHORTCUTS: [string, string][] = [
  ['j / k', 'next / previous item'],
  ['Enter', 'open the selected item'],
  ['m', 'merge (pair)'],
  ['s', 'keep apart (pair)'],
  ['d', 'defer'],
  ['u', 'undo the last decision'],
  ['Esc', 'back to the list'],
  ['?', 'show or hide these shortcuts'],
];

const PAIR_ACTIONS: Record<string, { action: string; label: string }> = {
  m: { action: 'merge', label: 'Merge' },
  s: { action: 'keep_apart', label: 'Keep apart' },
  d: { action: 'defer', label: 'Defer' },
};

/** Keys typed into a field are text, not shortcuts. */
function typing(event: KeyboardEvent): boolean {
  const target = event.target as HTMLElement;
  return event.ctrlKey || event.metaKey || event.altKey || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName) || target.isContentEditable;
}

export function ReviewPage({ id, search }: { id?: string; search: URLSearchParams }) {
  const status = search.get('status') ?? 'open';
  const kind = search.get('kind') ?? '';
  const [refresh, setRefresh] = useState(0);
  const queue = useLoad(() => api.reviewQueue({ status, kind: kind || undefined, limit: 200 }), `${status}|${kind}|${refresh}`);
  const [selected, setSelected] = useState(0);
  const [help, setHelp] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const reason = useRef<HTMLInputElement>(null);
  const items = queue.data?.items ?? [];
  const openIndex = id ? items.findIndex((item) => item.id === id) : -1;
  const current = id ? openIndex : selected;
  const filters = `${status !== 'open' ? `status=${status}&` : ''}${kind ? `kind=${kind}` : ''}`.replace(/&$/, '');
  const suffix = filters ? `?${filters}` : '';
  const open = (item: ReviewItem | undefined, replace = false) => item && navigate(`/review/${encodeURIComponent(item.id)}${suffix}`, { replace });

  // After a decision the item leaves the queue and the one after it opens (or is selected, on the list).
  const decided = (itemId: string, result: DecisionResult) => {
    rememberDecision(result);
    setError(null);
    setMessage(null);
    if (reason.current) reason.current.value = '';
    const index = items.findIndex((entry) => entry.id === itemId);
    const rest = items.filter((entry) => entry.id !== itemId);
    const next = rest[Math.min(Math.max(index, 0), rest.length - 1)];
    if (id) {
      if (next) open(next, true);
      else navigate(`/review${suffix}`, { replace: true });
    } else setSelected(Math.min(Math.max(index, 0), Math.max(rest.length - 1, 0)));
    setRefresh((n) => n + 1);
  };

  const decide = async (itemId: string, body: { action: string; value?: unknown }) => {
    try {
      decided(itemId, await api.decide(itemId, { ...body, reason: reason.current?.value || undefined }));
    } catch (failure) {
      setError(failure as Error);
    }
  };

  // Listening from the render that shows the queue on (a layout effect), so that a key pressed at once is not lost.
  useLayoutEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (typing(event)) return;
      const item = items[current];
      const key = event.key;
      if (key === '?') setHelp((shown) => !shown);
      else if (key === 'j' || key === 'k') {
        const next = Math.min(Math.max(current + (key === 'j' ? 1 : -1), 0), items.length - 1);
        if (id) open(items[next], true);
        else setSelected(next);
      } else if (key === 'Enter' && !id && item) open(item);
      else if (key === 'Escape' && id) navigate(`/review${suffix}`);
      else if (key === 'u') undoLastDecision().then((text) => (setMessage(text), setRefresh((n) => n + 1)), setError);
      else if (item && key in PAIR_ACTIONS) {
        if (item.kind === 'pair' || key === 'd') decide(item.id, { action: PAIR_ACTIONS[key].action });
        else setMessage('A conflict is resolved by choosing a value: open it (Enter) and pick one.');
      } else return;
      event.preventDefault();
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  });

  useEffect(() => {
    document.querySelector('.queue li.selected')?.scrollIntoView({ block: 'nearest' });
  }, [current, items.length]);

  return (
    <section class={`review ${id ? 'with-detail' : ''}`}>
      <header class="page-head">
        <h1>Review queue</h1>
        <nav class="filters">
          {['open', 'deferred', 'all'].map((value) => (
            <a key={value} class={value === status ? 'active' : ''} href={href(`/review?status=${value}${kind ? `&kind=${kind}` : ''}`)}>
              {value}
            </a>
          ))}
          <span class="sep" />
          {[['', 'all kinds'], ['pair', 'pairs'], ['conflict', 'conflicts']].map(([value, label]) => (
            <a key={value} class={value === kind ? 'active' : ''} href={href(`/review?status=${status}${value ? `&kind=${value}` : ''}`)}>
              {label}
            </a>
          ))}
        </nav>
        <button type="button" class="link" onClick={() => setHelp((shown) => !shown)}>
          Shortcuts (?)
        </button>
      </header>
      {help && (
        <dl class="shortcuts card" aria-label="Keyboard shortcuts">
          {SHORTCUTS.map(([key, text]) => (
            <div key={key}>
              <dt>
                <kbd>{key}</kbd>
              </dt>
              <dd>{text}</dd>
            </div>
          ))}
        </dl>
      )}
      {message && <p class="notice">{message}</p>}
      <ErrorBox error={error} />
      <Loading loaded={queue}>
        {() =>
          items.length === 0 ? (
            <p class="empty card">The queue is empty. Nothing waits for a decision.</p>
          ) : (
            <div class="review-layout">
              <ol class="queue" aria-label="Review items">
                {items.map((item, index) => (
                  <li key={item.id} class={index === current ? 'selected' : ''} onClick={() => (id ? open(item, true) : setSelected(index))} onDblClick={() => open(item)}>
                    <a href={href(`/review/${encodeURIComponent(item.id)}${suffix}`)} class="item-link">
                      <span class={`kind ${item.kind}`}>{item.kind}</span> {item.summary}
                    </a>
                    <span class="meta">
                      impact {item.impact.toLocaleString(undefined, { maximumFractionDigits: 1 })} · {when(item.created_at)} · {item.status}
                    </span>
                  </li>
                ))}
              </ol>
              {id && openIndex >= 0 && (
                <div class="detail">
                  <p class="muted">
                    Item {openIndex + 1 || '?'} of {items.length} · <kbd>j</kbd>/<kbd>k</kbd> next/previous · <kbd>Esc</kbd> list
                  </p>
                  <ReviewDetail id={id} reason={reason} onDecide={(body) => decide(id, body)} />
                </div>
              )}
            </div>
          )
        }
      </Loading>
      {id && openIndex < 0 && queue.data && <ReviewDetail id={id} reason={reason} onDecide={(body) => decide(id, body)} />}
    </section>
  );
}

type Decide = (body: { action: string; value?: unknown }) => void;

function ReviewDetail({ id, reason, onDecide }: { id: string; reason: { current: HTMLInputElement | null }; onDecide: Decide }) {
  const item = useLoad(() => api.reviewItem(id), id);
  return (
    <Loading loaded={item}>
      {() => {
        const detail = item.data!;
        return (
          <article class="review-item">
            <h2>
              <span class={`kind ${detail.kind}`}>{detail.kind}</span> {detail.summary}
            </h2>
            <p class="muted">
              {detail.status} · since {when(detail.created_at)} · impact {detail.impact} · customers {customerLinks(detail.golden_ids)}
            </p>
            {detail.kind === 'pair' && (
              <div class="decide">
                <input ref={reason} name="reason" placeholder="Reason (optional)" aria-label="Reason" />
                {Object.entries(PAIR_ACTIONS).map(([key, { action, label }]) => (
                  <button key={action} type="button" class={action === 'merge' ? 'primary' : ''} onClick={() => onDecide({ action })} title={`${label} (${key})`}>
                    {label} <kbd>{key}</kbd>
                  </button>
                ))}
              </div>
            )}
            {detail.kind === 'pair' ? <PairView pair={detail as PairDetail} /> : <ConflictView conflict={detail as ConflictDetail} reason={reason} onDecide={onDecide} />}
          </article>
        );
      }}
    </Loading>
  );
}

/** Canonical data as dotted paths (person.address.city), so two records line up row by row. */
function flatten(value: unknown, prefix = '', into: Record<string, unknown> = {}): Record<string, unknown> {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) flatten(inner, prefix ? `${prefix}.${key}` : key, into);
  } else if (prefix) into[prefix] = value;
  return into;
}

function PairView({ pair }: { pair: PairDetail }) {
  const [left, right] = pair.records.map((record) => flatten(record.data));
  const fields = [...new Set([...Object.keys(left), ...Object.keys(right)])].sort();
  const origin = (record: SideRecord) => (
    <>
      <strong>{record.source}</strong>/{record.stream} #{record.external_id}
      <br />
      <small class="muted">
        raw record {record.raw_record_id} · observed {when(record.observed_at)} · {record.golden_id ? customerLink(record.golden_id) : 'no customer'}
      </small>
    </>
  );
  return (
    <>
      <p>
        {/* The figures of the comparison as it stands now, as in the chart below (the queue kept those of when the pair was found). */}
        Probability <strong>{((pair.explanation?.probability ?? pair.probability) * 100).toFixed(1)}%</strong>
        {pair.explanation && <> · match weight {pair.explanation.total_weight.toFixed(2)}</>} · {pair.reason.replaceAll('_', ' ')}
      </p>
      <table class="side-by-side">
        <thead>
          <tr>
            <th>attribute</th>
            <th>{origin(pair.records[0])}</th>
            <th>{origin(pair.records[1])}</th>
          </tr>
        </thead>
        <tbody>
          {fields.map((field) => (
            <tr key={field} class={show(left[field]) === show(right[field]) ? 'same' : 'differs'}>
              <th>{field}</th>
              <td>{show(left[field])}</td>
              <td>{show(right[field])}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Why: match weights</h3>
      {pair.explanation ? <Explained explanation={pair.explanation} /> : <p class="muted">The matcher has no model to explain this pair with yet.</p>}
    </>
  );
}

function Explained({ explanation }: { explanation: Explanation }) {
  return (
    <>
      <Waterfall explanation={explanation} />
      <table class="weights">
        <TableHead columns={['attribute', 'level', 'left', 'right', 'weight']} />
        <tbody>
          {explanation.attributes.map((attribute) => (
            <tr key={attribute.attribute}>
              <th>{attribute.attribute}</th>
              <td>{attribute.label ?? attribute.level}</td>
              <td>{show(attribute.left)}</td>
              <td>{show(attribute.right)}</td>
              <td class={attribute.weight >= 0 ? 'up' : 'down'}>{attribute.weight.toFixed(2)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function ConflictView({ conflict, reason, onDecide }: { conflict: ConflictDetail; reason: { current: HTMLInputElement | null }; onDecide: Decide }) {
  const [chosen, setChosen] = useState<number>(() => Math.max(0, conflict.candidates.findIndex((candidate) => candidate.survived)));
  return (
    <form
      class="conflict"
      onSubmit={(event) => {
        event.preventDefault();
        onDecide({ action: 'choose', value: conflict.candidates[chosen].value });
      }}
    >
      <p>
        Which <strong>{conflict.attribute}</strong> is right for {customerLink(conflict.golden_id)}? The chosen value is pinned until a steward unpins it.
      </p>
      <table>
        <TableHead columns={['', 'value', 'source', 'observed', 'now']} />
        <tbody>
          {conflict.candidates.map((candidate, index) => (
            <tr key={index} onClick={() => setChosen(index)}>
              <td>
                <input type="radio" name="candidate" aria-label={`choose ${show(candidate.value)}`} checked={index === chosen} onChange={() => setChosen(index)} />
              </td>
              <td>{show(candidate.value)}</td>
              <td>
                {candidate.source} {candidate.raw_record_id !== null && <small class="muted">raw record {candidate.raw_record_id}</small>}
              </td>
              <td>{when(candidate.observed_at)}</td>
              <td>{candidate.survived ? 'survives' : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="decide">
        <input ref={reason} name="reason" placeholder="Reason (optional)" aria-label="Reason" />
        <button type="submit" class="primary">
          Choose this value
        </button>
        <button type="button" onClick={() => onDecide({ action: 'defer' })} title="Defer (d)">
          Defer <kbd>d</kbd>
        </button>
      </div>
    </form>
  );
}
