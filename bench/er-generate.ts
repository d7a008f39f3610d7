/**
 * Synthetic people spread over several systems (CRM, shop, ERP, support desk) with the noise real
 * customer data has: typos, nicknames, swapped names, dates with swapped day/month or a wrong digit,
 * missing fields per system, household emails shared by two people, office phones shared by colleagues,
 * moves. Seeded, so a size always gives the same data. The truth is the person number.
 */
import type { LinkType, MatchRecord } from '../identity-resolution/probabilistic/index.js';
import { seededRandom } from '../identity-resolution/probabilistic/fellegi-sunter.js';

const GIVEN = 'james mary robert patricia john jennifer michael linda william elizabeth david barbara richard susan joseph jessica thomas sarah charles karen christopher lisa daniel nancy matthew betty anthony margaret mark sandra donald ashley steven kimberly paul emily andrew donna joshua michelle kenneth carol kevin amanda brian dorothy george melissa timothy deborah ronald stephanie edward rebecca jason sharon jeffrey laura ryan cynthia jacob kathleen gary amy nicholas angela eric shirley jonathan anna stephen brenda larry pamela justin emma scott nicole brandon helen benjamin samantha samuel katherine gregory christine alexander debra frank rachel patrick carolyn raymond janet jack catherine dennis maria jerry heather tyler diane aaron ruth jose julie adam olivia nathan joyce henry virginia douglas victoria zachary kelly peter lauren kyle christina ethan joan walter evelyn noah judith jeremy megan christian andrea keith cheryl roger hannah terry jacqueline gerald martha harold gloria sean teresa austin ann carl sara arthur madison lawrence frances dylan kathryn jesse janice jordan jean bryan abigail billy alice joe julia bruce judy gabriel sophia logan grace albert denise willie amber alan doris juan marilyn wayne danielle elijah beverly randy isabella roy theresa vincent diana ralph natalie eugene brittany russell charlotte bobby marie mason kayla philip alexis louis lori zbigniew aoife siobhan dmitri ingrid lars yusuf fatima hiroshi mei'.split(' ');
const NICK: Record<string, string> = { james: 'jim', robert: 'bob', william: 'bill', elizabeth: 'liz', richard: 'rick', joseph: 'joe', thomas: 'tom', charles: 'charlie', christopher: 'chris', daniel: 'dan', matthew: 'matt', anthony: 'tony', margaret: 'maggie', donald: 'don', steven: 'steve', andrew: 'andy', kenneth: 'ken', timothy: 'tim', ronald: 'ron', edward: 'ed', jonathan: 'jon', stephen: 'steve', benjamin: 'ben', samuel: 'sam', alexander: 'alex', patrick: 'pat', katherine: 'kate', catherine: 'cathy', jennifer: 'jen', rebecca: 'becky', victoria: 'vicky', susan: 'sue', deborah: 'debbie', nicholas: 'nick', michael: 'mike', david: 'dave', gregory: 'greg', zachary: 'zach', lawrence: 'larry', frederick: 'fred' };
const FAMILY_ROOTS = 'smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter roberts muller schmidt schneider fischer weber meyer wagner becker schulz hoffmann kowalski nowak wisniewski murphy kelly byrne ryan walsh oconnor rossi russo ferrari esposito bianchi romano dubois laurent lefebvre moreau tanaka suzuki watanabe ito yamamoto novak horvat kovac petrov ivanov smirnov jensen nielsen hansen andersen larsen'.split(' ');
const SUFFIX = ['', '', '', '', 'son', 'ston', 'ley', 'field', 'er', 'man', 'ski', 'ova', 'well', 'wood', 'ford', 'by'];
const TOWNS = 'london manchester birmingham leeds glasgow bristol liverpool sheffield edinburgh cardiff leicester nottingham newcastle brighton oxford cambridge york bath exeter norwich berlin hamburg munich cologne vienna zurich dublin cork paris lyon'.split(' ');
const STREETS = 'high church station park victoria green manor mill school kings queens london north south west new windsor grange york albert'.split(' ');
const STREET_KINDS = [['street', 'st'], ['road', 'rd'], ['avenue', 'ave'], ['lane', 'ln'], ['close', 'cl'], ['drive', 'dr']];
const COMPANIES = 'acme globex initech umbrella hooli vandelay stark wayne wonka tyrell cyberdyne soylent massive dynamic oscorp gringotts monarch aperture blackmesa'.split(' ');
const LEGAL = ['Ltd', 'Limited', 'GmbH', 'plc', 'Inc', ''];
const SYSTEMS = ['crm', 'shop', 'erp', 'support'];

