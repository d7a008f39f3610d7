/** The connectors a source in hub.config.yaml can name, and the built-in `hub` source's connector. */
import type { Connector } from './kit/contract.js';
import { connector as calls } from './calls/connector.js';
import { connector as csv } from './csv/connector.js';
import { connector as freshdesk } from './freshdesk/connector.js';
import { hubConnector, HUB_SOURCE } from './hub/connector.js';
import { connector as imap } from './imap/connector.js';
import { connector as odoo } from './odoo/connector.js';
import { connector as rest } from './rest/connector.js';
import { connector as rt } from './rt/connector.js';
import { connector as segment } from './segment/connector.js';
import { connector as shopify } from './shopify/connector.js';
import { connector as tryton } from './tryton/connector.js';
import { connector as webhook } from './webhook/connector.js';
import { connector as woocommerce } from './woocommerce/connector.js';
import { connector as zendesk } from './zendesk/connector.js';

export { hubConnector, HUB_SOURCE };

export const connectors: Record<string, Connector<any>> = {
  [calls.name]: calls,
  [csv.name]: csv,
  [freshdesk.name]: freshdesk,
  [imap.name]: imap,
  [odoo.name]: odoo,
  [rest.name]: rest,
  [rt.name]: rt,
  [segment.name]: segment,
  [shopify.name]: shopify,
  [tryton.name]: tryton,
  [webhook.name]: webhook,
  [woocommerce.name]: woocommerce,
  [zendesk.name]: zendesk,
};

export function findConnector(name: string): Connector<any> | undefined {
  return Object.hasOwn(connectors, name) ? connectors[name] : undefined;
}
