/**
 * Write-back to Zendesk: `PUT /api/v2/users/{id}.json` with email, phone and `external_id` (the hub's
 * golden id, so a Zendesk user can be looked up by it). A new email is added to the user as an email
 * identity; which identity is primary is governed by the identities API, which this module leaves alone.
 * https://developer.zendesk.com/api-reference/ticketing/users/users/#update-user
 */
import type { HttpClient } from '../kit/http.js';

/** Canonical values to write; absent keys are left as they are, `null` clears phone or external_id. */
export interface ZendeskUserValues {
  email?: string;
  /** E.164. */
  phone?: string | null;
  /** The hub's golden id, stored in the user's `external_id`. */
  golden_id?: string | null;
}

export interface ZendeskRequest {
  method: 'PUT';
  url: string;
  data: { user: Record<string, unknown> };
}

/** The PUT that writes `values`, or undefined when there is nothing to write. */
export function userUpdateRequest(externalId: string, values: ZendeskUserValues): ZendeskRequest | undefined {
  if (!/^\d+$/.test(externalId)) throw new TypeError(`A Zendesk user id is a positive integer, not '${externalId}'`);
  const user: Record<string, unknown> = {};
  if (values.email !== undefined) user.email = values.email;
  if (values.phone !== undefined) user.phone = values.phone;
  if (values.golden_id !== undefined) user.external_id = values.golden_id;
  return Object.keys(user).length ? { method: 'PUT', url: `/api/v2/users/${externalId}.json`, data: { user } } : undefined;
}

/** Sends the update; returns the user as Zendesk saved it (or undefined when nothing was sent). */
export async function writeUser(client: HttpClient, externalId: string, values: ZendeskUserValues): Promise<unknown> {
  const request = userUpdateRequest(externalId, values);
  if (!request) return undefined;
  const response = await client.request<{ user?: unknown }>(request);
  return response.data?.user;
}
