import {createHash} from 'node:crypto'

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** RFC 4648 base32 (Go's base32.StdEncoding, without the padding nobody reads). */
export function base32(buf: Uint8Array): string {
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of buf) {
    value = ((value << 8) | byte) & 0xffff
    bits += 8
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31]
  return out
}

/** base32(sha256(s)): kube-proxy's chain-name hash, before truncation. */
export function sha256Base32(s: string): string {
  return base32(createHash('sha256').update(s).digest())
}
