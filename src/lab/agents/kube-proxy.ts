import {cidrContainsAddress} from '../../analyze/ip.js'
import type {LabNode, LabPlan} from '../types.js'
import {KUBE_MARK_MASQ, SERVICE_CIDR} from './defaults.js'
import {sha256Base32} from './hash.js'
import {comment, RestoreFile} from './restore.js'
import {type LabEndpoint, type LabService, type LabServicePort, readyAddresses, servicePortName} from './services.js'

/**
 * kube-proxy's rules for the lab's Services, as kubernetes pkg/proxy/iptables
 * and pkg/proxy/nftables write them (chain names, hashes, comments, marks and
 * rule order from their proxier.go and proxier_test.go), with
 * --cluster-cidr set to the lab's pod network.
 */

const MASQ = `0x${KUBE_MARK_MASQ.toString(16)}`

interface PortEndpoints {
  svc: LabService
  port: LabServicePort
  /** `ns/name:port` */
  spn: string
  proto: 'tcp' | 'udp'
  /** the ready endpoints the Cluster policy uses here (topology hints applied), `ip:targetPort` sorted as kube-proxy's endpoints map keeps them */
  cluster: string[]
  /** this node's own ready endpoints: a Local policy's */
  own: string[]
  /** internalTrafficPolicy Local: ClusterIP traffic through the local policy chain (KUBE-SVL-, local-) */
  internalLocal: boolean
  /** externalTrafficPolicy Local: NodePort traffic from outside the node through the local policy chain */
  externalLocal: boolean
  /** reachable from outside the cluster (ExternallyAccessible): a NodePort, external IPs or load-balancer IPs */
  external: boolean
  /** the external IPs and load-balancer IPs kube-proxy captures for this port */
  externalAddresses: string[]
  /** loadBalancerSourceRanges over load-balancer IPs: their traffic goes through a firewall chain first */
  usesFirewall: boolean
  /** the sources the firewall lets on: the ranges, and the load-balancer IPs when the node's own address is in one */
  firewallSources: string[]
  /** the ClusterIP chain and its endpoints (the Local policy's with internalTrafficPolicy Local) */
  endpoints: string[]
  /** the Service has ready endpoints somewhere (a Local one without any on this node is dropped, not rejected) */
  hasEndpoints: boolean
  /** kube-proxy's CategorizeEndpoints: whether the Cluster and the Local policy chains are written, with endpoints */
  usesCluster: boolean
  usesLocal: boolean
}

/**
 * The ready endpoints the Cluster policy of `node` uses (pkg/proxy/topology.go topologyModeFromHints and
 * availableForTopology, as the lab's hints go: zones only): those hinted for the node's zone when every
 * ready endpoint has a zone hint and one is for that zone; else all of them.
 */
function clusterAddresses(svc: LabService, node: Pick<LabNode, 'zone'>): string[] {
  const ready = svc.endpoints.filter((e) => e.conditions.ready)
  const hinted = (e: LabEndpoint): boolean => e.hints?.forZones.some((z) => z.name === node.zone) ?? false
  const sameZone = ready.length > 0 && ready.every((e) => (e.hints?.forZones.length ?? 0) > 0) && ready.some(hinted)
  return sameZone ? ready.filter(hinted).flatMap((e) => e.addresses) : readyAddresses(svc)
}

