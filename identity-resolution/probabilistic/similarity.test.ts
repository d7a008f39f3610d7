import { describe, expect, it } from 'vitest';
import { nysiis } from './phonetic.js';
import { damerauLevenshtein, jaro, jaroWinkler, jaroWinklerAbove } from './similarity.js';
import { seededRandom } from './fellegi-sunter.js';

describe('Jaro and Jaro–Winkler', () => {
  // Winkler's published examples.
  it.each([
    ['martha', 'marhta', 0.944, 0.961],
    ['dwayne', 'duane', 0.822, 0.84],
    ['dixon', 'dicksonx', 0.767, 0.813],
  ])('%s / %s', (a, b, j, jw) => {
    expect(jaro(a, b)).toBeCloseTo(j, 3);
    expect(jaroWinkler(a, b)).toBeCloseTo(jw, 3);
    expect(jaroWinkler(b, a)).toBeCloseTo(jw, 3);
  });

  it('is 1 for equal strings and 0 with nothing in common or an empty side', () => {
    expect(jaroWinkler('smith', 'smith')).toBe(1);
    expect(jaroWinkler('abc', 'xyz')).toBe(0);
    expect(jaroWinkler('', 'abc')).toBe(0);
  });

  it('the bounded form agrees with the full one wherever the result reaches the floor', () => {
    const random = seededRandom(1);
    const word = () => Array.from({ length: 2 + Math.floor(random() * 10) }, () => 'aeilnorst'[Math.floor(random() * 9)]).join('');
    for (let n = 0; n < 5000; n++) {
      const [a, b] = [word(), word()];
      const full = jaroWinkler(a, b);
      const bounded = jaroWinklerAbove(a, b, 0.8);
      if (full >= 0.8) expect(bounded).toBe(full);
      else expect(bounded < 0.8).toBe(true);
    }
  });
});

describe('Damerau–Levenshtein (optimal string alignment)', () => {
  it.each([
    ['kitten', 'sitting', 3],
    ['abcd', 'acbd', 1],
    ['smith', 'smiht', 1],
    ['ca', 'abc', 3],
    ['', 'abc', 3],
    ['same', 'same', 0],
  ])('%s / %s = %i', (a, b, d) => {
    expect(damerauLevenshtein(a, b)).toBe(d);
    expect(damerauLevenshtein(b, a)).toBe(d);
  });
});

describe('NYSIIS', () => {
  it.each([
    ['knight', 'NAGT'],
    ['mitchell', 'MATCAL'],
    ['brown', 'BRAN'],
    ['macdonald', 'MCDANALD'],
    ['phillips', 'FALAP'],
  ])('%s → %s', (name, code) => expect(nysiis(name)).toBe(code));

  it('codes spelling variants alike and different names apart', () => {
    expect(nysiis('catherine')).toBe(nysiis('katherine'));
    expect(nysiis('john')).toBe(nysiis('jon'));
    expect(nysiis('smith')).not.toBe(nysiis('jones'));
    expect(nysiis("O'Brien")).toBe(nysiis('obrien'));
    expect(nysiis('')).toBe('');
  });
});
