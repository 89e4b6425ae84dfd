import {describe, expect, it} from 'vitest'

import {cidrContainsAddress as cidrContains} from '../../../src/analyze/ip.js'
import {LAB_AGENT_DEFAULTS, SERVICE_CIDR} from '../../../src/lab/agents/defaults.js'
import {felixIptables, felixRuleHashes} from '../../../src/lab/agents/felix.js'
import {labRuleSets} from '../../../src/lab/agents/index.js'
import {
  iptablesEndpointChain,
  iptablesExternalChain,
  iptablesFirewallChain,
  iptablesLocalChain,
  iptablesServiceChain,
  kubeProxyIptables,
  kubeProxyNftables,
} from '../../../src/lab/agents/kube-proxy.js'
import {labInventory} from '../../../src/lab/inventory.js'
import {planLab} from '../../../src/lab/topology.js'
import type {LabOptions} from '../../../src/lab/types.js'
import {validatorFor} from '../../../src/util/schema.js'

const base: LabOptions = {
  name: 'demo',
  nodes: 3,
  podsPerNode: 2,
  backend: 'flannel-vxlan',
  topology: 'flat',
  routeReflectors: 1,
  ssh: false,
}

describe('kube-proxy chain names', () => {
  // expected names are the ones kubernetes' own proxier tests and real nodes show
  it('hashes KUBE-SVC-/KUBE-SEP- chains as pkg/proxy/iptables does', () => {
    expect(iptablesServiceChain('ns1/svc1:p80', 'tcp')).toBe('KUBE-SVC-XPGD46QRK7WJZT7O')
    expect(iptablesServiceChain('ns2/svc2:p8080', 'tcp')).toBe('KUBE-SVC-2VJB64SDSIJUP5T6')
    expect(iptablesServiceChain('default/kubernetes:https', 'tcp')).toBe('KUBE-SVC-NPX46M4PTMTKRN6Y')
    expect(iptablesServiceChain('kube-system/kube-dns:dns', 'udp')).toBe('KUBE-SVC-TCOU7JCQXEZGVUNU')
    expect(iptablesEndpointChain('ns1/svc1:p80', 'tcp', '10.0.1.1:80')).toBe('KUBE-SEP-SNQ3ZNILQDEJNDQO')
  })

  it('names nftables service and endpoint chains as pkg/proxy/nftables does', () => {
    const plan = planLab({...base, proxyMode: 'nftables'}, '/tmp/x')
    const svc = {
      name: 'svc1',
      namespace: 'ns1',
      type: 'ClusterIP' as const,
      clusterIP: '172.21.0.41',
      ports: [{name: 'p80', protocol: 'TCP' as const, port: 80, targetPort: 80}],
      endpoints: [
        {
          addresses: ['10.180.0.1'],
          conditions: {ready: true},
          nodeName: 'node1',
          targetRef: {kind: 'Pod' as const, namespace: 'ns1', name: 'a'},
        },
      ],
    }
    const nft = kubeProxyNftables(plan, plan.nodes[0]!, [svc])
    expect(nft).toContain('add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80\n')
    expect(nft).toContain('numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }')
    expect(nft).toContain(
      'add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80',
    )
  })
})

describe('kube-proxy rules for the lab Services', () => {
  const plan = planLab({...base, proxyMode: 'iptables'}, '/tmp/x')
  const rules = kubeProxyIptables(plan, plan.nodes[0]!, plan.services!).toString()

  it('spreads the cluster DNS over its two endpoints with -m statistic, the last one unconditional', () => {
    const svc = iptablesServiceChain('kube-system/kube-dns:dns', 'udp')
    const lines = rules.split('\n').filter((l) => l.startsWith(`-A ${svc} `) && l.includes('KUBE-SEP-'))
    expect(lines).toHaveLength(2)
    expect(lines[0]).toContain('-m statistic --mode random --probability 0.5000000000')
    expect(lines[1]).not.toContain('statistic')
    expect(rules).toContain('-j DNAT --to-destination 172.20.1.2:53')
    expect(rules).toContain('-j DNAT --to-destination 172.20.2.2:53')
  })

  it('rejects a Service without endpoints in filter KUBE-SERVICES and sends NodePorts through KUBE-EXT', () => {
    expect(rules).toMatch(
      /-A KUBE-SERVICES -m comment --comment "default\/no-endpoints:http has no endpoints" -m tcp -p tcp -d 172\.21\.0\.99 --dport 80 -j REJECT/,
    )
    expect(rules).toMatch(
      /-A KUBE-NODEPORTS -m comment --comment default\/web:http -m tcp -p tcp --dport 30080 -j KUBE-EXT-/,
    )
    // the jump to KUBE-NODEPORTS is the last rule written to nat KUBE-SERVICES
    const nat = rules.slice(rules.indexOf('*nat'))
    const services = nat.split('\n').filter((l) => l.startsWith('-A KUBE-SERVICES '))
    expect(services.at(-1)).toContain('-j KUBE-NODEPORTS')
  })
})

