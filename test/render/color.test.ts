import {describe, expect, it} from 'vitest'

import {printable} from '../../src/render/color.js'

describe('printable: a line from a cluster is shown, never obeyed, on a terminal', () => {
  it('escape sequences, carriage returns and other control characters become \\xHH; tabs and text stay', () => {
    expect(printable('node2: \u001b[2J\u001b]0;owned\u0007gone\rfake\ttab')).toBe(
      'node2: \\x1b[2J\\x1b]0;owned\\x07gone\\x0dfake\ttab',
    )
    expect(printable('ssh node2: host key changed (SHA256:abc+/=)')).toBe('ssh node2: host key changed (SHA256:abc+/=)')
    expect(printable('pod «ünïcode» 10.0.0.1')).toBe('pod «ünïcode» 10.0.0.1')
  })
})
