/**
 * NYSIIS (New York State Identification and Intelligence System, Taft 1970), the phonetic code of the
 * name comparisons and of a blocking key. Chosen over Soundex because it keeps vowel position and codes
 * names such as "Knight"/"Night" and "Mitchell"/"Michel" alike; written here because it is forty lines.
 * The code is not truncated to six characters (the original did, for punched cards).
 */
const VOWELS = new Set(['A', 'E', 'I', 'O', 'U']);

export function nysiis(input: string): string {
  let s = input.toUpperCase().replace(/[^A-Z]/g, '');
  if (s.length === 0) return '';
  if (s.startsWith('MAC')) s = 'MCC' + s.slice(3);
  else if (s.startsWith('KN')) s = 'NN' + s.slice(2);
  else if (s.startsWith('K')) s = 'C' + s.slice(1);
  else if (s.startsWith('PH') || s.startsWith('PF')) s = 'FF' + s.slice(2);
  else if (s.startsWith('SCH')) s = 'SSS' + s.slice(3);
  if (s.endsWith('EE') || s.endsWith('IE')) s = s.slice(0, -2) + 'Y';
  else if (/(DT|RT|RD|NT|ND)$/.test(s)) s = s.slice(0, -2) + 'D';
  let key = s[0];
  let last = s[0];
  for (let i = 1; i < s.length; i++) {
    const ch = s[i];
    const next = s[i + 1];
    let code: string;
    if (ch === 'E' && next === 'V') {
      code = 'AF';
      i++;
    } else if (VOWELS.has(ch)) code = 'A';
    else if (ch === 'Q') code = 'G';
    else if (ch === 'Z') code = 'S';
    else if (ch === 'M') code = 'N';
    else if (ch === 'K') code = next === 'N' ? 'N' : 'C';
    else if (ch === 'S' && next === 'C' && s[i + 2] === 'H') {
      code = 'SSS';
      i += 2;
    } else if (ch === 'P' && next === 'H') {
      code = 'FF';
      i++;
    } else if (ch === 'H' && (!VOWELS.has(s[i - 1]) || next === undefined || !VOWELS.has(next))) code = last;
    else if (ch === 'W' && VOWELS.has(s[i - 1])) code = last;
    else code = ch;
    // Runs of one code collapse to one character.
    for (const c of code) {
      if (c !== last) key += c;
      last = c;
    }
  }
  if (key.length > 1 && key.endsWith('S')) key = key.slice(0, -1);
  if (key.endsWith('AY')) key = key.slice(0, -2) + 'Y';
  if (key.length > 1 && key.endsWith('A')) key = key.slice(0, -1);
  return key;
}
