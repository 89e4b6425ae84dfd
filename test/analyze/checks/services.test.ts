/**
 * The Service findings over snapshots collected from labs with Services and
 * kube-proxy's rules (fixtures/snapshots/flannel-vxlan-services-*-lab.json),
 * each fault made in the snapshot the way it shows on a node.
 */
import {describe, expect, it} from 'vitest'

import type {ConntrackEntry} from '../../../src/model/netfilter.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {broken, findings, node, snapshot, WITH_SERVICES} from './helpers.js'

const SERVICE_CODES = [
  'SERVICE_NO_ENDPOINTS',
  'SERVICE_RULES_STALE',
  'CONNTRACK_STALE',
  'CONNTRACK_TABLE_FULL',
  'HAIRPIN_OFF',
  'KUBE_PROXY_MISSING',
] as const
const IPT = 'flannel-vxlan-services-iptables'
const NFT = 'flannel-vxlan-services-nftables'

const serviceFindings = (s: Snapshot) =>
  findings(s).filter((f) => (SERVICE_CODES as readonly string[]).includes(f.code))

/** node's nat chain rules, edited */
function editNat(s: Snapshot, n: string, fn: (chain: string, raw: string) => boolean): void {
  const nat = node(s, n).iptables!.tables.find((t) => t.name === 'nat')!
  for (const c of nat.chains) c.rules = c.rules.filter((r) => fn(c.name, r.raw))
}

function kubeProxyTable(s: Snapshot, n: string) {
  return node(s, n).nft!.tables.find((t) => t.family === 'ip' && t.name === 'kube-proxy')!
}

/** A UDP DNS flow from pod-node1-2 as conntrack shows it once translated to `to`. */
function dnsEntry(
  sport: number,
  to: string,
  proto: 'udp' | 'tcp' = 'udp',
  dst = '172.21.0.10',
  dport = 53,
  toPort = 53,
): ConntrackEntry {
  return {
    family: 'inet',
    protocol: proto,
    timeout: 110,
    orig: {src: '172.20.1.3', dst, sport, dport},
    reply: {src: to, dst: '172.20.1.3', sport: toPort, dport: sport},
    flags: [],
    mark: 0,
  }
}

describe('Service checks on healthy labs with kube-proxy (both modes)', () => {
  it.each(WITH_SERVICES)(
    "%s: only the lab's Service without endpoints, rejected on every node (its REJECT rule or no-endpoint verdict as evidence)",
    (name) => {
      const s = snapshot(name)
      const found = serviceFindings(s)
      expect(found.map((f) => `${f.code} ${f.subject}`)).toEqual(['SERVICE_NO_ENDPOINTS Service default/no-endpoints'])
      const f = found[0]!
      expect(f.severity).toBe('warning')
      expect(f.node).toBeUndefined()
      expect(f.message).toContain('kube-proxy rejects its traffic on node1, node2 and node3')
      const evidence = f.evidence.join('\n')
      expect(evidence).toContain(
        'API: endpointslices of default/no-endpoints (172.21.0.99 tcp/80, port http): no ready endpoint',
      )
      if (name === IPT)
        expect(evidence).toContain(
          'node1 iptables-save: -A KUBE-SERVICES -d 172.21.0.99/32 -p tcp -m comment --comment "default/no-endpoints:http has no endpoints" -m tcp --dport 80 -j REJECT',
        )
      else
        expect(evidence).toContain(
          'node1 nft: map no-endpoint-services element { 172.21.0.99 . tcp . 80 : goto reject-chain }',
        )
      expect(f.fix).toContain('kubectl -n default describe service no-endpoints')
      // the lab's snapshot holds Service flows, and the probe said it listed translated ones only
      expect(node(s, 'node1').conntrack?.filter).toBe('dnat')
      expect(node(s, 'node1').conntrack?.entries.length).toBeGreaterThan(0)
    },
  )

  it('nothing at all without Services (a bare dataplane, or a source that has none)', () => {
    const s = broken(IPT, (x) => delete x.services)
    expect(serviceFindings(s)).toEqual([])
  })
})

