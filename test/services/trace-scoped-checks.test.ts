import {describe, expect, it} from 'vitest'

import {synthesizeSnapshot} from '../../bench/synth.js'
import {findingsAsTyped} from '../../src/analyze/catalogue/as-typed.js'
import {runChecks} from '../../src/analyze/checks/index.js'
import type {Snapshot} from '../../src/model/snapshot.js'
import {traceSnapshotFile} from '../../src/services/trace.js'
import {snapshotFixture} from '../helpers/fixtures.js'

const TABLES = ['routes', 'neighbours', 'fdb'] as const

/** A 30-node cluster grown from the flannel vxlan lab, each node counting reads of its routes, neighbours and FDB. */
function cluster(): {s: Snapshot; reads: Map<string, number>} {
  const s = synthesizeSnapshot(snapshotFixture('flannel-vxlan-lab'), 30)
  const reads = new Map<string, number>()
  for (const [name, st] of Object.entries(s.nodeStates)) {
    for (const t of TABLES) {
      ;(st as unknown as Record<string, unknown>)[t] = new Proxy(st[t] as unknown[], {
        get(target, key, receiver) {
          if (typeof key === 'string' && /^\d+$/.test(key)) reads.set(name, (reads.get(name) ?? 0) + 1)
          return Reflect.get(target, key, receiver) as unknown
        },
      })
    }
  }
  return {s, reads}
}

const query = (src: string, dst: string) => ({src, dst, protocol: 'icmp' as const, size: 84, df: false})

describe('trace runs the checks of the nodes on its path only', () => {
  it('reads no route, neighbour or FDB entry of a node off the path, and says which checks ran where', () => {
    const {s, reads} = cluster()
    const run = traceSnapshotFile(s, query('pod-node3-1', 'pod-node17-2'))
    expect(run.trace.disposition).toBe('DELIVERED')
    expect(run.trace.checks?.nodes.sort()).toEqual(['node17', 'node3'])
    expect(run.trace.checks?.codes).toContain('FDB_MISSING')
    expect(run.trace.checks?.codes).not.toContain('POLICY_UNENFORCED')
    const off = [...reads.keys()].filter((n) => n !== 'node3' && n !== 'node17')
    expect(off).toEqual([])
  })

  it('a fault on a node off the path is not reported; on the path it is, as the full sweep reports it', () => {
    const {s} = cluster()
    // node9 and node3 lose their FDB entry for node25 (172.31.0.35), which the packet does not visit
    for (const n of ['node9', 'node3'])
      s.nodeStates[n]!.fdb = s.nodeStates[n]!.fdb.filter((f) => f.dst !== '172.31.0.35')
    const sweep = runChecks(s).filter((f) => f.code === 'FDB_MISSING')
    expect(sweep.map((f) => f.node).sort()).toEqual(['node3', 'node9'])
    const run = traceSnapshotFile(s, query('pod-node3-1', 'pod-node17-2'))
    expect(run.trace.disposition).toBe('DELIVERED')
    const fdb = run.trace.findings.filter((f) => f.code === 'FDB_MISSING')
    expect(fdb.map((f) => f.node)).toEqual(['node3'])
    // the trace prints fixes as they are typed for this cluster (no kubectl line off Kubernetes): the sweep's finding, so typed
    expect(fdb[0]).toEqual(findingsAsTyped(sweep, s).find((f) => f.node === 'node3'))
  })
})
