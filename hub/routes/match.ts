/**
 * Explanations of the probabilistic matcher: how two source records compare, and why each member of a
 * golden record belongs to it. Per attribute the comparison level, its weight log2(m/u), the
 * term-frequency adjustment, and the total weight and probability (identity-resolution/probabilistic-matcher.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../sync.js';
import { HubError, errorRef } from '../errors.js';
import { currentModel, explanationJson, loadResolutionSettings, MATCH_CONFIG, MATCH_CONFIG_HASH, preparedRecords, type ExplanationJson } from '../../identity-resolution/probabilistic-matcher.js';
import { RULES, ruleBetween, sameSourceDuplicates } from '../../identity-resolution/deterministic-rules.js';
import { resolveCustomer } from './customers.js';
import { customerId } from './schemas.js';

const rawRecordId = { type: 'string', pattern: '^[1-9][0-9]{0,17}$', description: 'A source record id (`raw_record_id` in a customer\'s `source_records`).' } as const;

const attribute = {
  type: 'object',
  additionalProperties: false,
  required: ['comparison', 'level', 'label', 'weight', 'tf_adjustment'],
  properties: {
    comparison: { type: 'string', description: 'The attribute compared, e.g. family_name.' },
    level: { type: 'integer', description: 'Comparison level, 0 most similar; -1 when a side has no value (weight 0).' },
    label: { type: 'string', description: 'What the level means, e.g. "one edit or Jaro–Winkler ≥ 0.92".' },
    weight: { type: 'number', description: 'log2(m/u) of the level.' },
    tf_adjustment: { type: 'number', description: 'Added for an exact match on a value rarer (positive) or commoner (negative) than average.' },
    value: { type: 'string', description: 'The shared value the term-frequency adjustment is about.' },
    m: { type: 'number', description: 'P(level | same person).' },
    u: { type: 'number', description: 'P(level | different people).' },
    counted: {
      type: 'boolean',
      const: false,
      description: 'Present (false) when the weight does not count in `match_weight`: household evidence (a shared surname, email or address of two people with different given names) counts once, by its strongest attribute.',
    },
  },
} as const;

const explanation = {
  type: 'object',
  additionalProperties: false,
  required: ['left', 'right', 'attributes', 'prior_weight', 'match_weight', 'probability'],
  properties: {
    left: { type: 'string', description: 'Source record id.' },
    right: { type: 'string', description: 'Source record id.' },
    attributes: { type: 'array', items: attribute },
    prior_weight: { type: 'number', description: 'log2 of the prior odds that two records are one person.' },
    match_weight: { type: 'number', description: 'Sum of the attribute weights and adjustments.' },
    probability: { type: 'number', minimum: 0, maximum: 1, description: 'Match probability: from the prior and the match weight.' },
  },
} as const;

const modelInfo = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'kind', 'config_hash', 'matcher', 'link_probability', 'review_probability'],
  properties: {
    id: { type: ['integer', 'null'], description: 'The stored model (match_model); null: the prior, no model stored yet.' },
    kind: { type: 'string', enum: ['em', 'prior'], description: 'em: m and u estimated from the hub\'s records; prior: the committed prior (too few records yet).' },
    config_hash: { type: 'string', description: 'Hash of the matching configuration.' },
    matcher: { type: 'string', enum: ['deterministic', 'probabilistic'], description: 'The matcher the hub resolves with (resolution.matcher).' },
    link_probability: { type: 'number', description: 'Pairs at or above link.' },
    review_probability: { type: 'number', description: 'Pairs at or above (and below the link threshold) go to the review queue.' },
  },
} as const;

const constraint = { type: ['string', 'null'], enum: ['must_link', 'cannot_link', null], description: 'A steward decision on this pair, which wins over the score.' } as const;

const deterministicRule = {
  anyOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['rule', 'key'],
      properties: { rule: { type: 'string', enum: [...RULES] }, key: { type: 'string', description: 'The shared key, `kind:value`, e.g. `email:ann@example.com`.' } },
    },
    { type: 'null' },
  ],
  description: 'The deterministic rule (resolution.deterministic_rules) that makes the pair one customer without scoring, the strongest if several; null when none does.',
} as const;

const notFound = { 404: { description: 'No such source record or customer (HUB_ERR_NOT_FOUND).', ...errorRef } };

async function withModel<T>(hub: Hub, work: (model: Awaited<ReturnType<typeof currentModel>>, info: object) => Promise<T>): Promise<T> {
  const settings = await loadResolutionSettings(hub.pool);
  // Reading never trains (training belongs to the resolver and `hub resolve --train`): without a stored model, the prior.
  const client = await hub.pool.connect();
  const model = await currentModel(client, settings, { train: false }).finally(() => client.release());
  const { linkProbability, reviewProbability } = MATCH_CONFIG.thresholds;
  return work(model, { id: model.id, kind: model.kind, config_hash: MATCH_CONFIG_HASH, matcher: settings.matcher, link_probability: linkProbability, review_probability: reviewProbability });
}

/** How two source records compare under the current model; undefined when one of them has no customer data. */
export async function explainRecords(hub: Hub, left: number, right: number): Promise<{ model: object; explanation: ExplanationJson } | undefined> {
  const records = await preparedRecords(hub.pool, [left, right]);
  const [a, b] = [records.get(left), records.get(right)];
  if (!a || !b) return undefined;
  return withModel(hub, async (model, info) => ({ model: info, explanation: explanationJson(model.model.explain(a, b)) }));
}

