/**
 * The screenshot reader, on PNGs built here byte by byte: every row filter of
 * the specification (none, sub, up, average, Paeth), RGB and RGBA, and what it
 * refuses.
 */
import {deflateSync} from 'node:zlib'

import {describe, expect, it} from 'vitest'

import {decodePng, pixelAt} from './png.js'

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4)
  len.writeUInt32BE(data.length)
  // the reader does not check CRCs
  return Buffer.concat([len, Buffer.from(type, 'latin1'), data, Buffer.alloc(4)])
}

function png(width: number, height: number, colour: number, rows: number[][], depth = 8): Buffer {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr.set([depth, colour, 0, 0, 0], 8)
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.from(rows.flat()))),
    chunk('IEND', Buffer.alloc(0)),
  ])
}

describe('decodePng', () => {
  it('undoes each row filter: 2×5 RGB, the same two pixels on every row', () => {
    // pixels (10,20,30) and (40,60,90) on each row; row y written with filter y
    const rows = [
      [0, 10, 20, 30, 40, 60, 90],
      [1, 10, 20, 30, 30, 40, 60], // sub: minus the pixel to the left
      [2, 0, 0, 0, 0, 0, 0], // up: minus the pixel above
      [3, 5, 10, 15, 15, 20, 30], // average of left and above: (0+10)>>1=5 ...; (10+40)>>1=25 → 40-25=15
      [4, 0, 0, 0, 0, 0, 0], // Paeth: picks the pixel above here
    ]
    const p = decodePng(png(2, 5, 2, rows))
    expect([p.width, p.height]).toEqual([2, 5])
    for (let y = 0; y < 5; y++) expect([pixelAt(p, 0, y), pixelAt(p, 1, y)], `row ${y}`).toEqual(['#0a141e', '#283c5a'])
  })

  it('RGBA keeps its alpha; 16-bit or palette images are refused', () => {
    const p = decodePng(png(1, 1, 6, [[0, 255, 0, 0, 128]]))
    expect(pixelAt(p, 0, 0)).toBe('#ff0000')
    expect(p.rgba[3]).toBe(128)
    expect(() => decodePng(png(1, 1, 3, [[0, 0]]))).toThrow(/only 8-bit RGB\/RGBA/)
    expect(() => decodePng(png(1, 1, 2, [[0, 0, 0, 0, 0, 0, 0]], 16))).toThrow(/only 8-bit/)
    expect(() => decodePng(Buffer.from('not a png'))).toThrow(/not a PNG/)
  })
})
