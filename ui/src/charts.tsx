/** Hand-written SVG charts: the match-weight waterfall (as Splink draws it) and small line charts. */
import type { Explanation } from './api.js';

const fixed = (n: number, digits = 2) => (n >= 0 ? '+' : '') + n.toFixed(digits);

/**
 * Each bar starts where the running total stands: the prior first (from 0), then each attribute's weight up
 * (evidence for a match) or down (against), then the final total from 0, labelled with its probability.
 */
export function Waterfall({ explanation }: { explanation: Explanation }) {
  const steps: { label: string; title: string; from: number; to: number; kind: 'prior' | 'up' | 'down' | 'total' }[] = [];
  steps.push({ label: 'prior', title: 'Prior: how likely any two records match before comparing them', from: 0, to: explanation.prior_weight, kind: 'prior' });
  let running = explanation.prior_weight;
  for (const attribute of explanation.attributes) {
    const to = running + attribute.weight;
    steps.push({ label: attribute.attribute, title: `${attribute.attribute} (level ${attribute.level}): ${fixed(attribute.weight)}`, from: running, to, kind: attribute.weight >= 0 ? 'up' : 'down' });
    running = to;
  }
  steps.push({ label: 'total', title: `Total match weight ${fixed(explanation.total_weight)}, probability ${(explanation.probability * 100).toFixed(1)}%`, from: 0, to: explanation.total_weight, kind: 'total' });

  const values = steps.flatMap((step) => [step.from, step.to]);
  const top = Math.ceil(Math.max(0, ...values) + 1);
  const bottom = Math.floor(Math.min(0, ...values) - 1);
  const [barWidth, gap, left, plotHeight, labelHeight] = [44, 16, 40, 220, 70];
  const width = left + steps.length * (barWidth + gap) + gap;
  const y = (value: number) => 12 + ((top - value) / (top - bottom)) * plotHeight;
  const ticks = Array.from({ length: top - bottom + 1 }, (_, i) => bottom + i).filter((tick) => (top - bottom > 12 ? tick % 5 === 0 : true));

  return (
    <figure class="chart waterfall">
      <svg viewBox={`0 0 ${width} ${plotHeight + labelHeight}`} width={width} role="img" aria-label="Match weight waterfall">
        {ticks.map((tick) => (
          <g key={tick}>
            <line x1={left} x2={width} y1={y(tick)} y2={y(tick)} class={tick === 0 ? 'axis' : 'grid'} />
            <text x={left - 6} y={y(tick) + 4} class="tick" text-anchor="end">
              {tick}
            </text>
          </g>
        ))}
        {steps.map((step, i) => {
          const x = left + gap + i * (barWidth + gap);
          const [high, low] = [Math.max(step.from, step.to), Math.min(step.from, step.to)];
          const next = steps[i + 1];
          return (
            <g key={`${step.label}-${i}`} class={`bar ${step.kind}`}>
              <title>{step.title}</title>
              <rect x={x} y={y(high)} width={barWidth} height={Math.max(1, y(low) - y(high))} />
              <text x={x + barWidth / 2} y={y(high) - 4} text-anchor="middle" class="value">
                {step.kind === 'total' ? step.to.toFixed(2) : fixed(step.to - step.from)}
              </text>
              {next && next.kind !== 'total' && <line class="connector" x1={x + barWidth} x2={x + barWidth + gap} y1={y(step.to)} y2={y(step.to)} />}
              <text x={x + barWidth / 2} y={plotHeight + 28} text-anchor="end" transform={`rotate(-35 ${x + barWidth / 2} ${plotHeight + 28})`} class="label">
                {step.label}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>
        Match weight {explanation.total_weight.toFixed(2)} → probability <strong>{(explanation.probability * 100).toFixed(1)}%</strong>
      </figcaption>
    </figure>
  );
}

/** A small line chart of one series over days, with its latest value. */
export function Sparkline({ title, points }: { title: string; points: { day: string; value: number }[] }) {
  const [width, height, pad] = [260, 70, 4];
  const max = Math.max(1, ...points.map((p) => p.value));
  const x = (i: number) => pad + (points.length > 1 ? (i / (points.length - 1)) * (width - 2 * pad) : 0);
  const y = (v: number) => height - pad - (v / max) * (height - 2 * pad);
  const line = points.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
  const latest = points.at(-1);
  return (
    <figure class="chart spark">
      <figcaption>
        {title} <strong>{latest ? latest.value.toLocaleString() : '—'}</strong>
      </figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img" aria-label={title}>
        <line x1={pad} x2={width - pad} y1={height - pad} y2={height - pad} class="axis" />
        {points.length > 0 && <path d={`${line} L${x(points.length - 1)},${height - pad} L${x(0)},${height - pad} Z`} class="area" />}
        {points.length > 0 && <path d={line} class="line" />}
        {points.map((p, i) => (
          <circle key={p.day} cx={x(i)} cy={y(p.value)} r={points.length > 40 ? 0 : 1.5}>
            <title>{`${p.day}: ${p.value}`}</title>
          </circle>
        ))}
      </svg>
      <small class="muted">{points.length ? `${points[0].day} – ${points.at(-1)!.day}` : 'no data yet'}</small>
    </figure>
  );
}
