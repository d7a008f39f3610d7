/**
 * The probabilistic matcher behind the `Matcher` boundary (matcher.ts): the default, or hub.config.yaml
 * `resolution.matcher: probabilistic` (`deterministic` selects matcher.ts's shared-key rule).
 * - Blocking keys of each canonical record are stored in `block_key` (recomputed for the seed records,
 *   computed lazily for reached records lacking them, all of them on training); candidates of a record are
 *   the records sharing one of its keys, in blocks of at most `maxBlockSize` records.
 * - Pairs are scored with the stored model (`match_model`, newest for the configuration's hash): trained
 *   by EM on the hub's records once it holds `min_training_records`, before that the committed prior
 *   below (EM on a handful of records estimates nothing).
 * - Components: the seeds and their clusters search their blocks; records linked ≥ the link threshold,
 *   by deterministic key edges, golden-id edges or must-links join with their clusters (compared with the
 *   records gathered, not searched further, so a dense link graph is not pulled in whole); then clustered by the library's `clusterPairs` (strongest first,
 *   average-linkage guard against chaining). Steward must-links always link; deterministic key edges link
 *   unless a cannot-link separates them; cannot-links always separate.
 * - Pairs between the thresholds (and pairs the chaining guard refused) are stored in `review_item`.
 */
import { inTransaction, type Pool, type PoolClient } from '../hub/db/database.js';
import type { HubConfig, SurvivorshipConfig } from '../openapi/generated/hub-config.gen.js';
import type { CanonicalRecord } from '../openapi/generated/canonical-record.gen.js';
import { canonicalReaderOf, deterministicMatcher, type CanonicalReader, type Matcher, type MatchResult } from './matcher.js';
import { takesPartInResolution } from './match-keys.js';
import { ConstrainedGroups, connectedComponents, pairKey } from './clusters.js';
import { DEFAULT_RULES, ruleEdgesOf, ruleKeyKinds, sameSourceDuplicates, strengthOf, type IdentifierRow, type RuleKeyRow, type RuleName, type RuleSettings } from './deterministic-rules.js';
import {
  COMPARISONS,
  DEFAULT_CONFIG,
  FellegiSunterModel,
  blockingKeys,
  candidatePairs,
  clusterPairs,
  configHash,
  prepareRecord,
  toMatchRecord,
  trainModel,
  type ModelParameters,
  type PairExplanation,
  type PreparedRecord,
  type SerialisedModel,
} from './probabilistic/index.js';
import * as sql from './sql.js';

export type MatcherName = 'deterministic' | 'probabilistic';
type ResolutionConfig = NonNullable<HubConfig['resolution']>;

export interface ResolutionSettings extends RuleSettings {
  matcher: MatcherName;
  minTrainingRecords: number;
}

export const MATCH_CONFIG = DEFAULT_CONFIG;

/**
 * `deterministic_keys`, the probabilistic matcher's setting before the rules: the keys that linked without scoring.
 * Read as those rules (an identifier inside one source or across) after `verified_email`.
 */
function legacyRules(keys: ResolutionConfig['deterministic_keys']): RuleName[] | undefined {
  return keys && ['verified_email', ...keys.flatMap((key): RuleName[] => (key === 'identifier' ? ['same_source_id', 'identifier'] : [key]))];
}

export function resolutionSettings(config: HubConfig['resolution'] = {}): ResolutionSettings {
  const matcher = config.matcher ?? 'probabilistic';
  return {
    matcher,
    rules: config.deterministic_rules ?? (matcher === 'probabilistic' ? legacyRules(config.deterministic_keys) : undefined) ?? DEFAULT_RULES[matcher],
    sameSourceDuplicates: config.same_source_duplicates ?? 'strong_evidence',
    minTrainingRecords: config.min_training_records ?? 1000,
  };
}

/** Stores the configured matcher where every process's resolver reads it (called at boot). */
export async function saveResolutionSettings(db: Pool | PoolClient, config: HubConfig['resolution']): Promise<ResolutionSettings> {
  const settings = resolutionSettings(config);
  const stored: ResolutionConfig = { deterministic_rules: settings.rules, same_source_duplicates: settings.sameSourceDuplicates, min_training_records: settings.minTrainingRecords };
  await db.query(sql.saveResolutionSetting(settings.matcher, stored));
  return settings;
}

