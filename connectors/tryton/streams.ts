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
  /** Adds fields a mapping reads more easily than the relations themselves, once the children are on the record. */
  derive?(record: Record<string, unknown>): void;
}

/**
 * A party's active contact mechanisms' values by type (`mechanisms.email`, `mechanisms.phone`, `mechanisms.mobile`, …),
 * so that a mapping reads every email or phone of a party (`mechanisms.email.*`), not only the first of each kind.
 */
function mechanismsByType(party: Record<string, unknown>): void {
  const byType: Record<string, unknown[]> = {};
  for (const mechanism of (party.contact_mechanisms as Record<string, unknown>[] | undefined) ?? []) {
    // Tryton on SQLite answers a boolean as 0 or 1.
    if (mechanism.active === false || mechanism.active === 0 || typeof mechanism.type !== 'string') continue;
    (byType[mechanism.type] ??= []).push(mechanism.value);
  }
  party.mechanisms = byType;
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
    derive: mechanismsByType,
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
