import {describe, expect, it} from 'vitest'

import {detectBackend, runChecks} from '../../../src/analyze/checks/index.js'
import {HEALTHY, snapshot} from './helpers.js'

// Real state from healthy labs: any error or warning here is a false positive, the worst defect a check can have.
describe('checks on healthy recorded snapshots', () => {
  it.each(HEALTHY)('%s: the backend is recognised and nothing is reported', (name) => {
    const s = snapshot(name)
    expect(detectBackend(s).mode).toBe(name.replace(/-routed$/, ''))
    const found = runChecks(s)
    expect(found.filter((f) => f.severity !== 'info')).toEqual([])
  })

  it.each(HEALTHY)('%s: an unknown backend name is settled from the node state the same way', (name) => {
    const s = snapshot(name)
    s.cluster.backend = 'something-else'
    // calico-bgp and calico-rr differ only in their sessions; host-gw only in its annotation
    expect(detectBackend(s).mode).toBe(name.replace(/-routed$/, ''))
    expect(runChecks(s).filter((f) => f.severity === 'error')).toEqual([])
  })
})
