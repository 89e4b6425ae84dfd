import {describe, expect, it} from 'vitest'

import {synthesize, synthesizeSnapshot} from '../../bench/synth.js'
import {runChecks} from '../../src/analyze/checks/index.js'
import {type Snapshot, validateSnapshot} from '../../src/model/snapshot.js'
import {snapshotFixture} from '../helpers/fixtures.js'

const lab = (name: string): Snapshot => snapshotFixture(name)

/**
 * What the kernel picks at random or learns from traffic, and so differs between the lab's own
 * nodes too: the MACs of veths and bridges (and the IPv6 link-local addresses, routes and
 * multicast FDB entries derived from them), interface indexes, neighbours learned from traffic
 * (STALE, REACHABLE, ...), timestamps and pids. Everything else is compared as is.
 */
function comparable(s: Snapshot, node: string): Record<string, string[]> {
  const st = s.nodeStates[node]!
  const randomMAC = new Set(
    st.links.filter((l) => (l.kind === 'veth' && l.master) || l.kind === 'bridge').map((l) => l.mac),
  )
  const mac = (m: string | undefined) => (m && randomMAC.has(m) ? '<kernel MAC>' : m)
  const ll = (t: string) => /fe80::|ff02::|33:33:/.test(t)
  const lines = (xs: unknown[]) =>
    xs
      .map((x) => JSON.stringify(x))
      .filter((t) => !ll(t))
      .sort()
  return {
    links: lines(st.links.map(({ifindex: _i, peerIfindex: _p, ...l}) => ({...l, mac: mac(l.mac)}))),
    addresses: lines(st.addresses),
    routes: lines(st.routes),
    rules: lines(st.rules),
    neighbours: lines(st.neighbours.filter((n) => n.state.some((x) => x === 'PERMANENT' || x === 'NOARP'))),
    fdb: lines(st.fdb.filter((f) => !randomMAC.has(f.mac)).map((f) => ({...f}))),
    bird: lines([
      ...(st.bird?.sessions ?? []).map(({since: _s, ...x}) => x),
      ...(st.bird?.routes ?? []).map(({since: _s, ...x}) => x),
    ]),
    sections: lines(Object.entries(st.sections)),
  }
}

describe('the synthetic cluster generator (bench/synth.ts)', () => {
  for (const name of ['flannel-vxlan-lab', 'flannel-host-gw-lab', 'calico-bgp-lab', 'calico-vxlan-lab']) {
    it(`${name}: re-generated at the lab's size, every node's routes, neighbours, FDB, links and findings are the lab's`, () => {
      const real = lab(name)
      const made = synthesizeSnapshot(real, real.nodes.length)
      expect(made.nodes).toEqual(real.nodes)
      expect(made.pods).toEqual(real.pods)
      for (const n of real.nodes) expect(comparable(made, n.name), n.name).toEqual(comparable(real, n.name))
      expect(runChecks(made)).toEqual(runChecks(real))
    })
  }

  it('grows a lab to 40 nodes: a valid snapshot, one peer route, neighbour and FDB entry per peer, and no finding the lab has not', () => {
    const real = lab('flannel-vxlan-lab')
    const made = validateSnapshot(JSON.parse(JSON.stringify(synthesizeSnapshot(real, 40))))
    const st = made.nodeStates.node17!
    expect(st.routes.filter((r) => r.dev === 'flannel.1' && r.table === 'main' && r.gateway)).toHaveLength(39)
    expect(st.neighbours.filter((r) => r.dev === 'flannel.1')).toHaveLength(39)
    expect(st.fdb.filter((r) => r.dev === 'flannel.1' && r.dst)).toHaveLength(39)
    expect(runChecks(made).map((f) => f.code)).toEqual(runChecks(real).map((f) => f.code))
  })

  it('beyond a /24 underlay and a /16 pod network it widens them, and can leave nodes uncollected', () => {
    const g = synthesize(lab('flannel-host-gw-lab'), 300, {collected: new Set(['node1', 'node300'])})
    expect(g.skeleton.cluster.clusterCIDR).toBe('10.0.0.0/8')
    expect(g.skeleton.nodes[299]).toMatchObject({
      name: 'node300',
      internalIP: '172.31.1.54',
      podCIDRs: ['10.1.44.0/24'],
    })
    expect(g.nodeState(1)).toBeUndefined()
    const st = g.nodeState(299)!
    expect(st.addresses.find((a) => a.local === '172.31.1.54')?.prefixlen).toBe(16)
    expect(st.routes.filter((r) => r.gateway?.startsWith('172.31.') && r.dst.startsWith('10.'))).toHaveLength(299)
  })
})
