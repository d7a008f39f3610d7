/**
 * Write-back to Odoo: `res.partner.write([id], values)` for email, phone and the golden id reference,
 * and the email-marketing opt-out either in a configured boolean field or in Odoo's blacklist
 * (`mail.blacklist`: a record per address; archiving it lifts the opt-out). `is_blacklisted` is
 * computed from that model and cannot be written.
 * https://www.odoo.com/documentation/18.0/developer/reference/external_api.html#create-records
 */
import type { HttpClient } from '../kit/http.js';
import type { OdooConfig } from './config.gen.js';
import { createOdooRpc } from './rpc.js';

export interface OdooPartnerValues {
  email?: string | false;
  phone?: string | false;
  /** true: opted out of email marketing; false: opted back in. */
  opt_out?: boolean;
  golden_id?: string;
}

export interface ExecuteKw {
  model: string;
  method: string;
  args: unknown[];
  kwargs?: Record<string, unknown>;
}

/** The partner `write` call, or undefined when no partner field changes. */
export function partnerWriteCall(config: OdooConfig, externalId: string, values: OdooPartnerValues): ExecuteKw | undefined {
  const id = Number(externalId);
  if (!Number.isInteger(id) || id <= 0) throw new TypeError(`An Odoo record id is a positive integer, not '${externalId}'`);
  const vals: Record<string, unknown> = {};
  if (values.email !== undefined) vals.email = values.email;
  if (values.phone !== undefined) vals.phone = values.phone;
  if (values.golden_id !== undefined) vals[config.golden_id_field ?? 'x_golden_id'] = values.golden_id;
  if (values.opt_out !== undefined && config.opt_out_field) vals[config.opt_out_field] = values.opt_out;
  return Object.keys(vals).length ? { model: 'res.partner', method: 'write', args: [[id], vals] } : undefined;
}

/**
 * Writes the values; returns the calls made, in order. The blacklist path reads the partner's email
 * (or takes the new one), then archives, revives or creates the blacklist entry.
 */
export async function writeCustomer(client: HttpClient, config: OdooConfig, externalId: string, values: OdooPartnerValues): Promise<ExecuteKw[]> {
  const rpc = createOdooRpc(client, config);
  const calls: ExecuteKw[] = [];
  const run = async <T>(call: ExecuteKw) => {
    calls.push(call);
    return rpc.executeKw<T>(call.model, call.method, call.args, call.kwargs);
  };
  const write = partnerWriteCall(config, externalId, values);
  if (write) await run(write);
  if (values.opt_out !== undefined && !config.opt_out_field) {
    let email = typeof values.email === 'string' ? values.email : undefined;
    if (email === undefined) {
      const [partner] = await run<{ email: string | false }[]>({ model: 'res.partner', method: 'read', args: [[Number(externalId)]], kwargs: { fields: ['email'] } });
      email = partner?.email || undefined;
    }
    if (email) {
      const entries = await run<{ id: number; active: boolean }[]>({
        model: 'mail.blacklist',
        method: 'search_read',
        args: [[['email', '=', email]]],
        kwargs: { fields: ['id', 'active'], context: { active_test: false } },
      });
      if (entries.length) {
        const stale = entries.filter((entry) => entry.active !== values.opt_out).map((entry) => entry.id);
        if (stale.length) await run({ model: 'mail.blacklist', method: 'write', args: [stale, { active: values.opt_out }] });
      } else if (values.opt_out) {
        await run({ model: 'mail.blacklist', method: 'create', args: [{ email }] });
      }
    }
  }
  return calls;
}
