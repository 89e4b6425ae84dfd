/**
 * The schemas' reading of IPv4 text (src/util/schema.ts formats `ip` and `cidr`), also asked by the
 * walk whether an address is already written as numberToIPv4 writes it (src/analyze/ip.ts
 * isCanonicalIPv4). The prefix parser of src/analyze/ip.ts (parsePrefixPlain) reads the same shape
 * with other rules (leading zeros taken, a number and length returned); one reader returning the
 * numbers and the shape for both was measured 40-70% slower per text on the parse path, so they
 * stay two.
 */

/**
 * A dotted quad without leading zeros (and with `withLen`, "/" and a length without one): what
 * ipaddr's four-part check accepts, read digit by digit (every route, address and neighbour of a
 * snapshot goes through here). 1: that shape, every number in range (octets to 255, the length to
 * 32); 0: that shape, out of range; -1: another shape, for ipaddr to judge.
 */
export function plainIPv4(s: string, withLen: boolean): 1 | 0 | -1 {
  const n = s.length
  let i = 0
  let inRange = true
  for (let k = 0; k < 4; k++) {
    if (k > 0 && s.charCodeAt(i++) !== 46) return -1
    const start = i
    let v = 0
    for (let c = s.charCodeAt(i); c >= 48 && c <= 57; c = s.charCodeAt(++i)) v = v * 10 + c - 48
    const digits = i - start
    if (digits === 0 || digits > 3 || (digits > 1 && s.charCodeAt(start) === 48)) return -1
    if (v > 255) inRange = false
  }
  if (!withLen) return i === n ? (inRange ? 1 : 0) : -1
  if (s.charCodeAt(i++) !== 47) return -1
  const start = i
  let len = 0
  for (let c = s.charCodeAt(i); c >= 48 && c <= 57; c = s.charCodeAt(++i)) len = len * 10 + c - 48
  const digits = i - start
  if (i !== n || digits === 0 || digits > 2 || (digits > 1 && s.charCodeAt(start) === 48)) return -1
  return inRange && len <= 32 ? 1 : 0
}
