import {describe, expect, it} from 'vitest'

import {FakeTty} from '../helpers/fake-tty.js'

// ink's chalk decides its colour level when it is first imported; force colours so that leaving them out is NO_COLOR's doing
process.env.FORCE_COLOR = '1'

const SGR = /\u001B\[[0-9;]*m/

/** Everything a progress run writes to a terminal, with NO_COLOR set or not. */
async function frames(noColor: boolean): Promise<string> {
  const {renderTraceProgress} = await import('../../src/render/trace-progress.js')
  const saved = process.env.NO_COLOR
  if (noColor) process.env.NO_COLOR = '1'
  else delete process.env.NO_COLOR
  try {
    const tty = new FakeTty()
    const progress = renderTraceProgress('tracing a → b', tty as unknown as NodeJS.WriteStream)
    progress.addNodes(['node1', 'node2'])
    progress.update({node: 'node1', phase: 'unreachable', ms: 2000, message: 'no answer'})
    progress.update({node: 'node2', phase: 'done', ms: 100})
    progress.finish('collected 1/2 nodes in 2.0s, 1 unreachable')
    await new Promise((resolve) => setTimeout(resolve, 50))
    return tty.frames.join('')
  } finally {
    if (saved === undefined) delete process.env.NO_COLOR
    else process.env.NO_COLOR = saved
  }
}

describe('progress colours', () => {
  it('on a terminal: coloured', async () => {
    expect(await frames(false)).toMatch(SGR)
  })

  it("NO_COLOR: not a colour code, though ink's chalk does not read it", async () => {
    const out = await frames(true)
    expect(out).not.toMatch(SGR)
    expect(out).toContain('✗ node1')
  })
})