/** The Service ports as `node`'s kube-proxy sees them (pkg/proxy/topology.go CategorizeEndpoints). */
function servicePorts(services: readonly LabService[], node: Pick<LabNode, 'name' | 'zone' | 'ip'>): PortEndpoints[] {
  const out: PortEndpoints[] = []
  for (const svc of services) {
    const internalLocal = svc.internalTrafficPolicy === 'Local'
    const externalLocal = svc.externalTrafficPolicy === 'Local'
    const ready = clusterAddresses(svc, node)
    const ownIps = svc.endpoints
      .filter((e) => e.conditions.ready && e.nodeName === node.name)
      .flatMap((e) => e.addresses)
    for (const port of svc.ports) {
      const cluster = ready.map((ip) => `${ip}:${port.targetPort}`).sort()
      const own = ownIps.map((ip) => `${ip}:${port.targetPort}`).sort()
      const externalAddresses = [...(svc.externalIPs ?? []), ...(svc.loadBalancerIPs ?? [])]
      const external = port.nodePort !== undefined || externalAddresses.length > 0
      const ranges = svc.loadBalancerSourceRanges ?? []
      out.push({
        svc,
        port,
        spn: servicePortName(svc, port),
        proto: port.protocol.toLowerCase() as 'tcp' | 'udp',
        cluster,
        own,
        internalLocal,
        externalLocal,
        external,
        externalAddresses,
        usesFirewall: ready.length > 0 && (svc.loadBalancerIPs?.length ?? 0) > 0 && ranges.length > 0,
        firewallSources: [
          ...ranges,
          ...(ranges.some((r) => cidrContainsAddress(r, node.ip)) ? (svc.loadBalancerIPs ?? []) : []),
        ],
        endpoints: internalLocal ? own : cluster,
        hasEndpoints: ready.length > 0,
        // UsesClusterEndpoints: also under externalTrafficPolicy Local, whose short-circuits go to the Cluster chain
        usesCluster: cluster.length > 0 && (!internalLocal || external),
        usesLocal: own.length > 0 && (internalLocal || (external && externalLocal)),
      })
    }
  }
  return out
}

/** iptables mode: `KUBE-SVC-` + the first 16 of base32(sha256(spn + proto)). */
export function iptablesServiceChain(spn: string, proto: string): string {
  return `KUBE-SVC-${sha256Base32(spn + proto).slice(0, 16)}`
}

export function iptablesExternalChain(spn: string, proto: string): string {
  return `KUBE-EXT-${sha256Base32(spn + proto).slice(0, 16)}`
}

/** iptables mode, loadBalancerSourceRanges: `KUBE-FW-` + the same hash as the Service's chain. */
export function iptablesFirewallChain(spn: string, proto: string): string {
  return `KUBE-FW-${sha256Base32(spn + proto).slice(0, 16)}`
}

/** iptables mode, internalTrafficPolicy Local: `KUBE-SVL-` + the same hash as the Service's chain. */
export function iptablesLocalChain(spn: string, proto: string): string {
  return `KUBE-SVL-${sha256Base32(spn + proto).slice(0, 16)}`
}

/** iptables mode: `KUBE-SEP-` + the first 16 of base32(sha256(spn + proto + ip:port)). */
export function iptablesEndpointChain(spn: string, proto: string, endpoint: string): string {
  return `KUBE-SEP-${sha256Base32(spn + proto + endpoint).slice(0, 16)}`
}

/** kube-proxy's `-m statistic` probability for endpoint i of n: 1/(n-i), ten decimals. */
function probability(i: number, n: number): string {
  return (1 / (n - i)).toFixed(10)
}

/**
 * A policy chain's rules to its endpoints (writeServiceToEndpointRules): with ClientIP affinity a
 * `--rcheck` per endpoint first, then the random picks, 1/(n-i) each, the last unconditional.
 */
function endpointRules(p: PortEndpoints, chain: string, endpoints: readonly string[], affinity?: number): string[] {
  const out: string[] = []
  if (affinity !== undefined)
    for (const ep of endpoints) {
      const sep = iptablesEndpointChain(p.spn, p.proto, ep)
      out.push(
        `-A ${chain} ${comment(`${p.spn} -> ${ep}`)} -m recent --name ${sep} --rcheck --seconds ${affinity} --reap -j ${sep}`,
      )
    }
  const n = endpoints.length
  for (const [i, ep] of endpoints.entries())
    out.push(
      `-A ${chain} ${comment(`${p.spn} -> ${ep}`)}${i < n - 1 ? ` -m statistic --mode random --probability ${probability(i, n)}` : ''} -j ${iptablesEndpointChain(p.spn, p.proto, ep)}`,
    )
  return out
}

