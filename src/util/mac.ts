/**
 * aa:bb:cc:dd:ee:ff, either case: what /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/ accepts, read
 * character by character (the schema's `mac` format runs over a neighbour and an FDB entry per
 * peer of every node).
 */
export function isMac(s: string): boolean {
  if (s.length !== 17) return false
  for (let i = 0; i < 17; i++) {
    const c = s.charCodeAt(i)
    if (i % 3 === 2) {
      if (c !== 58) return false
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70))) return false
  }
  return true
}
