/**
 * The keys the deterministic rules compare (deterministic-rules.ts): normalised emails, phones and identifiers
 * (the mapping has normalised the values already), each with whether the source verified it.
 */
import type { CanonicalRecord } from '../openapi/generated/canonical-record.gen.js';

/** The identifier scheme by which records of the built-in `hub` source name the golden record they are about. */
export const GOLDEN_ID_SCHEME = 'hub:golden_id';

export interface MatchKey {
  kind: 'email' | 'phone' | 'identifier';
  value: string;
  /** The source verified it (the person proved they hold the address or number); true wins over a copy without. */
  verified: boolean;
}

/** Records with no person and no identifier (an order without a customer) do not become customers. */
export function takesPartInResolution(record: CanonicalRecord): boolean {
  return Boolean(record.person && Object.keys(record.person).length > 0) || (record.identifiers?.length ?? 0) > 0;
}

export function matchKeys(record: CanonicalRecord): MatchKey[] {
  const keys = new Map<string, MatchKey>();
  const add = (kind: MatchKey['kind'], value: string, verified?: boolean) => {
    const known = keys.get(`${kind}:${value}`);
    keys.set(`${kind}:${value}`, { kind, value, verified: Boolean(verified) || (known?.verified ?? false) });
  };
  for (const email of record.person?.emails ?? []) add('email', email.address.trim().toLowerCase(), email.verified);
  for (const phone of record.person?.phones ?? []) add('phone', phone.number, phone.verified);
  for (const identifier of record.identifiers ?? []) add('identifier', `${identifier.scheme}=${identifier.value}`, identifier.verified);
  return [...keys.values()];
}
