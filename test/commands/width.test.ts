import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {Config} from '@oclif/core'
import {afterAll, describe, expect, it} from 'vitest'

import {netctl, REPO} from '../helpers/cli.js'
import {snapshotFixture} from '../helpers/fixtures.js'

// Output at a fixed terminal width (issue 12): no line longer than the width, no word split.
const dir = mkdtempSync(path.join(tmpdir(), 'fl-width-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** A recorded lab snapshot with a real fault: node1 has lost its FDB entry for node3's VTEP. */
function fdbLost(): string {
  const s = snapshotFixture('flannel-vxlan-lab')
  const node3 = s.nodes.find((n: {name: string}) => n.name === 'node3')
  const fdb = s.nodeStates.node1.fdb as Array<{dev: string; dst?: string}>
  s.nodeStates.node1.fdb = fdb.filter((f) => !(f.dev === 'flannel.1' && f.dst === node3.internalIP))
  const file = path.join(dir, 'fdb-lost.json')
  writeFileSync(file, JSON.stringify(s))
  return file
}

/** The words of a text, in order, without the ` \` that continues a wrapped command. */
const words = (text: string): string[] => text.split(/\s+/).filter((w) => w !== '' && w !== '\\')

describe('trace and check at the terminal width', () => {
  const snap = fdbLost()
  it.each([
    ['trace', ['trace', 'pod-node1-1', 'pod-node3-2', '--snapshot', snap]],
    ['check', ['check', '--snapshot', snap]],
  ])('%s at 100 and 80 columns', async (_, args) => {
    const whole = await netctl(args) // not a terminal, no COLUMNS: lines whole
    expect(Math.max(...whole.stdout.split('\n').map((l) => l.length))).toBeGreaterThan(80) // there is something to wrap
    for (const width of [100, 80]) {
      const r = await netctl(args, {env: {COLUMNS: String(width)}})
      expect(r.code).toBe(whole.code)
      for (const line of r.stdout.split('\n')) expect(line.length, line).toBeLessThanOrEqual(width)
      expect(words(r.stdout)).toEqual(words(whole.stdout))
    }
  })

  it('a wrapped evidence line goes on deeper than its hop', async () => {
    const r = await netctl(['trace', 'pod-node1-1', 'pod-node3-2', '--snapshot', snap], {env: {COLUMNS: '80'}})
    const lines = r.stdout.split('\n')
    const hop = lines.findIndex((l) => /^\s+\d+\s+\S/.test(l))
    const indent = (l: string) => /^ */.exec(l)![0].length
    // the first evidence line under the first hop, and a continuation of any evidence line
    const evidence = lines[hop + 1]!
    expect(indent(evidence)).toBeGreaterThan(indent(lines[hop]!))
  })
})

describe('help at 80 columns splits no word', () => {
  it('every command', async () => {
    const config = await Config.load(REPO)
    for (const cmd of config.commands.filter((c) => c.id !== 'help')) {
      const r = await netctl([...cmd.id.split(':'), '--help'], {env: {OCLIF_COLUMNS: '80'}})
      expect(r.code).toBe(0)
      // every word of the help is a word of the command's own text, its templates filled (or of oclif's headings)
      const known = new Set(
        `${JSON.stringify(cmd)
          .replace(/\\[nt]/g, ' ')
          .replaceAll(
            '<%= config.bin %>',
            'netctl',
          )} USAGE ARGUMENTS FLAGS GLOBAL FLAGS DESCRIPTION EXAMPLES netctl no $ [--json] <value> <value>... ${Object.keys(cmd.args).join(' ').toUpperCase()}`.match(
          /[A-Za-z][A-Za-z0-9_.-]*[A-Za-z0-9]/g,
        ),
      )
      for (const w of r.stdout.match(/[A-Za-z][A-Za-z0-9_.-]*[A-Za-z0-9]/g) ?? [])
        expect(known.has(w), `${cmd.id}: '${w}'`).toBe(true)
    }
  })
})
