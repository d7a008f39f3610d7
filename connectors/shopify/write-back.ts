/**
 * Write-back to Shopify: request builders (pure) and an executor. Email, phone and tags go through
 * customerUpdate; marketing consent has its own mutation, customerEmailMarketingConsentUpdate.
 * https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/customerUpdate
 * https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/customerEmailMarketingConsentUpdate
 */
import { ConnectorError } from '../kit/contract.js';
import type { HttpClient } from '../kit/http.js';
import type { ShopifyConfig } from './config.gen.js';
import { createShopifyGraphql, type ShopifyClientOptions } from './graphql.js';

/** Canonical values to write; absent keys are left as they are, `null` clears email or phone. */
export interface ShopifyCustomerValues {
  email?: string | null;
  /** E.164. */
  phone?: string | null;
  tags?: string[];
  email_marketing?: 'opt_in' | 'opt_out';
  /** When the consent was given or withdrawn (ISO 8601); default now, as Shopify sets it. */
  email_marketing_at?: string;
}

export interface GraphqlRequest {
  query: string;
  variables: Record<string, unknown>;
}

const customerGid = (externalId: string) => (externalId.startsWith('gid://') ? externalId : `gid://shopify/Customer/${externalId}`);

export const customerUpdateMutation = `mutation customerUpdate($input: CustomerInput!) {
  customerUpdate(input: $input) { customer { id updatedAt } userErrors { field message } }
}`;

export const consentUpdateMutation = `mutation customerEmailMarketingConsentUpdate($input: CustomerEmailMarketingConsentUpdateInput!) {
  customerEmailMarketingConsentUpdate(input: $input) { customer { id emailMarketingConsent { marketingState consentUpdatedAt } } userErrors { field message } }
}`;

/** customerUpdate for email, phone and tags, or undefined when none of them is to be written. */
export function customerUpdateRequest(externalId: string, values: ShopifyCustomerValues): GraphqlRequest | undefined {
  const input: Record<string, unknown> = { id: customerGid(externalId) };
  if (values.email !== undefined) input.email = values.email;
  if (values.phone !== undefined) input.phone = values.phone;
  // `tags` replaces the customer's whole list.
  if (values.tags !== undefined) input.tags = values.tags;
  return Object.keys(input).length > 1 ? { query: customerUpdateMutation, variables: { input } } : undefined;
}

/** customerEmailMarketingConsentUpdate, or undefined when consent is not to be written. */
export function consentUpdateRequest(externalId: string, values: ShopifyCustomerValues): GraphqlRequest | undefined {
  if (values.email_marketing === undefined) return undefined;
  const emailMarketingConsent: Record<string, unknown> = {
    marketingState: values.email_marketing === 'opt_in' ? 'SUBSCRIBED' : 'UNSUBSCRIBED',
    marketingOptInLevel: 'SINGLE_OPT_IN',
  };
  if (values.email_marketing_at) emailMarketingConsent.consentUpdatedAt = values.email_marketing_at;
  return { query: consentUpdateMutation, variables: { input: { customerId: customerGid(externalId), emailMarketingConsent } } };
}

type MutationResult = Record<string, { userErrors: { field: string[] | null; message: string }[] }>;

/** Sends the mutations the values need; a userError (e.g. email taken) fails with a 'config' error naming the field. */
export async function writeCustomer(
  client: HttpClient,
  _config: ShopifyConfig,
  externalId: string,
  values: ShopifyCustomerValues,
  options: ShopifyClientOptions = {},
): Promise<{ mutations: string[] }> {
  const graphql = createShopifyGraphql(client, options);
  const mutations: string[] = [];
  for (const [name, request] of [
    ['customerUpdate', customerUpdateRequest(externalId, values)],
    ['customerEmailMarketingConsentUpdate', consentUpdateRequest(externalId, values)],
  ] as const) {
    if (!request) continue;
    const data = await graphql.query<MutationResult>(request.query, request.variables);
    const errors = data[name]?.userErrors ?? [];
    if (errors.length) {
      const detail = errors.map((error) => `${(error.field ?? []).join('.') || '(input)'}: ${error.message}`).join('; ');
      throw new ConnectorError(`shopify: ${name} of customer ${externalId} was refused: ${detail}`, 'config');
    }
    mutations.push(name);
  }
  return { mutations };
}