describe('Felix rule hashes', () => {
  // the cali: comments of a real Calico node
  it('computes the cali: comment hashes as felix/generictables RuleHashes does', () => {
    expect(felixRuleHashes('INPUT', [{action: '--jump cali-INPUT'}])).toEqual(['Cz_u1IQiXIMmKD4c'])
    expect(felixRuleHashes('OUTPUT', [{action: '--jump cali-OUTPUT'}])).toEqual(['tVnHkvAo15HuiPy0'])
    expect(
      felixRuleHashes('FORWARD*appends*', [
        {
          match: '-m mark --mark 0x10000/0x10000',
          action: '--jump ACCEPT',
          comment: 'Policy explicitly accepted packet.',
        },
        {action: '--jump MARK --set-mark 0x10000/0x10000'},
      ]),
    ).toEqual(['S93hcgKJrXEqnTfs', 'mp77cMpurHhyjLrM'])
  })

  it('puts the VXLAN allow/deny pair over cali40all-vxlan-net only on VXLAN labs, and a to/from chain per local workload', () => {
    const vx = planLab({...base, backend: 'calico-vxlan', proxyMode: 'iptables'}, '/tmp/x')
    const bgp = planLab({...base, backend: 'calico-bgp', proxyMode: 'iptables'}, '/tmp/x')
    const vxRules = felixIptables(vx, vx.nodes[0]!).toString()
    expect(vxRules).toMatch(
      /-A cali-INPUT .*-m set --match-set cali40all-vxlan-net src -m addrtype --dst-type LOCAL --jump ACCEPT/,
    )
    expect(vxRules).toMatch(/-A cali-INPUT .*Drop IPv4 VXLAN packets from non-allowed hosts.*--jump DROP/)
    expect(felixIptables(bgp, bgp.nodes[0]!).toString()).not.toContain('cali40all-vxlan-net')
    for (const pod of vx.pods.filter((p) => p.node === 'node1')) {
      expect(vxRules).toContain(`:cali-tw-${pod.hostVeth} - [0:0]`)
      expect(vxRules).toContain(`--in-interface ${pod.hostVeth} --goto cali-fw-${pod.hostVeth}`)
    }
  })
})

