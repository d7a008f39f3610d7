/**
 * Write-back to Request Tracker: `PUT /REST/2.0/user/{id}` with the user's core fields (EmailAddress,
 * RealName, Organization, WorkPhone) and, when the source names one, a user custom field for the hub's
 * golden id. RT answers 200 with one message per field even when it refused a value ("Email address in
 * use"), so the user is read back and a field that does not hold the value written fails the write.
 * https://docs.bestpractical.com/rt/5.0.3/RT/REST2.html#Users
 * https://docs.bestpractical.com/rt/5.0.3/RT/REST2.html#Object-Custom-Field-Values
 */
import { ConnectorError } from '../kit/contract.js';
import type { HttpClient } from '../kit/http.js';

/** Canonical values to write; absent keys are left as they are. */
export interface RtUserValues {
  email?: string;
  real_name?: string;
  organization?: string;
  /** E.164; RT keeps it as text in WorkPhone. */
  phone?: string;
  /** The hub's golden id, stored in the custom field `goldenIdField`. */
  golden_id?: string;
}

export interface RtRequest {
  method: 'PUT';
  url: string;
  data: Record<string, unknown>;
}

const coreFields = { email: 'EmailAddress', real_name: 'RealName', organization: 'Organization', phone: 'WorkPhone' } as const;

/** The PUT that writes `values`, or undefined when there is nothing to write. */
export function userUpdateRequest(externalId: string, values: RtUserValues, goldenIdField?: string): RtRequest | undefined {
  if (!/^[1-9]\d*$/.test(externalId)) throw new TypeError(`An RT user id is a positive integer, not '${externalId}'`);
  const data: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(coreFields)) if (values[key as keyof typeof coreFields] !== undefined) data[field] = values[key as keyof typeof coreFields];
  if (values.golden_id !== undefined) {
    if (!goldenIdField) throw new TypeError("RT has no field for the golden id: name a user custom field in the source's 'golden_id_custom_field'");
    data.CustomFields = { [goldenIdField]: values.golden_id };
  }
  return Object.keys(data).length ? { method: 'PUT', url: `/user/${externalId}`, data } : undefined;
}

interface RtUser {
  CustomFields?: { name?: string; values?: unknown[] }[];
  [field: string]: unknown;
}

const customValue = (user: RtUser, name: string | undefined) => user.CustomFields?.find((entry) => entry.name === name)?.values?.[0];

/** Sends the update and reads the user back; returns RT's messages, or undefined when nothing was sent. */
export async function writeUser(client: HttpClient, externalId: string, values: RtUserValues, goldenIdField?: string): Promise<string[] | undefined> {
  const request = userUpdateRequest(externalId, values, goldenIdField);
  if (!request) return undefined;
  const messages = (await client.request<unknown>(request)).data;
  const said = Array.isArray(messages) ? messages.map(String) : [];
  const user = (await client.get<RtUser>(`/user/${externalId}`)).data;
  const refused = Object.entries(request.data)
    .filter(([field, value]) => (field === 'CustomFields' ? customValue(user, goldenIdField) !== values.golden_id : user[field] !== value))
    .map(([field]) => (field === 'CustomFields' ? `custom field '${goldenIdField}'` : field));
  if (refused.length) {
    // RT's messages for the fields it refused: the ones that do not report a change.
    const reasons = said.filter((message) => !/changed from|set to/i.test(message));
    throw new ConnectorError(`rt: user ${externalId}: RT did not store ${refused.join(', ')}${reasons.length ? `: ${reasons.join('; ')}` : ''}`, 'config');
  }
  return said;
}
