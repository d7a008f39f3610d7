/** The connectors a source in hub.config.yaml can name, and the built-in `hub` source's connector. */
import type { Connector } from './kit/contract.js';
import { connector as csv } from './csv/connector.js';
import { hubConnector, HUB_SOURCE } from './hub/connector.js';

export { hubConnector, HUB_SOURCE };

export const connectors: Record<string, Connector<any>> = {
  [csv.name]: csv,
};

export function findConnector(name: string): Connector<any> | undefined {
  return Object.hasOwn(connectors, name) ? connectors[name] : undefined;
}