describe('lab agents: defaults and Services', () => {
  it('takes its agents from LAB_AGENT_DEFAULTS, and with --proxy-mode none stays a bare dataplane: no Services, no rule sets', () => {
    const plan = planLab(base, '/tmp/x')
    expect({proxyMode: plan.proxyMode, hostProfile: plan.hostProfile}).toEqual(LAB_AGENT_DEFAULTS)
    const bare = planLab({...base, proxyMode: 'none', hostProfile: 'plain'}, '/tmp/x')
    expect(bare.services).toBeUndefined()
    expect(labRuleSets(bare)).toEqual([])
  })

  it('names the rule sets by owner, flanneld following the proxy mode', () => {
    expect(labRuleSets(planLab({...base, proxyMode: 'nftables', hostProfile: 'firewalld'}, '/tmp/x'))).toEqual([
      'host:firewalld',
      'kube-proxy:nftables',
      'flanneld:nftables',
      'cni-bridge:hairpin',
    ])
    expect(
      labRuleSets(planLab({...base, backend: 'calico-vxlan', proxyMode: 'iptables', hostProfile: 'docker'}, '/tmp/x')),
    ).toEqual(['host:docker', 'kube-proxy:iptables', 'felix:iptables'])
  })

  it('puts the Services in a CIDR apart from the machine, the pods and the underlay, with the DNS endpoints on two nodes', () => {
    const plan = planLab({...base, proxyMode: 'iptables'}, '/tmp/x')
    for (const other of ['10.0.0.0/8', '192.0.2.0/24', plan.clusterCIDR, '172.31.0.0/16']) {
      expect(cidrContains(other, SERVICE_CIDR.split('/')[0]!)).toBe(false)
      expect(cidrContains(SERVICE_CIDR, other.split('/')[0]!)).toBe(false)
    }
    for (const svc of plan.services!) expect(cidrContains(SERVICE_CIDR, svc.clusterIP)).toBe(true)
    const dns = plan.services!.find((s) => s.name === 'kube-dns')!
    expect(new Set(dns.endpoints.map((e) => e.nodeName)).size).toBe(2)
    expect(plan.services!.some((s) => s.endpoints.length === 0)).toBe(true)
    expect(plan.services!.some((s) => s.ports.some((p) => p.nodePort))).toBe(true)
  })

  it('writes the Services into an inventory the inventory schema accepts', () => {
    const inv = labInventory(planLab({...base, proxyMode: 'iptables'}, '/tmp/x'))
    const validate = validatorFor('inventory')
    expect(validate(JSON.parse(JSON.stringify(inv))), JSON.stringify(validate.errors)).toBe(true)
    expect(inv.services?.map((s) => `${s.namespace}/${s.name}`)).toEqual([
      'kube-system/kube-dns',
      'default/web',
      'default/sticky',
      'default/node-local',
      'default/web-local',
      'default/zonal',
      'default/no-endpoints',
    ])
    expect(inv.services?.find((s) => s.name === 'sticky')?.sessionAffinity).toEqual({clientIP: {timeoutSeconds: 10800}})
    // the nodes' zones, as their label and in every endpoint (the EndpointSlice controller copies them)
    expect(inv.nodes.map((n) => n.labels?.['topology.kubernetes.io/zone'])).toEqual(['zone-a', 'zone-b', 'zone-a'])
    const zonal = inv.services!.find((s) => s.name === 'zonal')!
    expect(zonal.trafficDistribution).toBe('PreferClose')
    expect(zonal.endpoints!.map((e) => [e.nodeName, e.zone, e.hints])).toEqual([
      ['node1', 'zone-a', {forZones: [{name: 'zone-a'}]}],
      ['node2', 'zone-b', {forZones: [{name: 'zone-b'}]}],
    ])
    expect(inv.services!.find((s) => s.name === 'web')!.endpoints!.every((e) => e.zone && !e.hints)).toBe(true)
  })

  it('writes external IPs and load-balancer IPs as kube-proxy does: captured in KUBE-SERVICES / service-ips to the external chain, dropped where a Local policy has no endpoint, the health check port accepted', () => {
    const plan = planLab({...base, proxyMode: 'iptables'}, '/tmp/x')
    const web = iptablesExternalChain('default/web:http', 'tcp')
    // web-local has loadBalancerSourceRanges: its load-balancer IP goes through the firewall chain first
    const local = iptablesFirewallChain('default/web-local:http', 'tcp')
    const lines = (i: number): string[] =>
      kubeProxyIptables(plan, plan.nodes[i]!, plan.services!).toString().split('\n')
    for (const i of [0, 2]) {
      expect(lines(i)).toContain(
        `-A KUBE-SERVICES -m comment --comment "default/web:http external IP" -m tcp -p tcp -d 172.23.0.80 --dport 80 -j ${web}`,
      )
      expect(lines(i)).toContain(
        `-A KUBE-SERVICES -m comment --comment "default/web-local:http loadbalancer IP" -m tcp -p tcp -d 172.23.0.83 --dport 80 -j ${local}`,
      )
      expect(lines(i)).toContain(
        '-A KUBE-NODEPORTS -m comment --comment "default/web-local:http health check node port" -m tcp -p tcp --dport 30083 -j ACCEPT',
      )
    }
    const drop =
      '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web-local:http has no local endpoints" -m tcp -p tcp -d 172.23.0.83 --dport 80 -j DROP'
    expect(lines(2)).toContain(drop)
    expect(lines(0)).not.toContain(drop)
    const nft = (i: number): string => kubeProxyNftables(plan, plan.nodes[i]!, plan.services!)
    expect(nft(0)).toMatch(
      /^add element ip kube-proxy service-ips \{ 172\.23\.0\.80 \. tcp \. 80 : goto external-[A-Z2-7]{8}-default\/web\/tcp\/http \}$/m,
    )
    expect(nft(2)).toContain(
      'add element ip kube-proxy no-endpoint-services { 172.23.0.83 . tcp . 80 comment "default/web-local:http" : drop }',
    )
    expect(nft(0)).not.toContain('172.23.0.83 . tcp . 80 comment')
  })

  it('writes loadBalancerSourceRanges as kube-proxy does: a KUBE-FW- chain to the external chain per range (the load-balancer IP too when the node is in one) and the KUBE-PROXY-FIREWALL drop; nft a firewall- chain through firewall-ips', () => {
    const plan = planLab({...base, proxyMode: 'iptables'}, '/tmp/x')
    const spn = 'default/web-local:http'
    const [fw, ext] = [iptablesFirewallChain(spn, 'tcp'), iptablesExternalChain(spn, 'tcp')]
    const lines = kubeProxyIptables(plan, plan.nodes[2]!, plan.services!).toString().split('\n')
    expect(lines).toContain(
      `-A KUBE-SERVICES -m comment --comment "${spn} loadbalancer IP" -m tcp -p tcp -d 172.23.0.83 --dport 80 -j ${fw}`,
    )
    // the node's own address (172.31.0.13) is in 172.31.0.0/16: allowFromNode
    expect(lines.filter((r) => r.startsWith(`-A ${fw} `))).toEqual([
      `-A ${fw} -m comment --comment "${spn} loadbalancer IP" -s 172.31.0.0/16 -j ${ext}`,
      `-A ${fw} -m comment --comment "${spn} loadbalancer IP" -s 198.51.100.0/24 -j ${ext}`,
      `-A ${fw} -m comment --comment "${spn} loadbalancer IP" -s 172.23.0.83 -j ${ext}`,
      `-A ${fw} -m comment --comment "other traffic to ${spn} will be dropped by KUBE-PROXY-FIREWALL"`,
    ])
    expect(lines).toContain(
      `-A KUBE-PROXY-FIREWALL -m comment --comment "${spn} traffic not accepted by ${fw}" -m tcp -p tcp -d 172.23.0.83 --dport 80 -j DROP`,
    )
    const nft = kubeProxyNftables(plan, plan.nodes[2]!, plan.services!)
    expect(nft).toMatch(
      /^add rule ip kube-proxy firewall-[A-Z2-7]{8}-default\/web-local\/tcp\/http ip saddr != \{ 172\.31\.0\.0\/16, 198\.51\.100\.0\/24, 172\.23\.0\.83 \} drop$/m,
    )
    expect(nft).toMatch(
      /^add element ip kube-proxy firewall-ips \{ 172\.23\.0\.83 \. tcp \. 80 : goto firewall-[A-Z2-7]{8}-default\/web-local\/tcp\/http \}$/m,
    )
  })

  it("writes trafficDistribution PreferClose per node: the Cluster chain keeps to the endpoints hinted for the node's zone", () => {
    const plan = planLab({...base, proxyMode: 'iptables'}, '/tmp/x')
    const spn = 'default/zonal:http'
    const svc = iptablesServiceChain(spn, 'tcp')
    const [node1, node2] = [
      iptablesEndpointChain(spn, 'tcp', '172.20.1.2:8080'),
      iptablesEndpointChain(spn, 'tcp', '172.20.2.2:8080'),
    ]
    const toEndpoints = (i: number): string[] =>
      kubeProxyIptables(plan, plan.nodes[i]!, plan.services!)
        .toString()
        .split('\n')
        .filter((r) => r.startsWith(`-A ${svc} `) && !r.includes('KUBE-MARK-MASQ'))
    // one endpoint in the zone: no random pick
    expect(toEndpoints(0)).toEqual([`-A ${svc} -m comment --comment "${spn} -> 172.20.1.2:8080" -j ${node1}`])
    expect(toEndpoints(1)).toEqual([`-A ${svc} -m comment --comment "${spn} -> 172.20.2.2:8080" -j ${node2}`])
    // node3 is in zone-a with node1
    expect(toEndpoints(2)).toEqual([`-A ${svc} -m comment --comment "${spn} -> 172.20.1.2:8080" -j ${node1}`])
    // a hint missing on one ready endpoint: every node uses them all (topologyModeFromHints)
    const unhinted = plan.services!.map((s) =>
      s.name === 'zonal' ? {...s, endpoints: s.endpoints.map((e, i) => (i === 1 ? {...e, hints: undefined} : e))} : s,
    )
    const all = kubeProxyIptables(plan, plan.nodes[2]!, unhinted).toString()
    expect(all).toContain(`-j ${node1}`)
    expect(all).toContain(`-j ${node2}`)
    const nft3 = kubeProxyNftables(plan, plan.nodes[2]!, plan.services!)
    expect(nft3).toContain('default/zonal/tcp/http__172.20.1.2/8080 meta l4proto tcp dnat to 172.20.1.2:8080')
    expect(nft3).not.toContain('default/zonal/tcp/http__172.20.2.2/8080')
  })

  it("writes internalTrafficPolicy Local per node: a KUBE-SVL-/local- chain to the node's own endpoints, a drop where it has none", () => {
    const plan = planLab({...base, proxyMode: 'iptables'}, '/tmp/x')
    const spn = 'default/node-local:http'
    const svl = iptablesLocalChain(spn, 'tcp')
    const n1 = kubeProxyIptables(plan, plan.nodes[0]!, plan.services!).toString().split('\n')
    expect(n1).toContain(
      `-A KUBE-SERVICES -m comment --comment "${spn} cluster IP" -m tcp -p tcp -d 172.21.0.82 --dport 80 -j ${svl}`,
    )
    // one endpoint (node1's own): no random pick, straight to its chain; no Cluster chain at all
    const sep = iptablesEndpointChain(spn, 'tcp', '172.20.1.2:8080')
    expect(n1.filter((r) => r.startsWith(`-A ${svl} `))).toEqual([
      `-A ${svl} -m comment --comment "${spn} cluster IP" -m tcp -p tcp -d 172.21.0.82 --dport 80 ! -s ${plan.clusterCIDR} -j KUBE-MARK-MASQ`,
      `-A ${svl} -m comment --comment "${spn} -> 172.20.1.2:8080" -j ${sep}`,
    ])
    expect(n1.some((r) => r.includes(iptablesServiceChain(spn, 'tcp')))).toBe(false)
    expect(n1.some((r) => r.includes('has no local endpoints'))).toBe(false)
    const n3 = kubeProxyIptables(plan, plan.nodes[2]!, plan.services!).toString().split('\n')
    expect(n3).toContain(
      `-A KUBE-SERVICES -m comment --comment "${spn} has no local endpoints" -m tcp -p tcp -d 172.21.0.82 --dport 80 -j DROP`,
    )
    expect(n3.some((r) => r.includes(svl) || r.includes('172.21.0.82 --dport 80 -j KUBE-'))).toBe(false)

    const nft1 = kubeProxyNftables(plan, plan.nodes[0]!, plan.services!)
    expect(nft1).toMatch(
      /^add element ip kube-proxy service-ips \{ 172\.21\.0\.82 \. tcp \. 80 : goto local-[A-Z2-7]{8}-default\/node-local\/tcp\/http \}$/m,
    )
    expect(nft1).not.toMatch(/service-[A-Z2-7]{8}-default\/node-local/)
    const nft3 = kubeProxyNftables(plan, plan.nodes[2]!, plan.services!)
    expect(nft3).toContain(
      'add element ip kube-proxy no-endpoint-services { 172.21.0.82 . tcp . 80 comment "default/node-local:http" : drop }',
    )
    expect(nft3).not.toMatch(/local-[A-Z2-7]{8}-default\/node-local/)
  })

  it("writes externalTrafficPolicy Local per node: the EXT chain short-circuits pods and the node itself to the Cluster chain, the rest to the node's own endpoints, or a drop", () => {
    const plan = planLab({...base, proxyMode: 'iptables'}, '/tmp/x')
    const spn = 'default/web-local:http'
    const [svc, svl, ext] = [
      iptablesServiceChain(spn, 'tcp'),
      iptablesLocalChain(spn, 'tcp'),
      iptablesExternalChain(spn, 'tcp'),
    ]
    const n1 = kubeProxyIptables(plan, plan.nodes[0]!, plan.services!).toString().split('\n')
    expect(n1.filter((r) => r.startsWith(`-A ${ext} `))).toEqual([
      `-A ${ext} -m comment --comment "pod traffic for ${spn} external destinations" -s ${plan.clusterCIDR} -j ${svc}`,
      `-A ${ext} -m comment --comment "masquerade LOCAL traffic for ${spn} external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`,
      `-A ${ext} -m comment --comment "route LOCAL traffic for ${spn} external destinations" -m addrtype --src-type LOCAL -j ${svc}`,
      `-A ${ext} -j ${svl}`,
    ])
    // the ClusterIP keeps the Cluster policy: both endpoints; the Local chain has node1's own
    expect(n1).toContain(
      `-A KUBE-SERVICES -m comment --comment "${spn} cluster IP" -m tcp -p tcp -d 172.21.0.83 --dport 80 -j ${svc}`,
    )
    expect(n1.filter((r) => r.startsWith(`-A ${svc} `) && r.includes(' -j KUBE-SEP-'))).toHaveLength(2)
    expect(n1.filter((r) => r.startsWith(`-A ${svl} `))).toEqual([
      `-A ${svl} -m comment --comment "${spn} -> 172.20.1.2:8080" -j ${iptablesEndpointChain(spn, 'tcp', '172.20.1.2:8080')}`,
    ])
    const n3 = kubeProxyIptables(plan, plan.nodes[2]!, plan.services!).toString().split('\n')
    expect(n3.filter((r) => r.startsWith(`-A ${ext} `))).toHaveLength(3)
    expect(n3.some((r) => r.includes(svl))).toBe(false)
    expect(n3).toContain(
      `-A KUBE-EXTERNAL-SERVICES -m comment --comment "${spn} has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30082 -j DROP`,
    )

    const nft3 = kubeProxyNftables(plan, plan.nodes[2]!, plan.services!)
    expect(nft3).toContain(
      'add element ip kube-proxy no-endpoint-nodeports { tcp . 30082 comment "default/web-local:http" : drop }',
    )
    expect(nft3).toMatch(
      /^add rule ip kube-proxy external-\S+ fib saddr type local goto service-\S+ comment "short-circuit local traffic"$/m,
    )
    const nft1 = kubeProxyNftables(plan, plan.nodes[0]!, plan.services!)
    expect(nft1).toMatch(
      /^add rule ip kube-proxy (external-[A-Z2-7]{8}-default\/web-local\/tcp\/http) goto local-[A-Z2-7]{8}-default\/web-local\/tcp\/http$/m,
    )
  })

  it('writes ClientIP affinity as kube-proxy does: recent lists in iptables mode, affinity sets in nftables mode', () => {
    const plan = planLab({...base, proxyMode: 'iptables'}, '/tmp/x')
    const rules = kubeProxyIptables(plan, plan.nodes[0]!, plan.services!).toString().split('\n')
    const sticky = plan.services!.find((s) => s.name === 'sticky')!
    const spn = 'default/sticky:http'
    const eps = sticky.endpoints.map((e) => `${e.addresses[0]}:8080`).sort()
    const svcChain = iptablesServiceChain(spn, 'tcp')
    const inSvc = rules.filter((r) => r.startsWith(`-A ${svcChain} `))
    // the masquerade rule, one --rcheck per endpoint, then the random picks
    expect(inSvc.slice(1, 1 + eps.length)).toEqual(
      eps.map((ep) => {
        const sep = iptablesEndpointChain(spn, 'tcp', ep)
        return `-A ${svcChain} -m comment --comment "${spn} -> ${ep}" -m recent --name ${sep} --rcheck --seconds 10800 --reap -j ${sep}`
      }),
    )
    expect(inSvc[1 + eps.length]).toContain('-m statistic --mode random')
    for (const ep of eps) {
      const sep = iptablesEndpointChain(spn, 'tcp', ep)
      expect(rules).toContain(
        `-A ${sep} -m comment --comment ${spn} -m recent --name ${sep} --set -m tcp -p tcp -j DNAT --to-destination ${ep}`,
      )
    }
    // the web Service has no affinity: no recent match anywhere in its chains
    expect(rules.filter((r) => r.includes('default/web') && r.includes('recent'))).toEqual([])

    const nft = kubeProxyNftables(plan, plan.nodes[0]!, plan.services!)
    const sets = [
      ...nft.matchAll(
        /^add set ip kube-proxy (affinity-\S+) \{ type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; \}$/gm,
      ),
    ]
    expect(sets.map((m) => m[1]!.replace(/^affinity-[A-Z2-7]{8}-/, ''))).toEqual(
      eps.map((ep) => `default/sticky/tcp/http__${ep.replace(':', '/')}`),
    )
    for (const [, set] of sets) {
      const chain = set!.replace(/^affinity-/, 'endpoint-')
      expect(nft).toMatch(
        new RegExp(
          `^add rule ip kube-proxy service-\\S+ ip saddr @${set!.replace(/[./]/g, '\\$&')} goto ${chain.replace(/[./]/g, '\\$&')}$`,
          'm',
        ),
      )
      expect(nft).toContain(`add rule ip kube-proxy ${chain} update @${set} { ip saddr }`)
    }
  })
})
