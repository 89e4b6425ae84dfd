/**
 * The snapshot diff over recorded snapshots, changed by hand: what counts as a
 * change, what only ages, and the cluster's objects. (The same for faults made
 * for real on a lab: diff-lab.test.ts.)
 */
import {describe, expect, it} from 'vitest'

import {diffSnapshots, type SnapshotDiff} from '../../src/analyze/diff.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {snapshotFixture, snapshotFixturePath} from '../helpers/fixtures.js'

const FIXTURE = 'flannel-vxlan-services-iptables-lab'
const sections = (d: SnapshotDiff, node: string) =>
  Object.fromEntries(
    (d.nodeDiffs.find((n) => n.node === node)?.sections ?? []).map((s) => [
      s.section,
      {removed: s.removed, added: s.added},
    ]),
  )

describe('diffSnapshots', () => {
  it('a snapshot against itself: no change', () => {
    const d = diffSnapshots(snapshotFixture(FIXTURE), snapshotFixture(FIXTURE))
    expect(d).toMatchObject({
      changes: 0,
      nodeDiffs: [],
      cluster: [],
      nodes: {added: [], removed: []},
      pods: {added: [], removed: []},
    })
  })

  it('counters and neighbour ageing are no change; with all they are', () => {
    const before = snapshotFixture(FIXTURE)
    const after = snapshotFixture(FIXTURE)
    const s = after.nodeStates.node1!
    const reachable = s.neighbours.find((n) => n.state.join() === 'REACHABLE')!
    reachable.state = ['STALE']
    const chain = s.iptables!.tables.find((t) => t.name === 'filter')!.chains.find((c) => c.name === 'FORWARD')!
    chain.packets = (chain.packets ?? 0) + 1000
    chain.bytes = (chain.bytes ?? 0) + 84000
    for (const r of chain.rules) r.packets = (r.packets ?? 0) + 7
    // a multicast NOARP entry the kernel collected
    s.neighbours = s.neighbours.filter((n) => n.dst !== 'ff02::16')
    expect(diffSnapshots(before, after).changes).toBe(0)

    const all = diffSnapshots(before, after, {all: true})
    const n1 = sections(all, 'node1')
    expect(n1['ip neigh']?.added).toContain(
      `${reachable.dst} dev ${reachable.dev}${reachable.lladdr ? ` lladdr ${reachable.lladdr}` : ''} STALE`,
    )
    expect(n1['ip neigh']?.removed).toContain(
      `${reachable.dst} dev ${reachable.dev}${reachable.lladdr ? ` lladdr ${reachable.lladdr}` : ''} REACHABLE`,
    )
    expect(n1['iptables-save -t filter']?.added).toEqual([`:FORWARD ${chain.policy} [${chain.packets}:${chain.bytes}]`])
  })

  it("a client remembered by a ClientIP-affinity list (the recent match's) is no change; with all it is", () => {
    const before = snapshotFixture(FIXTURE)
    const after = snapshotFixture(FIXTURE)
    const lists = after.nodeStates.node1!.xtRecent!
    const list = lists.tables.find((t) => t.name.startsWith('KUBE-SEP-'))!
    list.entries.push({address: '172.20.1.3', ttl: 64, lastSeen: lists.jiffies! - 5, stamps: [lists.jiffies! - 5]})
    expect(diffSnapshots(before, after).changes).toBe(0)
    expect(sections(diffSnapshots(before, after, {all: true}), 'node1')['cat /proc/net/xt_recent/*']).toEqual({
      removed: [],
      added: [`${list.name}: src=172.20.1.3 ttl: 64 last_seen: ${lists.jiffies! - 5}`],
    })
  })

  it('a learned neighbour that fails, or turns PERMANENT, is a change', () => {
    const before = snapshotFixture(FIXTURE)
    const after = snapshotFixture(FIXTURE)
    const n = after.nodeStates.node1!.neighbours.find((x) => x.state.join() === 'REACHABLE')!
    n.state = ['FAILED']
    delete n.lladdr
    expect(sections(diffSnapshots(before, after), 'node1')['ip neigh']?.added).toEqual([`${n.dst} dev ${n.dev} FAILED`])
  })

  it('a rule moved to the top of its chain is removed and added; the rest of the chain is not', () => {
    const before = snapshotFixture(FIXTURE)
    const after = snapshotFixture(FIXTURE)
    const chain = after.nodeStates
      .node2!.iptables!.tables.find((t) => t.name === 'filter')!
      .chains.find((c) => c.rules.length >= 3)!
    const last = chain.rules.pop()!
    chain.rules.unshift(last)
    const d = diffSnapshots(before, after)
    expect(d.changes).toBe(2)
    expect(sections(d, 'node2')['iptables-save -t filter']).toEqual({removed: [last.raw], added: [last.raw]})
  })

  it('nodes and pods added or gone, a Service endpoint and a NetworkPolicy changed, only --node reported', () => {
    const before = snapshotFixture(FIXTURE)
    const after = snapshotFixture(FIXTURE)
    after.nodes = after.nodes.filter((n) => n.name !== 'node3')
    delete after.nodeStates.node3
    const gone = after.pods.filter((p) => p.node === 'node3')
    after.pods = after.pods.filter((p) => p.node !== 'node3')
    const svc = after.services![0]!
    svc.endpoints = svc.endpoints!.slice(1)
    after.networkPolicies = [
      {namespace: 'default', name: 'deny-all', spec: {podSelector: {}, policyTypes: ['Ingress']}},
    ]
    after.nodeStates.node1!.sysctls['net.ipv4.ip_forward'] = '0'

    const d = diffSnapshots(before, after)
    expect(d.nodes).toEqual({added: [], removed: ['node3']})
    expect(d.pods).toEqual({added: [], removed: gone.map((p) => `${p.namespace}/${p.name}`)})
    const cluster = Object.fromEntries(d.cluster.map((s) => [s.section, s]))
    const e = before.services![0]!.endpoints![0]!
    expect(cluster['services and endpoints']).toMatchObject({
      removed: [`service ${svc.namespace}/${svc.name} endpoint ${e.addresses.join(',')} on ${e.nodeName}`],
      added: [],
    })
    expect(cluster.networkpolicies?.added).toEqual([
      'networkpolicy default/deny-all {"podSelector":{},"policyTypes":["Ingress"]}',
    ])
    expect(d.nodeDiffs.map((n) => [n.node, n.status])).toEqual([
      ['node1', 'changed'],
      ['node3', 'removed'],
    ])
    expect(sections(d, 'node1').sysctl).toEqual({
      removed: ['net.ipv4.ip_forward = 1'],
      added: ['net.ipv4.ip_forward = 0'],
    })
    expect(diffSnapshots(before, after, {nodes: ['node1']}).nodeDiffs.map((n) => n.node)).toEqual(['node1'])
  })
})