export async function loadResolutionSettings(db: Pool | PoolClient): Promise<ResolutionSettings> {
  const { rows } = await db.query<{ matcher: MatcherName; settings: ResolutionConfig }>(sql.resolutionSetting());
  const row = rows[0];
  return resolutionSettings(row ? { ...row.settings, matcher: row.matcher } : {});
}

/** The newest stored model of the matching configuration, as currentModel reads it. */
export interface ModelRow {
  id: string;
  kind: 'em' | 'prior';
  records: number;
  trained_at: Date;
  db: string;
}

/** What a resolution pass reads before it starts (with its locks, sql.lockForPass). */
export interface ResolutionContext {
  settings: ResolutionSettings;
  survivorship: SurvivorshipConfig;
  /** Null: no model stored yet. */
  latestModel: ModelRow | null;
}

/** The context columns of sql.lockForPass, as they come back. */
export interface ResolutionContextRow {
  resolution: { matcher: MatcherName; settings: ResolutionConfig } | null;
  survivorship: SurvivorshipConfig | null;
  model: (Omit<ModelRow, 'id' | 'trained_at'> & { id: number; trained_at: string }) | null;
}

/** The hash of the matching configuration, which names the models trained for it. */
export const MATCH_CONFIG_HASH = configHash(MATCH_CONFIG);

export function resolutionContextOf({ resolution, survivorship, model }: ResolutionContextRow): ResolutionContext {
  return {
    settings: resolutionSettings(resolution ? { ...resolution.settings, matcher: resolution.matcher } : {}),
    survivorship: survivorship ?? {},
    latestModel: model && { ...model, id: String(model.id), trained_at: new Date(model.trained_at) },
  };
}

/** The resolver's default: the matcher the configuration names. */
export const configuredMatcher: Matcher = async (client, seed, pass) => {
  const settings = pass?.context?.settings ?? (await loadResolutionSettings(client));
  return settings.matcher === 'probabilistic' ? probabilisticMatcher(settings)(client, seed, pass) : deterministicMatcher(settings)(client, seed, pass);
};

// --- The model ------------------------------------------------------------------------------------------

/**
 * The prior model: m and u per level as customary in record linkage (names agree for ~80–85% of true
 * matches and ~1% of random pairs, dates of birth almost never agree by chance, …), no term frequencies,
 * λ = 1e-4. Used until the hub holds enough records for EM; `hub resolve --train` replaces it.
 * Scored as independent evidence, so attributes that repeat another or describe a role are calibrated down:
 * - full_name: m = u (weight 0): given and family names are compared (and derived from it) already.
 * - email, similar user name at another address: m = u; a user name spells the person's name, so namesakes
 *   share it as often as one person does (hans.mueller24@… and hans.mueller62@… are two people).
 * - city, organisation, job title: agree by chance far more often than a name (customers cluster in a few
 *   cities; a B2B hub holds several colleagues per company, with the same few titles): u 0.1, 0.05, 0.1.
 * - the same email or phone: u is the chance that two different people share one (households, role accounts,
 *   office lines), not how often two records do (mostly one person's): 1e-6 and 2e-6, so a shared address or
 *   number alone links an email message or a call to its sender, and differing names outweigh it.
 */
const PRIOR: Record<string, { m: number[]; u: number[] }> = {
  given_name: { m: [0.8, 0.08, 0.06, 0.02, 0.02, 0.02], u: [0.01, 0.005, 0.01, 0.03, 0.03, 0.915] },
  family_name: { m: [0.85, 0.01, 0.08, 0.01, 0.02, 0.01, 0.02], u: [0.005, 0.0005, 0.002, 0.0005, 0.003, 0.02, 0.969] },
  full_name: { m: [0.7, 0.05, 0.1, 0.1, 0.05], u: [0.7, 0.05, 0.1, 0.1, 0.05] },
  birth_date: { m: [0.9, 0.02, 0.05, 0.01, 0.02], u: [0.0001, 0.00001, 0.003, 0.01, 0.98689] },
  email: { m: [0.7, 0.1, 0.05, 0.15], u: [0.000001, 0.0001, 0.05, 0.949899] },
  phone: { m: [0.7, 0.05, 0.05, 0.2], u: [0.000002, 0.0005, 0.002, 0.997498] },
  postcode: { m: [0.85, 0.05, 0.05, 0.05], u: [0.005, 0.002, 0.05, 0.943] },
  city: { m: [0.9, 0.05, 0.05], u: [0.1, 0.01, 0.89] },
  address: { m: [0.7, 0.2, 0.03, 0.03, 0.04], u: [0.0005, 0.001, 0.005, 0.002, 0.9915] },
  organisation: { m: [0.8, 0.1, 0.1], u: [0.05, 0.01, 0.94] },
  job_title: { m: [0.6, 0.1, 0.3], u: [0.1, 0.01, 0.89] },
};

