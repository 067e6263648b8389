/**
 * "Did you mean" for unknown keys: the known name with the smallest edit distance (Levenshtein, counting an
 * adjacent transposition as one edit as in Damerau's 1964 paper, since "levle" for "level" is one slip of
 * the fingers), compared case-insensitively, if it is close enough to be the likely intent.
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const target = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(target, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // Up to a third of the word may be wrong (at least 1, at most 3 edits): "uplnk" -> "uplink", but not
  // "foo" -> "log".
  const allowed = Math.min(3, Math.max(1, Math.floor(target.length / 3)));
  return bestDistance <= allowed ? best : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent transpositions. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  const at = (i: number, j: number) => d[i * cols + j] as number;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, at(i - 2, j - 2) + 1);
      }
      d[i * cols + j] = value;
    }
  }
  return at(rows - 1, cols - 1);
}

/** " (did you mean log.level?)" or "". */
export function didYouMean(word: string, candidates: Iterable<string>, prefix = ''): string {
  const guess = closest(word, candidates);
  return guess === undefined ? '' : ` (did you mean ${prefix}${guess}?)`;
}
