/**
 * Odoo's external JSON-RPC API: `POST /jsonrpc` with `common.authenticate` for the uid, then
 * `object.execute_kw(db, uid, key, model, method, args, kwargs)`. Errors come back with HTTP 200 and an
 * `error` member; access errors are config failures, the rest name Odoo's exception.
 * https://www.odoo.com/documentation/18.0/developer/reference/external_api.html
 */
import type { Logger } from '../../hub/log.js';
import { ConnectorError } from '../kit/contract.js';
import { createHttpClient, type HttpClient } from '../kit/http.js';
import type { OdooConfig } from './config.gen.js';

export interface OdooClientOptions {
  sleep?: (ms: number) => Promise<void>;
  log?: Logger;
}

interface RpcResponse<T> {
  result?: T;
  error?: { code: number; message: string; data?: { name?: string; message?: string } };
}

export interface OdooRpc {
  uid(): Promise<number>;
  executeKw<T>(model: string, method: string, args: unknown[], kwargs?: Record<string, unknown>): Promise<T>;
}

export function createOdooHttp(config: OdooConfig, options: OdooClientOptions = {}): HttpClient {
  return createHttpClient({
    baseURL: config.url.replace(/\/+$/, ''),
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    connector: 'odoo',
    sleep: options.sleep,
    log: options.log,
  });
}

const accessErrors = /AccessDenied|AccessError|SessionExpired/;

export function createOdooRpc(http: HttpClient, config: OdooConfig): OdooRpc {
  let nextId = 1;
  let uid: number | undefined;

  async function call<T>(service: string, method: string, args: unknown[]): Promise<T> {
    const response = await http.post<RpcResponse<T>>('/jsonrpc', { jsonrpc: '2.0', method: 'call', params: { service, method, args }, id: nextId++ });
    const body = response.data;
    if (body?.error) {
      const name = body.error.data?.name ?? '';
      const detail = (body.error.data?.message ?? body.error.message).slice(0, 300);
      if (accessErrors.test(name)) throw new ConnectorError(`The credentials were refused by odoo (${detail})`, 'config');
      // A wrong model or field name, a domain Odoo cannot read: the configuration has to change.
      throw new ConnectorError(`odoo: ${service}.${method} failed: ${name ? `${name}: ` : ''}${detail}`, 'config');
    }
    if (!body || !('result' in body)) throw new ConnectorError(`odoo: ${service}.${method} returned no result`, 'system');
    return body.result as T;
  }

  return {
    async uid() {
      if (uid !== undefined) return uid;
      const result = await call<number | false>('common', 'authenticate', [config.database, config.login, config.api_key, {}]);
      // A wrong login or key is not an error in authenticate: it answers false.
      if (typeof result !== 'number') throw new ConnectorError(`The credentials were refused by odoo (login ${config.login} on database ${config.database})`, 'config');
      uid = result;
      return uid;
    },
    async executeKw<T>(model: string, method: string, args: unknown[], kwargs: Record<string, unknown> = {}) {
      const user = await this.uid();
      return call<T>('object', 'execute_kw', [config.database, user, config.api_key, model, method, args, kwargs]);
    },
  };
}
