/**
 * The deterministic rule: records that share a normalised email, phone or identifier belong to one
 * customer. These are the keys such records share (the mapping has normalised the values already).
 */
import type { CanonicalRecord } from '../openapi/generated/canonical-record.gen.js';

/** The identifier scheme by which records of the built-in `hub` source name the golden record they are about. */
export const GOLDEN_ID_SCHEME = 'hub:golden_id';

export interface MatchKey {
  kind: 'email' | 'phone' | 'identifier';
  value: string;
}

/** Records with no person and no identifier (an order without a customer) do not become customers. */
export function takesPartInResolution(record: CanonicalRecord): boolean {
  return Boolean(record.person && Object.keys(record.person).length > 0) || (record.identifiers?.length ?? 0) > 0;
}

export function matchKeys(record: CanonicalRecord): MatchKey[] {
  const keys = new Map<string, MatchKey>();
  const add = (key: MatchKey) => keys.set(`${key.kind}:${key.value}`, key);
  for (const email of record.person?.emails ?? []) add({ kind: 'email', value: email.address.trim().toLowerCase() });
  for (const phone of record.person?.phones ?? []) add({ kind: 'phone', value: phone.number });
  for (const identifier of record.identifiers ?? []) add({ kind: 'identifier', value: `${identifier.scheme}=${identifier.value}` });
  return [...keys.values()];
}