export async function matchRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;

  app.get<{ Querystring: { left: string; right: string } }>(
    '/v1/match',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'matchPair',
        tags: ['customers'],
        summary: 'How two source records compare: per attribute level and weight, total weight and match probability',
        querystring: { type: 'object', additionalProperties: false, required: ['left', 'right'], properties: { left: rawRecordId, right: rawRecordId } },
        response: {
          200: {
            description: 'The explanation of the pair.',
            type: 'object',
            additionalProperties: false,
            required: ['model', 'explanation', 'constraint', 'deterministic_rule', 'same_source_duplicates', 'same_customer'],
            properties: {
              model: modelInfo,
              explanation,
              constraint,
              deterministic_rule: deterministicRule,
              same_source_duplicates: { type: 'boolean', description: 'Their source gave the two records different ids of one scheme: only strong evidence joins them (resolution.same_source_duplicates).' },
              same_customer: { type: 'boolean', description: 'Both records belong to one golden record now.' },
            },
          },
          ...notFound,
        },
      },
    },
    async (request) => {
      const [left, right] = [Number(request.query.left), Number(request.query.right)];
      const compared = await explainRecords(hub, left, right);
      if (!compared) {
        const records = await preparedRecords(hub.pool, [left, right]);
        throw new HubError('HUB_ERR_NOT_FOUND', { what: 'source record with customer data', id: String(records.get(left) ? right : left) });
      }
      const { rows: constraints } = await hub.pool.query<{ kind: string }>({
        text: `select kind from match_constraint where withdrawn_at is null
               and ((left_raw_record_id = $1 and right_raw_record_id = $2) or (left_raw_record_id = $2 and right_raw_record_id = $1)) order by id desc limit 1`,
        values: [left, right],
      });
      const { rows: same } = await hub.pool.query<{ same: boolean }>({
        text: `select count(distinct golden_id) = 1 and count(*) = 2 as same from cluster_membership where valid_to is null and raw_record_id = any($1::bigint[])`,
        values: [[left, right]],
      });
      const settings = await loadResolutionSettings(hub.pool);
      const duplicates = await sameSourceDuplicates(hub.pool, [[left, right]], settings);
      return {
        ...compared,
        constraint: constraints[0]?.kind ?? null,
        deterministic_rule: await ruleBetween(hub.pool, left, right, settings),
        same_source_duplicates: duplicates.size > 0,
        same_customer: Boolean(same[0]?.same),
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/customers/:id/explain',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'explainCustomer',
        tags: ['customers'],
        summary: "Why each source record belongs to the customer: compared with the first member, and with its best-matching member",
        params: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: customerId } },
        response: {
          200: {
            description: 'One entry per current member, in raw record id order; the first member is the reference.',
            type: 'object',
            additionalProperties: false,
            required: ['id', 'model', 'reference', 'members'],
            properties: {
              id: customerId,
              model: modelInfo,
              reference: { type: 'string', description: 'The first member (smallest raw record id): every other member is compared with it.' },
              members: {
                type: 'array',
                items: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['raw_record_id', 'source', 'membership', 'against_reference', 'best_link'],
                  properties: {
                    raw_record_id: { type: 'string' },
                    source: { type: 'string' },
                    membership: { type: 'object', additionalProperties: true, description: 'What the resolver recorded when the record joined: the rule, or the links with weight and probability.' },
                    against_reference: { anyOf: [explanation, { type: 'null' }], description: 'Compared with the reference (null for the reference itself, or without customer data).' },
                    best_link: { anyOf: [explanation, { type: 'null' }], description: 'Compared with the member it matches best (null for a single member).' },
                  },
                },
              },
            },
          },
          308: { description: 'The id was merged into another customer: `Location` names the surviving one.', headers: { location: { type: 'string' } }, type: 'object', properties: { merged_into: { type: 'string' } } },
          404: { description: 'No customer has this id (HUB_ERR_NOT_FOUND).', ...errorRef },
          410: { description: 'The customer was retired or erased (HUB_ERR_GONE, HUB_ERR_ERASED).', ...errorRef },
        },
      },
    },
    async (request, reply) => {
      const id = await resolveCustomer(hub, request.params.id, reply, (survivor) => `/v1/customers/${survivor}/explain`);
      if (id === undefined) return reply;
      const { rows } = await hub.pool.query<{ raw_record_id: string; source: string; detail: Record<string, unknown> }>({
        text: `select m.raw_record_id, r.source, m.detail from cluster_membership m join raw_record r on r.id = m.raw_record_id
               where m.golden_id = $1 and m.valid_to is null order by m.raw_record_id`,
        values: [id],
      });
      const ids = rows.map((row) => Number(row.raw_record_id));
      const records = await preparedRecords(hub.pool, ids);
      return withModel(hub, async (model, info) => {
        const explain = (a: number, b: number) => {
          const [ra, rb] = [records.get(a), records.get(b)];
          return ra && rb ? model.model.explain(ra, rb) : undefined;
        };
        // Best links: every pair scored for clusters up to this size (larger ones: against the reference only).
        const pairwise = ids.length <= 200;
        return {
          id,
          model: info,
          reference: String(ids[0]),
          members: rows.map((row, index) => {
            const self = ids[index];
            const against = index === 0 ? undefined : explain(self, ids[0]);
            let best = against;
            if (pairwise) {
              for (const other of ids) {
                if (other === self) continue;
                const candidate = explain(self, other);
                if (candidate && (!best || candidate.matchWeight > best.matchWeight)) best = candidate;
              }
            }
            return {
              raw_record_id: row.raw_record_id,
              source: row.source,
              membership: row.detail,
              against_reference: against ? explanationJson(against) : null,
              best_link: best ? explanationJson(best) : null,
            };
          }),
        };
      });
    },
  );
}
