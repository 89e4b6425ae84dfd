import {describe, expect, it} from 'vitest'

import {run} from '../../src/util/exec.js'
import {shjoin, shq} from '../../src/util/shell.js'

const HOSTILE = [
  'node 1',
  "it's",
  'a"b',
  'x; touch /tmp/netctl-never',
  '$(id)',
  '`id`',
  'line1\nline2',
  '',
  '-n',
  '*',
  '\\',
]

describe('shq', () => {
  it('keeps every hostile value one literal word when a real sh parses it', async () => {
    for (const value of HOSTILE) {
      const r = await run('sh', ['-c', `printf '%s' ${shq(value)}`])
      expect(r.code).toBe(0)
      expect(r.stdout).toBe(value)
    }
  })

  it('passes a whole argv through sh unchanged', async () => {
    const r = await run('sh', ['-c', `for a in ${shjoin(HOSTILE)}; do printf '[%s]' "$a"; done`])
    expect(r.stdout).toBe(HOSTILE.map((v) => `[${v}]`).join(''))
  })

  it('leaves plain words readable', () => {
    expect(shq('flannel.1')).toBe('flannel.1')
    expect(shq('172.20.1.0/24')).toBe('172.20.1.0/24')
  })
})