describe('netctl diff', () => {
  it('prints the change as - and + lines under the node and the tool, and as JSON as schemas/diff.schema.json says', async () => {
    const {mkdtemp, rm, writeFile} = await import('node:fs/promises')
    const {tmpdir} = await import('node:os')
    const path = await import('node:path')
    const dir = await mkdtemp(path.join(tmpdir(), 'netctl-diff-'))
    try {
      const after = snapshotFixture(FIXTURE)
      const s2 = after.nodeStates.node2!
      const route = s2.routes.find((r) => r.dev === 'flannel.1')!
      s2.routes = s2.routes.filter((r) => r !== route)
      const file = path.join(dir, 'after.json')
      await writeFile(file, JSON.stringify(after))
      const text = await netctl(['diff', snapshotFixturePath(FIXTURE), file])
      expect(text.code, text.stderr).toBe(0)
      expect(text.stdout).toMatch(
        new RegExp(
          `\\nnode node2\\n  ip route show table all\\n  - ${route.dst.replace(/[./]/g, '\\$&')} via [^\\n]* dev flannel\\.1 onlink\\n`,
        ),
      )
      const {code, json} = await netctlJson(['diff', snapshotFixturePath(FIXTURE), file])
      expect(code).toBe(0)
      const validate = validatorFor('diff')
      expect(validate(json), describeSchemaError(validate.errors)).toBe(true)
      expect(json).toMatchObject({changes: 1, before: {file: snapshotFixturePath(FIXTURE)}, after: {file}})
      const wrong = await netctl(['diff', snapshotFixturePath(FIXTURE), file, '--node', 'nod2'])
      expect(wrong).toMatchObject({
        code: 2,
        stderr: expect.stringContaining("no node 'nod2' in either snapshot: did you mean node2?"),
      })
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})
