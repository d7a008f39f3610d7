/**
 * Writes the example data: two contact sources that overlap (a CRM export in Latin-1 with `;`, a
 * trade-show list in UTF-8 with a BOM), an orders file, and the golden records they must become
 * (expected-golden.json). Deterministic: the same file every time. Run: npx tsx examples/generate-data.ts
 */
import { writeFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import iconv from 'iconv-lite';

const here = dirname(fileURLToPath(import.meta.url));

// A small deterministic generator (mulberry32), so the files never change between runs.
let seed = 20251122;
function random(): number {
  seed |= 0;
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];

const givenNames = ['Hans', 'Anna', 'Jürgen', 'Françoise', 'Lukas', 'Sophie', 'Mehmet', 'Zoë', 'Björn', 'Ewa', 'Jan', 'Marie', 'Paul', 'Léa', 'Tomás', 'Ingrid', 'Olaf', 'Chiara', 'Stefan', 'Agnieszka', 'Matthias', 'Renée', 'Niklas', 'Dörte', 'Karl', 'Sabine', 'Emil', 'Lena', 'Felix', 'Hülya'];
const familyNames = ['Müller', 'Schmidt', 'Schneider', 'Fischer', 'Weber', 'Meyer', 'Wagner', 'Becker', 'Schulz', 'Hoffmann', 'Koch', 'Richter', 'Klein', 'Wolf', 'Schröder', 'Neumann', 'Braun', 'Zimmermann', 'Krüger', 'Hartmann', 'Lange', 'Werner', 'Krause', 'Lehmann', 'Köhler', 'Dubois', 'Kowalski', 'Yılmaz', 'van der Berg', 'García'];
const companies = [
  { name: 'Nordwind Logistik GmbH', domain: 'nordwind-logistik.de' },
  { name: 'Alpen Solar AG', domain: 'alpensolar.de' },
  { name: 'Rheinmetallbau KG', domain: 'rheinmetallbau.de' },
  { name: 'Havel Software GmbH', domain: 'havelsoft.de' },
  { name: 'Elbe Medical GmbH', domain: 'elbe-medical.de' },
  { name: 'Isar Druck & Medien', domain: 'isardruck.de' },
];
const titles = ['Einkauf', 'Geschäftsführer', 'Head of IT', 'Projektleiterin', 'Buyer', 'CFO', 'Office Manager'];
const cities = [
  { city: 'Berlin', postcode: '10115', area: '30' },
  { city: 'München', postcode: '80331', area: '89' },
  { city: 'Hamburg', postcode: '20095', area: '40' },
  { city: 'Köln', postcode: '50667', area: '221' },
  { city: 'Dresden', postcode: '01067', area: '351' },
];

interface Person {
  index: number;
  given: string;
  family: string;
  email: string;
  /** Local part of the phone number; the full E.164 number is +49 area local. */
  area: string;
  local: string;
  company: (typeof companies)[number];
  title: string;
  city: (typeof cities)[number];
  birth: Date;
}

const ascii = (text: string) => text.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').replace(/ı/g, 'i').replace(/ß/g, 'ss').toLowerCase().replace(/[^a-z]/g, '');
const people: Person[] = [];
for (let index = 0; index < 160; index++) {
  const given = pick(givenNames);
  const family = pick(familyNames);
  const company = pick(companies);
  const city = pick(cities);
  people.push({
    index,
    given,
    family,
    email: `${ascii(given)}.${ascii(family)}${index}@${company.domain}`,
    area: city.area,
    local: String(2_000_000 + index * 7919).slice(0, 7),
    company,
    title: pick(titles),
    city,
    birth: new Date(Date.UTC(1950 + Math.floor(random() * 50), Math.floor(random() * 12), 1 + Math.floor(random() * 28))),
  });
}
const e164 = (person: Person) => `+49${person.area}${person.local}`;
const pad = (n: number) => String(n).padStart(2, '0');
const germanDate = (date: Date) => `${pad(date.getUTCDate())}.${pad(date.getUTCMonth() + 1)}.${date.getUTCFullYear()}`;
const germanTime = (date: Date) => `${germanDate(date)} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}`;
const at = (day: number, hour = 9) => new Date(Date.UTC(2025, 0, 1 + day, hour, 0));

/** Expected golden records: the members of each person and the values that must survive. */
const expected = new Map<number, { members: string[]; emails: Set<string>; latest: { at: number; email?: string; phone?: string }; optOut?: { at: number; status: string } }>();
function expect(person: Person, member: string, when: Date, values: { email?: string; phone?: string; consent?: string }) {
  const entry = expected.get(person.index) ?? { members: [], emails: new Set<string>(), latest: { at: -1 } };
  entry.members.push(member);
  if (values.email) entry.emails.add(values.email);
  if (when.getTime() > entry.latest.at && (values.email || values.phone)) entry.latest = { at: when.getTime(), email: values.email ?? entry.latest.email, phone: values.phone ?? entry.latest.phone };
  if (values.consent && (!entry.optOut || when.getTime() >= entry.optOut.at)) entry.optOut = { at: when.getTime(), status: values.consent };
  expected.set(person.index, entry);
}

const phoneStyles = [(p: Person) => `0${p.area} ${p.local}`, (p: Person) => `+49 ${p.area} ${p.local}`, (p: Person) => `(0${p.area}) ${p.local.slice(0, 3)}-${p.local.slice(3)}`, (p: Person) => `0049${p.area}${p.local}`];

// The CRM export: people 0–119, Latin-1, `;`, German headers and dates.
const crm = ['Kundennr;Vorname;Nachname;E-Mail;Telefon;Firma;Position;PLZ;Ort;Geburtsdatum;Newsletter;Geändert'];
for (const person of people.slice(0, 120)) {
  const changed = at(person.index % 90, 8 + (person.index % 9));
  const email = person.index % 7 === 0 ? person.email.toUpperCase() : person.email;
  const newsletter = person.index % 5 === 0 ? 'nein' : 'ja';
  crm.push([`K${10000 + person.index}`, person.given, person.family, email, pick(phoneStyles)(person), person.company.name, person.title, person.city.postcode, person.city.city, germanDate(person.birth), newsletter, germanTime(changed)].join(';'));
  expect(person, `crm-contacts:K${10000 + person.index}`, changed, { email: person.email, phone: e164(person), consent: newsletter === 'ja' ? 'opt_in' : 'opt_out' });
}

// The trade-show list: people 60–159, UTF-8 with a BOM; names and emails written differently.
const quote = (value: string) => (/[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);
const show = ['id,full_name,email,phone,company,title,city,opt_in,scanned_at'];
for (const person of people.slice(60, 160)) {
  const scanned = new Date(Date.UTC(2025, 3, 10 + (person.index % 3), 10 + (person.index % 8), person.index % 60));
  const id = `TS-${String(person.index).padStart(4, '0')}`;
  const nameStyle = person.index % 3;
  const name = nameStyle === 0 ? `${person.family.toUpperCase()}, ${person.given}` : nameStyle === 1 ? `${person.given} ${person.family}` : `  ${person.given}   ${person.family} `;
  // Every fourth visitor of the overlap gives a private address: the phone links them.
  const privateEmail = person.index < 120 && person.index % 4 === 0;
  const email = privateEmail ? `${ascii(person.given)}${person.index}@mail.example` : ` ${person.email.replace(/^./, (c) => c.toUpperCase())} `;
  const optIn = person.index % 6 === 0 ? 'no' : 'yes';
  show.push([id, quote(name), email, pick(phoneStyles)(person), quote(person.company.name), person.title, person.city.city, optIn, scanned.toISOString()].join(','));
  expect(person, `tradeshow-2025:${id}`, scanned, { email: email.trim().toLowerCase(), phone: e164(person), consent: optIn === 'yes' ? 'opt_in' : 'opt_out' });
}
// Two rows as they really arrive: one that lost a field, one with a mangled address. Both are quarantined.
show.push('TS-9001,Greta Sommer,greta.sommer@example.org,030 5550001,Sommer GmbH,CEO,Berlin,yes');
show.push('TS-9002,Ivo Brandt,ivo.brandt(at)example.org,030 5550002,Brandt KG,Buyer,Berlin,yes,2025-04-11T09:00:00.000Z');

// Orders from the web shop: by customer email; they become interactions on the customer's timeline.
const orders = ['order_no,customer_email,customer_name,order_date,status,total,currency,salesperson'];
for (let n = 0; n < 90; n++) {
  const person = people[(n * 37) % 160];
  const placed = new Date(Date.UTC(2025, 4 + (n % 5), 1 + (n % 27), 12, n % 60));
  const total = (50 + ((n * 7919) % 5000) / 10).toFixed(2);
  orders.push([`SO-${1000 + n}`, person.email, quote(`${person.given} ${person.family}`), placed.toISOString(), pick(['paid', 'shipped', 'cancelled', 'quote']), total, 'EUR', pick(['Petra Lang', 'Ole Sand', 'Mia Roth'])].join(','));
  expect(person, `shop-orders:SO-${1000 + n}`, placed, { email: person.email });
}

await writeFile(join(here, 'data/crm-contacts.csv'), iconv.encode(crm.join('\r\n') + '\r\n', 'latin1'));
await writeFile(join(here, 'data/tradeshow-2025.csv'), '\ufeff' + show.join('\n') + '\n');
await writeFile(join(here, 'data/shop-orders.csv'), orders.join('\n') + '\n');
const golden = [...expected.entries()]
  .sort(([a], [b]) => a - b)
  .map(([index, entry]) => ({
    person: index,
    members: entry.members.sort(),
    emails: [...entry.emails].sort(),
    email: entry.latest.email,
    phone: entry.latest.phone,
    email_marketing: entry.optOut?.status,
  }));
await writeFile(join(here, 'expected-golden.json'), JSON.stringify(golden, null, 2) + '\n');
console.log(`wrote ${crm.length - 1} CRM contacts, ${show.length - 1} trade-show rows, ${orders.length - 1} orders, ${golden.length} expected golden records`);
