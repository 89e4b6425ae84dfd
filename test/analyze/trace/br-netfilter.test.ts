/**
 * A Service's endpoint beside its client on the same bridge, over the recorded Service lab snapshots (both
 * kube-proxy modes): the reply is bridged from the endpoint's veth to the client's, so only br_netfilter lets
 * conntrack translate it back (un-DNAT, from the endpoint to the ClusterIP). With
 * net.bridge.bridge-nf-call-iptables = 1 the walk shows that translation and the reply arrives from the
 * ClusterIP; with 0 (or the module not loaded) it arrives from the endpoint, which the client never sent to:
 * TCP resets it, UDP drops it. The walk says so (return path DENIED, BR_NETFILTER_OFF at the bridge), where it
 * used to deliver. The lab test (br-netfilter-lab.test.ts) checks this against real connects.
 */
import {describe, expect, it} from 'vitest'

import {runChecks} from '../../../src/analyze/checks/run.js'
import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import type {Trace} from '../../../src/model/trace.js'
import {schemaErrors, snapshotFixture} from './fixtures.js'

const BR_NF = 'net.bridge.bridge-nf-call-iptables'

function lab(mode: 'iptables' | 'nftables', brnf: string | undefined): Snapshot {
  const s = snapshotFixture(`flannel-vxlan-services-${mode}-lab`)
  const sysctls = s.nodeStates.node1!.sysctls
  if (brnf === undefined) delete sysctls[BR_NF]
  else sysctls[BR_NF] = brnf
  return s
}

/** pod-node1-2 to a Service, walked to its endpoint on node1, pod-node1-1 (172.20.1.2). */
const toLocalEndpoint = (s: Snapshot, dst: string): Trace =>
  traceSnapshot(s, {src: 'pod-node1-2', dst, size: 84, df: false, endpoint: '172.20.1.2'}).trace

describe.each(['iptables', 'nftables'] as const)('kube-proxy in %s mode', (mode) => {
  it('br_netfilter on: the bridged reply is translated back at POSTROUTING and arrives from the ClusterIP', () => {
    const t = toLocalEndpoint(lab(mode, '1'), 'svc/default/web')
    expect(schemaErrors(t)).toBeUndefined()
    expect([t.disposition, t.returnPath?.disposition]).toEqual(['DELIVERED', 'DELIVERED'])
    const undo = t.returnPath!.hops.find((h) => h.netfilter?.nat?.[0]?.ruleset === 'conntrack')!
    expect(undo).toMatchObject({node: 'node1', action: 'filter', netfilter: {hook: 'POSTROUTING'}})
    expect(undo.evidence[1]).toBe(
      'conntrack un-DNAT: tcp 172.20.1.2 → 172.20.1.3 becomes tcp 172.21.0.80 → 172.20.1.3 (the reply of 172.20.1.3 → 172.21.0.80:80, translated here)',
    )
    expect(t.findings.map((f) => f.code)).not.toContain('BR_NETFILTER_OFF')
  })

  it.each([
    ['0', 'net.bridge.bridge-nf-call-iptables = 0'],
    [undefined, 'br_netfilter is not loaded'],
  ])(
    'br_netfilter %s: the reply arrives untranslated from the endpoint: refused (DENIED), BR_NETFILTER_OFF at the bridge',
    (brnf, setting) => {
      for (const [dst, proto, port, refusal] of [
        ['svc/default/web', 'tcp', 80, 'no socket here has that peer, so TCP answers it with a reset'],
        [
          'dns',
          'udp',
          53,
          'no connected socket here has that peer (a resolver, nc and socat connect theirs), so the datagram is dropped',
        ],
      ] as const) {
        const t = toLocalEndpoint(lab(mode, brnf), dst)
        expect(schemaErrors(t)).toBeUndefined()
        expect([t.disposition, t.returnPath?.disposition], dst).toEqual(['DELIVERED', 'DENIED'])
        const hops = t.returnPath!.hops
        const bridge = hops.find((h) => h.action === 'bridge')!
        expect(bridge).toMatchObject({node: 'node1', findings: ['BR_NETFILTER_OFF']})
        expect(bridge.evidence.at(-1)).toMatch(
          new RegExp(`^${setting}: bridged, the reply bypasses conntrack, which does not do its un-DNAT: `),
        )
        expect(hops.at(-1)).toMatchObject({node: 'node1', netns: expect.stringMatching(/pod2$/), action: 'drop'})
        const cip = dst === 'dns' ? '172.21.0.10' : '172.21.0.80'
        expect(hops.at(-1)!.evidence).toEqual([
          `the reply comes from 172.20.1.2:${port === 80 ? 8080 : 53}, but the request went to ${cip}:${port}: ${refusal}`,
        ])
        const f = t.findings.find((x) => x.code === 'BR_NETFILTER_OFF')!
        expect(f).toMatchObject({severity: 'error', node: 'node1', subject: BR_NF})
        expect(f.message).toContain(`so the client, which sent to ${cip}:${port}, does not take it`)
        // the endpoint on another node is reached both ways: its reply is routed, not bridged
        const far = traceSnapshot(lab(mode, brnf), {
          src: 'pod-node1-2',
          dst,
          size: 84,
          df: false,
          endpoint: '172.20.2.2',
        }).trace
        expect([far.disposition, far.returnPath?.disposition, proto], dst).toEqual(['DELIVERED', 'DELIVERED', proto])
      }
    },
  )
})

