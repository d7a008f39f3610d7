/**
 * The streams as data: the GraphQL connection each reads and the fields it asks for.
 * Customers: https://shopify.dev/docs/api/admin-graphql/2025-01/queries/customers
 * Orders:    https://shopify.dev/docs/api/admin-graphql/2025-01/queries/orders
 */
export interface ShopifyStream {
  name: 'customers' | 'orders';
  /** The query's root connection. */
  connection: string;
  query: string;
  /** The ids of every record in id order, for deletion sweeps (connectors/kit/id-sweep.ts); customers only (see the config). */
  idsQuery?: string;
}

const connectionQuery = (connection: string, fields: string) => `query Read($first: Int!, $after: String, $query: String) {
  ${connection}(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { ${fields} }
  }
}`;

export const shopifyStreams: ShopifyStream[] = [
  {
    name: 'customers',
    connection: 'customers',
    query: connectionQuery(
      'customers',
      `id legacyResourceId firstName lastName displayName email phone tags state verifiedEmail note createdAt updatedAt
      emailMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt }
      defaultAddress { address1 address2 city province zip countryCodeV2 company phone }`,
    ),
    idsQuery: `query Ids($first: Int!, $query: String) {
  customers(first: $first, query: $query, sortKey: ID) { nodes { id } }
}`,
  },
  {
    // No status filter: the GraphQL orders connection returns open, closed and cancelled orders alike
    // (REST's default `status=open` is what lost closed orders elsewhere).
    name: 'orders',
    connection: 'orders',
    query: connectionQuery(
      'orders',
      `id legacyResourceId name email phone createdAt updatedAt processedAt cancelledAt closedAt
      displayFinancialStatus displayFulfillmentStatus currencyCode
      totalPriceSet { shopMoney { amount currencyCode } }
      customer { id legacyResourceId email }`,
    ),
  },
];
