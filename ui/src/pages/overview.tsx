/** The state of the hub at a glance: totals, and small charts of the last 30 days. */
import { api } from '../api.js';
import { Loading, useLoad } from '../components.js';
import { Sparkline } from '../charts.js';

const SERIES: [string, string][] = [
  ['golden_records', 'Golden records'],
  ['records_read', 'Source records read'],
  ['merges_automatic', 'Merges by the matcher'],
  ['merges_steward', 'Merges by stewards'],
  ['review_backlog', 'Review backlog'],
  ['quarantined', 'Quarantined'],
];

export function OverviewPage() {
  const overview = useLoad(() => api.overview(), 'overview');
  return (
    <section class="overview">
      <header class="page-head">
        <h1>Overview</h1>
      </header>
      <Loading loaded={overview}>
        {() => {
          const { totals, series } = overview.data!;
          const cards: [string, string][] = [
            ['golden records', totals.golden_records.toLocaleString()],
            ...Object.entries(totals.source_records).map(([source, count]): [string, string] => [`${source} records`, count.toLocaleString()]),
            ['open review items', totals.review_open.toLocaleString()],
            ['oldest review item', totals.review_oldest_days === null ? '—' : `${totals.review_oldest_days} days`],
            ['quarantine rate', `${(totals.quarantine_rate * 100).toFixed(2)}%`],
          ];
          return (
            <>
              <dl class="totals">
                {cards.map(([label, value]) => (
                  <div class="card" key={label}>
                    <dt>{label}</dt>
                    <dd>{value}</dd>
                  </div>
                ))}
              </dl>
              <div class="charts">
                {SERIES.map(([name, title]) => (
                  <Sparkline key={name} title={title} points={series.map((point) => ({ day: point.day, value: Number(point[name] ?? 0) }))} />
                ))}
              </div>
            </>
          );
        }}
      </Loading>
    </section>
  );
}