export function priorModel(): FellegiSunterModel {
  const parameters: ModelParameters = {
    lambda: 1e-4,
    comparisons: MATCH_CONFIG.comparisons.map((name) => {
      const comparison = COMPARISONS[name];
      const prior = PRIOR[name];
      if (!prior || prior.m.length !== comparison.levels.length) throw new Error(`no prior for comparison "${name}"`);
      return { name, levels: comparison.levels.map((label, l) => ({ label, m: prior.m[l], u: prior.u[l] })) };
    }),
  };
  return new FellegiSunterModel(parameters, {}, MATCH_CONFIG.termFrequency.minFrequency);
}

interface StoredModel {
  /** Null: the prior, not stored yet. */
  id: number | null;
  kind: 'em' | 'prior';
  model: FellegiSunterModel;
}

let cached: (StoredModel & { key: string }) | undefined;

function prepare(id: number, source: string, data: CanonicalRecord): PreparedRecord | null {
  return takesPartInResolution(data) ? prepareRecord(toMatchRecord(String(id), source, data), 0) : null;
}

/** Fewer candidate pairs than this, and EM has too little to estimate m and u from: the prior stays. */
const MIN_TRAINING_PAIRS = 100;

/** Reads every canonical record (in id order), writes their blocking keys, and trains (EM, or the prior when too few). */
export async function trainAndStoreModel(client: PoolClient, settings: ResolutionSettings, options: { force?: boolean } = {}): Promise<{ id: number; kind: 'em' | 'prior'; records: number; report: unknown }> {
  const records: PreparedRecord[] = [];
  let after = 0;
  for (;;) {
    const { rows } = await client.query<{ id: string; source: string; data: CanonicalRecord }>(sql.canonicalRecordsAfter(after, 5000));
    if (rows.length === 0) break;
    const keys: { id: number; key: string }[] = [];
    for (const row of rows) {
      const id = Number(row.id);
      const prepared = takesPartInResolution(row.data) ? prepareRecord(toMatchRecord(row.id, row.source, row.data), records.length) : null;
      if (prepared) {
        records.push(prepared);
        for (const key of blockingKeys(MATCH_CONFIG.blocking.rules, prepared)) keys.push({ id, key });
      }
    }
    await client.query(sql.insertBlockKeys(keys));
    after = Number(rows[rows.length - 1].id);
  }
  let model: FellegiSunterModel;
  let kind: 'em' | 'prior';
  let report: unknown = {};
  const pairs = records.length >= settings.minTrainingRecords || (options.force && records.length >= 2)
    ? candidatePairs(records, MATCH_CONFIG.blocking.rules, { maxBlockSize: MATCH_CONFIG.blocking.maxBlockSize, linkType: 'link_and_dedupe' })
    : undefined;
  // EM needs pairs to learn from: records of one source without duplicates (a first import) give none.
  if (pairs && pairs.count >= MIN_TRAINING_PAIRS) {
    const k = MATCH_CONFIG.comparisons.length;
    const comparisons = MATCH_CONFIG.comparisons.map((name) => COMPARISONS[name]);
    const levels = new Int8Array(pairs.count * k);
    for (let p = 0; p < pairs.count; p++) for (let c = 0; c < k; c++) levels[p * k + c] = comparisons[c].compare(records[pairs.left[p]], records[pairs.right[p]]);
    const trained = trainModel(records, pairs, levels, MATCH_CONFIG, 'link_and_dedupe');
    model = trained.model;
    kind = 'em';
    report = { training: trained.report, blocking: pairs.stats };
  } else {
    model = priorModel();
    kind = 'prior';
    report = {
      reason: pairs
        ? `${pairs.count} candidate pairs among ${records.length} records, fewer than ${MIN_TRAINING_PAIRS}`
        : `${records.length} records, fewer than min_training_records (${settings.minTrainingRecords})`,
    };
  }
  const { rows } = await client.query<{ id: string }>(sql.insertModel({ configHash: MATCH_CONFIG_HASH, kind, model: model.toJSON(), records: records.length, report }));
  return { id: Number(rows[0].id), kind, records: records.length, report };
}