describe('SERVICE_RULES_STALE', () => {
  it('iptables: a KUBE-SEP DNAT deleted on node2: the endpoint missing from its rules, named with the node', () => {
    const s = broken(IPT, (x) =>
      editNat(
        x,
        'node2',
        (c, raw) =>
          !(
            c.startsWith('KUBE-SEP-') &&
            raw.includes('-j DNAT --to-destination 172.20.1.2:53') &&
            raw.includes('kube-dns:dns"')
          ),
      ),
    )
    const f = findings(s, 'SERVICE_RULES_STALE')
    expect(f).toHaveLength(1)
    expect(f[0]!.node).toBe('node2')
    expect(f[0]!.subject).toBe('Service kube-system/kube-dns:dns (172.21.0.10 udp/53)')
    expect(f[0]!.message).toBe(
      "kube-proxy's rules on node2 disagree with the EndpointSlices of kube-system/kube-dns:dns: no rule sends to 172.20.1.2:53 (in the EndpointSlices)",
    )
    expect(f[0]!.evidence[0]).toBe(
      'API: endpointslices of kube-system/kube-dns (172.21.0.10 udp/53, port dns): ready endpoints 172.20.1.2:53, 172.20.2.2:53',
    )
    expect(f[0]!.evidence[1]).toMatch(
      /^node2 iptables-save: -A KUBE-SERVICES -d 172\.21\.0\.10\/32 -p udp .* -j KUBE-SVC-/,
    )
    expect(f[0]!.fix).toContain(
      'kubectl -n kube-system delete pod -l k8s-app=kube-proxy --field-selector spec.nodeName=node2',
    )
  })

  it('iptables: an endpoint gone from the EndpointSlices that every node still sends to', () => {
    const s = broken(IPT, (x) => {
      const dns = x.services!.find((v) => v.name === 'kube-dns')!
      dns.endpoints = dns.endpoints!.filter((e) => e.addresses[0] !== '172.20.2.2')
    })
    const f = findings(s, 'SERVICE_RULES_STALE')
    // the UDP and the TCP port, on each of the three nodes
    expect(f.map((x) => `${x.node} ${x.subject}`).sort()).toEqual(
      ['node1', 'node2', 'node3']
        .flatMap((n) => [
          `${n} Service kube-system/kube-dns:dns (172.21.0.10 udp/53)`,
          `${n} Service kube-system/kube-dns:dns-tcp (172.21.0.10 tcp/53)`,
        ])
        .sort(),
    )
    expect(f[0]!.message).toContain('its rules still send to 172.20.2.2:53 (no endpoint any more)')
    expect(f[0]!.evidence.join('\n')).toMatch(/-j DNAT --to-destination 172\.20\.2\.2:53/)
  })

  it('a Service that gained an endpoint while the nodes still reject it', () => {
    const s = broken(IPT, (x) => {
      x.services!.find((v) => v.name === 'no-endpoints')!.endpoints = [
        {addresses: ['172.20.3.3'], conditions: {ready: true}, nodeName: 'node3'},
      ]
    })
    const f = findings(s, 'SERVICE_RULES_STALE')
    expect(f.map((x) => x.node)).toEqual(['node1', 'node2', 'node3'])
    expect(f[0]!.message).toContain(
      'it rejects the Service as having no endpoints, but the EndpointSlices list 1 ready endpoint',
    )
    expect(f[0]!.evidence[1]).toContain('has no endpoints" -m tcp --dport 80 -j REJECT')
    expect(findings(s, 'SERVICE_NO_ENDPOINTS')).toEqual([])
  })

  it('a not-ready endpoint is no endpoint: rules that still send to it are stale', () => {
    const s = broken(IPT, (x) => {
      const web = x.services!.find((v) => v.name === 'web')!
      web.endpoints!.find((e) => e.addresses[0] === '172.20.3.2')!.conditions = {ready: false}
    })
    const f = findings(s, 'SERVICE_RULES_STALE')
    expect(f).toHaveLength(3)
    expect(f[0]!.message).toContain('still send to 172.20.3.2:8080')
    expect(f[0]!.evidence[0]).toContain('(1 not ready)')
  })

  it('every endpoint serving while terminating (a rollout): kube-proxy falls back to them, so rules that send there are not stale and the Service has endpoints', () => {
    const terminating = {ready: false, serving: true, terminating: true}
    const s = broken(IPT, (x) => {
      for (const e of x.services!.find((v) => v.name === 'web')!.endpoints!) e.conditions = {...terminating}
    })
    expect(findings(s, 'SERVICE_RULES_STALE')).toEqual([])
    expect(findings(s, 'SERVICE_NO_ENDPOINTS').map((f) => f.subject)).toEqual(['Service default/no-endpoints'])
    // one of them still ready: kube-proxy sends to it alone, and rules that keep the terminating ones are stale
    const one = broken(IPT, (x) => {
      const web = x.services!.find((v) => v.name === 'web')!
      for (const e of web.endpoints!) if (e.addresses[0] !== '172.20.1.2') e.conditions = {...terminating}
    })
    const f = findings(one, 'SERVICE_RULES_STALE').filter((x) => x.subject.startsWith('Service default/web:'))
    expect(f.map((x) => x.node)).toEqual(['node1', 'node2', 'node3'])
    expect(f[0]!.message).toContain('still send to 172.20.2.2:8080 and 172.20.3.2:8080')
    // terminating and no longer serving: no endpoint at all
    const gone = broken(IPT, (x) => {
      for (const e of x.services!.find((v) => v.name === 'web')!.endpoints!)
        e.conditions = {ready: false, serving: false, terminating: true}
    })
    expect(findings(gone, 'SERVICE_NO_ENDPOINTS').map((f) => f.subject)).toContain('Service default/web')
  })

  it('rules for a ClusterIP no Service has (a deleted Service) are stale too', () => {
    const s = broken(IPT, (x) => {
      x.services = x.services!.filter((v) => v.name !== 'web')
    })
    const f = findings(s, 'SERVICE_RULES_STALE')
    // its ClusterIP and its external IP, both still captured
    expect(f.map((x) => `${x.node} ${x.subject}`)).toEqual(
      ['node1', 'node2', 'node3'].flatMap((n) => [
        `${n} ClusterIP 172.21.0.80 tcp/80`,
        `${n} external address 172.23.0.80 tcp/80`,
      ]),
    )
    expect(f[0]!.message).toContain('no Service has that ClusterIP and port')
  })

  it('nftables: an endpoint chain without its dnat on node2', () => {
    const s = broken(NFT, (x) => {
      for (const c of kubeProxyTable(x, 'node2').chains)
        if (c.name.startsWith('endpoint-') && c.name.includes('/udp/dns__172.20.1.2/53'))
          c.rules = c.rules.filter((r) => !r.text.includes('dnat to'))
    })
    const f = findings(s, 'SERVICE_RULES_STALE')
    expect(f).toHaveLength(1)
    expect(f[0]!.node).toBe('node2')
    expect(f[0]!.message).toContain('no rule sends to 172.20.1.2:53')
    expect(f[0]!.evidence[1]).toMatch(
      /^node2 nft: map service-ips element \{ 172\.21\.0\.10 \. udp \. 53 : goto service-/,
    )
  })

  it('nftables: a Service missing from service-ips on node1', () => {
    const s = broken(NFT, (x) => {
      const m = kubeProxyTable(x, 'node1').sets.find((v) => v.name === 'service-ips')!
      m.elements = m.elements.filter((e) => !JSON.stringify(e.key).includes('172.21.0.80'))
    })
    const f = findings(s, 'SERVICE_RULES_STALE')
    expect(f.map((x) => `${x.node}: ${x.message}`)).toEqual([
      "node1: kube-proxy's rules on node1 disagree with the EndpointSlices of default/web:http: it has no rule for 172.21.0.80 tcp/80: the Service is not programmed there",
    ])
  })
})

describe('SERVICE_RULES_STALE with internalTrafficPolicy Local (default/node-local: endpoints on node1 and node2)', () => {
  const LOCAL = 'Service default/node-local:http (172.21.0.82 tcp/80)'

  it('healthy in both modes: each node sends only to its own endpoint, node3 drops; nothing stale', () => {
    for (const name of WITH_SERVICES) {
      const s = snapshot(name)
      expect(findings(s, 'SERVICE_RULES_STALE'), name).toEqual([])
      expect(s.services!.find((v) => v.name === 'node-local')!.internalTrafficPolicy, name).toBe('Local')
    }
  })

  it("iptables: node1's DNAT to its own endpoint deleted: that endpoint is missing, the others on node2 are not asked for", () => {
    const s = broken(IPT, (x) =>
      editNat(
        x,
        'node1',
        (c, raw) => !(c.startsWith('KUBE-SEP-') && raw.includes('"default/node-local:http"') && raw.includes('DNAT')),
      ),
    )
    const f = findings(s, 'SERVICE_RULES_STALE')
    expect(f.map((x) => [x.node, x.subject])).toEqual([['node1', LOCAL]])
    expect(f[0]!.message).toBe(
      "kube-proxy's rules on node1 disagree with the EndpointSlices of default/node-local:http: no rule sends to 172.20.1.2:8080 (in the EndpointSlices)",
    )
    expect(f[0]!.evidence[0]).toBe(
      'API: endpointslices of default/node-local (172.21.0.82 tcp/80, port http, internalTrafficPolicy Local): ready endpoints 172.20.1.2:8080 on node1, 172.20.2.2:8080 on node2',
    )
  })

  it("iptables: node3's DROP deleted: nothing there drops the Service its endpoints do not serve", () => {
    const s = broken(IPT, (x) => {
      const filter = node(x, 'node3').iptables!.tables.find((t) => t.name === 'filter')!
      const services = filter.chains.find((c) => c.name === 'KUBE-SERVICES')!
      services.rules = services.rules.filter((r) => !r.raw.includes('has no local endpoints'))
    })
    const f = findings(s, 'SERVICE_RULES_STALE')
    expect(f.map((x) => [x.node, x.subject])).toEqual([['node3', LOCAL]])
    expect(f[0]!.message).toContain(
      "a Service whose endpoints are all on other nodes is dropped by kube-proxy's rules (internalTrafficPolicy Local), and these do not",
    )
  })

  it('the API says Cluster while the nodes keep Local rules: node1 and node2 miss the other endpoint, node3 drops what it should send on', () => {
    const s = broken(IPT, (x) => {
      delete x.services!.find((v) => v.name === 'node-local')!.internalTrafficPolicy
    })
    const f = findings(s, 'SERVICE_RULES_STALE')
    expect(f.map((x) => [x.node, x.message.split(': ').slice(1).join(': ')])).toEqual([
      ['node1', 'no rule sends to 172.20.2.2:8080 (in the EndpointSlices)'],
      ['node2', 'no rule sends to 172.20.1.2:8080 (in the EndpointSlices)'],
      [
        'node3',
        'it drops the Service (as for internalTrafficPolicy Local with no endpoint on the node), but the EndpointSlices list 2 ready endpoints',
      ],
    ])
  })

  it('nftables: the drop element gone from no-endpoint-services on node3; a node sending to an endpoint on another node', () => {
    const gone = broken(NFT, (x) => {
      const map = kubeProxyTable(x, 'node3').sets.find((v) => v.name === 'no-endpoint-services')!
      map.elements = map.elements!.filter((e) => !JSON.stringify(e.key).includes('172.21.0.82'))
    })
    expect(findings(gone, 'SERVICE_RULES_STALE').map((x) => [x.node, x.subject])).toEqual([['node3', LOCAL]])
    // node1's rules as node2's: its local chain's dnat sends to node2's endpoint
    const moved = broken(NFT, (x) => {
      for (const c of kubeProxyTable(x, 'node1').chains)
        for (const r of c.rules) {
          if (!c.name.includes('default/node-local')) continue
          r.expr = JSON.parse(JSON.stringify(r.expr).replaceAll('"172.20.1.2"', '"172.20.2.2"'))
        }
    })
    const f = findings(moved, 'SERVICE_RULES_STALE')
    expect(f.map((x) => x.node)).toEqual(['node1'])
    expect(f[0]!.message).toContain('no rule sends to 172.20.1.2:8080 (in the EndpointSlices)')
    expect(f[0]!.message).toContain('its rules still send to 172.20.2.2:8080')
  })
})

describe('SERVICE_RULES_STALE with topology hints (default/zonal, trafficDistribution PreferClose: node1 zone-a, node2 zone-b, node3 zone-a)', () => {
  const ZONAL = 'Service default/zonal:http (172.21.0.84 tcp/80)'
  const zonal = (x: Snapshot) => x.services!.find((v) => v.name === 'zonal')!

  it("healthy in both modes: each node's rules keep to its zone's endpoint, as its kube-proxy does; nothing stale", () => {
    for (const name of WITH_SERVICES) {
      const s = snapshot(name)
      expect(findings(s, 'SERVICE_RULES_STALE'), name).toEqual([])
      expect(
        zonal(s).endpoints!.map((e) => e.hints),
        name,
      ).toEqual([{forZones: [{name: 'zone-a'}]}, {forZones: [{name: 'zone-b'}]}])
      expect(
        s.nodes.map((n) => n.labels['topology.kubernetes.io/zone']),
        name,
      ).toEqual(['zone-a', 'zone-b', 'zone-a'])
    }
  })

  it("node3's rules sending to both endpoints (a kube-proxy that ignores the hints): node3 sends out of its zone", () => {
    const s = broken(IPT, (x) => {
      const n1 = node(x, 'node1').iptables!.tables.find((t) => t.name === 'nat')!
      const n3 = node(x, 'node3').iptables!.tables.find((t) => t.name === 'nat')!
      // node2's endpoint chain and its jump, as a node without hints writes them
      const sep = n1.chains.find(
        (c) =>
          c.name.startsWith('KUBE-SEP-') &&
          c.rules.some((r) => r.raw.includes('default/zonal:http') && r.raw.includes('172.20.1.2:8080')),
      )!
      const node2Sep = node(x, 'node2')
        .iptables!.tables.find((t) => t.name === 'nat')!
        .chains.find(
          (c) =>
            c.name.startsWith('KUBE-SEP-') &&
            c.rules.some((r) => r.raw.includes('default/zonal:http') && r.raw.includes('172.20.2.2:8080')),
        )!
      n3.chains.push(JSON.parse(JSON.stringify(node2Sep)))
      const svc = n3.chains.find((c) =>
        c.rules.some((r) => r.raw.includes(`-j ${sep.name}`) && r.raw.includes('default/zonal:http ->')),
      )!
      const jump = svc.rules.find((r) => r.raw.includes(`-j ${sep.name}`))!
      svc.rules.push({
        ...jump,
        raw: jump.raw.replace(sep.name, node2Sep.name).replace('172.20.1.2:8080', '172.20.2.2:8080'),
        target: node2Sep.name,
      })
    })
    const f = findings(s, 'SERVICE_RULES_STALE')
    expect(f.map((x) => [x.node, x.subject])).toEqual([['node3', ZONAL]])
    expect(f[0]!.message).toContain('its rules still send to 172.20.2.2:8080')
    expect(f[0]!.evidence).toContain(
      'API: topology hints: node3 is in zone zone-a (topology.kubernetes.io/zone); kube-proxy on node3 sends only to the endpoints hinted for its zone zone-a: 172.20.1.2:8080',
    )
  })

  it('the hints gone from the EndpointSlice while the rules still follow them: every node misses the other endpoint', () => {
    const s = broken(NFT, (x) => {
      for (const e of zonal(x).endpoints!) delete e.hints
    })
    expect(findings(s, 'SERVICE_RULES_STALE').map((x) => [x.node, x.message.split(': ').slice(1).join(': ')])).toEqual([
      ['node1', 'no rule sends to 172.20.2.2:8080 (in the EndpointSlices)'],
      ['node2', 'no rule sends to 172.20.1.2:8080 (in the EndpointSlices)'],
      ['node3', 'no rule sends to 172.20.2.2:8080 (in the EndpointSlices)'],
    ])
  })

  it("as kube-proxy reads hints: one ready endpoint without a hint, or a node's zone with no hint, means every endpoint; node hints come first", () => {
    // one endpoint unhinted: nobody filters, so the zone-kept rules miss the other endpoint
    const partial = broken(IPT, (x) => {
      delete zonal(x).endpoints![1]!.hints
    })
    expect(findings(partial, 'SERVICE_RULES_STALE').map((x) => x.node)).toEqual(['node1', 'node2', 'node3'])
    // a not-ready endpoint without a hint does not count
    const notReady = broken(IPT, (x) => {
      zonal(x).endpoints!.push({addresses: ['172.20.3.2'], conditions: {ready: false}, nodeName: 'node3'})
    })
    expect(findings(notReady, 'SERVICE_RULES_STALE')).toEqual([])
    // node3 moved to a zone no endpoint is hinted for: it should send to both
    const elsewhere = broken(IPT, (x) => {
      x.nodes.find((n) => n.name === 'node3')!.labels['topology.kubernetes.io/zone'] = 'zone-c'
    })
    expect(findings(elsewhere, 'SERVICE_RULES_STALE').map((x) => x.node)).toEqual(['node3'])
    // PreferSameNode: each endpoint hinted for its node too; node3 has none, so it keeps to its zone
    const sameNode = broken(IPT, (x) => {
      for (const e of zonal(x).endpoints!) e.hints = {...e.hints, forNodes: [{name: e.nodeName!}]}
    })
    expect(findings(sameNode, 'SERVICE_RULES_STALE')).toEqual([])
  })
})

describe("SERVICE_RULES_STALE for external IPs and load balancers' IPs (default/web 172.23.0.80; default/web-local 172.23.0.83, externalTrafficPolicy Local)", () => {
  const EXT = 'Service default/web:http (172.23.0.80 tcp/80, external IP)'
  const LB = 'Service default/web-local:http (172.23.0.83 tcp/80, load-balancer IP)'

  it('healthy in both modes: every node captures both, node3 drops what comes from outside to the load-balancer IP', () => {
    for (const name of WITH_SERVICES) expect(findings(snapshot(name), 'SERVICE_RULES_STALE'), name).toEqual([])
  })

  it("iptables: node2's rule for the external IP deleted: node2 has no rule for it", () => {
    const s = broken(IPT, (x) =>
      editNat(x, 'node2', (c, raw) => !(c === 'KUBE-SERVICES' && raw.includes('external IP'))),
    )
    const f = findings(s, 'SERVICE_RULES_STALE')
    expect(f.map((x) => [x.node, x.subject])).toEqual([['node2', EXT]])
    expect(f[0]!.message).toBe(
      "kube-proxy's rules on node2 disagree with the Service default/web:http: it has no rule for 172.23.0.80 tcp/80 (external IP)",
    )
    expect(f[0]!.evidence.slice(0, 2)).toEqual([
      'API: default/web external IP 172.23.0.80',
      'API: endpointslices of default/web (172.21.0.80 tcp/80, port http): ready endpoints 172.20.1.2:8080, 172.20.2.2:8080, 172.20.3.2:8080',
    ])
  })

  it("nftables: node3's drop element for the load-balancer IP gone: nothing drops what comes from outside, though node3 has no endpoint of its own", () => {
    const s = broken(NFT, (x) => {
      const map = kubeProxyTable(x, 'node3').sets.find((v) => v.name === 'no-endpoint-services')!
      map.elements = map.elements!.filter((e) => !JSON.stringify(e.key).includes('172.23.0.83'))
    })
    const f = findings(s, 'SERVICE_RULES_STALE')
    expect(f.map((x) => [x.node, x.subject])).toEqual([['node3', LB]])
    expect(f[0]!.message).toContain(
      'nothing drops what comes from outside to 172.23.0.83 tcp/80 (load-balancer IP), though no endpoint is on node3 (externalTrafficPolicy Local)',
    )
  })

  it('an external IP the API gives that no node captures: stale on every node; one the nodes still capture that the API dropped: stale too', () => {
    const added = broken(IPT, (x) => {
      x.services!.find((v) => v.name === 'web')!.externalIPs!.push('172.23.0.81')
    })
    expect(
      findings(added, 'SERVICE_RULES_STALE').map((x) => [x.node, x.message.split(': ').slice(1).join(': ')]),
    ).toEqual(['node1', 'node2', 'node3'].map((n) => [n, 'it has no rule for 172.23.0.81 tcp/80 (external IP)']))
    for (const mode of [IPT, NFT]) {
      const dropped = broken(mode, (x) => {
        delete x.services!.find((v) => v.name === 'web')!.externalIPs
      })
      const f = findings(dropped, 'SERVICE_RULES_STALE')
      expect(
        f.map((x) => [x.node, x.subject]),
        mode,
      ).toEqual(['node1', 'node2', 'node3'].map((n) => [n, 'external address 172.23.0.80 tcp/80']))
      expect(f[0]!.message, mode).toBe(
        "kube-proxy's rules on node1 still capture 172.23.0.80 tcp/80 and send it to 172.20.1.2:8080, 172.20.2.2:8080 and 172.20.3.2:8080, but no Service has that external or load-balancer IP and port: traffic meant for that address never leaves the node",
      )
    }
  })
})

describe("SERVICE_RULES_STALE for a load balancer's source ranges (default/web-local: 172.31.0.0/16, 198.51.100.0/24)", () => {
  const LB = 'Service default/web-local:http (172.23.0.83 tcp/80, load-balancer IP)'
  const webLocal = (x: Snapshot) => x.services!.find((v) => v.name === 'web-local')!

  it("iptables: a range's KUBE-FW- rule deleted on node2: its firewall admits less than the Service says", () => {
    const s = broken(IPT, (x) =>
      editNat(x, 'node2', (c, raw) => !(c.startsWith('KUBE-FW-') && raw.includes('-s 198.51.100.0/24'))),
    )
    const f = findings(s, 'SERVICE_RULES_STALE')
    expect(f.map((x) => [x.node, x.subject])).toEqual([['node2', LB]])
    expect(f[0]!.message).toBe(
      "kube-proxy's rules on node2 disagree with the Service default/web-local:http: its firewall lets 172.23.0.83, 172.31.0.0/16 reach 172.23.0.83 tcp/80, the Service's ranges say 172.23.0.83, 172.31.0.0/16, 198.51.100.0/24",
    )
  })

  it('the API changed the ranges (or dropped them) and the nodes did not follow: stale on every node, in both modes', () => {
    for (const mode of [IPT, NFT]) {
      const widened = broken(mode, (x) => {
        webLocal(x).loadBalancerSourceRanges!.push('203.0.113.0/24')
      })
      const f = findings(widened, 'SERVICE_RULES_STALE')
      expect(
        f.map((x) => [x.node, x.subject]),
        mode,
      ).toEqual(['node1', 'node2', 'node3'].map((n) => [n, LB]))
      expect(f[0]!.message, mode).toContain(
        "the Service's ranges say 172.23.0.83, 172.31.0.0/16, 198.51.100.0/24, 203.0.113.0/24",
      )
      const dropped = broken(mode, (x) => {
        delete webLocal(x).loadBalancerSourceRanges
      })
      expect(
        findings(dropped, 'SERVICE_RULES_STALE').map((x) => x.message.split(': ').slice(1).join(': ')),
        mode,
      ).toEqual(
        Array(3).fill(
          'its firewall still lets only 172.23.0.83, 172.31.0.0/16, 198.51.100.0/24 reach 172.23.0.83 tcp/80, though the Service has no loadBalancerSourceRanges',
        ),
      )
    }
  })
})

describe('KUBE_PROXY_MISSING', () => {
  it('iptables: every KUBE- chain flushed on node3: missing there, and no stale rule reported for it', () => {
    const s = broken(IPT, (x) => {
      for (const t of node(x, 'node3').iptables!.tables)
        for (const c of t.chains) if (c.name.startsWith('KUBE-')) c.rules = []
    })
    const f = findings(s, 'KUBE_PROXY_MISSING')
    expect(f.map((x) => x.node)).toEqual(['node3'])
    expect(f[0]!.evidence).toContain('node3 iptables-save -t nat: :KUBE-SERVICES - [0:0] and no rule in it (flushed)')
    expect(f[0]!.message).toContain('while the cluster has 7 Services')
    expect(findings(s, 'SERVICE_RULES_STALE')).toEqual([])
    // the node rejects nothing any more: the Service without endpoints names the two that do
    expect(findings(s, 'SERVICE_NO_ENDPOINTS')[0]!.message).toContain('on node1 and node2')
  })

  it('nftables: table ip kube-proxy deleted on node1', () => {
    const s = broken(NFT, (x) => {
      node(x, 'node1').nft!.tables = node(x, 'node1').nft!.tables.filter((t) => t.name !== 'kube-proxy')
    })
    const f = findings(s, 'KUBE_PROXY_MISSING')
    expect(f.map((x) => x.node)).toEqual(['node1'])
    expect(f[0]!.evidence).toContain('node1 nft list tables: no table ip kube-proxy')
  })

  it('is not said when the probe could not read nftables (kube-proxy may be there in a mode the host tools cannot show)', () => {
    const s = broken(NFT, (x) => {
      node(x, 'node1').nft!.tables = []
      node(x, 'node1').sections.nftables = {status: 'absent', message: 'nft not installed'}
    })
    expect(findings(s, 'KUBE_PROXY_MISSING')).toEqual([])
  })
})

describe('CONNTRACK_STALE', () => {
  it('a UDP DNS entry translated to an address that is no endpoint: an error, the exact conntrack -D line for it', () => {
    const s = broken(IPT, (x) => node(x, 'node1').conntrack!.entries.push(dnsEntry(40000, '172.20.1.9')))
    const f = findings(s, 'CONNTRACK_STALE')
    expect(f).toHaveLength(1)
    expect(f[0]!.node).toBe('node1')
    expect(f[0]!.severity).toBe('error')
    expect(f[0]!.subject).toBe('kube-system/kube-dns:dns → 172.20.1.9:53')
    expect(f[0]!.evidence).toContain(
      'node1 conntrack -L: udp 110 src=172.20.1.3 dst=172.21.0.10 sport=40000 dport=53 src=172.20.1.9 dst=172.20.1.3 sport=53 dport=40000',
    )
    expect(f[0]!.fix.split('\n').at(-1)).toBe(
      'conntrack -D -p udp --orig-src 172.20.1.3 --orig-dst 172.21.0.10 --sport 40000 --dport 53 --reply-src 172.20.1.9',
    )
  })

  it("a flow to an external IP (default/web's 172.23.0.80) translated to an address that is no endpoint: stale as a ClusterIP flow is", () => {
    const s = broken(IPT, (x) =>
      node(x, 'node1').conntrack!.entries.push(dnsEntry(40001, '172.20.1.9', 'tcp', '172.23.0.80', 80, 8080)),
    )
    const f = findings(s, 'CONNTRACK_STALE')
    expect(f.map((x) => [x.node, x.subject, x.severity])).toEqual([
      ['node1', 'default/web:http → 172.20.1.9:8080', 'warning'],
    ])
    expect(f[0]!.message).toContain('still translates default/web:http (172.23.0.80:80) to 172.20.1.9:8080')
  })

  it("the lab's own Service flows (to live endpoints) are not stale; an endpoint removed from the API makes them so", () => {
    const clean = snapshot(IPT)
    const live = node(clean, 'node1').conntrack!.entries.filter(
      (e) => e.orig.dst === '172.21.0.10' && e.protocol === 'udp',
    )
    expect(live.length).toBeGreaterThan(0)
    expect(findings(clean, 'CONNTRACK_STALE')).toEqual([])
    const gone = live[0]!.reply.src
    const s = broken(IPT, (x) => {
      const dns = x.services!.find((v) => v.name === 'kube-dns')!
      dns.endpoints = dns.endpoints!.filter((e) => e.addresses[0] !== gone)
    })
    const f = findings(s, 'CONNTRACK_STALE').filter((x) => x.node === 'node1')
    expect(f.map((x) => x.subject)).toEqual([`kube-system/kube-dns:dns → ${gone}:53`])
  })

  it('several entries to one former endpoint: one finding, one line deleting them all', () => {
    const s = broken(IPT, (x) =>
      node(x, 'node1').conntrack!.entries.push(dnsEntry(40001, '172.20.1.9'), dnsEntry(40002, '172.20.1.9')),
    )
    const f = findings(s, 'CONNTRACK_STALE')
    expect(f).toHaveLength(1)
    expect(f[0]!.message).toMatch(/^2 conntrack entries on node1 still translate/)
    expect(f[0]!.fix.split('\n').at(-1)).toBe(
      'conntrack -D -p udp --orig-dst 172.21.0.10 --dport 53 --reply-src 172.20.1.9',
    )
  })

  it('TCP to a former endpoint of a ClusterIP or a NodePort is a warning; a flow that was not translated is no Service flow', () => {
    const s = broken(IPT, (x) =>
      node(x, 'node1').conntrack!.entries.push(
        dnsEntry(41000, '172.20.1.9', 'tcp', '172.21.0.80', 80, 8080),
        dnsEntry(41001, '172.20.1.8', 'tcp', '172.31.0.11', 30080, 8080),
        dnsEntry(41002, '172.21.0.80', 'tcp', '172.21.0.80', 80, 80),
      ),
    )
    const f = findings(s, 'CONNTRACK_STALE')
    expect(f.map((x) => `${x.severity} ${x.subject}`)).toEqual([
      'warning default/web:http → 172.20.1.9:8080',
      'warning default/web:http → 172.20.1.8:8080',
    ])
  })

  it('says when the probe cut the list', () => {
    const s = broken(IPT, (x) => {
      const ct = node(x, 'node1').conntrack!
      ct.entries.push(dnsEntry(40000, '172.20.1.9'))
      ct.truncated = true
    })
    expect(findings(s, 'CONNTRACK_STALE')[0]!.evidence.at(-1)).toMatch(
      /the probe read the first 2000 Service-flow entries/,
    )
  })
})

describe('CONNTRACK_TABLE_FULL', () => {
  const at = (count: number) => broken(IPT, (x) => (node(x, 'node2').conntrack!.count = count))

  it('below 90% of the maximum: nothing; at 90%: a warning; at the maximum: an error, with the sysctls as evidence', () => {
    expect(findings(at(235_929), 'CONNTRACK_TABLE_FULL')).toEqual([])
    const warn = findings(at(235_930), 'CONNTRACK_TABLE_FULL')
    expect(warn.map((f) => `${f.severity} ${f.node} ${f.subject}`)).toEqual(['warning node2 conntrack 235930/262144'])
    expect(warn[0]!.message).toContain('90% full')
    const full = findings(at(262_144), 'CONNTRACK_TABLE_FULL')
    expect(full.map((f) => f.severity)).toEqual(['error'])
    expect(full[0]!.evidence).toEqual([
      'net.netfilter.nf_conntrack_count = 262144',
      'net.netfilter.nf_conntrack_max = 262144',
    ])
  })
})

describe('HAIRPIN_OFF', () => {
  /** the node's bridge port of a pod (the peer of the pod's eth0) */
  function portOf(s: Snapshot, n: string, pod: string) {
    const st = node(s, n)
    const eth0 = st.pods.find((p) => p.name === pod)!.links.find((l) => l.name === 'eth0')!
    return st.links.find((l) => l.ifindex === eth0.peerIfindex)!
  }

  it('the lab programs hairpin on every pod port, as the bridge plugin does', () => {
    const s = snapshot(IPT)
    expect(portOf(s, 'node1', 'pod-node1-1').bridgePort).toEqual({hairpin: true})
  })

  it("an endpoint pod's port with hairpin off: the pod, its port and its Services", () => {
    const s = broken(IPT, (x) => (portOf(x, 'node1', 'pod-node1-1').bridgePort = {hairpin: false}))
    const f = findings(s, 'HAIRPIN_OFF')
    expect(f).toHaveLength(1)
    const port = portOf(s, 'node1', 'pod-node1-1').name
    expect(f[0]!.subject).toBe(`pod default/pod-node1-1 (${port} on cni0)`)
    expect(f[0]!.message).toContain(
      'is an endpoint of default/node-local, default/sticky, default/web, default/web-local, default/zonal and 1 more',
    )
    expect(f[0]!.evidence[0]).toMatch(
      new RegExp(`^node1 ip -d link: \\d+: ${port}: .* master cni0 .* veth bridge_slave hairpin off$`),
    )
    expect(f[0]!.fix.split('\n').at(-1)).toBe(`bridge link set dev ${port} hairpin on`)
  })

  it('a pod that is no endpoint can keep hairpin off', () => {
    const s = broken(IPT, (x) => (portOf(x, 'node1', 'pod-node1-2').bridgePort = {hairpin: false}))
    expect(findings(s, 'HAIRPIN_OFF')).toEqual([])
  })
})

describe('scoped to nodes, as a trace runs the checks of its path', () => {
  it("a pod-to-pod trace does not carry the lab's Service without endpoints; a node's own Service finding it does", () => {
    expect(
      findings(snapshot(IPT), undefined, ['node1', 'node2']).filter((f) =>
        (SERVICE_CODES as readonly string[]).includes(f.code),
      ),
    ).toEqual([])
    const s = broken(IPT, (x) => (node(x, 'node2').conntrack!.count = 262_144))
    expect(findings(s, undefined, ['node2']).map((f) => `${f.code} ${f.node}`)).toContain('CONNTRACK_TABLE_FULL node2')
    expect(findings(s, undefined, ['node1']).map((f) => f.code)).not.toContain('CONNTRACK_TABLE_FULL')
  })
})

describe('hostile Services (a hand-written file the schema lets through)', () => {
  it('ports without a usable protocol or number and addresses that are not strings are passed over, never a crash', () => {
    const s = broken(IPT, (x) => {
      const bad = [
        {name: 'a', namespace: 'x', clusterIP: '172.21.5.5', ports: [{protocol: 7, port: 'eighty'}]},
        {
          name: 'b',
          namespace: 'x',
          clusterIP: '172.21.5.6',
          ports: [{protocol: 'TCP', port: 80}],
          endpoints: [{addresses: 'nope', conditions: null}, null],
        },
        {name: 'c', namespace: 'x', clusterIP: 'None', ports: [{protocol: 'UDP', port: 53}]},
      ]
      x.services = [...x.services!, ...(bad as unknown as NonNullable<Snapshot['services']>)]
    })
    const f = serviceFindings(s)
    // b has no usable endpoint: it selects no ready pod, and no node programmed it
    expect(f.filter((x) => x.code === 'SERVICE_NO_ENDPOINTS').map((x) => x.subject)).toEqual([
      'Service default/no-endpoints',
      'Service x/b',
    ])
  })
})
