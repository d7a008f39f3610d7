/**
 * The Tryton streams as data. A party's emails and phones live in `party.contact_mechanism` and its
 * addresses in `party.address`; the party's `email`/`phone`/`mobile` function fields give the first of
 * each kind. Fields as in Tryton 6.0's party and sale modules.
 */
export type TrytonStreamName = 'parties' | 'sales';

export interface TrytonStream {
  name: TrytonStreamName;
  model: string;
  fields: string[];
  /** Relations whose changes count as changes of the record (their write_date/create_date are searched too). */
  children: { field: string; model: string; fields: string[] }[];
}

export const trytonStreams: TrytonStream[] = [
  {
    name: 'parties',
    model: 'party.party',
    fields: ['id', 'name', 'code', 'active', 'email', 'phone', 'mobile', 'lang', 'create_date', 'write_date'],
    children: [
      { field: 'contact_mechanisms', model: 'party.contact_mechanism', fields: ['id', 'party', 'type', 'value', 'comment', 'active', 'create_date', 'write_date'] },
      { field: 'addresses', model: 'party.address', fields: ['id', 'party', 'name', 'street', 'postal_code', 'city', 'country', 'country.code', 'active', 'create_date', 'write_date'] },
    ],
  },
  {
    name: 'sales',
    model: 'sale.sale',
    fields: [
      'id', 'number', 'reference', 'description', 'state', 'party', 'currency', 'currency.code', 'untaxed_amount', 'total_amount',
      'sale_date', 'quoted_by', 'quoted_by.rec_name', 'company', 'create_date', 'write_date',
    ],
    children: [],
  },
];