/**
 * The newest model of the configuration; trains one on first use, and by EM once the hub holds enough records.
 * With `train: false` (explanations read through the API) nothing is trained: without a stored model, the prior (id null).
 */
export async function currentModel(client: PoolClient, settings: ResolutionSettings, options: { train?: boolean; latest?: ModelRow | null } = {}): Promise<StoredModel> {
  const latest = async () =>
    (await client.query<ModelRow>({
      text: 'select id, kind, records, trained_at, current_database() as db from match_model where config_hash = $1 order by id desc limit 1',
      values: [MATCH_CONFIG_HASH],
    })).rows[0];
  let row = options.latest === undefined ? await latest() : (options.latest ?? undefined);
  if (options.train === false) {
    if (!row) return { id: null, kind: 'prior', model: priorModel() };
  }
  let retrain = !row && options.train !== false;
  if (row?.kind === 'prior' && options.train !== false) {
    // A prior kept for want of pairs is tried again once the records have doubled, not on every page.
    const enough = Math.max(settings.minTrainingRecords, 2 * row.records);
    const { rows } = await client.query({ text: 'select 1 from canonical_record offset $1 limit 1', values: [enough - 1] });
    retrain = rows.length > 0;
  }
  if (retrain) {
    await trainAndStoreModel(client, settings);
    row = await latest();
  }
  const key = `${row!.db}:${row!.id}:${row!.trained_at.toISOString()}`;
  if (cached?.key === key) return cached;
  const { rows } = await client.query<{ model: SerialisedModel }>({ text: 'select model from match_model where id = $1', values: [row!.id] });
  cached = { key, id: Number(row!.id), kind: row!.kind, model: FellegiSunterModel.fromJSON(rows[0].model) };
  return cached;
}

// --- Explanations ---------------------------------------------------------------------------------------

