/**
 * Organisations (B2B accounts): the organisation parts of canonical records (the company a person works for, or
 * a system's company record) resolve into golden organisation records (`org_<seq>`), and each golden person
 * record names its organisation (`organisation_id`).
 *
 * Organisation parts are one organisation when they share a key: the normalised name (legal forms such as
 * Ltd, GmbH, plc, Inc, S.A., B.V. folded, case, accents, punctuation, "&"/"and"), a domain (the organisation's
 * website or domain, and its people's email domains — never a free-mail provider's), a VAT or a registration
 * number. A domain under which records name different organisations is a mail provider's, not a company's:
 * it links nothing. Resolution is incremental: only records whose keys changed re-cluster, together with the
 * records they reach through keys and their current organisations; ids are kept, merged and retired as for
 * customers (clusters.ts).
 */
import type { PoolClient } from '../hub/db/database.js';
import type { CanonicalRow } from './matcher.js';
import type { CanonicalRecord } from '../openapi/generated/canonical-record.gen.js';
import { connectedComponents, keptClusters, type ClusterRef } from './clusters.js';
import { stableStringify } from '../hub/stable-json.js';
import * as sql from './sql.js';
import { FREE_MAIL_DOMAINS } from './free-mail.js';

export type OrganisationKeyKind = 'name' | 'domain' | 'vat' | 'registration';

export interface OrganisationKey {
  kind: OrganisationKeyKind;
  value: string;
}

/** What a golden organisation record holds (organisation.data). */
export interface OrganisationData {
  /** The name its first record gave. */
  name?: string;
  /** Every distinct name its records give, in the order first seen. */
  names: string[];
  domains: string[];
  identifiers: { scheme: 'vat' | 'registration_number'; value: string }[];
}

/**
 * Legal forms, after dots are dropped and "&" spelled "and" ("S.A." → "sa", "GmbH & Co. KG" → "gmbh and co kg"):
 * removed from the end of a name, as many as there are.
 */
const LEGAL_FORMS = new Set([
  'ltd', 'limited', 'plc', 'llp', 'lp', 'llc', 'inc', 'incorporated', 'corp', 'corporation', 'co', 'company', 'and', 'gmbh', 'mbh', 'ag', 'kg',
  'kgaa', 'ohg', 'gbr', 'ug', 'haftungsbeschrankt', 'ev', 'ek', 'eg', 'se', 'sa', 'sas', 'sarl', 'sl', 'srl', 'spa', 'bv', 'nv', 'vof', 'cv',
  'rl', 'oy', 'oyj', 'ab', 'as', 'asa', 'aps', 'pty', 'sp', 'z', 'oo', 'zoo', 'sro', 'kft', 'bhd', 'sdn', 'pvt',
]);

/** "Müller & Söhne GmbH & Co. KG" → "muller and sohne"; empty when nothing but a legal form remains. */
export function normaliseOrganisationName(name: string): string {
  const words = name
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/&|\+/g, ' and ')
    .replace(/\./g, '')
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean);
  while (words.length > 1 && LEGAL_FORMS.has(words[words.length - 1])) words.pop();
  return words.length === 1 && LEGAL_FORMS.has(words[0]) ? '' : words.join(' ');
}

