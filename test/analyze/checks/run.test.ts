import {describe, expect, it} from 'vitest'

import {CATALOGUE} from '../../../src/analyze/catalogue/index.js'
import {CHECKS, runChecks, sweep} from '../../../src/analyze/checks/index.js'
import {FINDING_CODES} from '../../../src/model/finding.js'
import {broken, codes, node, only} from './helpers.js'

describe('runChecks', () => {
  it('has a check for every code of the catalogue except those only a trace, a policy walk or a probe can raise', () => {
    const checked = new Set<string>(CHECKS.map((c) => c.code))
    // COLLECTION_PARTIAL is raised by the same check as NODE_UNREACHABLE; ASYMMETRIC_PATH needs a walk
    // (POLICY_DENY has both: a trace's denied packet, and check's pods a default deny isolates);
    // the backend-switch area is backend preflight's (test/backend/preflight.test.ts); the probe
    // area is `trace --probe`'s, from a real packet's counters (test/analyze/probe-verdict.test.ts)
    const unchecked = FINDING_CODES.filter((c) => !checked.has(c))
    expect(unchecked.filter((c) => CATALOGUE[c].area !== 'backend' && CATALOGUE[c].area !== 'probe')).toEqual([
      'ASYMMETRIC_PATH',
      'COLLECTION_PARTIAL',
    ])
    expect(unchecked.filter((c) => CATALOGUE[c].area === 'probe')).toEqual(['UNDERLAY_DROP', 'MODEL_DISAGREES'])
    expect(CHECKS.filter((c) => CATALOGUE[c.code].area === 'backend')).toEqual([])
  })

  it('every finding carries its catalogue severity unless the check knows better, and a fix without placeholders left', () => {
    const s = broken('flannel-vxlan', (s) => {
      node(s, 'node1').fdb = node(s, 'node1').fdb.filter((f) => f.dev !== 'flannel.1')
      node(s, 'node2').sysctls['net.ipv4.ip_forward'] = '0'
    })
    for (const f of runChecks(s)) {
      expect(f.severity).toBe(CATALOGUE[f.code].severity)
      expect(f.fix).not.toMatch(/<[A-Za-z]+>/)
      expect(f.evidence.length).toBeGreaterThan(0)
    }
  })

  it('nodes: only findings on those nodes, and cluster-wide findings that name one of them', () => {
    const s = broken('flannel-host-gw', (s) => {
      node(s, 'node1').sysctls['net.ipv4.ip_forward'] = '0'
      node(s, 'node3').sysctls['net.ipv4.ip_forward'] = '0'
      s.nodes[2]!.podCIDRs = ['172.20.2.0/24'] // node3 duplicates node2
    })
    const about = (nodes: string[]) => runChecks(s, {nodes}).map((f) => `${f.code} ${f.node ?? '*'}`)
    // node1 still routes node3's old subnet: ROUTE_STALE on node1
    expect(about(['node1'])).toEqual(['IP_FORWARD_DISABLED node1', 'ROUTE_STALE node1'])
    expect(about(['node1', 'node2'])).toContain('PODCIDR_DUPLICATE *')
    expect(about(['node3'])).toContain('IP_FORWARD_DISABLED node3')
    expect(about(['node3'])).not.toContain('IP_FORWARD_DISABLED node1')
    expect(about([])).toEqual([])
  })

  it('collection errors become NODE_UNREACHABLE / COLLECTION_PARTIAL; an unreachable node is not checked further', () => {
    const s = broken('flannel-vxlan', (s) => {
      delete s.nodeStates.node3
      s.errors.push({node: 'node3', code: 'NODE_UNREACHABLE', message: 'netns chk.node3: no answer within 30s'})
      s.errors.push({node: 'node2', code: 'COLLECTION_PARTIAL', message: '1 section incomplete: fdb: timed out'})
      node(s, 'node2').sections.fdb = {status: 'error', message: 'timed out'}
      node(s, 'node2').fdb = []
    })
    expect(codes(s)).toEqual(['COLLECTION_PARTIAL', 'NODE_UNREACHABLE'])
    const f = only(s, 'NODE_UNREACHABLE')
    expect(f).toMatchObject({severity: 'error', node: 'node3', evidence: ['netns chk.node3: no answer within 30s']})
    expect(f.fix).toContain('kubectl describe node node3')
    expect(only(s, 'COLLECTION_PARTIAL')).toMatchObject({
      severity: 'warning',
      node: 'node2',
      evidence: ['1 section incomplete: fdb: timed out'],
    })
  })
})

describe('sweep', () => {
  it('groups by node (every node listed), keeps cluster-wide findings apart, and counts', () => {
    const s = broken('flannel-host-gw', (s) => {
      node(s, 'node1').sysctls['net.ipv4.ip_forward'] = '0'
      node(s, 'node1').sysctls['net.bridge.bridge-nf-call-iptables'] = '0'
      s.nodes[2]!.podCIDRs = ['172.20.2.0/24']
    })
    const r = sweep(s)
    expect(Object.keys(r.byNode)).toEqual(['node1', 'node2', 'node3'])
    expect(r.byNode.node1!.map((f) => f.code)).toEqual(['IP_FORWARD_DISABLED', 'BR_NETFILTER_OFF', 'ROUTE_STALE'])
    expect(r.cluster.map((f) => f.code)).toEqual(['PODCIDR_DUPLICATE'])
    expect(r.counts).toMatchObject({
      error: r.findings.filter((f) => f.severity === 'error').length,
      info: 1,
      total: r.findings.length,
    })
    expect(r.counts.byCode.IP_FORWARD_DISABLED).toBe(1)
    expect(r.findings).toEqual(runChecks(s))
  })
})
