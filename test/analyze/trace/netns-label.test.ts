/**
 * A hop in a node's own namespace names that namespace as the node was really
 * entered (the inventory's access.netns, kept in the snapshot), not a name
 * made up from the cluster's name.
 */
import {describe, expect, it} from 'vitest'

import {snapshotOf} from '../../../src/collect/collect.js'
import {labInventory} from '../../../src/lab/inventory.js'
import {planLab} from '../../../src/lab/topology.js'
import {validateSnapshot} from '../../../src/model/snapshot.js'
import {pod, schemaErrors, snapshotFixture, trace} from './fixtures.js'

describe("the netns a trace hop names for a node's own namespace", () => {
  it('is the namespace the node was entered through, kept in the snapshot from the inventory', () => {
    const plan = planLab(
      {
        name: 'demo',
        nodes: 2,
        podsPerNode: 1,
        backend: 'flannel-vxlan',
        topology: 'flat',
        routeReflectors: 1,
        ssh: false,
      },
      '/tmp/x',
    )
    const inv = labInventory(plan)
    // the same lab's inventory copied under another cluster name: the namespaces stay what they are
    inv.cluster.name = 'staging'
    const snap = snapshotOf(inv, [], {
      startedAt: '2026-01-01T00:00:00Z',
      finishedAt: '2026-01-01T00:00:01Z',
      version: 'test',
    })
    expect(snap.nodes.map((n) => n.netns)).toEqual(['demo.node1', 'demo.node2'])
    expect(() => validateSnapshot(JSON.parse(JSON.stringify(snap)))).not.toThrow()
  })

  it('labels every hop on a node with its real namespace, not <cluster>.<node>', () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    // an inventory whose cluster name is not the prefix of its namespaces (renamed, or written by hand)
    snap.cluster.name = 'staging'
    for (const n of snap.nodes) n.netns = `col-fx.${n.name}`
    const a = pod(snap, 'pod-node1-1')
    const b = pod(snap, 'pod-node2-1')
    const t = trace(snap, a.name, b.name)
    expect(t.disposition).toBe('DELIVERED')
    const hostHops = [...t.hops, ...t.returnPath!.hops].filter((h) => h.netns !== a.netns && h.netns !== b.netns)
    expect(hostHops.length).toBeGreaterThan(0)
    for (const h of hostHops) expect(h.netns).toBe(`col-fx.${h.node}`)
    expect(trace(snap, 'node1', b.name).src).toMatchObject({node: 'node1', netns: 'col-fx.node1'})
    // the request and the reply cross the same nodes by the same devices: no ASYMMETRIC_PATH from a label
    expect(t.findings.filter((f) => f.code === 'ASYMMETRIC_PATH')).toEqual([])
    expect(schemaErrors(t)).toBeUndefined()
  })

  it('names a netns node of a hand-written inventory by its namespace, not "host"', () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    snap.cluster.source = 'inventory'
    for (const n of snap.nodes) n.netns = `col-fx.${n.name}`
    const t = trace(snap, 'node1', pod(snap, 'pod-node2-1').name)
    expect(t.src.netns).toBe('col-fx.node1')
    expect(t.hops.filter((h) => h.node === 'node2' && h.action === 'route').map((h) => h.netns)).toContain(
      'col-fx.node2',
    )
  })
})
