/**
 * Write-back to Tryton: a party's email and phone are contact mechanisms. The first active mechanism of
 * the type is rewritten, or one is created.
 * https://docs.tryton.org/projects/modules-party/en/6.0/ (contact mechanisms); over RPC: create(vlist, context), write(ids, values, context)
 */
import type { HttpClient } from '../kit/http.js';
import type { TrytonConfig } from './config.gen.js';
import { createTrytonRpc } from './rpc.js';

export interface TrytonPartyValues {
  email?: string;
  phone?: string;
}

export interface TrytonCall {
  method: string;
  params: unknown[];
}

const kinds = [
  ['email', 'email'],
  ['phone', 'phone'],
] as const;

/** The search for the mechanism of one kind that will be rewritten. */
export function mechanismSearch(partyId: number, type: string): TrytonCall {
  return {
    method: 'model.party.contact_mechanism.search_read',
    params: [[['party', '=', partyId], ['type', '=', type]], 0, 1, [['sequence', 'ASC'], ['id', 'ASC']], ['id', 'value'], {}],
  };
}

/** The write of an existing mechanism, or the create of a new one. */
export function mechanismUpdate(partyId: number, type: string, value: string, existing: number | undefined): TrytonCall {
  return existing === undefined
    ? { method: 'model.party.contact_mechanism.create', params: [[{ party: partyId, type, value }], {}] }
    : { method: 'model.party.contact_mechanism.write', params: [[existing], { value }, {}] };
}

/** Writes email and phone; returns the calls that changed something. */
export async function writeCustomer(client: HttpClient, config: TrytonConfig, externalId: string, values: TrytonPartyValues): Promise<TrytonCall[]> {
  const partyId = Number(externalId);
  if (!Number.isInteger(partyId) || partyId <= 0) throw new TypeError(`A Tryton party id is a positive integer, not '${externalId}'`);
  const rpc = createTrytonRpc(client, config);
  const calls: TrytonCall[] = [];
  for (const [key, type] of kinds) {
    const value = values[key];
    if (value === undefined) continue;
    const search = mechanismSearch(partyId, type);
    const [found] = await rpc.call<{ id: number; value: string }[]>(search.method, search.params);
    if (found?.value === value) continue;
    const update = mechanismUpdate(partyId, type, value, found?.id);
    await rpc.call(update.method, update.params);
    calls.push(update);
  }
  return calls;
}
