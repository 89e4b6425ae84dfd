import {describe, expect, it, vi} from 'vitest'

import {synthesizeSnapshot} from '../../../bench/synth.js'
import {runChecksByNode} from '../../../src/analyze/checks/index.js'
import {snapshotFixture} from '../../helpers/fixtures.js'

// every prefix the checks parse, counted (the real parser underneath; contains() parses both of its own)
const parsed = vi.hoisted(() => ({count: 0}))
vi.mock('../../../src/analyze/ip.js', async (original) => {
  const ip = await original<typeof import('../../../src/analyze/ip.js')>()
  return {
    ...ip,
    parsePrefix: (cidr: string | undefined) => {
      parsed.count++
      return ip.parsePrefix(cidr)
    },
    contains: (outer: string, inner: string) => {
      parsed.count += 2
      return ip.contains(outer, inner)
    },
  }
})

describe("the checks parse each route's prefix once per state (its index), not once per question", () => {
  for (const lab of ['flannel-vxlan-lab', 'flannel-host-gw-lab', 'calico-bgp-lab']) {
    it(`${lab} at 16 and 48 nodes: at most one parse per route (kernel or BIRD), and a few per node`, () => {
      for (const n of [16, 48]) {
        const s = synthesizeSnapshot(snapshotFixture(lab), n)
        // the kernel's routes and BIRD's: each parsed once
        const routes = Object.values(s.nodeStates).reduce(
          (a, st) => a + st.routes.length + (st.bird?.routes.length ?? 0),
          0,
        )
        parsed.count = 0
        runChecksByNode(s)
        expect(parsed.count).toBeGreaterThan(0)
        // a parse per route per peer (or per node pair) would add n² more
        expect(parsed.count, `${n} nodes, ${routes} routes`).toBeLessThanOrEqual(routes + 10 * n)
      }
    })
  }
})
