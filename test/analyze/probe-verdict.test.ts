/**
 * trace --probe's verdict from recorded walks and recorded counters: a routed
 * flannel-vxlan lab (fixtures/trace-probe/flannel-vxlan-routed), pod-node1-1 → pod-node2-1,
 * `ip -s -j link show` on both nodes before and after `ping -c 3` from the pod, as
 * the lab gave them: healthy, with the router dropping UDP 8472, and with node1's
 * FDB entry for node2 deleted.
 */
import {stripVTControlCharacters as stripAnsi} from 'node:util'

import {describe, expect, it} from 'vitest'

import {
  encapOnWire,
  pointKey,
  type ProbeObservation,
  probePoints,
  probeVerdict,
} from '../../src/analyze/probe-verdict.js'
import {parseLinkCounters} from '../../src/collect/parse/link-stats.js'
import {parseIpv6Multicast, parseProbeReads, probeReadScript} from '../../src/collect/probe-read.js'
import type {Trace} from '../../src/model/trace.js'
import {probeText} from '../../src/render/trace.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {fixture} from '../helpers/fixtures.js'
import {recordedObservation, recordedWalk, replayedObservation} from '../helpers/probe-fixtures.js'

const DIR = 'trace-probe/flannel-vxlan-routed'
const ctx = {version: '9.9.9-test', nodeIPs: {node1: '172.31.1.11', node2: '172.31.2.11'}}

/** The observation as the service builds it: the recorded counters' deltas at the walk's points, the ping's replies. */
const observed = (trace: Trace, scenario: string, dir = DIR): ProbeObservation =>
  recordedObservation(trace, dir, scenario)
const walk = (file = 'walk.json', dir = DIR): Trace => recordedWalk(dir, file)

/** The router's drop as the probe must tell it: lost after node1's uplink, before node2's, between 172.31.1.11 and 172.31.2.11. */
function expectUnderlayDrop(r: Trace): void {
  expect(r.probe).toMatchObject({
    verdict: 'underlay-drop',
    answered: 0,
    lastSeen: {node: 'node1', interface: 'eth0', direction: 'tx'},
    firstMissing: {node: 'node2', interface: 'eth0', direction: 'rx'},
  })
  expect(r.disposition).toBe('UNDERLAY_DROP')
  expect(r.findings.find((x) => x.code === 'UNDERLAY_DROP')?.subject).toBe('node1 (172.31.1.11) → node2 (172.31.2.11)')
}

describe('the points a probe reads', () => {
  it("are the walk's host-namespace interfaces in path order, each once, the pods' own namespaces left out", () => {
    const keys = probePoints(walk()).map((p) => `${p.path} ${pointKey(p)}`)
    expect(keys.slice(0, 7)).toEqual([
      'forward node1 veth6e46cb53 rx',
      'forward node1 cni0 rx',
      'forward node1 flannel.1 tx',
      'forward node1 eth0 tx',
      'forward node2 eth0 rx',
      'forward node2 flannel.1 rx',
      'forward node2 veth56620de3 tx',
    ])
    // the bridge's own device where the host routes into it is not a receive point
    expect(keys).not.toContain('forward node2 cni0 rx')
    expect(keys.filter((k) => k.startsWith('return'))).toContain('return node1 eth0 rx')
  })

  it('leave out the return path for UDP (no reply to count)', () => {
    const t = walk()
    const udp = {...t, packet: {...t.packet, protocol: 'udp' as const, port: 53}}
    expect(probePoints(udp).every((p) => p.path === 'forward')).toBe(true)
  })
})