it('check: BR_NETFILTER_OFF is a warning on a node holding a Service endpoint (its same-node clients fail), info elsewhere', () => {
  const s = lab('iptables', '0')
  s.nodeStates.node3!.sysctls[BR_NF] = '0'
  const found = runChecks(s).filter((f) => f.code === 'BR_NETFILTER_OFF')
  // node3 holds web's and sticky's endpoint 172.20.3.2
  expect(found.map((f) => [f.node, f.severity])).toEqual([
    ['node1', 'warning'],
    ['node3', 'warning'],
  ])
  const noServices = lab('iptables', '0')
  noServices.services = []
  expect(
    runChecks(noServices)
      .filter((f) => f.code === 'BR_NETFILTER_OFF')
      .map((f) => f.severity),
  ).toEqual(['info'])
})

describe("an endpoint reaching itself through its Service: br_netfilter bridges it back out of its own port, which takes the port's hairpin", () => {
  /** node1 with pod-node1-1's cni0 port (its veth peer) set to `hairpin`, and br_netfilter as given. */
  function hairpin(brnf: string, on: boolean): Snapshot {
    const s = lab('iptables', brnf)
    const state = s.nodeStates.node1!
    const eth = state.pods.find((p) => p.name === 'pod-node1-1')!.links.find((l) => l.name === 'eth0')!
    const port = state.links.find((l) => l.ifindex === eth.peerIfindex)!
    port.bridgePort = {hairpin: on}
    return s
  }
  const self = (s: Snapshot): Trace =>
    traceSnapshot(s, {src: 'pod-node1-1', dst: 'svc/default/web', size: 84, df: false, endpoint: '172.20.1.2'}).trace

  it('hairpin off, br_netfilter on: dropped at cni0 going back out of the port it came in by, HAIRPIN_OFF', () => {
    const t = self(hairpin('1', false))
    expect(schemaErrors(t)).toBeUndefined()
    expect(t.disposition).toBe('NEIGHBOR_UNRESOLVED')
    const drop = t.hops.at(-1)!
    expect(drop).toMatchObject({node: 'node1', action: 'drop', findings: ['HAIRPIN_OFF']})
    expect(drop.evidence.at(-2)).toMatch(
      /^net\.bridge\.bridge-nf-call-iptables = 1: translated by br_netfilter to an address behind cni0, the frame is bridged back from veth\S+, the port it came in by$/,
    )
    const f = t.findings.find((x) => x.code === 'HAIRPIN_OFF')!
    expect(f.subject).toMatch(/^pod default\/pod-node1-1 \(veth\S+ on cni0\)$/)
    expect(f.fix).toMatch(/bridge link set dev veth\S+ hairpin on/)
    // the check names it alike: one finding when the trace adds its path's checks
    expect(
      runChecks(hairpin('1', false))
        .filter((x) => x.code === 'HAIRPIN_OFF')
        .map((x) => x.subject),
    ).toEqual([f.subject])
  })

  it.each([
    ['hairpin on, br_netfilter on', '1', true],
    // routed out of the bridge device itself (masqueraded to cni0's address): no port sends anything back
    ['hairpin off, br_netfilter off', '0', false],
  ])('%s: delivered both ways', (_what, brnf, on) => {
    const t = self(hairpin(brnf, on))
    expect([t.disposition, t.returnPath?.disposition]).toEqual(['DELIVERED', 'DELIVERED'])
  })

  it("another pod's client is not bridged back to its own port: hairpin off on the endpoint's port does not matter", () => {
    const t = toLocalEndpoint(hairpin('1', false), 'svc/default/web')
    expect([t.disposition, t.returnPath?.disposition]).toEqual(['DELIVERED', 'DELIVERED'])
  })

  it('check: HAIRPIN_OFF only where br_netfilter is on (off, the hairpin flag is moot and BR_NETFILTER_OFF says what is wrong)', () => {
    const codes = runChecks(hairpin('0', false)).map((x) => x.code)
    expect(codes).not.toContain('HAIRPIN_OFF')
    expect(codes).toContain('BR_NETFILTER_OFF')
  })
})
