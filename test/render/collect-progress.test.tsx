import {render} from 'ink-testing-library'
import {describe, expect, it} from 'vitest'

import {collectSummary} from '../../src/collect/summary.js'
import {nothingCollectedLine} from '../../src/collect/summary.js'
import {collectFooter} from '../../src/render/collect.js'
import {CollectProgress, type ProgressRow} from '../../src/render/collect-progress.js'
import {snapshotFixture} from '../helpers/fixtures.js'

const plain = (s: string | undefined): string => (s ?? '').replace(/\u001B\[[0-9;]*m/g, '')

describe('collect progress (ink)', () => {
  it('one line per started node, problems first, with counts', () => {
    const rows: ProgressRow[] = [
      {node: 'node1', phase: 'done', ms: 310},
      {node: 'node2', phase: 'probing'},
      {node: 'node3', phase: 'unreachable', ms: 2000, message: 'netns lab.node3: no answer within 2.0s'},
      {node: 'node4', phase: 'waiting'},
      {node: 'node5', phase: 'partial', ms: 900, message: '1 section incomplete: iptables: exit code 1'},
    ]
    const {lastFrame} = render(<CollectProgress title="collecting 5 nodes" rows={rows} />)
    const lines = plain(lastFrame()).split('\n')
    expect(lines[0]).toBe('collecting 5 nodes')
    expect(lines[1]).toMatch(/^ {2}✗ node3 +2\.0s {2}netns lab\.node3: no answer within 2\.0s$/)
    expect(lines[2]).toMatch(/^ {2}! node5 +0\.9s {2}1 section incomplete/)
    expect(lines[3]).toMatch(/^ {2}… node2/)
    expect(lines[4]).toMatch(/^ {2}✓ node1 +0\.3s$/)
    expect(lines.some((l) => l.includes('node4'))).toBe(false)
    expect(lines.at(-1)).toBe('  3/5 finished, 1 waiting')
  })

  it('many nodes: a bounded list and a count of the rest; the footer when done', () => {
    const rows: ProgressRow[] = Array.from({length: 50}, (_, i) => ({node: `node${i + 1}`, phase: 'done', ms: 100}))
    const {lastFrame} = render(
      <CollectProgress title="t" rows={rows} footer="collected 50/50 nodes in 1.2s → snap.json" />,
    )
    const out = plain(lastFrame())
    expect(out).toContain('... 26 more')
    // one summary line once done: the footer says what "50/50 finished" would
    expect(out).not.toContain('finished')
    expect(out.split('\n').at(-1)).toBe('collected 50/50 nodes in 1.2s → snap.json')
  })
})

describe('collect text and JSON faces', () => {
  const snap = snapshotFixture('flannel-vxlan-lab')

  it('summary and footer count what the snapshot holds', () => {
    expect(collectSummary(snap, 'x.json')).toMatchObject({
      output: 'x.json',
      nodes: 3,
      collected: 3,
      partial: 0,
      unreachable: 0,
      errors: [],
    })
    expect(collectFooter(snap, 'x.json')).toMatch(/^collected 3\/3 nodes in \d+\.\ds → x\.json$/)
  })

  it('nothing collected: one line with the first reason', () => {
    const none = {
      ...snap,
      nodeStates: {},
      errors: [{node: 'node1', code: 'NODE_UNREACHABLE' as const, message: 'netns x: does not exist'}],
    }
    expect(nothingCollectedLine(none)).toBe(
      'no node could be collected (1 unreachable): node1: netns x: does not exist',
    )
    expect(collectFooter(none, undefined)).toMatch(/^collected 0\/3 nodes in .*, 1 unreachable$/)
  })
})