describe('the probe verdict', () => {
  it('confirms a delivered walk whose packets were answered', () => {
    const t = walk()
    const r = probeVerdict(t, observed(t, 'healthy'), ctx)
    expect(r.probe?.verdict).toBe('confirmed')
    expect(r.probe?.answered).toBe(3)
    expect(r.disposition).toBe('DELIVERED')
    expect(r.findings).toEqual(t.findings)
    expect(r.probe?.firstMissing).toBeNull()
  })

  it('says UNDERLAY_DROP, naming the two node IPs and UDP 8472, when the router drops the vxlan packets', () => {
    const t = walk()
    const r = probeVerdict(t, observed(t, 'router-drop'), ctx)
    expectUnderlayDrop(r)
    const f = r.findings.find((x) => x.code === 'UNDERLAY_DROP')!
    expect(f.severity).toBe('error')
    expect(f.message).toContain('UDP 8472')
    expect(f.fix).toContain("tcpdump -ni any 'udp port 8472 and src host 172.31.1.11'")
    // the underlay hop carries the code
    expect(r.hops.find((h) => h.action === 'underlay')?.findings).toContain('UNDERLAY_DROP')
  })

  it('says UNDERLAY_DROP for flannel udp, UDP 8285, the TUN counted as the kernel hands packets to flanneld and back', () => {
    const dir = 'trace-probe/flannel-udp-routed'
    const t = walk('walk.json', dir)
    const keys = probePoints(t).map(pointKey)
    expect(keys.slice(0, 5)).toEqual([
      'node1 veth4e993ee7 rx',
      'node1 cni0 rx',
      'node1 flannel0 tx',
      'node1 eth0 tx',
      'node2 eth0 rx',
    ])
    expect(keys).toContain('node2 flannel0 rx')
    const r = probeVerdict(t, observed(t, 'router-drop', dir), ctx)
    expect(r.probe).toMatchObject({
      verdict: 'underlay-drop',
      lastSeen: {node: 'node1', interface: 'eth0'},
      firstMissing: {node: 'node2', interface: 'eth0'},
    })
    expect(r.findings.find((f) => f.code === 'UNDERLAY_DROP')?.message).toContain('UDP 8285 (flannel udp)')
  })

  it('confirms a walk that drops (FDB_MISS) when the packet is lost, with the counters losing it on the same node', () => {
    const t = walk('fdb-missing/walk.json')
    expect(t.disposition).toBe('FDB_MISS')
    const r = probeVerdict(t, observed(t, 'fdb-missing'), ctx)
    expect(r.probe?.verdict).toBe('confirmed')
    expect(r.probe?.lastSeen?.node).toBe(t.hops.at(-1)!.node)
    // the vxlan device counted the frames it could not send as dropped
    expect(r.probe?.firstMissing).toEqual({node: 'node1', interface: 'flannel.1', direction: 'tx'})
    expect(r.probe?.counters.find((c) => c.interface === 'flannel.1')?.dropped).toBe(3)
    expect(r.probe?.note).toContain('where the walk drops it')
  })

  it('says MODEL_DISAGREES when the walk drops but the packet is answered', () => {
    const t = walk('fdb-missing/walk.json')
    const r = probeVerdict(t, observed(walk(), 'healthy'), ctx)
    expect(r.probe?.verdict).toBe('model-disagrees')
    const f = r.findings.find((x) => x.code === 'MODEL_DISAGREES')!
    expect(f.severity).toBe('error')
    expect(f.evidence).toContain('netctl 9.9.9-test')
  })

  it('says MODEL_DISAGREES when the walk delivers and the packet is lost on a node, not in the underlay', () => {
    const t = walk()
    const obs = observed(t, 'healthy')
    // as if node2 received the packets but never handed them to the pod
    const lost = {
      ...obs,
      answered: 0,
      deltas: {
        ...obs.deltas,
        [pointKey({node: 'node2', interface: 'flannel.1', direction: 'rx'})]: {packets: 0, dropped: 3},
      },
    }
    const r = probeVerdict(t, lost, ctx)
    expect(r.probe?.verdict).toBe('model-disagrees')
    expect(r.probe?.firstMissing).toEqual({node: 'node2', interface: 'flannel.1', direction: 'rx'})
    expect(r.disposition).toBe('DELIVERED')
  })

  it('is a note, not a failure, when nothing could be sent', () => {
    const t = walk()
    const r = probeVerdict(
      t,
      {command: 'ping', sent: 0, answered: null, deltas: {}, note: 'not sent: no ping on node1'},
      ctx,
    )
    expect(r.probe).toMatchObject({verdict: 'not-sent', note: 'not sent: no ping on node1'})
    expect(r.findings).toEqual(t.findings)
    expect(r.disposition).toBe('DELIVERED')
  })
})

// The same router drop, recorded while the router also sent IPv6 link-local multicast onto node2's subnet
// (ICMPv6 to ff02::2 every 50 ms from its eth-b, as neighbour discovery and MLD send theirs): node2's
// eth0 received 29 packets, none of them the probe's.
const NOISE = 'trace-probe/flannel-vxlan-routed-noise'