export interface ExplanationJson {
  left: string;
  right: string;
  attributes: { comparison: string; level: number; label: string; weight: number; tf_adjustment: number; value?: string; m?: number; u?: number; counted?: false }[];
  prior_weight: number;
  match_weight: number;
  probability: number;
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

export function explanationJson(explanation: PairExplanation): ExplanationJson {
  return {
    left: explanation.left,
    right: explanation.right,
    attributes: explanation.attributes.map((a) => ({
      comparison: a.comparison,
      level: a.level,
      label: a.label,
      weight: round(a.weight),
      tf_adjustment: round(a.tfAdjustment),
      ...(a.value !== undefined ? { value: a.value } : {}),
      ...(a.m !== undefined ? { m: a.m, u: a.u } : {}),
      ...(a.counted === false ? { counted: false as const } : {}),
    })),
    prior_weight: round(explanation.priorWeight),
    match_weight: round(explanation.matchWeight),
    probability: explanation.probability,
  };
}

/** Prepared records of `ids` (null: no canonical form, or no customer data), read through `canonical` when given. */
export async function preparedRecords(db: Pool | PoolClient, ids: number[], canonical?: CanonicalReader): Promise<Map<number, PreparedRecord | null>> {
  const out = new Map<number, PreparedRecord | null>();
  if (ids.length === 0) return out;
  const rows = canonical
    ? [...(await canonical(ids))].map(([id, row]) => ({ id, ...row }))
    : (await db.query<{ id: string; source: string; data: CanonicalRecord }>(sql.canonicalRecords(ids))).rows;
  for (const row of rows) out.set(Number(row.id), prepare(Number(row.id), row.source, row.data));
  for (const id of ids) if (!out.has(id)) out.set(id, null);
  return out;
}

// --- The matcher ----------------------------------------------------------------------------------------

/**
 * The blocking keys of canonical records (a record without customer data has none). Where records are mapped, they
 * are written with the canonical form (hub/sql.ts writeCanonical), before the resolution lock, so that a group
 * waiting for that lock has done it.
 */
export function blockKeyRows(records: { id: number; source: string; data: CanonicalRecord }[]): { id: number; key: string }[] {
  const rows: { id: number; key: string }[] = [];
  for (const { id, source, data } of records) {
    const record = prepare(id, source, data);
    if (record) for (const key of blockingKeys(MATCH_CONFIG.blocking.rules, record)) rows.push({ id, key });
  }
  return rows;
}

/** Files canonical records under their blocking keys, replacing the keys they had. */
async function writeBlockKeys(client: PoolClient, records: { id: number; source: string; data: CanonicalRecord }[]): Promise<void> {
  if (records.length === 0) return;
  await client.query(sql.replaceBlockKeys(records.map((record) => record.id), blockKeyRows(records)));
}

/** writeBlockKeys for stored records: ones stored before blocking keys were, or all of them in a full rebuild. */
async function writeStoredBlockKeys(client: PoolClient, ids: number[], canonical: CanonicalReader = canonicalReaderOf(client)): Promise<void> {
  if (ids.length === 0) return;
  // A record without a canonical form has no keys left (they go with it).
  await writeBlockKeys(client, [...(await canonical(ids))].map(([id, row]) => ({ id, source: row.source, data: row.data })));
}

/** A pair's match weight without its email and phone comparisons: the evidence beyond a shared contact key. */
export function weightWithoutContacts(model: FellegiSunterModel, a: PreparedRecord, b: PreparedRecord): number {
  const { attributes, matchWeight } = model.explain(a, b);
  return attributes.filter((attribute) => attribute.comparison === 'email' || attribute.comparison === 'phone').reduce((weight, attribute) => weight - attribute.weight - attribute.tfAdjustment, matchWeight);
}

/** A row of sql.searchStep. */
interface SearchRow {
  tag: string;
  left: string;
  right: string | null;
  kind: string | null;
  value: string | null;
  verified: boolean | null;
  same_source: boolean | null;
  ord: string | null;
  data: CanonicalRecord | null;
  observed_at: Date | null;
}

interface Scored {
  a: number;
  b: number;
  weight: number;
  probability: number;
}

export function probabilisticMatcher(settings: ResolutionSettings): Matcher {
  return async (client, seed, pass): Promise<MatchResult> => {
    const canonical = pass?.canonical ?? canonicalReaderOf(client);
    const { model } = await currentModel(client, settings, { latest: pass?.context?.latestModel });
    const { linkProbability, reviewProbability } = MATCH_CONFIG.thresholds;

    const prepared = new Map<number, PreparedRecord | null>();
    const load = async (ids: number[]) => {
      const missing = [...new Set(ids.filter((id) => !prepared.has(id)))];
      for (const [id, record] of await preparedRecords(client, missing, canonical)) prepared.set(id, record);
    };
    const members = new Set<number>(seed);
    // Pairs a deterministic rule (or a golden id) links without scoring.
    const forced = new Map<string, { a: number; b: number; rule: RuleName | 'golden_id'; key?: string }>();
    const mustLink: [number, number][] = [];
    const cannotLink = new Set<string>();
    const scored = new Map<string, Scored>();
    // Records whose candidates are searched: the seeds and the members of their clusters (recomputed with them).
    // A record reached through a score brings its cluster, but is compared only with the records already here,
    // so one new record cannot pull in the whole link graph of a dense data set.
    const expanding = new Set<number>(seed);
    const score = (a: number, b: number): Scored | undefined => {
      const key = pairKey(a, b);
      const known = scored.get(key);
      if (known) return known;
      const [pa, pb] = [prepared.get(a), prepared.get(b)];
      if (!pa || !pb) return undefined;
      const weight = model.weight(pa, pb);
      const pair = { a: Math.min(a, b), b: Math.max(a, b), weight, probability: model.probability(weight) };
      scored.set(key, pair);
      return pair;
    };
    const { kinds, verifiedOnly } = ruleKeyKinds(settings.rules);
    // The identifiers of every record reached (each passes through a frontier once at least), for same-source duplicates.
    const identifiers: IdentifierRow[] = [];
    let frontier = [...seed];
    while (frontier.length > 0) {
      const next: number[] = [];
      const reach = (id: number) => {
        if (!members.has(id)) {
          members.add(id);
          next.push(id);
        }
      };
      const searching = frontier.filter((id) => expanding.has(id));
      const { rows } = await client.query<SearchRow>(sql.searchStep(frontier, searching, MATCH_CONFIG.blocking.maxBlockSize, kinds, verifiedOnly, [...prepared.keys()]));
      const tagged = (tag: string) => rows.filter((row) => row.tag === tag);
      // The canonical forms of the frontier and the candidates came with the step (a frontier record without one has none).
      const fetched = new Map(tagged('canonical').map((row) => [Number(row.left), { source: row.kind!, data: row.data!, observed_at: row.observed_at! }]));
      canonical.remember([...new Set([...frontier, ...fetched.keys()])].filter((id) => !prepared.has(id)), fetched);
      for (const row of tagged('identifier')) identifiers.push({ id: row.left, source: row.kind!, value: row.value! });

      // Records reached for the first time that were stored before blocking keys were: keys now, then their candidates.
      const keyless = tagged('keyless').map((row) => Number(row.left));
      await writeStoredBlockKeys(client, keyless, canonical);
      const keylessSearching = keyless.filter((id) => expanding.has(id));
      const candidates = tagged('candidate');
      if (keylessSearching.length) candidates.push(...(await client.query<SearchRow>(sql.blockCandidates(keylessSearching, MATCH_CONFIG.blocking.maxBlockSize))).rows);

      for (const edge of ruleEdgesOf(tagged('rule') as RuleKeyRow[], settings.rules)) {
        reach(edge.a);
        reach(edge.b);
        forced.set(pairKey(edge.a, edge.b), edge);
      }
      for (const edge of tagged('golden')) {
        const [a, b] = [Number(edge.left), Number(edge.right)];
        reach(a);
        reach(b);
        if (!forced.has(pairKey(a, b))) forced.set(pairKey(a, b), { a: Math.min(a, b), b: Math.max(a, b), rule: 'golden_id' });
      }
      for (const constraint of rows.filter((row) => row.tag === 'must_link' || row.tag === 'cannot_link').sort((x, y) => Number(x.ord) - Number(y.ord))) {
        const [a, b] = [Number(constraint.left), Number(constraint.right)];
        if (a === b) continue;
        if (constraint.tag === 'must_link') {
          reach(a);
          reach(b);
          mustLink.push([a, b]);
        } else cannotLink.add(pairKey(a, b));
      }
      await load(candidates.flatMap((row) => [Number(row.left), Number(row.right)]));
      for (const row of candidates) {
        const [a, b] = [Number(row.left), Number(row.right)];
        const pair = score(a, b);
        if (pair && pair.probability >= linkProbability && !cannotLink.has(pairKey(a, b))) reach(b);
      }
      // Former cluster mates are recomputed too, so an old cluster can fall apart; mates of searched records are searched.
      const goldenOf = new Map(tagged('member').map((row) => [Number(row.left), row.value!]));
      const matesOf = new Map<string, number[]>();
      for (const row of tagged('mate')) matesOf.set(row.value!, [...(matesOf.get(row.value!) ?? []), Number(row.left)]);
      const mates = (ids: number[]) => [...new Set(ids.flatMap((id) => matesOf.get(goldenOf.get(id)!) ?? []))];
      for (const id of mates(searching)) {
        if (expanding.has(id)) continue;
        expanding.add(id);
        if (members.has(id)) next.push(id);
        else reach(id);
      }
      for (const id of mates(frontier.filter((id) => !expanding.has(id)))) reach(id);
      frontier = next;
    }

    const ids = [...members].sort((a, b) => a - b);
    await load(ids);
    // The pairs among the members that were not searched: their clusters are recomputed from them.
    const unsearched = ids.filter((id) => !expanding.has(id));
    if (unsearched.length) {
      const { rows } = await client.query<{ left: string; right: string }>(sql.blockCandidatesAmong(unsearched, ids, MATCH_CONFIG.blocking.maxBlockSize));
      for (const row of rows) score(Number(row.left), Number(row.right));
    }
    const index = new Map(ids.map((id, i) => [id, i]));
    const inside = (pair: { a: number; b: number }) => index.has(pair.a) && index.has(pair.b);

    // Same-source duplicates (deterministic-rules.ts) among records that could end up together; a score that links
    // without their email and phone is strong enough evidence to join them.
    const linking = [...scored.values()].filter((pair) => inside(pair) && pair.probability >= linkProbability);
    const reachable = connectedComponents(ids, [...forced.values(), ...linking].filter(inside).map((pair): [number, number] => [pair.a, pair.b]).concat(mustLink.filter(([a, b]) => index.has(a) && index.has(b))));
    const duplicates = await sameSourceDuplicates(client, reachable, settings, identifiers);
    for (const key of duplicates) {
      const pair = scored.get(key);
      if (pair && pair.probability >= linkProbability && model.probability(weightWithoutContacts(model, prepared.get(pair.a)!, prepared.get(pair.b)!)) >= linkProbability) duplicates.delete(key);
    }

    // Must-links always; deterministic edges unless a cannot-link would end up inside the group (weak ones: or duplicates).
    const joined = new ConstrainedGroups(ids, cannotLink, duplicates);
    const links: [number, number][] = [];
    for (const [a, b] of mustLink) {
      if (!index.has(a) || !index.has(b)) continue;
      links.push([a, b]);
      joined.join(a, b, 'must_link');
    }
    const weakLast = (x: { rule: string }) => Number(strengthOf(x.rule as RuleName) === 'weak');
    for (const edge of [...forced.values()].filter(inside).sort((x, y) => weakLast(x) - weakLast(y) || x.a - y.a || x.b - y.b)) {
      if (joined.join(edge.a, edge.b, strengthOf(edge.rule))) links.push([edge.a, edge.b]);
    }
    // Duplicates not joined by a rule are kept apart from scores too, however they chain.
    const apart = [...duplicates].map((key) => key.split(':').map(Number)).filter(([a, b]) => !joined.together(a, b));

    const pairs = [...scored.values()]
      .filter((pair) => inside(pair) && pair.probability >= reviewProbability)
      .map((pair) => ({ i: index.get(pair.a)!, j: index.get(pair.b)!, weight: pair.weight, probability: pair.probability }));
    const recordProbability = (a: number, b: number) => {
      const [pa, pb] = [prepared.get(a), prepared.get(b)];
      return pa && pb ? model.probability(model.weight(pa, pb)) : 0;
    };
    // Records a deterministic rule or a steward joined count as one person, scored by their best pair: a web event
    // that holds only a visitor id is as much that person as the identify call its id links it to.
    const probabilityCache = new Map<string, number>();
    const probability = (i: number, j: number) => {
      const [ga, gb] = [joined.group(ids[i]), joined.group(ids[j])];
      if (ga === gb) return 1;
      const key = pairKey(Math.min(...ga), Math.min(...gb));
      let p = probabilityCache.get(key);
      if (p === undefined) {
        p = 0;
        for (const a of ga) for (const b of gb) p = Math.max(p, recordProbability(a, b));
        probabilityCache.set(key, p);
      }
      return p;
    };
    const clustering = clusterPairs(
      ids.length,
      pairs,
      probability,
      {
        mustLink: links.map(([a, b]) => [index.get(a)!, index.get(b)!]),
        cannotLink: [...[...cannotLink].map((key) => key.split(':').map(Number)), ...apart].filter(([a, b]) => index.has(a) && index.has(b)).map(([a, b]) => [index.get(a)!, index.get(b)!]),
      },
      { ...MATCH_CONFIG.thresholds, ...MATCH_CONFIG.clustering },
    );

    // What linked each record: the pair, its rule or its weight and probability.
    const details = new Map<number, { with: number; rule: string; key?: string; weight: number | null; probability: number }[]>();
    for (const link of clustering.links) {
      const [a, b] = [ids[link.i], ids[link.j]];
      const key = pairKey(a, b);
      const rule = forced.get(key)?.rule ?? (Number.isFinite(link.weight) ? 'score' : 'must_link');
      const sharedKey = forced.get(key)?.key;
      const pair = scored.get(key);
      const weight = Number.isFinite(link.weight) ? round(link.weight) : pair ? round(pair.weight) : null;
      const p = Number.isFinite(link.weight) ? link.probability : (pair?.probability ?? 1);
      for (const [self, other] of [[a, b], [b, a]]) {
        if (!details.has(self)) details.set(self, []);
        details.get(self)!.push({ with: other, rule, ...(sharedKey ? { key: sharedKey } : {}), weight, probability: p });
      }
    }

    // Review queue: open pairs inside, and pairs to records outside the component between the thresholds.
    const reviews: Parameters<typeof sql.upsertReviewItems>[0] = [];
    const explain = (a: number, b: number) => explanationJson(model.explain(prepared.get(a)!, prepared.get(b)!));
    for (const review of clustering.reviews) {
      const [a, b] = [ids[review.i], ids[review.j]];
      reviews.push({ left: Math.min(a, b), right: Math.max(a, b), probability: review.probability, weight: review.weight, reason: review.reason, explanation: explain(Math.min(a, b), Math.max(a, b)) });
    }
    // Duplicates kept apart that the score would link or review: the steward decides.
    for (const [a, b] of apart) {
      const pair = scored.get(pairKey(a, b));
      if (!pair || pair.probability < reviewProbability || cannotLink.has(pairKey(a, b))) continue;
      if (clustering.clusterOf[index.get(a)!] !== clustering.clusterOf[index.get(b)!]) reviews.push({ left: pair.a, right: pair.b, probability: pair.probability, weight: pair.weight, reason: 'same_source', explanation: explain(pair.a, pair.b) });
    }
    for (const pair of scored.values()) {
      if (inside(pair) || pair.probability < reviewProbability || pair.probability >= linkProbability || cannotLink.has(pairKey(pair.a, pair.b))) continue;
      reviews.push({ left: pair.a, right: pair.b, probability: pair.probability, weight: pair.weight, reason: 'between_thresholds', explanation: explain(pair.a, pair.b) });
    }
    reviews.sort((x, y) => x.left - y.left || x.right - y.right);
    await pass?.claim?.(ids);
    if (reviews.length) await client.query(sql.upsertReviewItems(reviews));

    const groups = new Map<number, number[]>();
    ids.forEach((id, i) => {
      const at = clustering.clusterOf[i];
      if (!groups.has(at)) groups.set(at, []);
      groups.get(at)!.push(id);
    });
    return {
      components: [...groups.values()],
      links: new Map([...details].map(([id, list]) => [id, list.map((link) => (link.rule === 'score' ? `score:${link.with}` : link.key ? `${link.rule}:${link.key}` : link.rule)).sort()])),
      details: new Map(ids.map((id) => [id, { rule: 'probabilistic', links: (details.get(id) ?? []).sort((x, y) => x.with - y.with) }])),
    };
  };
}

// --- Full rebuild ---------------------------------------------------------------------------------------

export interface RebuildReport {
  records: number;
  batches: number;
  created: number;
  updated: number;
  merged: number;
  split: number;
  retired: number;
  clusters: number;
  reviewOpen: number;
  millis: number;
}

type Resolve = (client: PoolClient, ids: number[], cause: { cause: 'decision'; causeId?: string; actor: string }) => Promise<{ created: string[]; updated: string[]; merged: string[]; split: string[]; retired: string[] }>;

/**
 * `hub resolve --full`: re-runs resolution over every record (with a canonical form or a current
 * membership), in id order, `batchSize` seed records per transaction. The keeper rules of resolve.ts keep
 * golden ids wherever membership does not change, so a second run over the same input changes nothing.
 */
export async function rebuildClusters(pool: Pool, resolve: Resolve, options: { batchSize?: number; actor?: string } = {}): Promise<RebuildReport> {
  const started = performance.now();
  const batchSize = options.batchSize ?? 500;
  const { rows } = await pool.query<{ id: string }>(
    `select raw_record_id as id from canonical_record union select raw_record_id from cluster_membership where valid_to is null order by 1`,
  );
  const ids = rows.map((row) => Number(row.id));
  // Every record's blocking keys first, so the first batches find the records of later ones.
  if ((await loadResolutionSettings(pool)).matcher === 'probabilistic') {
    for (let at = 0; at < ids.length; at += 5000) await inTransaction(pool, (client) => writeStoredBlockKeys(client, ids.slice(at, at + 5000)));
  }
  const report: RebuildReport = { records: ids.length, batches: 0, created: 0, updated: 0, merged: 0, split: 0, retired: 0, clusters: 0, reviewOpen: 0, millis: 0 };
  for (let at = 0; at < ids.length; at += batchSize) {
    const result = await inTransaction(pool, async (client) => {
      return resolve(client, ids.slice(at, at + batchSize), { cause: 'decision', causeId: 'resolve-full', actor: options.actor ?? 'cli:resolve' });
    });
    report.batches++;
    report.created += result.created.length;
    report.updated += result.updated.length;
    report.merged += result.merged.length;
    report.split += result.split.length;
    report.retired += result.retired.length;
  }
  const { rows: counts } = await pool.query<{ clusters: number; open: number }>(
    `select (select count(*)::int from golden_record where status = 'active') as clusters, (select count(*)::int from review_item where status = 'open') as open`,
  );
  report.clusters = counts[0].clusters;
  report.reviewOpen = counts[0].open;
  report.millis = Math.round(performance.now() - started);
  return report;
}