/** A website, domain or email address → its lower-cased domain without `www.`; undefined for a free-mail provider or no domain. */
export function organisationDomain(value: string): string | undefined {
  const host = value
    .trim()
    .toLowerCase()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//, '')
    .replace(/^.*@/, '')
    .split(/[/?#:]/)[0]
    .replace(/^www\./, '')
    .replace(/\.$/, '');
  return /^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(host) && !FREE_MAIL_DOMAINS.has(host) ? host : undefined;
}

/** VAT and registration numbers compare without spaces, dots, dashes and slashes, in capitals. */
const compactNumber = (value: string) => value.toUpperCase().replace(/[\s./-]+/g, '');

/** The keys of a record's organisation part; none for a record without one. */
export function organisationKeys(record: CanonicalRecord): OrganisationKey[] {
  const organisation = record.organisation;
  if (!organisation || Object.keys(organisation).length === 0) return [];
  const keys = new Map<string, OrganisationKey>();
  const add = (kind: OrganisationKeyKind, value: string | undefined) => {
    if (value) keys.set(`${kind}:${value}`, { kind, value });
  };
  add('name', organisation.name && normaliseOrganisationName(organisation.name));
  add('vat', organisation.vat_number && compactNumber(organisation.vat_number));
  add('registration', organisation.registration_number && compactNumber(organisation.registration_number));
  for (const domain of [organisation.domain, ...(record.person?.emails ?? []).map((email) => email.address)]) add('domain', domain && organisationDomain(domain));
  return [...keys.values()].sort((a, b) => (`${a.kind}:${a.value}` < `${b.kind}:${b.value}` ? -1 : 1));
}

const keyString = (key: OrganisationKey) => `${key.kind}:${key.value}`;

const IDENTIFIER_SCHEMES: Partial<Record<OrganisationKeyKind, OrganisationData['identifiers'][number]['scheme']>> = { vat: 'vat', registration: 'registration_number' };

/**
 * Adds records' names, linking domains and numbers to an organisation's data, each once, in the order first
 * seen: the name is the one its first record gave (stable while records come and go; the others are in `names`).
 * `entries` come in record id order; records new to organisations mostly have the largest ids, so adding them to
 * stored data gives what recomputing from every record gives.
 */
function withRecords(data: OrganisationData, entries: { name?: string; keys: OrganisationKey[] }[]): OrganisationData {
  const add = <T>(list: T[], values: T[]) => {
    // Key-sorted: stored data read back from jsonb has its keys in another order.
    const seen = new Set(list.map((value) => stableStringify(value)));
    return [...list, ...values.filter((value) => !seen.has(stableStringify(value)) && seen.add(stableStringify(value)))];
  };
  const keys = entries.flatMap((entry) => entry.keys);
  const names = add(data.names, entries.flatMap((entry) => (entry.name ? [entry.name] : [])));
  return {
    ...(names.length > 0 && { name: names[0] }),
    names,
    domains: add(data.domains, keys.filter((key) => key.kind === 'domain').map((key) => key.value)),
    identifiers: add(data.identifiers, keys.flatMap((key) => (IDENTIFIER_SCHEMES[key.kind] ? [{ scheme: IDENTIFIER_SCHEMES[key.kind]!, value: key.value }] : []))),
  };
}

const EMPTY: OrganisationData = { names: [], domains: [], identifiers: [] };

export interface OrganisationResolution {
  /** The current organisation of each record asked about that has one. */
  organisationOf: Map<number, string>;
  /** Records whose organisation changed, beyond the ones asked about (their people need the new link too). */
  moved: number[];
}

/**
 * Re-clusters the organisation parts of `ids` whose keys changed (`rows` holds the canonical form of `ids`
 * that have one) and answers each record's current organisation. Organisations span customers, so only a pass that
 * holds the resolution lock exclusively re-clusters them (`recluster`); sql.lockForPass takes it so for any pass whose
 * records have or had an organisation part.
 */
export async function resolveOrganisations(client: PoolClient, ids: number[], rows: Map<number, CanonicalRow>, options: { recluster: boolean }): Promise<OrganisationResolution> {
  if (!options.recluster) {
    // Only a record with an organisation part has keys, hence an organisation: a pass without one reads nothing.
    const named = ids.filter((id) => Object.keys(rows.get(id)?.data.organisation ?? {}).length > 0);
    const { membership } = named.length ? await keysAndMemberships(client, named) : { membership: new Map<number, ClusterRef>() };
    return { organisationOf: new Map([...membership].map(([id, cluster]) => [id, cluster.id])), moved: [] };
  }
  const { keyRows: storedRows, membership: before } = await keysAndMemberships(client, ids);
  const stored = new Map<number, string[]>();
  for (const row of storedRows) stored.set(Number(row.id), [...(stored.get(Number(row.id)) ?? []), `${row.kind}:${row.value}`]);
  const fresh = new Map(ids.map((id) => [id, rows.has(id) ? organisationKeys(rows.get(id)!.data) : []]));
  // Keys that changed, or a record that lost its canonical form (its keys went with it) but not its organisation yet.
  const changed = ids.filter((id) => fresh.get(id)!.map(keyString).join('|') !== (stored.get(id) ?? []).sort().join('|') || (fresh.get(id)!.length === 0 && before.has(id)));
  if (changed.length === 0) return { organisationOf: new Map([...before].map(([id, cluster]) => [id, cluster.id])), moved: [] };

  await client.query(sql.deleteOrganisationKeys(changed));
  const inserted = changed.flatMap((id) => fresh.get(id)!.map((key) => ({ id, ...key })));
  if (inserted.length) await client.query(sql.insertOrganisationKeys(inserted));
  const additions = changed.every((id) => !stored.has(id) && !before.has(id));
  const moved = (additions && (await attachNewRecords(client, changed, fresh, rows))) || (await recluster(client, changed, rows));
  const after = await currentOrganisations(client, ids);
  const asked = new Set(ids);
  return { organisationOf: new Map([...after].map(([id, cluster]) => [id, cluster.id])), moved: moved.filter((id) => !asked.has(id)) };
}

/** The stored organisation keys of `ids` and their current organisations, in one round trip. */
async function keysAndMemberships(client: PoolClient, ids: number[]): Promise<{ keyRows: { id: string; kind: OrganisationKeyKind; value: string }[]; membership: Map<number, ClusterRef> }> {
  const { rows } = await client.query<{ tag: 'key' | 'member'; id: string; kind: OrganisationKeyKind; value: string; organisation_id: string; seq: string }>(
    sql.organisationKeysAndMemberships(ids),
  );
  const keyRows = rows.filter((row) => row.tag === 'key');
  const membership = new Map(rows.filter((row) => row.tag === 'member').map((row) => [Number(row.id), { id: row.organisation_id, seq: Number(row.seq) }]));
  return { keyRows, membership };
}

async function currentOrganisations(client: PoolClient, ids: number[]): Promise<Map<number, ClusterRef>> {
  const { rows } = await client.query<{ id: string; organisation_id: string; seq: string }>(sql.currentOrganisationMemberships(ids));
  return new Map(rows.map((row) => [Number(row.id), { id: row.organisation_id, seq: Number(row.seq) }]));
}

/** Components of records linked by shared keys. */
function linkedByKeys(ids: number[], keysOf: Map<number, OrganisationKey[]>): number[][] {
  const holders = new Map<string, number[]>();
  for (const id of ids) for (const key of keysOf.get(id) ?? []) (holders.get(keyString(key)) ?? holders.set(keyString(key), []).get(keyString(key))!).push(id);
  return connectedComponents(ids, [...holders.values()].flatMap((group) => group.slice(1).map((id): [number, number] => [group[0], id])));
}

/**
 * The common case, without reading whole organisations: records new to organisations, each group of them
 * joining at most one existing organisation, with no domain becoming shared by different names. Answers
 * undefined when that is not the case (the caller re-clusters), else the records whose organisation
 * changed (none beyond the new ones).
 */
async function attachNewRecords(client: PoolClient, added: number[], keysOf: Map<number, OrganisationKey[]>, rows: Map<number, CanonicalRow>): Promise<number[] | undefined> {
  const keys = [...new Map(added.flatMap((id) => keysOf.get(id)!).map((key) => [keyString(key), key])).values()];
  const { rows: held } = await client.query<{ kind: OrganisationKeyKind; value: string; organisations: string[]; names: string[] }>(sql.organisationKeyHolders(keys));
  if (held.some((row) => row.kind === 'domain' && row.names.length > 1)) return undefined;
  const organisationsOf = new Map(held.map((row) => [`${row.kind}:${row.value}`, row.organisations]));
  const components = linkedByKeys(added, keysOf).map((component) => ({
    component,
    organisations: [...new Set(component.flatMap((id) => keysOf.get(id)!.flatMap((key) => organisationsOf.get(keyString(key)) ?? [])))],
  }));
  if (components.some(({ organisations }) => organisations.length > 1)) return undefined;

  const joined = [...new Set(components.flatMap(({ organisations }) => organisations))];
  const { rows: stored } = await client.query<{ id: string; data: OrganisationData }>(sql.organisationData(joined));
  const dataOf = new Map(stored.map((row) => [row.id, row.data]));
  const { rows: allocated } = await client.query<{ seq: string }>(sql.allocateOrganisationSeqs(components.filter(({ organisations }) => organisations.length === 0).length));
  const newSeqs = allocated.map((row) => Number(row.seq)).sort((a, b) => a - b);
  const created: { id: string; seq: number; data: OrganisationData }[] = [];
  const saved: { id: string; data: OrganisationData }[] = [];
  const joining: { id: number; organisationId: string; keys: string[] }[] = [];
  for (const { component, organisations } of components) {
    const entries = component.map((id) => ({ name: rows.get(id)!.data.organisation?.name, keys: keysOf.get(id)! }));
    const organisationId = organisations[0] ?? `org_${newSeqs[created.length]}`;
    if (organisations.length === 0) created.push({ id: organisationId, seq: newSeqs[created.length], data: withRecords(EMPTY, entries) });
    else saved.push({ id: organisationId, data: withRecords(dataOf.get(organisationId)!, entries) });
    for (const id of component) joining.push({ id, organisationId, keys: keysOf.get(id)!.map(keyString) });
  }
  await client.query(sql.insertOrganisations(created));
  await client.query(sql.saveOrganisations(saved));
  await client.query(sql.openOrganisationMemberships(joining));
  return added;
}

/** Recomputes the organisations reachable from `changed`; answers the records whose organisation changed. */
async function recluster(client: PoolClient, changed: number[], known: Map<number, CanonicalRow>): Promise<number[]> {
  // Everything reachable through shared keys and current organisations, so an organisation can also fall apart.
  const reached = new Set(changed);
  for (let frontier = changed; frontier.length > 0; ) {
    const { rows } = await client.query<{ id: string }>(sql.organisationNeighbours(frontier));
    frontier = rows.map((row) => Number(row.id)).filter((id) => !reached.has(id));
    for (const id of frontier) reached.add(id);
  }
  const ids = [...reached].sort((a, b) => a - b);
  const { keyRows, membership } = await keysAndMemberships(client, ids);
  const missing = ids.filter((id) => !known.has(id));
  const rows = new Map(known);
  if (missing.length) {
    const { rows: loaded } = await client.query<CanonicalRow & { id: string }>(sql.canonicalRecords(missing));
    for (const row of loaded) rows.set(Number(row.id), row);
  }

  // A domain under which records name different organisations links nothing.
  const keysOf = new Map<number, OrganisationKey[]>();
  for (const row of keyRows) (keysOf.get(Number(row.id)) ?? keysOf.set(Number(row.id), []).get(Number(row.id))!).push({ kind: row.kind, value: row.value });
  const namesUnder = new Map<string, Set<string>>();
  for (const keys of keysOf.values()) {
    const name = keys.find((key) => key.kind === 'name')?.value;
    for (const key of keys) if (key.kind === 'domain' && name) namesUnder.set(key.value, (namesUnder.get(key.value) ?? new Set()).add(name));
  }
  const linking = new Map([...keysOf].map(([id, keys]) => [id, keys.filter((key) => key.kind !== 'domain' || (namesUnder.get(key.value)?.size ?? 0) <= 1)]));
  const components = linkedByKeys([...linking.keys()].filter((id) => rows.has(id)).sort((a, b) => a - b), linking);

  const kept = keptClusters(components, (id) => membership.get(id));
  const { rows: allocated } = await client.query<{ seq: string }>(sql.allocateOrganisationSeqs(kept.filter((clusters) => clusters.length === 0).length));
  const newSeqs = allocated.map((row) => Number(row.seq)).sort((a, b) => a - b);
  const created: { id: string; seq: number; data: OrganisationData }[] = [];
  const saved: { id: string; data: OrganisationData }[] = [];
  const merges: { from: string; into: string }[] = [];
  const assigned = new Map<number, string>();
  components.forEach((component, index) => {
    const data = withRecords(EMPTY, component.map((id) => ({ name: rows.get(id)!.data.organisation?.name, keys: linking.get(id)! })));
    let organisationId: string;
    if (kept[index].length === 0) {
      const seq = newSeqs[created.length];
      organisationId = `org_${seq}`;
      created.push({ id: organisationId, seq, data });
    } else {
      organisationId = kept[index][0].id;
      saved.push({ id: organisationId, data });
      for (const mergedAway of kept[index].slice(1)) merges.push({ from: mergedAway.id, into: organisationId });
    }
    for (const id of component) assigned.set(id, organisationId);
  });
  const keptIds = new Set([...saved.map((organisation) => organisation.id), ...merges.map((merge) => merge.from)]);
  const retired = [...new Set([...membership.values()].map((cluster) => cluster.id))].filter((id) => !keptIds.has(id));

  await client.query(sql.insertOrganisations(created));
  await client.query(sql.saveOrganisations(saved));
  if (merges.length) await client.query(sql.markOrganisationsMerged(merges));
  if (retired.length) await client.query(sql.markOrganisationsRetired(retired));
  const moving = ids.filter((id) => membership.get(id)?.id !== assigned.get(id));
  await client.query(sql.closeOrganisationMemberships(moving));
  const joining = moving.filter((id) => assigned.has(id));
  await client.query(sql.openOrganisationMemberships(joining.map((id) => ({ id, organisationId: assigned.get(id)!, keys: (linking.get(id) ?? []).map(keyString) }))));
  return moving;
}
