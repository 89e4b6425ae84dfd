/**
 * check --probe's matrix and grouped findings from trace --probe's recorded
 * walks and counters (fixtures/trace-probe): routed labs whose router drops
 * flannel's vxlan (UDP 8472) or udp (UDP 8285), a healthy pair, a missing FDB entry.
 */
import {describe, expect, it} from 'vitest'

import type {MatrixEndpoint} from '../../src/analyze/matrix.js'
import {groupProbeFindings, type ProbedPair, probeMatrixOf, probePairOf} from '../../src/analyze/probe-matrix.js'
import {probeVerdict} from '../../src/analyze/probe-verdict.js'
import type {Snapshot} from '../../src/model/snapshot.js'
import {recordedObservation, recordedWalk} from '../helpers/probe-fixtures.js'

const VXLAN = 'trace-probe/flannel-vxlan-routed'
const UDP = 'trace-probe/flannel-udp-routed'
const nodeIPs = {node1: '172.31.1.11', node2: '172.31.2.11'}
const place = {
  cluster: {source: 'inventory'},
  nodes: Object.entries(nodeIPs).map(([name, internalIP]) => ({name, internalIP})),
} as unknown as Pick<Snapshot, 'cluster' | 'nodes'>
const ep = (node: string): MatrixEndpoint => ({id: `default/pod-${node}-1`, node, ip: ''})

/** A recorded pair (always pod-node1-1 → pod-node2-1), as check --probe would hold it between `src` and `dst`. */
function pair(dir: string, scenario: string, src = ep('node1'), dst = ep('node2'), walkFile = 'walk.json'): ProbedPair {
  const walk = recordedWalk(dir, walkFile)
  const probed = probeVerdict(walk, recordedObservation(walk, dir, scenario), {version: '9.9.9-test', nodeIPs})
  return {src, dst, walk, probed}
}

describe('a pair of the probe matrix', () => {
  it('carried when answered; lost in the underlay, localised, when the router drops vxlan; lost as the walk says on a missing FDB entry', () => {
    expect(probePairOf(pair(VXLAN, 'healthy'))).toMatchObject({
      status: 'carried',
      walk: 'DELIVERED',
      disposition: 'DELIVERED',
      verdict: 'confirmed',
      findings: [],
    })
    expect(probePairOf(pair(VXLAN, 'router-drop'))).toMatchObject({
      srcNode: 'node1',
      dstNode: 'node2',
      status: 'lost',
      walk: 'DELIVERED',
      disposition: 'UNDERLAY_DROP',
      verdict: 'underlay-drop',
      sent: 3,
      answered: 0,
      lastSeen: {node: 'node1', interface: 'eth0', direction: 'tx'},
      firstMissing: {node: 'node2', interface: 'eth0', direction: 'rx'},
      findings: ['UNDERLAY_DROP'],
    })
    const fdb = probePairOf(pair(VXLAN, 'fdb-missing', ep('node1'), ep('node2'), 'fdb-missing/walk.json'))
    expect(fdb).toMatchObject({status: 'lost', verdict: 'confirmed', findings: []})
    expect(fdb.walk).not.toBe('DELIVERED')
    expect(fdb.disposition).toBe(fdb.walk)
  })

  it('counts carried and lost pairs', () => {
    const m = probeMatrixOf([ep('node1'), ep('node2')], 'ping', [pair(VXLAN, 'healthy'), pair(VXLAN, 'router-drop')])
    expect(m.counts).toEqual({pairs: 2, carried: 1, lost: 1, notSent: 0})
  })
})

describe("the probe's findings, one per cause", () => {
  it("a cause of one pair keeps that pair's finding as trace --probe gives it", () => {
    const drop = pair(VXLAN, 'router-drop')
    const [only, ...more] = groupProbeFindings([pair(VXLAN, 'healthy'), drop], place)
    expect(more).toEqual([])
    expect(only).toEqual(drop.probed.findings.at(-1))
  })

  it('two encapsulations dropped are two causes (UDP 8472, UDP 8285)', () => {
    const found = groupProbeFindings([pair(VXLAN, 'router-drop'), pair(UDP, 'router-drop')], place)
    expect(found.map((f) => f.code)).toEqual(['UNDERLAY_DROP', 'UNDERLAY_DROP'])
    expect(found[0]!.message).toContain('UDP 8472')
    expect(found[1]!.message).toContain('UDP 8285')
  })

  it('one cause over several pairs is one finding naming them, with only the counters where each was lost', () => {
    const a = pair(VXLAN, 'router-drop')
    const b = pair(VXLAN, 'router-drop', ep('node3'), ep('node4'))
    const found = groupProbeFindings([a, b], place)
    expect(found).toHaveLength(1)
    const f = found[0]!
    expect(f).toMatchObject({
      code: 'UNDERLAY_DROP',
      severity: 'error',
      subject: '2 node pairs: node1 → node2, node3 → node4',
    })
    expect(f.node).toBeUndefined()
    expect(f.message).toMatch(/^the underlay drops UDP 8472 \(vxlan VNI 1\) between 2 node pairs/)
    const counters = f.evidence.filter((e) => / \+\d+ packets/.test(e))
    expect(counters).toEqual([
      'node1 → node2: forward node1 eth0 tx +3 packets, +0 dropped',
      'node1 → node2: forward node2 eth0 rx +0 packets, +0 dropped',
      'node3 → node4: forward node1 eth0 tx +3 packets, +0 dropped',
      'node3 → node4: forward node2 eth0 rx +0 packets, +0 dropped',
    ])
    expect(f.fix).toContain("tcpdump -ni any 'udp port 8472 and src host 172.31.1.11'")
  })
})
