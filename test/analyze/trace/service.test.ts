/**
 * A Service as DST over recorded lab snapshots (3-node flannel vxlan, kube-proxy
 * iptables and nftables mode, the lab's Services): every way of naming it, the errors for what
 * is not there, the per-endpoint walks with their shares, and a Service with more
 * endpoints than a chain's ways used to be cut at.
 */
import {readFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {iptablesNode} from '../../../bench/trace-netfilter.js'
import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import {UsageError} from '../../../src/errors.js'
import {parseSnapshot, type Snapshot} from '../../../src/model/snapshot.js'
import {traceSnapshotFile, withNodeChecks} from '../../../src/services/trace.js'
import {REPO} from '../../helpers/cli.js'

const snap = (mode: 'iptables' | 'nftables' = 'iptables'): Snapshot =>
  parseSnapshot(
    readFileSync(path.join(REPO, `fixtures/snapshots/flannel-vxlan-services-${mode}-lab.json`), 'utf8'),
    `services-${mode}-lab`,
  )
const base = {src: 'pod-node1-2', size: 84, df: false}
const trace = (s: Snapshot, dst: string, more: Record<string, unknown> = {}) =>
  traceSnapshot(s, {...base, dst, ...more}).trace

describe('a Service as DST', () => {
  const s = snap()

  it.each([
    ['svc/default/web', {}, 'default/web', 'tcp', 80, 'clusterIP'],
    ['svc/web', {}, 'default/web', 'tcp', 80, 'clusterIP'],
    ['web.default.svc', {}, 'default/web', 'tcp', 80, 'clusterIP'],
    ['web.default.svc.cluster.local', {}, 'default/web', 'tcp', 80, 'clusterIP'],
    ['172.21.0.80', {port: 'http'}, 'default/web', 'tcp', 80, 'clusterIP'],
    ['172.21.0.80', {port: 80}, 'default/web', 'tcp', 80, 'clusterIP'],
    ['node2:30080', {}, 'default/web', 'tcp', 30080, 'nodePort'],
    ['172.31.0.13:30080', {}, 'default/web', 'tcp', 30080, 'nodePort'],
    ['dns', {}, 'kube-system/kube-dns', 'udp', 53, 'clusterIP'],
    ['kube-dns.kube-system.svc.cluster.local', {}, 'kube-system/kube-dns', 'udp', 53, 'clusterIP'],
    // as a pod's resolver completes them with its search domain svc.cluster.local
    ['web.default', {}, 'default/web', 'tcp', 80, 'clusterIP'],
    ['kube-dns.kube-system', {}, 'kube-system/kube-dns', 'udp', 53, 'clusterIP'],
    ['svc/kube-system/kube-dns', {port: 'dns-tcp'}, 'kube-system/kube-dns', 'tcp', 53, 'clusterIP'],
    ['dns', {protocol: 'tcp'}, 'kube-system/kube-dns', 'tcp', 53, 'clusterIP'],
  ])('%s %j: Service %s, the packet %s/%i, via %s', (dst, more, name, proto, port, via) => {
    const t = trace(s, dst, more)
    expect(`${t.service?.namespace}/${t.service?.name}`).toBe(name)
    expect(t.packet).toMatchObject({protocol: proto, port})
    expect(t.service?.via).toBe(via)
  })

  it("an external IP node1's kube-proxy no longer captures: the packet leaves the cluster untranslated, said as such (not as a pod's), and the path's checks name the missing rule", () => {
    const x = snap()
    const nat = x.nodeStates.node1!.iptables!.tables.find((t) => t.name === 'nat')!
    const services = nat.chains.find((c) => c.name === 'KUBE-SERVICES')!
    const before = services.rules.length
    services.rules = services.rules.filter((r) => !r.raw.includes('-d 172.23.0.80/32'))
    expect(services.rules).toHaveLength(before - 1)
    const t = trace(x, '172.23.0.80')
    expect(t.service).toMatchObject({name: 'web', via: 'externalIP', reached: 0})
    expect(t.translation).toBeNull()
    expect(t.disposition).toBe('NO_ROUTE')
    const last = t.hops.at(-1)!
    expect(last).toMatchObject({node: 'node1', action: 'drop'})
    // masqueraded to node1's address on its way out: nothing about a pod network any more
    expect(last.evidence.join('\n')).not.toContain('pod network')
    expect(last.evidence).toEqual([
      expect.stringMatching(
        /^next hop \S+ is not a cluster node and 172\.23\.0\.80 is no node's or pod's address: the packet leaves the cluster here/,
      ),
    ])
    const stale = withNodeChecks(t, x).findings.filter((f) => f.code === 'SERVICE_RULES_STALE')
    expect(stale.map((f) => [f.node, f.subject])).toEqual([
      ['node1', 'Service default/web:http (172.23.0.80 tcp/80, external IP)'],
    ])
  })

  it("an external IP or a load balancer's IP (IP or IP:PORT) is the Service it belongs to, walked through the external chain; a pod outside the load balancer's source ranges is dropped by kube-proxy's firewall, a node inside them gets through", () => {
    for (const mode of ['iptables', 'nftables'] as const) {
      const x = snap(mode)
      const ext = trace(x, '172.23.0.80')
      expect(ext.service, mode).toMatchObject({name: 'web', via: 'externalIP', reached: 3, total: 3})
      expect(ext.translation?.before, mode).toBe('tcp 172.20.1.3 → 172.23.0.80:80')
      // web-local's loadBalancerSourceRanges are the nodes' network and 198.51.100.0/24: not the pods'
      const fenced = trace(x, '172.23.0.83:80')
      expect(fenced.service, mode).toMatchObject({name: 'web-local', via: 'loadBalancerIP', reached: 0})
      expect(fenced.disposition, mode).toBe('DENIED')
      const f = fenced.findings.find((y) => y.code === 'FIREWALL_DROP')!
      expect(f, mode).toMatchObject({
        node: 'node1',
        subject: "kube-proxy's load-balancer firewall for Service default/web-local",
      })
      expect(f.message, mode).toBe(
        "kube-proxy on node1 drops tcp 172.20.1.3 → 172.23.0.83:80: 172.20.1.3 is in none of default/web-local:http's loadBalancerSourceRanges (172.31.0.0/16, 198.51.100.0/24) (a pod: inside the cluster the ClusterIP reaches the Service)",
      )
      // the fix is the Service's (the ClusterIP from a pod, or the range added), never the rule deleted
      expect(f.fix, mode).toContain('kubectl -n default get service web-local -o wide')
      expect(f.fix, mode).toContain(
        `kubectl -n default patch service web-local --type json -p '[{"op":"add","path":"/spec/loadBalancerSourceRanges/-","value":"172.20.1.3/32"}]'`,
      )
      const fromNode = trace(x, '172.23.0.83', {src: 'node1'})
      expect(fromNode.service, mode).toMatchObject({
        via: 'loadBalancerIP',
        externalTrafficPolicy: 'Local',
        reached: 2,
        total: 2,
      })
    }
    // the Service port: by --port, by :PORT, or the only one
    expect(() => trace(s, '172.23.0.80:81')).toThrow(/^Service default\/web has no port 81/)
    expect(trace(s, '172.23.0.80', {port: 'http'}).service?.port.port).toBe(80)
  })

  it('NAME.NAMESPACE is a pod or a node first, a Service only when nothing else has that name', () => {
    // a pod named like a Service's short DNS name (pod names may hold dots): the pod is the destination
    const pod = s.pods.find((p) => p.name === 'pod-node3-1')!
    const dotted: Snapshot = {...s, pods: [...s.pods.filter((p) => p !== pod), {...pod, name: 'web.default'}]}
    const t = trace(dotted, 'web.default')
    expect(t.service).toBeUndefined()
    expect(t.dst).toMatchObject({pod: 'web.default', ip: pod.ip})
    // no Service of that name either: the usage error names pods and nodes, as before
    expect(() => trace(s, 'nosuch.default')).toThrow(/^no pod or node named 'nosuch\.default'/)
  })

  it.each([
    [
      'svc/nope',
      {},
      /^no Service default\/nope in cluster \S+ \(from 'svc\/nope'\) \(did you mean svc\/default\/.+\?\)$/,
    ],
    [
      'svc/kube-dns',
      {},
      /^no Service default\/kube-dns .*\(kube-dns is in namespace kube-system: svc\/kube-system\/kube-dns\)$/,
    ],
    ['svc/web', {port: 81}, /^Service default\/web has no port 81 \(its ports: http 80\/TCP\)$/],
    ['svc/web', {port: 'https'}, /^Service default\/web has no port named 'https'/],
    ['svc/kube-system/kube-dns', {port: 54}, /has no port 54 \(its ports: dns 53\/UDP, dns-tcp 53\/TCP\)$/],
    ['node2:30081', {}, /^no Service has NodePort 30081 in cluster/],
    ['node9:30080', {}, /^no node 'node9' in cluster/],
    ['172.21.0.80', {protocol: 'icmp'}, /kube-proxy translates TCP and UDP only/],
    ['svc/a/b/c', {}, /is not a Service: use svc\/NAME or svc\/NAMESPACE\/NAME$/],
    ['pod-node3-1', {endpoint: '172.20.3.2'}, /^--endpoint is for a Service DST/],
    ['pod-node3-1', {port: 'http', protocol: 'tcp'}, /a port by name is a Service port's/],
    [
      'svc/web',
      {endpoint: 'pod-node1-2'},
      /^--endpoint pod-node1-2: not an endpoint of Service default\/web \(its endpoints: /,
    ],
  ])('%s %j: a usage error in one line', (dst, more, message) => {
    let err: unknown
    try {
      trace(s, dst, more)
    } catch (error) {
      err = error
    }
    expect(err).toBeInstanceOf(UsageError)
    expect((err as Error).message).toMatch(message)
    expect((err as Error).message).not.toContain('\n')
  })

  it('svc/web: the translation by kube-proxy on node1 at PREROUTING, each endpoint with a third and its walk there and back, DELIVERED: 3 of 3', () => {
    const t = trace(s, 'svc/web')
    expect(t.disposition).toBe('DELIVERED')
    expect(t.returnPath?.disposition).toBe('DELIVERED')
    expect(t.service).toMatchObject({
      reached: 3,
      total: 3,
      clusterIP: '172.21.0.80',
      port: {name: 'http', targetPort: 8080},
    })
    expect(t.translation).toMatchObject({
      node: 'node1',
      hook: 'PREROUTING',
      agent: 'kube-proxy',
      before: 'tcp 172.20.1.3 → 172.21.0.80:80',
    })
    expect(t.translation?.rule).toMatch(/^-A KUBE-SEP-\S+ .*-j DNAT --to-destination 172\.20\.\d\.2:8080$/)
    const eps = t.endpoints!
    expect(eps.map((e) => e.pod).sort()).toEqual(['pod-node1-1', 'pod-node2-1', 'pod-node3-1'])
    // the endpoint on the source's own bridge: the request is routed back out of cni0 after DNAT, its reply bridged straight back (un-DNATed by br_netfilter), not an asymmetric path
    expect(t.findings.map((f) => f.code)).not.toContain('ASYMMETRIC_PATH')
    for (const e of eps) {
      expect(e.probability).toBeCloseTo(1 / 3, 6)
      expect(e).toMatchObject({
        disposition: 'DELIVERED',
        returnDisposition: 'DELIVERED',
        inEndpointSlice: true,
        ready: true,
        port: 8080,
      })
      // each walk ends in its own endpoint's namespace, and its reply comes back from the ClusterIP
      expect(e.hops!.at(-1)).toMatchObject({node: e.node, action: 'deliver'})
      expect(e.returnPath!.hops.at(-1)).toMatchObject({node: 'node1', netns: t.src.netns, action: 'deliver'})
      expect(e.translation?.after).toBe(`tcp 172.20.1.3 → ${e.ip}:8080`)
    }
  })

  it.each(['iptables', 'nftables'] as const)(
    '%s: an endpoint reaching itself through its Service (masqueraded to its node, hairpinned back): the reply comes to the node and is routed out of cni0 as the request was, no ASYMMETRIC_PATH',
    (mode) => {
      const s = snap(mode)
      const t = trace(s, 'svc/web', {src: 'pod-node1-1'})
      const node1 = s.nodes.find((n) => n.name === 'node1')!.netns
      expect(t.disposition).toBe('DELIVERED')
      expect(t.service).toMatchObject({reached: 3, total: 3})
      const self = t.endpoints!.find((e) => e.pod === 'pod-node1-1')!
      expect(self).toMatchObject({disposition: 'DELIVERED', returnDisposition: 'DELIVERED'})
      // kube-proxy marks a flow from the endpoint itself for masquerading: it reaches the pod from node1's cni0 address
      expect(self.hops!.flatMap((h) => h.evidence).join('\n')).toContain(
        'SNAT: tcp 172.20.1.2 → 172.20.1.2:8080 becomes tcp 172.20.1.1 → 172.20.1.2:8080',
      )
      // so the reply is addressed to node1 and routed there, in and out of cni0, as the request was
      const routed = (hops: typeof self.hops) => hops!.filter((h) => h.action === 'route' && h.netns === node1)
      expect(routed(self.hops).map((h) => `${h.in} → ${h.out}`)).toEqual(['cni0 → cni0'])
      expect(routed(self.returnPath!.hops).map((h) => `${h.in} → ${h.out}`)).toEqual(['cni0 → cni0'])
      expect(t.findings.map((f) => f.code)).not.toContain('ASYMMETRIC_PATH')
    },
  )

  it.each(['iptables', 'nftables'] as const)(
    '%s: from node1 to the ClusterIP and to its own NodePort: translated at OUTPUT (over lo for its own address), routed again, and masqueraded on the way out by the mark set before the reroute',
    (mode) => {
      const s = snap(mode)
      for (const dst of ['svc/web', 'node1:30080']) {
        const t = traceSnapshotFile(s, {src: 'node1', dst, size: 84, df: false}).trace
        expect(t.disposition, dst).toBe('DELIVERED')
        expect(t.service, dst).toMatchObject({reached: 3, total: 3})
        expect(t.translation, dst).toMatchObject({node: 'node1', hook: 'OUTPUT', agent: 'kube-proxy'})
        // to its own address: first routed to lo by the local table, then translated at OUTPUT and routed again
        if (dst === 'node1:30080')
          expect(t.hops.slice(0, 2).map((h) => `${h.action} ${h.out}`)).toEqual(['route lo', 'filter lo'])
        // the source each endpoint sees: node1's address on the device the flow leaves by (cni0 for its own pod,
        // flannel.1 for the others), as conntrack records it in the lab (test/analyze/trace/service-lab.test.ts)
        const from = Object.fromEntries(
          t.endpoints!.map((e) => [e.pod, e.hops!.filter((h) => h.packet).at(-1)!.packet!.src]),
        )
        expect(from, dst).toEqual({
          'pod-node1-1': '172.20.1.1',
          'pod-node2-1': '172.20.1.0',
          'pod-node3-1': '172.20.1.0',
        })
        for (const e of t.endpoints!) expect(e.returnDisposition, `${dst} ${e.pod}`).toBe('DELIVERED')
      }
    },
  )

  it("kube-proxy in nftables mode: the numgen split, each endpoint a third, translated by the endpoint chain's dnat, 3 of 3", () => {
    const t = trace(snap('nftables'), 'svc/web')
    expect(t.disposition).toBe('DELIVERED')
    expect(t.service).toMatchObject({reached: 3, total: 3})
    expect(t.translation).toMatchObject({node: 'node1', agent: 'kube-proxy'})
    expect(t.translation?.rule).toContain('dnat to')
    for (const e of t.endpoints!) expect(e.probability).toBeCloseTo(1 / 3, 6)
  })

  it('--endpoint walks the one named (by pod or IP), the others listed with their share', () => {
    const byPod = trace(s, 'svc/web', {endpoint: 'pod-node2-1'})
    const byIp = trace(s, 'svc/web', {endpoint: '172.20.2.2'})
    for (const t of [byPod, byIp]) {
      expect(t.service).toMatchObject({reached: 1, total: 1})
      expect(t.endpoints!.filter((e) => e.disposition).map((e) => e.pod)).toEqual(['pod-node2-1'])
      expect(
        t.endpoints!.filter((e) => !e.disposition).every((e) => e.note?.startsWith('not walked: --endpoint')),
      ).toBe(true)
      expect(t.hops.at(-1)).toMatchObject({node: 'node2', action: 'deliver'})
    }
  })

  it('--endpoint naming an endpoint no rule of node1 sends to: 0 of 1 reached, and the run is a fault (exit 1)', () => {
    const edited = snap()
    const nat = edited.nodeStates.node1!.iptables!.tables.find((x) => x.name === 'nat')!
    const svc = nat.chains.find((c) => c.rules.some((r) => r.raw.includes('default/web:http -> 172.20.2.2:8080')))!
    svc.rules = svc.rules.filter((r) => !r.raw.includes('-> 172.20.2.2:8080'))
    const run = traceSnapshotFile(edited, {...base, dst: 'svc/web', endpoint: 'pod-node2-1'})
    expect(run.trace.service).toMatchObject({reached: 0, total: 1})
    expect(run.trace.endpoints!.find((e) => e.pod === 'pod-node2-1')?.note).toBe(
      "not walked: no rule of node1's kube-proxy sends to it",
    )
    expect(run.exitCode).toBe(1)
  })

  it('no-endpoints: kube-proxy REJECTs it, nothing translates it: DENIED, 0 of 0, SERVICE_NO_ENDPOINTS at the drop and once among the path checks (not in a trace to another Service)', () => {
    const run = traceSnapshotFile(s, {...base, dst: 'svc/no-endpoints'})
    expect(run.trace.findings.find((f) => f.code === 'SERVICE_NO_ENDPOINTS')?.subject).toBe(
      'Service default/no-endpoints',
    )
    expect(run.exitCode).toBe(1)
    expect(traceSnapshotFile(s, {...base, dst: 'svc/web'}).trace.findings.map((f) => f.code)).not.toContain(
      'SERVICE_NO_ENDPOINTS',
    )
    const t = trace(s, 'svc/no-endpoints')
    expect(t.disposition).toBe('DENIED')
    expect(t.translation).toBeNull()
    expect(t.service).toMatchObject({reached: 0, total: 0})
    expect(t.hops.at(-1)?.evidence.join('\n')).toContain('default/no-endpoints:http has no endpoints')
    // kube-proxy's reject by design: the Service's finding at the drop, not FIREWALL_DROP (whose fix deletes the rule)
    expect(t.hops.at(-1)?.findings).toEqual(['SERVICE_NO_ENDPOINTS'])
    expect(t.findings.map((f) => f.code)).toEqual(['SERVICE_NO_ENDPOINTS'])
    expect(run.trace.findings.filter((f) => f.code === 'SERVICE_NO_ENDPOINTS')).toHaveLength(1)
  })

  it('a jump to one endpoint deleted from node1 while the EndpointSlice still lists it: that endpoint has no share and is not walked, the others split the traffic', () => {
    const edited = snap()
    const nat = edited.nodeStates.node1!.iptables!.tables.find((x) => x.name === 'nat')!
    const svc = nat.chains.find((c) => c.rules.some((r) => r.raw.includes('default/web:http -> 172.20.2.2:8080')))!
    svc.rules = svc.rules.filter((r) => !r.raw.includes('-> 172.20.2.2:8080'))
    const t = trace(edited, 'svc/web')
    expect(t.disposition).toBe('DELIVERED')
    expect(t.service).toMatchObject({reached: 2, total: 2})
    const gone = t.endpoints!.find((e) => e.ip === '172.20.2.2')!
    expect(gone).toMatchObject({probability: 0, inEndpointSlice: true, ready: true})
    expect(gone.disposition).toBeUndefined()
    expect(gone.note).toBe("not walked: no rule of node1's kube-proxy sends to it")
    expect(t.endpoints!.filter((e) => e.disposition).map((e) => Math.round(e.probability * 100))).toEqual([67, 33])
  })

  it("ClientIP affinity: a client in an endpoint's list (iptables' recent list, nft's affinity set) goes to that endpoint alone; the others say the affinity sent it there", () => {
    // nft: the client as kube-proxy's `update @affinity-…` leaves it in node1's set for pod-node2-1's endpoint
    const x = snap('nftables')
    const table = x.nodeStates.node1!.nft!.tables.find((t) => t.name === 'kube-proxy')!
    table.sets
      .find((v) => v.name.startsWith('affinity-') && v.name.endsWith('sticky/tcp/http__172.20.2.2/8080'))!
      .elements.push({key: '172.20.1.3'})
    const t = trace(x, 'svc/sticky')
    expect(t.service).toMatchObject({reached: 1, total: 1})
    expect(t.endpoints!.map((e) => [e.pod, e.disposition ?? e.note])).toEqual([
      ['pod-node2-1', 'DELIVERED'],
      [
        'pod-node1-1',
        "not walked: session affinity sends this client to 172.20.2.2 (its address is in that endpoint's list on node1)",
      ],
      [
        'pod-node3-1',
        "not walked: session affinity sends this client to 172.20.2.2 (its address is in that endpoint's list on node1)",
      ],
    ])
    // another client is in no set: spread over all three
    expect(trace(x, 'svc/sticky', {src: 'pod-node1-1'}).service).toMatchObject({reached: 3, total: 3})
  })

  it("svc/zonal (trafficDistribution PreferClose): node3's rules keep to node1's endpoint in its zone; the other is not walked, and the note says the hints keep it out", () => {
    for (const mode of ['iptables', 'nftables'] as const) {
      const t = traceSnapshot(snap(mode), {...base, src: 'pod-node3-1', dst: 'svc/zonal'}).trace
      expect(t.disposition, mode).toBe('DELIVERED')
      expect(t.service, mode).toMatchObject({reached: 1, total: 1, trafficDistribution: 'PreferClose'})
      expect(
        t.endpoints!.map((e) => [e.pod, e.disposition ?? e.note]),
        mode,
      ).toEqual([
        ['pod-node1-1', 'DELIVERED'],
        [
          'pod-node2-1',
          "not walked: topology hints (trafficDistribution PreferClose): node3's kube-proxy sends only to the endpoints hinted for its zone zone-a, and this one is not",
        ],
      ])
    }
    // the hints gone from the EndpointSlice: the same rules, but no longer what kube-proxy would write
    const unhinted = snap()
    for (const e of unhinted.services!.find((v) => v.name === 'zonal')!.endpoints!) delete e.hints
    const t = traceSnapshot(unhinted, {...base, src: 'pod-node3-1', dst: 'svc/zonal'}).trace
    expect(t.endpoints!.find((e) => e.pod === 'pod-node2-1')!.note).toBe(
      "not walked: no rule of node3's kube-proxy sends to it",
    )
  })
})

describe('a Service with 100 endpoints', () => {
  it('every endpoint is walked (a chain split more than 64 ways was cut there)', () => {
    const s = iptablesNode(5, [
      {
        name: 'big',
        namespace: 'bench',
        type: 'ClusterIP',
        clusterIP: '172.21.200.1',
        ports: [{name: 'http', protocol: 'TCP', port: 80, targetPort: 8080}],
        endpoints: Array.from({length: 100}, (_, i) => ({
          addresses: [`172.20.${2 + (i % 2)}.${100 + Math.floor(i / 2)}`],
          conditions: {ready: true},
          nodeName: `node${2 + (i % 2)}`,
          targetRef: {kind: 'Pod' as const, namespace: 'bench', name: `big-${i}`},
        })),
      },
    ])
    s.services = [
      {
        name: 'big',
        namespace: 'bench',
        type: 'ClusterIP',
        clusterIP: '172.21.200.1',
        ports: [{name: 'http', protocol: 'TCP', port: 80, targetPort: 8080}],
        endpoints: [],
      },
    ]
    const t = traceSnapshot(s, {src: 'pod-node1-1', dst: 'svc/bench/big', size: 60, df: true}).trace
    const walked = t.endpoints!.filter((e) => e.disposition !== undefined)
    expect(walked).toHaveLength(100)
    expect(walked.reduce((a, e) => a + e.probability, 0)).toBeCloseTo(1, 6)
    expect(t.service?.total).toBe(100)
  })
})
