/** The connectors this hub knows, by name. A source names one of them in hub.config.yaml. */
import type { Connector } from './kit/contract.js';
import { connector as csv } from './csv/connector.js';

export const connectors: Record<string, Connector<any>> = {
  [csv.name]: csv,
};

export function findConnector(name: string): Connector<any> | undefined {
  return Object.hasOwn(connectors, name) ? connectors[name] : undefined;
}
