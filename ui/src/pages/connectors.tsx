/** For IT teams (admin role): each source's runs, counts, errors and next run, "sync now", and quarantined input to re-queue. */
import { useState } from 'preact/hooks';
import { api, type QuarantineEntry, type Session, type Source } from '../api.js';
import { ErrorBox, Loading, show, useLoad, when, TableHead } from '../components.js';

export function ConnectorsPage({ session }: { session: Session }) {
  if (!session.scopes.includes('admin'))
    return (
      <section class="connectors">
        <h1>Connectors</h1>
        <p class="error" role="alert">
          admin role needed: the connectors page is for accounts with the admin role.
        </p>
      </section>
    );
  return <Connectors />;
}

function Connectors() {
  const sources = useLoad(() => api.sources(), 'sources');
  const quarantine = useLoad(() => api.quarantine({ open: 'true', limit: 100 }), 'quarantine');
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const sync = (source: Source) =>
    api.syncNow(source.name).then((run) => {
      setNotice(`Sync of ${source.name} ${run.queued === false ? 'is already queued or running' : 'queued'}${run.run_id ? ` (run ${run.run_id})` : ''}.`);
      sources.reload();
    }, setError);
  const requeue = (entry: QuarantineEntry) =>
    api.requeue(entry.id).then((result) => {
      setNotice(result.status === 'accepted' ? `Record ${entry.external_id ?? entry.id} was accepted.` : `Record ${entry.external_id ?? entry.id} is still quarantined: ${result.reason ?? ''}`);
      quarantine.reload();
      sources.reload();
    }, setError);
  return (
    <section class="connectors">
      <header class="page-head">
        <h1>Connectors</h1>
      </header>
      {notice && <p class="notice">{notice}</p>}
      <ErrorBox error={error} />
      <Loading loaded={sources}>
        {() => (
          <div class="source-list">
            {sources.data!.data.map((source) => (
              <SourceCard key={source.name} source={source} onSync={() => sync(source)} />
            ))}
          </div>
        )}
      </Loading>
      <h2>Quarantined records</h2>
      <Loading loaded={quarantine}>
        {() =>
          quarantine.data!.data.length === 0 ? (
            <p class="muted">Nothing is quarantined.</p>
          ) : (
            <table class="quarantine">
              <TableHead columns={['source', 'record', 'stage', 'field', 'reason', 'since', '']} />
              <tbody>
                {quarantine.data!.data.map((entry) => (
                  <tr key={entry.id}>
                    <td>{entry.source}</td>
                    <td>
                      {entry.stream} #{entry.external_id ?? '—'}
                    </td>
                    <td>{entry.stage}</td>
                    <td>{entry.field ?? '—'}</td>
                    <td>{entry.reason}</td>
                    <td>{when(entry.created_at)}</td>
                    <td>
                      <button type="button" onClick={() => requeue(entry)} title="Map the kept record again with the current mapping">
                        Re-queue
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loading>
    </section>
  );
}

function SourceCard({ source, onSync }: { source: Source; onSync: () => void }) {
  const runs = useLoad(() => api.sourceRuns(source.name, 5), `${source.name}|${source.last_run?.id}|${source.last_run?.status}`);
  const last = source.last_run;
  return (
    <article class={`card source ${last?.status ?? 'never'}`}>
      <header>
        <h3>{source.name}</h3>
        <span class="muted">{source.connector}</span>
        <button type="button" onClick={onSync}>
          Sync now
        </button>
      </header>
      <dl class="figures">
        <div>
          <dt>records</dt>
          <dd>{source.records.toLocaleString()}</dd>
        </div>
        <div>
          <dt>quarantined</dt>
          <dd>{source.quarantined.toLocaleString()}</dd>
        </div>
        <div>
          <dt>values left out</dt>
          <dd title="Records that loaded without values their mapping omits (on_error: omit)">{source.records_with_omitted_values.toLocaleString()}</dd>
        </div>
        <div>
          <dt>schedule</dt>
          <dd>{source.schedule ?? 'manual'}</dd>
        </div>
        <div>
          <dt>next run</dt>
          <dd>{when(source.next_run_at)}</dd>
        </div>
        <div>
          <dt>last run</dt>
          <dd>{last ? `${last.status}, ${when(last.finished_at ?? last.started_at ?? last.queued_at)}` : 'never'}</dd>
        </div>
      </dl>
      {last?.error && <p class="error">{last.error}</p>}
      <Loading loaded={runs}>
        {() => (
          <table class="runs">
            <TableHead columns={['run', 'status', 'trigger', 'finished', 'read', 'created', 'updated', 'quarantined', 'values left out']} />
            <tbody>
              {runs.data!.data.map((run) => (
                <tr key={run.id} title={run.error ?? ''}>
                  <td>{run.id}</td>
                  <td class={`status ${run.status}`}>{run.status}</td>
                  <td>{run.trigger}</td>
                  <td>{when(run.finished_at)}</td>
                  <td>{run.read}</td>
                  <td>{run.created}</td>
                  <td>{run.updated}</td>
                  <td>{show(run.quarantined)}</td>
                  <td title="Records stored without values their mapping omits (on_error: omit)">{show(run.with_omitted_values)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loading>
    </article>
  );
}
