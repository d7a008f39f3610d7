/** A CSV source of people with birth dates, for tests of quarantine and remapping: the dates map only in the right format. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const peopleMapping = (dateFormat: string) => `streams:
  rows:
    fields:
      - { target: person.email, from: email, transforms: [email] }
      - { target: person.given_name, from: name, transforms: [normalise_text] }
      - { target: person.birth_date, from: born, transforms: [{ parse_date: { format: "${dateFormat}" } }] }
`;

/** Writes `people.csv` (columns id, email, name, born) and its mapping `people.yaml` into `dir`. */
export async function writePeopleSource(dir: string, rows: string[], dateFormat: string): Promise<void> {
  await writeFile(join(dir, 'people.csv'), ['id,email,name,born', ...rows].join('\n') + '\n');
  await writeFile(join(dir, 'people.yaml'), peopleMapping(dateFormat));
}
