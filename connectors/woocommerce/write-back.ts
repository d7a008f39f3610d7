/**
 * Write-back to WooCommerce: `PUT /customers/<id>` with the fields to change.
 * https://woocommerce.github.io/woocommerce-rest-api-docs/#update-a-customer
 */
import type { HttpClient } from '../kit/http.js';
import type { WoocommerceConfig } from './config.gen.js';

/** Canonical values to write; absent keys are left as they are. */
export interface WooCustomerValues {
  email?: string;
  first_name?: string;
  last_name?: string;
  /** Goes to the billing address's phone: a customer has no phone of its own. */
  phone?: string;
  /** The hub's golden id, stored in the customer's meta_data. */
  golden_id?: string;
}

export interface WooRequest {
  method: 'PUT';
  url: string;
  data: Record<string, unknown>;
}

/** The PUT that writes `values`, or undefined when there is nothing to write. */
export function customerUpdateRequest(config: WoocommerceConfig, externalId: string, values: WooCustomerValues): WooRequest | undefined {
  const data: Record<string, unknown> = {};
  if (values.email !== undefined) data.email = values.email;
  if (values.first_name !== undefined) data.first_name = values.first_name;
  if (values.last_name !== undefined) data.last_name = values.last_name;
  if (values.phone !== undefined) data.billing = { phone: values.phone };
  if (values.golden_id !== undefined) data.meta_data = [{ key: config.golden_id_meta_key ?? 'customer_hub_golden_id', value: values.golden_id }];
  if (!/^\d+$/.test(externalId)) throw new TypeError(`A WooCommerce customer id is a positive integer, not '${externalId}'`);
  return Object.keys(data).length ? { method: 'PUT', url: `/customers/${externalId}`, data } : undefined;
}

/** Sends the update; returns the customer as WooCommerce saved it (or undefined when nothing was sent). */
export async function writeCustomer(client: HttpClient, config: WoocommerceConfig, externalId: string, values: WooCustomerValues): Promise<unknown> {
  const request = customerUpdateRequest(config, externalId, values);
  if (!request) return undefined;
  const response = await client.request(request);
  return response.data;
}
