import {describe, expect, it} from 'vitest'

import {batchScript} from '../../src/backend/act/batch.js'
import {ownedState} from '../../src/backend/plan/current.js'
import {desiredNode} from '../../src/backend/plan/desired.js'
import {diffNode} from '../../src/backend/plan/diff.js'
import {clusterFacts} from '../../src/backend/plan/facts.js'
import {nodeOps} from '../../src/backend/plan/ops.js'
import {planSwitch} from '../../src/backend/plan/plan.js'
import {fixtureLab, labFacts, probeState, snapshotFixture} from './helpers.js'

describe('the commands a diff becomes', () => {
  const vxlan = snapshotFixture('flannel-vxlan-lab.json')
  const hostgw = snapshotFixture('flannel-host-gw-lab.json')

  it('vxlan -> host-gw: each peer route replaced in place, then flannel.1 deleted with everything on it', () => {
    const plan = planSwitch(vxlan, clusterFacts(vxlan), 'flannel-vxlan', 'flannel-host-gw')
    for (const n of plan.nodes) {
      const ops = nodeOps(n.diff!)
      expect(ops.addIp).toEqual(n.lines!.routes.add.map((l) => `route replace ${l}`))
      // neighbours, FDB entries, the address and the routes on flannel.1 go with the device
      expect(ops.removeIp).toEqual(['link del flannel.1'])
      expect([ops.addBridge, ops.removeBridge, ops.stop, ops.start]).toEqual([[], [], [], []])
    }
  })

  it('host-gw -> vxlan: the device first, then its address, neighbours and routes; FDB through bridge; the old routes are replaced, not deleted', () => {
    const plan = planSwitch(hostgw, clusterFacts(hostgw), 'flannel-host-gw', 'flannel-vxlan')
    for (const n of plan.nodes) {
      const ops = nodeOps(n.diff!)
      expect(ops.addIp[0]).toMatch(
        /^link add flannel\.1 address \S+ type vxlan id 1 local \S+ dev eth0 dstport 8472 nolearning$/,
      )
      expect(ops.addIp.slice(1, 3)).toEqual(['link set flannel.1 mtu 1450', 'link set flannel.1 up'])
      const routes = ops.addIp.filter((l) => l.startsWith('route '))
      expect(routes).toEqual(n.lines!.routes.add.map((l) => `route replace ${l}`))
      expect(ops.addIp.indexOf(routes[0]!)).toBeGreaterThan(ops.addIp.findIndex((l) => l.startsWith('neigh ')))
      expect(ops.addBridge).toEqual(n.lines!.fdb.add.map((l) => `fdb replace ${l}`))
      expect(ops.removeIp).toEqual([])
    }
  })

  it("vxlan -> udp: flannel0 is the daemon's, so no ip command makes it", () => {
    const plan = planSwitch(vxlan, clusterFacts(vxlan), 'flannel-vxlan', 'flannel-udp')
    const ops = nodeOps(plan.nodes[0]!.diff!)
    expect(ops.addIp).toEqual([])
    expect(ops.start).toEqual(['flannel-udp'])
    expect(ops.removeIp).toEqual(['link del flannel.1'])
  })

  it('calico-bgp -> calico-vxlan: Felix routes take the blocks at metric 0, BIRD is reconfigured, its metric-32 routes deleted after', () => {
    const lab = fixtureLab('col-cb', 'calico-bgp')
    const facts = labFacts(lab)
    const have = ownedState(probeState('calico-bgp-node1.out', 'node1', lab), facts)
    const ops = nodeOps(diffNode(have, desiredNode('calico-vxlan', facts, facts.nodes[0]!)), ['bird'])
    expect(ops.reconfigure).toEqual(['bird'])
    for (const peer of facts.nodes.slice(1)) {
      expect(ops.addIp).toContain(`route replace ${peer.podCIDR} via ${peer.tunnelIP} dev vxlan.calico proto 80 onlink`)
      expect(ops.removeIp).toContain(`route del ${peer.podCIDR} via ${peer.ip} dev eth0 proto bird metric 32`)
    }
    expect(ops.addIp).toContain(`route replace blackhole ${facts.nodes[0]!.podCIDR} proto 80`)
    expect(ops.removeIp).toContain(`route del blackhole ${facts.nodes[0]!.podCIDR} proto bird metric 32`)
  })

  it('a device that must change is deleted before it is made again', () => {
    const lab = fixtureLab('col-fx', 'flannel-vxlan')
    const facts = labFacts(lab)
    const moved = {...facts, underlayMTU: 9000}
    const ops = nodeOps(
      diffNode(
        ownedState(probeState('flannel-vxlan-node1.out', 'node1', lab), facts),
        desiredNode('flannel-vxlan', moved, moved.nodes[0]!),
      ),
    )
    expect(ops.addIp.slice(0, 2)).toEqual(['link del flannel.1', expect.stringMatching(/^link add flannel\.1 /)])
    expect(ops.addIp).toContain('link set flannel.1 mtu 8950')
    expect(ops.addBridge).toHaveLength(2)
    expect(ops.removeIp).toEqual([])
  })

  it('batch lines are checked word by word: a hostile name never reaches the shell', () => {
    expect(() => batchScript(['route replace 172.20.2.0/24 via 172.31.0.12 dev eth0;reboot'], [], false)).toThrow(
      /unsafe token/,
    )
    expect(() => batchScript([], ['fdb replace aa:bb:cc:dd:ee:ff dev $(x) dst 1.2.3.4 self permanent'], false)).toThrow(
      /unsafe token/,
    )
    expect(batchScript(['link del flannel.1'], [], true)).toContain('ip -force -batch -')
  })
})
