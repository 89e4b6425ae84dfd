/**
 * Levenshtein distance (insert, delete, substitute each cost 1), for
 * "did you mean" suggestions on mistyped codes and names.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0
  if (a.length === 0) return b.length
  if (b.length === 0) return a.length
  // one row of the DP table at a time: prev[j] = distance(a[0..i-1], b[0..j])
  let prev = Array.from({length: b.length + 1}, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost)
    }
    prev = cur
  }
  return prev[b.length]!
}

/**
 * The candidate closest to `input`, or undefined when nothing is close enough
 * to be a plausible typo (more than a third of the input's length away, at
 * least 2). Failing that, the shortest candidate that contains the input
 * wins ("CSUM" → VXLAN_CSUM_OFFLOAD). Callers normalise case first.
 */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  for (const c of candidates) {
    const d = editDistance(input, c)
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  if (best !== undefined && bestDistance <= Math.max(2, Math.floor(input.length / 3))) return best
  if (input.length < 3) return undefined
  const containing = candidates.filter((c) => c.includes(input)).sort((x, y) => x.length - y.length)
  return containing[0]
}