export function generatePeople(people: number, seed: number): { records: MatchRecord[]; truth: Map<string, string>; linkType: LinkType } {
  const random = seededRandom(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  // Zipf-like: common names are common.
  const zipf = <T>(list: readonly T[]): T => list[Math.floor(list.length * random() ** 2.2)];
  const chance = (p: number) => random() < p;
  const typo = (s: string): string => {
    if (s.length < 3) return s;
    const at = 1 + Math.floor(random() * (s.length - 2));
    const kind = Math.floor(random() * 4);
    const letter = String.fromCharCode(97 + Math.floor(random() * 26));
    if (kind === 0) return s.slice(0, at) + s.slice(at + 1);
    if (kind === 1) return s.slice(0, at) + letter + s.slice(at);
    if (kind === 2) return s.slice(0, at) + letter + s.slice(at + 1);
    return s.slice(0, at - 1) + s[at] + s[at - 1] + s.slice(at + 1);
  };
  const cap = (s: string) => s.replace(/\b[a-z]/g, (c) => c.toUpperCase());
  const records: MatchRecord[] = [];
  const truth = new Map<string, string>();
  let household: { email: string; address: string; postcode: string; town: string; family: string } | undefined;
  const emailsTaken = new Set<string>();
  const offices = COMPANIES.flatMap((company) => Array.from({ length: 40 }, (_, i) => ({ company, phone: `44207${String(1_000_000 + i * 7919 + company.length * 13).slice(-7)}` })));
  for (let person = 0; person < people; person++) {
    const sharesHousehold = household !== undefined && chance(0.08);
    const given = zipf(GIVEN);
    const family = sharesHousehold ? household!.family : zipf(FAMILY_ROOTS) + zipf(SUFFIX);
    const year = 1940 + Math.floor(random() * 66);
    const month = 1 + Math.floor(random() * 12);
    const day = 1 + Math.floor(random() * 28);
    const birth = `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
    const town = sharesHousehold ? household!.town : zipf(TOWNS);
    const kind = pick(STREET_KINDS);
    const address = sharesHousehold ? household!.address : `${1 + Math.floor(random() * 200)} ${pick(STREETS)} ${kind[0]}`;
    const postcode = sharesHousehold ? household!.postcode : `${town.slice(0, 2)}${1 + Math.floor(random() * 20)} ${Math.floor(random() * 10)}${pick('abdefghjlnpqrstuwxyz'.split(''))}${pick('abdefghjlnpqrstuwxyz'.split(''))}`;
    let email = household?.email ?? '';
    if (!sharesHousehold) {
      const user = `${chance(0.5) ? given + '.' : given[0]}${family}`;
      const domain = pick(['gmail.com', 'outlook.com', 'yahoo.co.uk', 'web.de', 'icloud.com']);
      email = `${user}${chance(0.3) ? Math.floor(random() * 100) : ''}@${domain}`;
      // A mailbox has one owner (households share theirs on purpose above): a taken address gets a number, as providers make you pick one.
      while (emailsTaken.has(email)) email = `${user}${Math.floor(random() * 10_000)}@${domain}`;
      emailsTaken.add(email);
    }
    const mobile = `447${String(Math.floor(random() * 1e9)).padStart(9, '0')}`;
    const office = chance(0.25) ? pick(offices) : undefined;
    household = { email, address, postcode, town, family };
    const copies = 1 + Math.floor(random() ** 1.5 * 4);
    const systems = [...SYSTEMS].sort(() => random() - 0.5).slice(0, copies);
    for (const system of systems) {
      const id = `${system}:${person}`;
      let g = chance(0.1) && NICK[given] ? NICK[given] : given;
      let f = family;
      if (chance(0.08)) g = typo(g);
      if (chance(0.08)) f = typo(f);
      if (chance(0.01)) [g, f] = [f, g];
      let dob: string | undefined = birth;
      if (chance(0.02) && day <= 12) dob = `${year}-${String(day).padStart(2, '0')}-${String(month).padStart(2, '0')}`;
      else if (chance(0.03)) dob = `${year}-${String(month).padStart(2, '0')}-${String(Math.min(28, day + 1)).padStart(2, '0')}`;
      const moved = chance(0.05);
      const record: MatchRecord = {
        id,
        source: system,
        givenName: system === 'support' && chance(0.3) ? undefined : cap(g),
        familyName: cap(f),
        birthDate: system === 'shop' || system === 'support' || chance(0.2) ? undefined : dob,
        emails: system === 'erp' && chance(0.5) ? [] : [chance(0.05) ? typo(email) : email],
        phones: chance(0.4) ? [] : [office && system !== 'shop' ? office.phone : chance(0.1) ? mobile.slice(2) : mobile],
        postcode: system === 'support' || moved ? undefined : chance(0.5) ? postcode.toUpperCase() : postcode.replace(' ', ''),
        city: system === 'support' ? undefined : cap(moved ? pick(TOWNS) : town),
        address: system === 'support' || moved ? undefined : chance(0.5) ? cap(address) : cap(address.replace(kind[0], kind[1])),
        organisation: office && system !== 'shop' ? `${cap(office.company)} ${pick(LEGAL)}`.trim() : undefined,
      };
      records.push(record);
      truth.set(id, String(person));
    }
  }
  return { records, truth, linkType: 'link_and_dedupe' };
}
