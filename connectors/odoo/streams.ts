/**
 * The Odoo streams as data: model, fields, fixed domain and context.
 * res.partner, sale.order and account.move fields as in Odoo 17/18's models (base, sale, account).
 */
export type OdooStreamName = 'partners' | 'sale_orders' | 'invoices';

export interface OdooStream {
  name: OdooStreamName;
  model: string;
  fields: string[];
  /** Archived partners too: without active_test false, search_read hides them. */
  context?: Record<string, unknown>;
}

export const odooStreams: OdooStream[] = [
  {
    name: 'partners',
    model: 'res.partner',
    fields: [
      'id', 'name', 'display_name', 'is_company', 'parent_id', 'commercial_company_name', 'function', 'email', 'phone',
      'street', 'street2', 'zip', 'city', 'state_id', 'country_id', 'country_code', 'vat', 'ref', 'lang', 'active',
      'create_date', 'write_date',
    ],
    context: { active_test: false },
  },
  {
    name: 'sale_orders',
    model: 'sale.order',
    fields: ['id', 'name', 'state', 'partner_id', 'user_id', 'amount_untaxed', 'amount_total', 'currency_id', 'date_order', 'validity_date', 'client_order_ref', 'create_date', 'write_date'],
  },
  {
    name: 'invoices',
    model: 'account.move',
    fields: [
      'id', 'name', 'move_type', 'state', 'payment_state', 'partner_id', 'invoice_user_id', 'amount_untaxed', 'amount_total', 'currency_id',
      'date', 'invoice_date', 'invoice_date_due', 'invoice_origin', 'create_date', 'write_date',
    ],
  },
];
