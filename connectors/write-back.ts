/**
 * Write-back executors by connector name: the hub's canonical values turned into each system's own
 * write-back call (connectors/<system>/write-back.ts). A parallel registry rather than a field of the
 * connector contract, so connectors that only read stay as they are. The hub decides what to write
 * (hub/write-back.ts); an executor only translates and sends.
 */
import type { Logger } from '../hub/log.js';
import type { ShopifyConfig } from './shopify/config.gen.js';
import { createShopifyHttp } from './shopify/graphql.js';
import { writeCustomer as writeShopify } from './shopify/write-back.js';
import type { WoocommerceConfig } from './woocommerce/config.gen.js';
import { createWooHttp } from './woocommerce/client.js';
import { writeCustomer as writeWoo } from './woocommerce/write-back.js';
import type { OdooConfig } from './odoo/config.gen.js';
import { createOdooHttp } from './odoo/rpc.js';
import { writeCustomer as writeOdoo } from './odoo/write-back.js';
import type { TrytonConfig } from './tryton/config.gen.js';
import { createTrytonHttp } from './tryton/rpc.js';
import { writeCustomer as writeTryton } from './tryton/write-back.js';
import type { ZendeskConfig } from './zendesk/config.gen.js';
import { createZendeskHttp } from './zendesk/client.js';
import { writeUser as writeZendesk } from './zendesk/write-back.js';
import type { FreshdeskConfig } from './freshdesk/config.gen.js';
import { createFreshdeskHttp } from './freshdesk/client.js';
import { writeContact as writeFreshdesk } from './freshdesk/write-back.js';
import type { RtConfig } from './rt/config.gen.js';
import { createRtHttp } from './rt/client.js';
import { writeUser as writeRt } from './rt/write-back.js';

/** The golden values a source can receive. */
export const WRITE_ATTRIBUTES = ['email', 'phone', 'email_marketing', 'golden_id'] as const;
export type WriteAttribute = (typeof WRITE_ATTRIBUTES)[number];

/** Values to write to one record; absent keys are left as they are in the system. */
export interface WriteValues {
  email?: string;
  /** E.164. */
  phone?: string;
  email_marketing?: { status: 'opt_in' | 'opt_out'; at?: string };
  golden_id?: string;
}

export interface WriteContext {
  log?: Logger;
  sleep?: (ms: number) => Promise<void>;
}

/** What the system answered, kept in the write-back log. */
export interface WriteOutcome {
  detail: unknown;
}

/** One connector's write-back: which attributes its system can store, and the call that stores them. */
export interface WriteBackExecutor<Config = unknown> {
  /** The stream whose records are the customers written to (orders are never written). */
  stream: string;
  fields: WriteAttribute[];
  write(config: Config, externalId: string, values: WriteValues, ctx: WriteContext): Promise<WriteOutcome>;
}

const shopify: WriteBackExecutor<ShopifyConfig> = {
  stream: 'customers',
  // A Shopify customer has no field for a foreign reference that the hub could own (tags are the merchant's).
  fields: ['email', 'phone', 'email_marketing'],
  async write(config, externalId, values, ctx) {
    const detail = await writeShopify(createShopifyHttp(config, ctx), config, externalId, {
      email: values.email,
      phone: values.phone,
      email_marketing: values.email_marketing?.status,
      // The decision's own time, so the value read back on the next sync is the same decision, not a newer one.
      email_marketing_at: values.email_marketing?.at,
    }, ctx);
    return { detail };
  },
};

const woocommerce: WriteBackExecutor<WoocommerceConfig> = {
  stream: 'customers',
  // WooCommerce core has no marketing consent of its own (plugins keep it in their own tables).
  fields: ['email', 'phone', 'golden_id'],
  async write(config, externalId, values, ctx) {
    const saved = (await writeWoo(createWooHttp(config, ctx), config, externalId, { email: values.email, phone: values.phone, golden_id: values.golden_id })) as { id?: unknown } | undefined;
    return { detail: saved && typeof saved === 'object' ? { id: saved.id } : null };
  },
};

const odoo: WriteBackExecutor<OdooConfig> = {
  stream: 'partners',
  fields: ['email', 'phone', 'email_marketing', 'golden_id'],
  async write(config, externalId, values, ctx) {
    const status = values.email_marketing?.status;
    const calls = await writeOdoo(createOdooHttp(config, ctx), config, externalId, {
      email: values.email,
      phone: values.phone,
      golden_id: values.golden_id,
      opt_out: status === undefined ? undefined : status === 'opt_out',
    });
    return { detail: calls.map((call) => `${call.model}.${call.method}`) };
  },
};

const tryton: WriteBackExecutor<TrytonConfig> = {
  stream: 'parties',
  fields: ['email', 'phone'],
  async write(config, externalId, values, ctx) {
    const calls = await writeTryton(createTrytonHttp(config, ctx), config, externalId, { email: values.email, phone: values.phone });
    return { detail: calls.map((call) => call.method) };
  },
};

const zendesk: WriteBackExecutor<ZendeskConfig> = {
  stream: 'users',
  fields: ['email', 'phone', 'golden_id'],
  async write(config, externalId, values, ctx) {
    const detail = await writeZendesk(createZendeskHttp(config, ctx), externalId, { email: values.email, phone: values.phone, golden_id: values.golden_id });
    return { detail: detail ?? null };
  },
};

const freshdesk: WriteBackExecutor<FreshdeskConfig> = {
  stream: 'contacts',
  fields: ['email', 'phone', 'golden_id'],
  async write(config, externalId, values, ctx) {
    const detail = await writeFreshdesk(createFreshdeskHttp(config, ctx), externalId, { email: values.email, phone: values.phone, golden_id: values.golden_id });
    return { detail: detail ?? null };
  },
};

const rt: WriteBackExecutor<RtConfig> = {
  stream: 'users',
  // The golden id only where the source names a user custom field for it (golden_id_custom_field).
  fields: ['email', 'phone', 'golden_id'],
  async write(config, externalId, values, ctx) {
    const messages = await writeRt(createRtHttp(config, ctx), externalId, { email: values.email, phone: values.phone, golden_id: values.golden_id }, config.golden_id_custom_field);
    return { detail: messages ?? null };
  },
};

export const writeBackExecutors: Record<string, WriteBackExecutor<any>> = { shopify, woocommerce, odoo, tryton, zendesk, freshdesk, rt };

export function findWriteBack(connector: string): WriteBackExecutor<any> | undefined {
  return Object.hasOwn(writeBackExecutors, connector) ? writeBackExecutors[connector] : undefined;
}