/** The `iptables-restore --noflush` input kube-proxy (iptables mode) leaves on `node`. */
export function kubeProxyIptables(
  plan: LabPlan,
  node: Pick<LabNode, 'name' | 'zone' | 'ip'>,
  services: readonly LabService[],
): RestoreFile {
  const f = new RestoreFile()
  const ports = servicePorts(services, node)
  const cidr = plan.clusterCIDR

  // mangle: the hint and canary chains kubelet and kube-proxy create
  f.chain('mangle', 'KUBE-IPTABLES-HINT').chain('mangle', 'KUBE-KUBELET-CANARY').chain('mangle', 'KUBE-PROXY-CANARY')

  // filter
  for (const c of [
    'KUBE-EXTERNAL-SERVICES',
    'KUBE-FIREWALL',
    'KUBE-FORWARD',
    'KUBE-KUBELET-CANARY',
    'KUBE-NODEPORTS',
    'KUBE-PROXY-CANARY',
    'KUBE-PROXY-FIREWALL',
    'KUBE-SERVICES',
  ])
    f.chain('filter', c)
  // The jumps are prepended one by one (EnsureRule Prepend): written here so that
  // the chains end up in the order a node shows them.
  const filterJumps: Array<[string, string, string, boolean]> = [
    ['INPUT', 'KUBE-PROXY-FIREWALL', 'kubernetes load balancer firewall', true],
    ['INPUT', 'KUBE-NODEPORTS', 'kubernetes health check service ports', false],
    ['INPUT', 'KUBE-EXTERNAL-SERVICES', 'kubernetes externally-visible service portals', true],
    ['FORWARD', 'KUBE-PROXY-FIREWALL', 'kubernetes load balancer firewall', true],
    ['FORWARD', 'KUBE-FORWARD', 'kubernetes forwarding rules', false],
    ['FORWARD', 'KUBE-SERVICES', 'kubernetes service portals', true],
    ['FORWARD', 'KUBE-EXTERNAL-SERVICES', 'kubernetes externally-visible service portals', true],
    ['OUTPUT', 'KUBE-PROXY-FIREWALL', 'kubernetes load balancer firewall', true],
    ['OUTPUT', 'KUBE-SERVICES', 'kubernetes service portals', true],
  ]
  const position = new Map<string, number>()
  for (const [builtin, target, text, ctNew] of filterJumps) {
    const n = (position.get(builtin) ?? 0) + 1
    position.set(builtin, n)
    f.rule('filter', `-I ${builtin} ${n} ${ctNew ? '-m conntrack --ctstate NEW ' : ''}${comment(text)} -j ${target}`)
  }
  f.rule('filter', '-A INPUT -j KUBE-FIREWALL')
  f.rule('filter', '-A OUTPUT -j KUBE-FIREWALL')
  f.rule(
    'filter',
    `-A KUBE-FIREWALL ${comment('block incoming localnet connections')} -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
  )
  f.rule('filter', '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP')
  f.rule('filter', `-A KUBE-FORWARD ${comment('kubernetes forwarding rules')} -m mark --mark ${MASQ}/${MASQ} -j ACCEPT`)
  f.rule(
    'filter',
    `-A KUBE-FORWARD ${comment('kubernetes forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
  )
  for (const p of ports) {
    const nodePort = p.port.nodePort
    // no endpoints at all: rejected; a Local policy without an endpoint on this node: dropped (what the EXT chain does not short-circuit)
    const noneHere = (local: boolean): {target: string; text: string} | undefined =>
      !p.hasEndpoints
        ? {target: 'REJECT', text: `${p.spn} has no endpoints`}
        : local && p.own.length === 0
          ? {target: 'DROP', text: `${p.spn} has no local endpoints`}
          : undefined
    const internal = noneHere(p.internalLocal)
    if (internal)
      f.rule(
        'filter',
        `-A KUBE-SERVICES ${comment(internal.text)} -m ${p.proto} -p ${p.proto} -d ${p.svc.clusterIP} --dport ${p.port.port} -j ${internal.target}`,
      )
    // loadBalancerSourceRanges: what the firewall chain did not send on is still addressed to the load-balancer IP
    if (p.usesFirewall)
      for (const ip of p.svc.loadBalancerIPs ?? [])
        f.rule(
          'filter',
          `-A KUBE-PROXY-FIREWALL ${comment(`${p.spn} traffic not accepted by ${iptablesFirewallChain(p.spn, p.proto)}`)} -m ${p.proto} -p ${p.proto} -d ${ip} --dport ${p.port.port} -j DROP`,
        )
    const external = noneHere(p.externalLocal)
    if (external) {
      for (const ip of p.externalAddresses)
        f.rule(
          'filter',
          `-A KUBE-EXTERNAL-SERVICES ${comment(external.text)} -m ${p.proto} -p ${p.proto} -d ${ip} --dport ${p.port.port} -j ${external.target}`,
        )
      if (nodePort)
        f.rule(
          'filter',
          `-A KUBE-EXTERNAL-SERVICES ${comment(external.text)} -m addrtype --dst-type LOCAL -m ${p.proto} -p ${p.proto} --dport ${nodePort} -j ${external.target}`,
        )
    }
    // a load balancer's health checks are accepted whether or not the node has an endpoint
    if (p.svc.healthCheckNodePort)
      f.rule(
        'filter',
        `-A KUBE-NODEPORTS ${comment(`${p.spn} health check node port`)} -m tcp -p tcp --dport ${p.svc.healthCheckNodePort} -j ACCEPT`,
      )
  }

  // nat
  for (const c of [
    'KUBE-KUBELET-CANARY',
    'KUBE-MARK-MASQ',
    'KUBE-NODEPORTS',
    'KUBE-POSTROUTING',
    'KUBE-PROXY-CANARY',
    'KUBE-SERVICES',
  ])
    f.chain('nat', c)
  f.rule('nat', `-I PREROUTING 1 ${comment('kubernetes service portals')} -j KUBE-SERVICES`)
  f.rule('nat', `-I OUTPUT 1 ${comment('kubernetes service portals')} -j KUBE-SERVICES`)
  f.rule('nat', `-I POSTROUTING 1 ${comment('kubernetes postrouting rules')} -j KUBE-POSTROUTING`)
  f.rule('nat', `-A KUBE-POSTROUTING -m mark ! --mark ${MASQ}/${MASQ} -j RETURN`)
  f.rule('nat', `-A KUBE-POSTROUTING -j MARK --xor-mark ${MASQ}`)
  f.rule(
    'nat',
    `-A KUBE-POSTROUTING ${comment('kubernetes service traffic requiring SNAT')} -j MASQUERADE --random-fully`,
  )
  f.rule('nat', `-A KUBE-MARK-MASQ -j MARK --or-mark ${MASQ}`)
  const svcRules: string[] = []
  for (const p of ports) {
    if (!p.hasEndpoints) continue
    const clusterChain = iptablesServiceChain(p.spn, p.proto)
    const localChain = iptablesLocalChain(p.spn, p.proto)
    const internalChain = p.internalLocal ? localChain : clusterChain
    const extChain = iptablesExternalChain(p.spn, p.proto)
    if (p.usesCluster) f.chain('nat', clusterChain)
    if (p.usesLocal) f.chain('nat', localChain)
    if (p.endpoints.length > 0)
      f.rule(
        'nat',
        `-A KUBE-SERVICES ${comment(`${p.spn} cluster IP`)} -m ${p.proto} -p ${p.proto} -d ${p.svc.clusterIP} --dport ${p.port.port} -j ${internalChain}`,
      )
    // external IPs and load-balancer IPs go through the external chain, as NodePorts do
    const fwChain = iptablesFirewallChain(p.spn, p.proto)
    for (const [ips, what, to] of [
      [p.svc.externalIPs ?? [], 'external IP', extChain],
      [p.svc.loadBalancerIPs ?? [], 'loadbalancer IP', p.usesFirewall ? fwChain : extChain],
    ] as const)
      for (const ip of ips)
        f.rule(
          'nat',
          `-A KUBE-SERVICES ${comment(`${p.spn} ${what}`)} -m ${p.proto} -p ${p.proto} -d ${ip} --dport ${p.port.port} -j ${to}`,
        )
    if (p.port.nodePort)
      f.rule(
        'nat',
        `-A KUBE-NODEPORTS ${comment(p.spn)} -m ${p.proto} -p ${p.proto} --dport ${p.port.nodePort} -j ${extChain}`,
      )
    if (p.external) {
      f.chain('nat', extChain)
      if (!p.externalLocal)
        svcRules.push(
          `-A ${extChain} ${comment(`masquerade traffic for ${p.spn} external destinations`)} -j KUBE-MARK-MASQ`,
          `-A ${extChain} -j ${clusterChain}`,
        )
      else {
        // the client's address kept: only the node's own endpoints, except for its pods and itself
        svcRules.push(
          `-A ${extChain} ${comment(`pod traffic for ${p.spn} external destinations`)} -s ${cidr} -j ${clusterChain}`,
          `-A ${extChain} ${comment(`masquerade LOCAL traffic for ${p.spn} external destinations`)} -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`,
          `-A ${extChain} ${comment(`route LOCAL traffic for ${p.spn} external destinations`)} -m addrtype --src-type LOCAL -j ${clusterChain}`,
          ...(p.own.length > 0 ? [`-A ${extChain} -j ${localChain}`] : []),
        )
      }
    }
    // the firewall chain: the source ranges (and the load-balancer IPs, when the node is in one) on to the external chain
    if (p.usesFirewall) {
      f.chain('nat', fwChain)
      svcRules.push(
        ...p.firewallSources.map(
          (src) => `-A ${fwChain} ${comment(`${p.spn} loadbalancer IP`)} -s ${src} -j ${extChain}`,
        ),
        `-A ${fwChain} ${comment(`other traffic to ${p.spn} will be dropped by KUBE-PROXY-FIREWALL`)}`,
      )
    }
    if (p.endpoints.length > 0)
      svcRules.push(
        `-A ${internalChain} ${comment(`${p.spn} cluster IP`)} -m ${p.proto} -p ${p.proto} -d ${p.svc.clusterIP} --dport ${p.port.port} ! -s ${cidr} -j KUBE-MARK-MASQ`,
      )
    const affinity = p.svc.sessionAffinity?.clientIP.timeoutSeconds
    // each policy chain in use, then every endpoint chain either reaches
    if (p.usesCluster) svcRules.push(...endpointRules(p, clusterChain, p.cluster, affinity))
    if (p.usesLocal) svcRules.push(...endpointRules(p, localChain, p.own, affinity))
    const reachable = [...new Set([...(p.usesCluster ? p.cluster : []), ...(p.usesLocal ? p.own : [])])].sort()
    for (const ep of reachable) {
      const sep = iptablesEndpointChain(p.spn, p.proto, ep)
      f.chain('nat', sep)
      svcRules.push(
        `-A ${sep} ${comment(p.spn)} -s ${ep.split(':')[0]!} -j KUBE-MARK-MASQ`,
        `-A ${sep} ${comment(p.spn)}${affinity !== undefined ? ` -m recent --name ${sep} --set` : ''} -m ${p.proto} -p ${p.proto} -j DNAT --to-destination ${ep}`,
      )
    }
  }
  // must be the last rule of KUBE-SERVICES
  f.rule(
    'nat',
    `-A KUBE-SERVICES ${comment('kubernetes service nodeports; NOTE: this must be the last rule in this chain')} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`,
  )
  for (const r of svcRules) f.rule('nat', r)
  return f
}

/** nftables mode: `<hash8>-<base>`, base32(sha256(base)), as kube-proxy's hashAndTruncate. */
function hashAndTruncate(base: string): string {
  const name = `${sha256Base32(base).slice(0, 8)}-${base}`
  return name.length > 200 ? `${name.slice(0, 197)}...` : name
}

/** `ns/name/proto/port` */
function nftBase(p: PortEndpoints): string {
  return `${p.svc.namespace}/${p.svc.name}/${p.proto}/${p.port.name}`
}

/** The Cluster policy's chain: `service-`. */
export function nftServiceChain(p: PortEndpoints): string {
  return `service-${hashAndTruncate(nftBase(p))}`
}

/** The Local policy's chain: `local-` (internalTrafficPolicy or externalTrafficPolicy Local). */
function nftLocalChain(p: PortEndpoints): string {
  return `local-${hashAndTruncate(nftBase(p))}`
}

function nftExternalChain(p: PortEndpoints): string {
  return `external-${hashAndTruncate(nftBase(p))}`
}

/** loadBalancerSourceRanges: the `firewall-` chain, reached through the `firewall-ips` map before DNAT. */
function nftFirewallChain(p: PortEndpoints): string {
  return `firewall-${hashAndTruncate(nftBase(p))}`
}

function nftEndpointChain(p: PortEndpoints, endpoint: string): string {
  return `endpoint-${hashAndTruncate(`${nftBase(p)}__${endpoint.replace(':', '/')}`)}`
}

/** The ClientIP affinity set of an endpoint: its chain's name with `affinity-` for `endpoint-`. */
function nftAffinitySet(p: PortEndpoints, endpoint: string): string {
  return `affinity-${hashAndTruncate(`${nftBase(p)}__${endpoint.replace(':', '/')}`)}`
}

/** The `nft -f` transaction kube-proxy (nftables mode) runs on a fresh node: table `ip kube-proxy`. */
export function kubeProxyNftables(plan: LabPlan, node: LabNode, services: readonly LabService[]): string {
  const t = 'ip kube-proxy'
  const cidr = plan.clusterCIDR
  const L: string[] = [
    `add table ${t} { comment "rules for kube-proxy" ; }`,
    `add set ${t} cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }`,
    `add set ${t} nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }`,
    `add map ${t} firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }`,
    `add map ${t} no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }`,
    `add map ${t} no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }`,
    `add map ${t} service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`,
    `add map ${t} service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }`,
    `add chain ${t} cluster-ips-check`,
    `add chain ${t} filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }`,
    `add chain ${t} filter-output-pre-dnat { type filter hook output priority -110 ; }`,
    `add chain ${t} filter-forward { type filter hook forward priority 0 ; }`,
    `add chain ${t} filter-input { type filter hook input priority 0 ; }`,
    `add chain ${t} filter-output { type filter hook output priority 0 ; }`,
    `add chain ${t} firewall-check`,
    `add chain ${t} mark-for-masquerade`,
    `add chain ${t} masquerading`,
    `add chain ${t} nat-output { type nat hook output priority -100 ; }`,
    `add chain ${t} nat-postrouting { type nat hook postrouting priority 100 ; }`,
    `add chain ${t} nat-prerouting { type nat hook prerouting priority -100 ; }`,
    `add chain ${t} nodeport-endpoints-check`,
    `add chain ${t} reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }`,
    `add chain ${t} services`,
    `add chain ${t} service-endpoints-check`,
    `add rule ${t} cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`,
    `add rule ${t} cluster-ips-check ip daddr { ${SERVICE_CIDR} } drop comment "Drop traffic to unallocated ClusterIPs"`,
    `add rule ${t} filter-prerouting-pre-dnat ct state new jump firewall-check`,
    `add rule ${t} filter-forward ct state new jump service-endpoints-check`,
    `add rule ${t} filter-forward ct state new jump cluster-ips-check`,
    `add rule ${t} filter-input ct state new jump nodeport-endpoints-check`,
    `add rule ${t} filter-input ct state new jump service-endpoints-check`,
    `add rule ${t} filter-output ct state new jump service-endpoints-check`,
    `add rule ${t} filter-output-pre-dnat ct state new jump firewall-check`,
    `add rule ${t} filter-output ct state new jump cluster-ips-check`,
    `add rule ${t} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips`,
    `add rule ${t} mark-for-masquerade mark set mark or ${MASQ}`,
    `add rule ${t} masquerading mark and ${MASQ} == 0 return`,
    `add rule ${t} masquerading mark set mark xor ${MASQ}`,
    `add rule ${t} masquerading masquerade fully-random`,
    `add rule ${t} nat-output jump services`,
    `add rule ${t} nat-postrouting jump masquerading`,
    `add rule ${t} nat-prerouting jump services`,
    `add rule ${t} nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports`,
    `add rule ${t} reject-chain reject`,
    `add rule ${t} services ip daddr . meta l4proto . th dport vmap @service-ips`,
    `add rule ${t} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports`,
    `add element ${t} nodeport-ips { ${node.ip} }`,
    `add rule ${t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services`,
  ]
  for (const p of servicePorts(services, node)) {
    const key = `${p.svc.clusterIP} . ${p.proto} . ${p.port.port}`
    const nodePort = p.port.nodePort
    L.push(`add element ${t} cluster-ips { ${p.svc.clusterIP} }`)
    // external IPs and load-balancer IPs without an endpoint for them: rejected (none at all) or dropped (Local, none here)
    const externalVerdict = !p.hasEndpoints
      ? 'goto reject-chain'
      : p.externalLocal && p.own.length === 0
        ? 'drop'
        : undefined
    const externalKeys = p.externalAddresses.map((ip) => `${ip} . ${p.proto} . ${p.port.port}`)
    if (!p.hasEndpoints) {
      L.push(`add element ${t} no-endpoint-services { ${key} comment "${p.spn}" : goto reject-chain }`)
      L.push(
        ...externalKeys.map(
          (k) => `add element ${t} no-endpoint-services { ${k} comment "${p.spn}" : ${externalVerdict} }`,
        ),
      )
      if (nodePort)
        L.push(
          `add element ${t} no-endpoint-nodeports { ${p.proto} . ${nodePort} comment "${p.spn}" : goto reject-chain }`,
        )
      continue
    }
    const clusterChain = nftServiceChain(p)
    const localChain = nftLocalChain(p)
    const internalChain = p.internalLocal ? localChain : clusterChain
    const affinity = p.svc.sessionAffinity?.clientIP.timeoutSeconds
    const reachable = [...new Set([...(p.usesCluster ? p.cluster : []), ...(p.usesLocal ? p.own : [])])].sort()
    const eps = reachable.map((ep) => ({ep, chain: nftEndpointChain(p, ep), set: nftAffinitySet(p, ep)}))
    const byEp = new Map(eps.map((e) => [e.ep, e]))
    // chains first: a verdict map may only name chains that exist
    L.push(
      ...(p.usesCluster ? [`add chain ${t} ${clusterChain}`] : []),
      ...(p.usesLocal ? [`add chain ${t} ${localChain}`] : []),
      ...eps.map((e) => `add chain ${t} ${e.chain}`),
    )
    // ClientIP affinity: a set per endpoint of the clients it served, each kept for the timeout
    if (affinity !== undefined)
      L.push(
        ...eps.map((e) => `add set ${t} ${e.set} { type ipv4_addr ; flags dynamic,timeout ; timeout ${affinity}s ; }`),
      )
    if (p.endpoints.length > 0)
      L.push(
        `add rule ${t} ${internalChain} ip daddr ${p.svc.clusterIP} ${p.proto} dport ${p.port.port} ip saddr != ${cidr} jump mark-for-masquerade`,
      )
    // each policy chain in use: affinity lookups, then the random pick among its endpoints
    const policy = (chain: string, endpoints: readonly string[]): void => {
      const mine = endpoints.map((ep) => byEp.get(ep)!)
      if (affinity !== undefined)
        L.push(...mine.map((e) => `add rule ${t} ${chain} ip saddr @${e.set} goto ${e.chain}`))
      L.push(
        `add rule ${t} ${chain} numgen random mod ${mine.length} vmap { ${mine.map((e, i) => `${i} : goto ${e.chain}`).join(' , ')} }`,
      )
    }
    if (p.usesCluster) policy(clusterChain, p.cluster)
    if (p.usesLocal) policy(localChain, p.own)
    if (p.external) {
      const ext = nftExternalChain(p)
      L.push(`add chain ${t} ${ext}`)
      if (!p.externalLocal)
        L.push(`add rule ${t} ${ext} jump mark-for-masquerade`, `add rule ${t} ${ext} goto ${clusterChain}`)
      else
        // the client's address kept: only the node's own endpoints, except for its pods and itself
        L.push(
          `add rule ${t} ${ext} ip saddr ${cidr} goto ${clusterChain} comment "short-circuit pod traffic"`,
          `add rule ${t} ${ext} fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"`,
          `add rule ${t} ${ext} fib saddr type local goto ${clusterChain} comment "short-circuit local traffic"`,
          ...(p.own.length > 0 ? [`add rule ${t} ${ext} goto ${localChain}`] : []),
        )
    }
    for (const e of eps) {
      L.push(
        `add rule ${t} ${e.chain} ip saddr ${e.ep.split(':')[0]} jump mark-for-masquerade`,
        ...(affinity !== undefined ? [`add rule ${t} ${e.chain} update @${e.set} { ip saddr }`] : []),
        `add rule ${t} ${e.chain} meta l4proto ${p.proto} dnat to ${e.ep}`,
      )
    }
    // internalTrafficPolicy Local, every endpoint on another node: dropped
    L.push(
      p.endpoints.length > 0
        ? `add element ${t} service-ips { ${key} : goto ${internalChain} }`
        : `add element ${t} no-endpoint-services { ${key} comment "${p.spn}" : drop }`,
    )
    L.push(...externalKeys.map((k) => `add element ${t} service-ips { ${k} : goto ${nftExternalChain(p)} }`))
    if (p.usesFirewall) {
      const fw = nftFirewallChain(p)
      L.push(
        `add chain ${t} ${fw}`,
        `add rule ${t} ${fw} ip saddr != { ${p.firewallSources.join(', ')} } drop`,
        ...(p.svc.loadBalancerIPs ?? []).map(
          (ip) => `add element ${t} firewall-ips { ${ip} . ${p.proto} . ${p.port.port} : goto ${fw} }`,
        ),
      )
    }
    if (externalVerdict)
      L.push(
        ...externalKeys.map(
          (k) => `add element ${t} no-endpoint-services { ${k} comment "${p.spn}" : ${externalVerdict} }`,
        ),
      )
    if (nodePort) {
      L.push(`add element ${t} service-nodeports { ${p.proto} . ${nodePort} : goto ${nftExternalChain(p)} }`)
      if (p.externalLocal && p.own.length === 0)
        L.push(`add element ${t} no-endpoint-nodeports { ${p.proto} . ${nodePort} comment "${p.spn}" : drop }`)
    }
  }
  return `${L.join('\n')}\n`
}
