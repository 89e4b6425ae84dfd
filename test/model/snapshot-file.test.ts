import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {gunzipSync, gzipSync} from 'node:zlib'

import {afterAll, describe, expect, it} from 'vitest'

import {synthesizeSnapshot} from '../../bench/synth.js'
import {factsMakerFor} from '../../src/analyze/checks/index.js'
import {parseSnapshot, type Snapshot} from '../../src/model/snapshot.js'
import {
  linesOf,
  openSnapshotFile,
  readSnapshotFile,
  snapshotJsonChunks,
  writeSnapshotFile,
} from '../../src/model/snapshot-file.js'
import {netctl} from '../helpers/cli.js'

const dir = mkdtempSync(path.join(tmpdir(), 'sc-snapfile-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))
const fixture = 'fixtures/snapshots/flannel-vxlan-lab.json'
const lab = (): Snapshot => parseSnapshot(readFileSync(fixture, 'utf8'))

describe('snapshot files that scale', () => {
  it('version 1 is written in pieces, byte for byte what JSON.stringify wrote, and read back, plain or gzipped', async () => {
    const s = lab()
    expect([...snapshotJsonChunks(s)].join('')).toBe(`${JSON.stringify(s, null, 2)}\n`)
    expect([...snapshotJsonChunks({...s, nodeStates: {}})].join('')).toBe(
      `${JSON.stringify({...s, nodeStates: {}}, null, 2)}\n`,
    )
    for (const name of ['a.json', 'a.json.gz']) {
      const file = path.join(dir, name)
      await writeSnapshotFile(file, s)
      const raw = readFileSync(file)
      expect((name.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8')).toBe(`${JSON.stringify(s, null, 2)}\n`)
      expect(await readSnapshotFile(file)).toEqual(s)
    }
  })

  it('version 2 (JSON Lines): the snapshot without states, then one line per node; read back the same, plain or gzipped', async () => {
    const s = lab()
    for (const name of ['a.jsonl', 'a.jsonl.gz']) {
      const file = path.join(dir, name)
      await writeSnapshotFile(file, s)
      const text = (name.endsWith('.gz') ? gunzipSync(readFileSync(file)) : readFileSync(file)).toString('utf8')
      const lines = text.trimEnd().split('\n')
      expect(lines).toHaveLength(1 + s.nodes.length)
      expect(JSON.parse(lines[0]!)).toMatchObject({schemaVersion: 2, cluster: s.cluster})
      expect(JSON.parse(lines[2]!)).toEqual({node: 'node2', state: s.nodeStates.node2})
      expect(await readSnapshotFile(file)).toEqual(s)
    }
  })

  it('a bad node line is refused with its line number and the field; a newer version says so', async () => {
    const s = lab()
    const file = path.join(dir, 'bad.jsonl')
    await writeSnapshotFile(file, s)
    const lines = readFileSync(file, 'utf8').split('\n')
    const bad = JSON.parse(lines[2]!) as {state: {routes: unknown}}
    bad.state.routes = 'none'
    lines[2] = JSON.stringify(bad)
    writeFileSync(file, lines.join('\n'))
    await expect(readSnapshotFile(file)).rejects.toThrow(
      /bad\.jsonl:3: invalid snapshot: nodeStates\["node2"\]\.routes: must be an array/,
    )
    writeFileSync(file, `${JSON.stringify({...JSON.parse(lines[0]!), schemaVersion: 3})}\n`)
    await expect(readSnapshotFile(file)).rejects.toThrow(/snapshot version 3 is newer than this netctl supports/)
  })

  it('with facts and index: the states read back as written; a line the index does not place there, or a bad facts line, is refused', async () => {
    const s = lab()
    const file = path.join(dir, 'indexed.jsonl')
    await writeSnapshotFile(file, s, factsMakerFor(s.cluster))
    expect(await readSnapshotFile(file)).toEqual(s)
    const {indexed} = await openSnapshotFile(file)
    const [one] = await indexed!.statesOf(new Set(['node2']))
    expect(one).toEqual({node: 'node2', state: s.nodeStates.node2, facts: false})
    const lines = readFileSync(file, 'utf8').split('\n')
    const n = s.nodes.length
    // node2's and node3's state lines swapped: same lengths would be luck, the names are checked
    const swapped = [...lines]
    ;[swapped[1 + n + 1], swapped[1 + n + 2]] = [lines[1 + n + 2]!, lines[1 + n + 1]!]
    writeFileSync(file, swapped.join('\n'))
    await expect(readSnapshotFile(file)).rejects.toThrow(
      /indexed\.jsonl:\d+: invalid snapshot: the index says this line is "node2"'s/,
    )
    const badFacts = [...lines]
    const f = JSON.parse(lines[1]!) as {facts: {links: unknown}}
    f.facts.links = 'none'
    badFacts[1] = JSON.stringify(f)
    writeFileSync(file, badFacts.join('\n'))
    const again = await openSnapshotFile(file)
    await expect(
      (async () => {
        for await (const _ of again.indexed!.lines());
      })(),
    ).rejects.toThrow(/indexed\.jsonl:2: invalid snapshot: facts\["node1"\]\.links: must be an array/)
  })

  it('a 60-node cluster in JSON Lines, gzipped: check reads it and says what it says of the same snapshot in version 1', async () => {
    const s = synthesizeSnapshot(lab(), 60)
    const v1 = path.join(dir, 'big.json')
    const v2 = path.join(dir, 'big.jsonl.gz')
    await writeSnapshotFile(v1, s)
    await writeSnapshotFile(v2, s)
    const a = await netctl(['check', '--snapshot', v1, '--json'])
    const b = await netctl(['check', '--snapshot', v2, '--json'])
    expect(b.code).toBe(a.code)
    expect(JSON.parse(b.stdout).findings).toEqual(JSON.parse(a.stdout).findings)
    expect(JSON.parse(b.stdout).summary ?? null).toEqual(JSON.parse(a.stdout).summary ?? null)
  })

  it('lines are read a window at a time: a line longer than the window, UTF-8 across its edge, empty lines, no final newline, gzipped or at an offset', async () => {
    const mb = 1 << 20
    const lines = [
      'a',
      '',
      'x'.repeat(20 * mb), // longer than the 8 MB window: it grows
      `{"note":"é 日本 🚀"}`,
      ...Array.from(
        {length: 3000},
        (_, i) => `${i} ${'y'.repeat((i * 7919) % 9000)}${i % 97 === 0 ? ' ünïcode ✓' : ''}`,
      ),
      'é'.repeat(3 * mb), // two bytes each: a window edge falls inside such a line
      '',
      'last line, no newline',
    ]
    const text = lines.join('\n')
    const plain = path.join(dir, 'lines.txt')
    const gz = path.join(dir, 'lines.txt.gz')
    writeFileSync(plain, text)
    writeFileSync(gz, gzipSync(text))
    const read = async (file: string, gzip: boolean, range?: {start: number; end: number}) => {
      const out: string[] = []
      for await (const l of linesOf(file, gzip, range)) out.push(l)
      return out
    }
    expect(await read(plain, false)).toEqual(lines)
    expect(await read(gz, true)).toEqual(lines)
    // lines 3 to 2000, by their bytes, newline included (as check's workers read their share)
    const bytes = Buffer.from(text)
    const offsetOf = (n: number) => Buffer.byteLength(lines.slice(0, n).join('\n')) + (n > 0 ? 1 : 0)
    expect(await read(plain, false, {start: offsetOf(3), end: offsetOf(2000)})).toEqual(lines.slice(3, 2000))
    expect(bytes.length).toBeGreaterThan(30 * mb)
    // with a final newline, no empty line after it
    writeFileSync(plain, `${text}\n`)
    expect(await read(plain, false)).toEqual(lines)
    // the next window is read while the lines before it are handed out: a reader that stops there
    // leaves no read in flight behind it, and the file reads the same again
    const handles = () => readdirSync('/proc/self/fd').length
    const before = handles()
    for (const stopAt of [0, 3, 2500]) {
      let seen = 0
      for await (const l of linesOf(plain, false)) {
        expect(l).toBe(lines[seen])
        if (seen++ === stopAt) break
      }
    }
    expect(handles()).toBe(before)
    expect(await read(plain, false)).toEqual(lines)
  })
})
