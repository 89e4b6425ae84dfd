import {describe, expect, it} from 'vitest'

import {synthesizeSnapshot} from '../../../bench/synth.js'
import {runChecks} from '../../../src/analyze/checks/index.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {snapshotFixture} from '../../helpers/fixtures.js'

const TABLES = ['links', 'addresses', 'routes', 'neighbours', 'fdb'] as const

/**
 * A cluster grown from a real lab (every node collected, every table as
 * the lab's), whose nodes' tables count each entry the checks read.
 */
function counted(lab: string, n: number): {s: Snapshot; entries: number; reads: () => number} {
  const s = synthesizeSnapshot(snapshotFixture(lab), n)
  let reads = 0
  let entries = 0
  for (const st of Object.values(s.nodeStates)) {
    for (const t of TABLES) {
      const table = st[t] as unknown[]
      entries += table.length
      ;(st as unknown as Record<string, unknown>)[t] = new Proxy(table, {
        get(target, key, receiver) {
          if (typeof key === 'string' && /^\d+$/.test(key)) reads++
          return Reflect.get(target, key, receiver) as unknown
        },
      })
    }
  }
  return {s, entries, reads: () => reads}
}

describe('the checks read each table entry a bounded number of times, whatever the size of the cluster', () => {
  for (const lab of ['flannel-vxlan-lab', 'flannel-host-gw-lab', 'calico-bgp-lab']) {
    it(`${lab} grown to 16 and 48 nodes: entry reads per entry do not grow with the nodes`, () => {
      const small = counted(lab, 16)
      const smallFindings = runChecks(small.s)
      const big = counted(lab, 48)
      const bigFindings = runChecks(big.s)
      const perEntry = (c: {entries: number; reads: () => number}) => c.reads() / c.entries
      // three times the nodes is about nine times the entries (every node routes every peer); the reads follow the entries
      expect(big.entries).toBeGreaterThan(4 * small.entries)
      expect(perEntry(big)).toBeLessThan(1.2 * perEntry(small))
      expect(perEntry(big)).toBeLessThan(40)
      // and the findings are those of the lab: a grown healthy cluster stays healthy
      const codes = (fs: typeof bigFindings) => [...new Set(fs.map((f) => f.code))].sort()
      expect(codes(bigFindings)).toEqual(codes(smallFindings))
    })
  }
})
