/**
 * Just enough PNG decoding to read a browser's screenshot back: 8-bit RGB or
 * RGBA, not interlaced (what Chromium writes), the five row filters of the
 * PNG specification undone. Anything else is refused, never guessed.
 */
import {inflateSync} from 'node:zlib'

export interface Png {
  width: number
  height: number
  /** RGBA, row-major, 4 bytes a pixel */
  rgba: Uint8Array
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

export function decodePng(file: Buffer): Png {
  if (!file.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG file')
  let width = 0
  let height = 0
  let channels = 0
  const idat: Buffer[] = []
  for (let at = 8; at < file.length;) {
    const length = file.readUInt32BE(at)
    const type = file.toString('latin1', at + 4, at + 8)
    const data = file.subarray(at + 8, at + 8 + length)
    if (type === 'IHDR') {
      width = data.readUInt32BE(0)
      height = data.readUInt32BE(4)
      const [depth, colour, , , interlace] = [data[8], data[9], data[10], data[11], data[12]]
      if (depth !== 8 || (colour !== 2 && colour !== 6) || interlace !== 0)
        throw new Error(
          `PNG of bit depth ${depth}, colour type ${colour}, interlace ${interlace}: only 8-bit RGB/RGBA, not interlaced`,
        )
      channels = colour === 6 ? 4 : 3
    } else if (type === 'IDAT') idat.push(data)
    else if (type === 'IEND') break
    at += 12 + length
  }
  const raw = inflateSync(Buffer.concat(idat))
  const stride = width * channels
  const rows = new Uint8Array(height * stride)
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1))
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? rows[y * stride + x - channels]! : 0
      const b = y > 0 ? rows[(y - 1) * stride + x]! : 0
      const c = x >= channels && y > 0 ? rows[(y - 1) * stride + x - channels]! : 0
      const predicted =
        filter === 0
          ? 0
          : filter === 1
            ? a
            : filter === 2
              ? b
              : filter === 3
                ? (a + b) >> 1
                : filter === 4
                  ? paeth(a, b, c)
                  : NaN
      if (Number.isNaN(predicted)) throw new Error(`PNG row ${y}: unknown filter ${filter}`)
      rows[y * stride + x] = (line[x]! + predicted) & 0xff
    }
  }
  const rgba = new Uint8Array(width * height * 4)
  for (let i = 0; i < width * height; i++) {
    rgba.set(rows.subarray(i * channels, i * channels + 3), i * 4)
    rgba[i * 4 + 3] = channels === 4 ? rows[i * channels + 3]! : 255
  }
  return {width, height, rgba}
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c
  const pa = Math.abs(p - a)
  const pb = Math.abs(p - b)
  const pc = Math.abs(p - c)
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c
}

/** The pixel at (x, y) as #rrggbb. */
export function pixelAt(png: Png, x: number, y: number): string {
  const i = (Math.round(y) * png.width + Math.round(x)) * 4
  return `#${[...png.rgba.subarray(i, i + 3)].map((v) => v.toString(16).padStart(2, '0')).join('')}`
}

/** How far two #rrggbb colours are apart: the largest difference of a channel. */
export function colourDistance(a: string, b: string): number {
  const ch = (s: string, k: number): number => parseInt(s.slice(1 + 2 * k, 3 + 2 * k), 16)
  return Math.max(...[0, 1, 2].map((k) => Math.abs(ch(a, k) - ch(b, k))))
}
