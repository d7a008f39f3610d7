/**
 * String similarity for the comparisons: Jaro–Winkler (Winkler 1990) and the optimal-string-alignment
 * form of Damerau–Levenshtein (adjacent transpositions count as one edit). Written here rather than taken
 * from a package: both are short, hot (called for every candidate pair) and easy to test against known values.
 */

// Scratch buffers reused across calls: names are short, and allocation dominated an early profile.
let flagsA = new Uint8Array(64);
let flagsB = new Uint8Array(64);

/** Jaro similarity in [0, 1]. */
export function jaro(a: string, b: string): number {
  if (a === b) return 1;
  const la = a.length;
  const lb = b.length;
  if (la === 0 || lb === 0) return 0;
  if (flagsA.length < la) flagsA = new Uint8Array(la * 2);
  if (flagsB.length < lb) flagsB = new Uint8Array(lb * 2);
  // Locals, not the module's `let` bindings, in the loops: V8 then keeps them in registers.
  const fa = flagsA;
  const fb = flagsB;
  fa.fill(0, 0, la);
  fb.fill(0, 0, lb);
  const window = Math.max(0, (Math.max(la, lb) >> 1) - 1);
  let matches = 0;
  for (let i = 0; i < la; i++) {
    const lo = i > window ? i - window : 0;
    const hi = i + window < lb - 1 ? i + window : lb - 1;
    const ch = a.charCodeAt(i);
    for (let j = lo; j <= hi; j++) {
      if (fb[j] === 0 && b.charCodeAt(j) === ch) {
        fa[i] = 1;
        fb[j] = 1;
        matches++;
        break;
      }
    }
  }
  if (matches === 0) return 0;
  let transpositions = 0;
  let k = 0;
  for (let i = 0; i < la; i++) {
    if (fa[i] === 0) continue;
    while (fb[k] === 0) k++;
    if (a.charCodeAt(i) !== b.charCodeAt(k)) transpositions++;
    k++;
  }
  return (matches / la + matches / lb + (matches - transpositions / 2) / matches) / 3;
}

/** Jaro–Winkler similarity: Jaro boosted by a common prefix of up to four characters (scale 0.1). */
export function jaroWinkler(a: string, b: string, prefixScale = 0.1): number {
  const j = jaro(a, b);
  let prefix = 0;
  const max = Math.min(4, a.length, b.length);
  while (prefix < max && a.charCodeAt(prefix) === b.charCodeAt(prefix)) prefix++;
  return j + prefix * prefixScale * (1 - j);
}

let rowPrev2 = new Int32Array(64);
let rowPrev = new Int32Array(64);
let rowCur = new Int32Array(64);

/** Damerau–Levenshtein distance (optimal string alignment): insertions, deletions, substitutions, adjacent transpositions. */
export function damerauLevenshtein(a: string, b: string): number {
  if (a === b) return 0;
  const la = a.length;
  const lb = b.length;
  if (la === 0) return lb;
  if (lb === 0) return la;
  if (rowCur.length <= lb) {
    rowPrev2 = new Int32Array(lb * 2 + 1);
    rowPrev = new Int32Array(lb * 2 + 1);
    rowCur = new Int32Array(lb * 2 + 1);
  }
  for (let j = 0; j <= lb; j++) rowPrev[j] = j;
  for (let i = 1; i <= la; i++) {
    rowCur[0] = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= lb; j++) {
      const cb = b.charCodeAt(j - 1);
      const cost = ca === cb ? 0 : 1;
      let best = Math.min(rowPrev[j] + 1, rowCur[j - 1] + 1, rowPrev[j - 1] + cost);
      if (i > 1 && j > 1 && ca === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === cb) best = Math.min(best, rowPrev2[j - 2] + 1);
      rowCur[j] = best;
    }
    const spare = rowPrev2;
    rowPrev2 = rowPrev;
    rowPrev = rowCur;
    rowCur = spare;
  }
  return rowPrev[lb];
}

const counts = new Int32Array(128);

/**
 * Jaro–Winkler when it can reach `floor`, else 0. Jaro cannot exceed (c/|a| + c/|b| + 1) / 3 with c the
 * characters the strings have in common (as multisets), and the prefix bonus is known before Jaro is; checking that bound first costs O(|a| + |b|) and skips most dissimilar pairs, which are most pairs.
 */
export function jaroWinklerAbove(a: string, b: string, floor: number): number {
  if (a === b) return 1;
  let ascii = true;
  for (let i = 0; i < a.length; i++) {
    const ch = a.charCodeAt(i);
    if (ch >= 128) ascii = false;
    else counts[ch]++;
  }
  let common = 0;
  for (let i = 0; i < b.length; i++) {
    const ch = b.charCodeAt(i);
    if (ch >= 128) ascii = false;
    else if (counts[ch] > 0) {
      counts[ch]--;
      common++;
    }
  }
  for (let i = 0; i < a.length; i++) {
    const ch = a.charCodeAt(i);
    if (ch < 128) counts[ch] = 0;
  }
  if (ascii) {
    const jaroBound = common === 0 ? 0 : (common / a.length + common / b.length + 1) / 3;
    let prefix = 0;
    const max = Math.min(4, a.length, b.length);
    while (prefix < max && a.charCodeAt(prefix) === b.charCodeAt(prefix)) prefix++;
    if (jaroBound + prefix * 0.1 * (1 - jaroBound) < floor) return 0;
  }
  return jaroWinkler(a, b);
}
