/** Find customers by name or email, open one, or tick two and merge them. */
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { ErrorBox, Loading, customerLink, rememberDecision, show, useLoad, when } from '../components.js';
import { href, navigate } from '../router.js';

export function SearchPage({ search }: { search: URLSearchParams }) {
  const term = search.get('q') ?? '';
  const [text, setText] = useState(term);
  const [ticked, setTicked] = useState<string[]>([]);
  const [reason, setReason] = useState('');
  const [error, setError] = useState<Error | null>(null);
  const byEmail = term.includes('@');
  const results = useLoad(() => api.searchCustomers({ ...(term.length >= 2 ? (byEmail ? { email: term } : { name: term }) : {}), limit: 50 }), term);
  const tick = (id: string) => setTicked((previous) => (previous.includes(id) ? previous.filter((other) => other !== id) : [...previous.slice(-1), id]));
  const merge = () =>
    api.mergeCustomers([ticked[0], ticked[1]], reason || undefined).then((result) => {
      rememberDecision(result);
      navigate(`/customers/${encodeURIComponent(result.customers[0])}`);
    }, setError);
  return (
    <section class="search">
      <header class="page-head">
        <h1>Customers</h1>
        <form
          class="search-form"
          onSubmit={(event) => {
            event.preventDefault();
            setTicked([]);
            navigate(`/customers${text ? `?q=${encodeURIComponent(text)}` : ''}`);
          }}
        >
          <input name="q" type="search" placeholder="Name or email" aria-label="Search customers" value={text} onInput={(e) => setText(e.currentTarget.value)} />
          <button type="submit">Search</button>
        </form>
      </header>
      <ErrorBox error={error} />
      {ticked.length === 2 && (
        <div class="decide card">
          Merge {customerLink(ticked[0])} and {customerLink(ticked[1])}?
          <input placeholder="Reason (optional)" value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          <button type="button" class="primary" onClick={merge}>
            Merge the two customers
          </button>
        </div>
      )}
      <Loading loaded={results}>
        {() => (
          <table class="results">
            <thead>
              <tr>
                <th title="Tick two to merge them">merge</th>
                <th>customer</th>
                <th>name</th>
                <th>email</th>
                <th>organisation</th>
                <th>updated</th>
              </tr>
            </thead>
            <tbody>
              {results.data!.data.map((customer) => (
                <tr key={customer.id}>
                  <td>
                    <input type="checkbox" aria-label={`tick ${customer.id}`} checked={ticked.includes(customer.id)} onChange={() => tick(customer.id)} />
                  </td>
                  <td>
                    <a href={href(`/customers/${encodeURIComponent(customer.id)}`)}>{customer.id}</a>
                  </td>
                  <td>{show([customer.attributes.given_name, customer.attributes.family_name].filter(Boolean).join(' ') || customer.attributes.full_name)}</td>
                  <td>{show(customer.attributes.email)}</td>
                  <td>{show((customer.attributes.organisation as { name?: string } | undefined)?.name)}</td>
                  <td>{when(customer.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loading>
    </section>
  );
}