describe('other traffic on an uplink while the probe is lost', () => {
  const t = recordedWalk(NOISE, 'router-drop/walk.json')
  const obs = replayedObservation(NOISE, 'router-drop', t)
  const node2 = (when: string) => parseProbeReads(fixture(NOISE, 'router-drop', `node2-${when}.out`))[0]!
  const rx = (when: string) => node2(when).links.get('eth0')!.rx.packets

  it('is real: node2 eth0 counted more packets than the probe sent, and the kernel counted them as IPv6 multicast', () => {
    expect(rx('after') - rx('before')).toBeGreaterThanOrEqual(obs.sent)
    const mcast = (when: string) => node2(when).ipv6Multicast.get('eth0')!
    expect(mcast('after') - mcast('before')).toBe(rx('after') - rx('before'))
  })

  it('does not make node2 seem to receive the lost probe: UNDERLAY_DROP node1 → node2, not MODEL_DISAGREES', () => {
    const r = probeVerdict(t, obs, ctx)
    expectUnderlayDrop(r)
    expect(r.findings.map((f) => f.code)).not.toContain('MODEL_DISAGREES')
    // the counter says what it left out, and why
    const c = r.probe!.counters.find((x) => x.node === 'node2' && x.interface === 'eth0' && x.direction === 'rx')!
    expect(c).toMatchObject({packets: 0, ipv6Multicast: rx('after') - rx('before')})
    expect(stripAnsi(probeText(r.probe!, 200))).toMatch(
      new RegExp(
        `node2 eth0 rx {2}\\+0 packets {2}\\+0 dropped {2}\\(\\+${c.ipv6Multicast} IPv6 multicast left out\\)`,
      ),
    )
    const validate = validatorFor('trace')
    expect(validate(r), describeSchemaError(validate.errors)).toBe(true)
  })
})

describe('the IPv6 multicast read', () => {
  it('is Ip6InMcastPkts per interface; read after the links before the send and before them after it', () => {
    expect(
      parseIpv6Multicast(
        '/proc/net/dev_snmp6/eth0:Ip6InMcastPkts                  \t117\n/proc/net/dev_snmp6/flannel.1:Ip6InMcastPkts \t0\nnoise\n',
      ),
    ).toEqual(
      new Map([
        ['eth0', 117],
        ['flannel.1', 0],
      ]),
    )
    const order = (s: string) => [s.indexOf('ip -s -j link show'), s.indexOf('/proc/net/dev_snmp6')]
    const [linksBefore, mcastBefore] = order(probeReadScript({iptables: false, nft: false}))
    expect(linksBefore).toBeLessThan(mcastBefore!)
    const [linksAfter, mcastAfter] = order(probeReadScript({after: true, iptables: false, nft: false}))
    expect(mcastAfter).toBeLessThan(linksAfter!)
  })
})

describe('the encapsulation named in UNDERLAY_DROP', () => {
  const inner = {src: '10.244.1.2', dst: '10.244.2.2'}
  it('is the UDP port for vxlan and flannel udp, IP protocol 4 for IPIP, the pod traffic itself without encapsulation', () => {
    expect(
      encapOnWire({type: 'vxlan', outerSrc: 'a', outerDst: 'b', vni: 4096, port: 4789}, '10.0.0.1', inner).encap,
    ).toBe('UDP 4789 (vxlan VNI 4096)')
    expect(encapOnWire({type: 'udp', outerSrc: 'a', outerDst: 'b', port: 8285}, '10.0.0.1', inner).capture).toBe(
      'udp port 8285 and src host 10.0.0.1',
    )
    expect(encapOnWire({type: 'ipip', outerSrc: 'a', outerDst: 'b'}, '10.0.0.1', inner).encap).toBe(
      'IP protocol 4 (IPIP)',
    )
    expect(encapOnWire(undefined, '10.0.0.1', inner).capture).toBe('host 10.244.1.2 and host 10.244.2.2')
  })
})

describe('parseLinkCounters', () => {
  it("reads each interface's rx/tx packets and drops from ip -s -j link show, and nothing from what is not its JSON", () => {
    const c = parseLinkCounters(fixture(DIR, 'healthy', 'node1-before.json'))
    expect([...c.keys()]).toEqual(expect.arrayContaining(['lo', 'eth0', 'cni0', 'flannel.1']))
    expect(c.get('eth0')!.tx.packets).toBeGreaterThan(0)
    expect(parseLinkCounters('Device "x" does not exist.').size).toBe(0)
  })
})
