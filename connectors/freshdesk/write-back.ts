/**
 * Write-back to Freshdesk: `PUT /api/v2/contacts/{id}` with the contact fields to change. The hub's
 * golden id goes to `unique_external_id`, Freshdesk's own field for a reference kept by another system.
 * https://developers.freshdesk.com/api/#update_contact
 */
import type { HttpClient } from '../kit/http.js';

/** Canonical values to write; absent keys are left as they are. */
export interface FreshdeskContactValues {
  email?: string;
  /** E.164; Freshdesk keeps it as text. */
  phone?: string;
  mobile?: string;
  name?: string;
  job_title?: string;
  /** The hub's golden id, stored in `unique_external_id`. */
  golden_id?: string;
}

export interface FreshdeskRequest {
  method: 'PUT';
  url: string;
  data: Record<string, unknown>;
}

/** The PUT that writes `values`, or undefined when there is nothing to write. */
export function contactUpdateRequest(externalId: string, values: FreshdeskContactValues): FreshdeskRequest | undefined {
  if (!/^\d+$/.test(externalId)) throw new TypeError(`A Freshdesk contact id is a positive integer, not '${externalId}'`);
  const data: Record<string, unknown> = {};
  for (const key of ['email', 'phone', 'mobile', 'name', 'job_title'] as const) if (values[key] !== undefined) data[key] = values[key];
  if (values.golden_id !== undefined) data.unique_external_id = values.golden_id;
  return Object.keys(data).length ? { method: 'PUT', url: `/contacts/${externalId}`, data } : undefined;
}

/** Sends the update; returns the contact as Freshdesk saved it (or undefined when nothing was sent). */
export async function writeContact(client: HttpClient, externalId: string, values: FreshdeskContactValues): Promise<unknown> {
  const request = contactUpdateRequest(externalId, values);
  if (!request) return undefined;
  const response = await client.request(request);
  return response.data;
}
