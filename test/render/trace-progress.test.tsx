import {describe, expect, it} from 'vitest'

import {renderTraceProgress} from '../../src/render/trace-progress.js'
import {FakeTty} from '../helpers/fake-tty.js'

const plain = (s: string): string => s.replace(/\u001B\[[0-9;?]*[A-Za-z]/g, '')

describe('trace progress (ink)', () => {
  it('rows join round by round, as the walk asks for nodes; the footer stays', async () => {
    const tty = new FakeTty()
    const progress = renderTraceProgress('tracing pod-node1-1 → pod-node3-2', tty as unknown as NodeJS.WriteStream)
    progress.addNodes(['node1', 'node3'])
    progress.update({node: 'node1', phase: 'done', ms: 300})
    progress.update({
      node: 'node3',
      phase: 'unreachable',
      ms: 2000,
      message: 'netns x.node3: no such network namespace',
    })
    progress.update({node: 'node9', phase: 'done'}) // not asked for: no row
    progress.addNodes(['node2', 'node1'])
    progress.update({node: 'node2', phase: 'probing'})
    progress.finish('collected 2/3 nodes in 2.3s, 1 unreachable')
    await new Promise((resolve) => setTimeout(resolve, 50))
    const last = plain(tty.frames.join('')).split('tracing pod-node1-1 → pod-node3-2').at(-1)!
    const lines = last
      .split('\n')
      .map((l) => l.trimEnd())
      .filter(Boolean)
    expect(lines[0]).toMatch(/^ {2}✗ node3 +2\.0s {2}netns x\.node3: no such network namespace$/)
    expect(lines[1]).toMatch(/^ {2}… node2/)
    expect(lines[2]).toMatch(/^ {2}✓ node1 +0\.3s$/)
    expect(last).not.toContain('node9')
    // one summary line at the end: the footer, not also the running count
    expect(lines.at(-1)).toBe('collected 2/3 nodes in 2.3s, 1 unreachable')
    expect(last).not.toContain('finished')
  })
})
