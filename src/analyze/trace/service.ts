/**
 * A Service as `netctl trace` DST: `svc/NAME` (in the namespace given), `svc/NS/NAME`,
 * `dns` (the cluster DNS Service), `NAME.NS.svc[.cluster.local]` (or `NAME.NS`, as a pod's resolver
 * completes it, when no pod or node has that name), a ClusterIP, or
 * `NODE:NODEPORT` / `NODEIP:NODEPORT`, an external IP or a load balancer's IP (`IP`, `IP:PORT`); the port by number or by the Service
 * port's name, the protocol the Service port's. Pure: the snapshot's Services in,
 * the packet's destination out; anything unknown is a one-line UsageError (exit 2).
 */
import ipaddr from 'ipaddr.js'

import {UsageError} from '../../errors.js'
import type {InventoryEndpoint, InventoryService, InventoryServicePort} from '../../model/inventory.js'
import type {Snapshot} from '../../model/snapshot.js'
import type {Protocol, ServiceVia} from '../../model/trace.js'
import {closest} from '../../util/edit-distance.js'
import {isReady} from '../service-endpoints.js'
import type {TraceQuery} from './api.js'

/** The cluster DNS Service's names, as kubeadm (kube-dns, the name kept for CoreDNS) and some distributions (coredns) call it. */
const CLUSTER_DNS_NAMES = ['kube-dns', 'coredns']
const CLUSTER_DNS_NAMESPACE = 'kube-system'

/** A Service DST resolved: the Service, its port, and where the packet is sent. */
export interface ServiceTarget {
  service: InventoryService
  port: InventoryServicePort
  /** how DST named it: through its ClusterIP, a node's NodePort, an external IP or a load-balancer IP */
  via: ServiceVia
  /** the packet's destination: the ClusterIP, the node's address for a NodePort, the external or load-balancer IP */
  ip: string
  /** the packet's destination port: the Service port, or the NodePort */
  dport: number
  protocol: Protocol
  /** the node addressed, for a NodePort */
  node?: string
}

const SVC_DNS = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?\.?$/
/** NAME.NAMESPACE: what a pod's resolver completes with its search domain svc.cluster.local */
const SVC_SHORT = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)$/

function isIp(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text) || (text.includes(':') && ipaddr.IPv6.isValid(text))
}

const sameIp = (a: string, b: string): boolean =>
  isIp(a) && isIp(b) && ipaddr.parse(a).toNormalizedString() === ipaddr.parse(b).toNormalizedString()

function services(snapshot: Snapshot): InventoryService[] {
  return snapshot.services ?? []
}

function byName(snapshot: Snapshot, namespace: string, name: string, typed: string): InventoryService {
  const all = services(snapshot)
  const svc = all.find((s) => s.namespace === namespace && s.name === name)
  if (svc) return svc
  if (all.length === 0)
    throw new UsageError(
      `no Service ${namespace}/${name}: the snapshot of cluster ${snapshot.cluster.name} holds no Services (an inventory lists them under services:)`,
      false,
    )
  const elsewhere = all.filter((s) => s.name === name).map((s) => s.namespace)
  const guess = closest(
    `${namespace}/${name}`,
    all.map((s) => `${s.namespace}/${s.name}`),
  )
  const hint =
    elsewhere.length > 0
      ? ` (${name} is in namespace ${elsewhere.join(', ')}: svc/${elsewhere[0]}/${name})`
      : guess
        ? ` (did you mean svc/${guess}?)`
        : ''
  throw new UsageError(
    `no Service ${namespace}/${name} in cluster ${snapshot.cluster.name} (from '${typed}')${hint}`,
    false,
  )
}

const isClusterDns = (s: InventoryService): boolean =>
  s.namespace === CLUSTER_DNS_NAMESPACE && CLUSTER_DNS_NAMES.includes(s.name)

const portText = (p: InventoryServicePort): string => `${p.name ? `${p.name} ` : ''}${p.port}/${p.protocol}`

/** The Service port `--port` names (a number or a name); the only one when none is given; UDP 53 for the cluster DNS. */
function pickPort(
  svc: InventoryService,
  wanted: number | string | undefined,
  protocol: Protocol | undefined,
  opts: {dns?: boolean; nodePort?: number} = {},
): InventoryServicePort {
  const key = `${svc.namespace}/${svc.name}`
  const proto = (p: InventoryServicePort): boolean => protocol === undefined || p.protocol.toLowerCase() === protocol
  let ports = svc.ports.filter(proto)
  if (opts.nodePort !== undefined) {
    const p = ports.find((x) => x.nodePort === opts.nodePort)
    if (!p) throw new UsageError(`Service ${key} has no NodePort ${opts.nodePort}${nodePorts(svc)}`, false)
    return p
  }
  if (wanted !== undefined) {
    ports = typeof wanted === 'number' ? ports.filter((p) => p.port === wanted) : ports.filter((p) => p.name === wanted)
    if (ports.length === 0) {
      const what = typeof wanted === 'number' ? `port ${wanted}` : `port named '${wanted}'`
      throw new UsageError(
        `Service ${key} has no ${what}${protocol ? `/${protocol.toUpperCase()}` : ''} (its ports: ${svc.ports.map(portText).join(', ') || 'none'})`,
        false,
      )
    }
  }
  if (ports.length === 0)
    throw new UsageError(
      `Service ${key} has no ${protocol ? `${protocol.toUpperCase()} ` : ''}port (its ports: ${svc.ports.map(portText).join(', ') || 'none'})`,
      false,
    )
  if (ports.length === 1) return ports[0]!
  // the cluster DNS is asked over UDP 53
  const dns = opts.dns ? ports.find((p) => p.protocol === 'UDP' && p.port === 53) : undefined
  if (dns) return dns
  throw new UsageError(
    `Service ${key} has several ports (${ports.map(portText).join(', ')}): say which with --port NUMBER|NAME`,
    false,
  )
}

function nodePorts(svc: InventoryService): string {
  const np = svc.ports.filter((p) => p.nodePort !== undefined).map((p) => `${p.nodePort}/${p.protocol}`)
  return np.length > 0 ? ` (its NodePorts: ${np.join(', ')})` : ' (it has no NodePort)'
}

function clusterTarget(svc: InventoryService, port: InventoryServicePort): ServiceTarget {
  return {
    service: svc,
    port,
    via: 'clusterIP',
    ip: svc.clusterIP,
    dport: port.port,
    protocol: port.protocol.toLowerCase() as Protocol,
  }
}

/** The Service (and how) whose external IP or load-balancer IP `ip` is. */
function externalOwner(snapshot: Snapshot, ip: string): {svc: InventoryService; via: ServiceVia} | undefined {
  for (const svc of services(snapshot)) {
    if ((svc.externalIPs ?? []).some((a) => sameIp(a, ip))) return {svc, via: 'externalIP'}
    if ((svc.loadBalancerIPs ?? []).some((a) => sameIp(a, ip))) return {svc, via: 'loadBalancerIP'}
  }
  return undefined
}

/** A Service reached at one of its external or load-balancer IPs: the packet goes there, to the Service port. */
function externalTarget(
  owner: {svc: InventoryService; via: ServiceVia},
  ip: string,
  port: InventoryServicePort,
): ServiceTarget {
  return {
    service: owner.svc,
    port,
    via: owner.via,
    ip,
    dport: port.port,
    protocol: port.protocol.toLowerCase() as Protocol,
  }
}

/** `NODE:NODEPORT` or `NODEIP:NODEPORT`: the node, the port; undefined when DST is not of that shape. */
function nodePortForm(snapshot: Snapshot, text: string): {node: string; ip: string; port: number} | undefined {
  const m = /^(.+):(\d{1,5})$/.exec(text)
  if (!m || (m[1]!.includes(':') && !m[1]!.startsWith('['))) return undefined
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1')
  const node = snapshot.nodes.find(
    (n) => n.name === host || sameIp(n.internalIP, host) || (n.externalIP !== undefined && sameIp(n.externalIP, host)),
  )
  if (!node)
    throw new UsageError(
      `no node '${host}' in cluster ${snapshot.cluster.name} (NODE:NODEPORT names a node by its name or address)`,
      false,
    )
  return {node: node.name, ip: isIp(host) ? host : node.internalIP, port: Number(m[2])}
}

/**
 * DST as a Service, or undefined when it names a pod or a node. `namespace`
 * is where a bare `svc/NAME` is looked up (-n, else the context's, else default).
 */
export function resolveServiceTarget(
  snapshot: Snapshot,
  query: Pick<TraceQuery, 'dst' | 'port' | 'protocol'>,
  namespace = 'default',
): ServiceTarget | undefined {
  const t = query.dst.trim()
  const wanted = query.port
  const protocol = query.protocol === 'icmp' ? undefined : query.protocol
  const named = (ns: string, name: string): ServiceTarget => {
    const svc = byName(snapshot, ns, name, t)
    return clusterTarget(svc, pickPort(svc, wanted, protocol, {dns: isClusterDns(svc)}))
  }
  if (t.startsWith('svc/')) {
    const parts = t.slice(4).split('/')
    if (parts.some((p) => p === '') || parts.length > 2)
      throw new UsageError(`'${t}' is not a Service: use svc/NAME or svc/NAMESPACE/NAME`)
    return parts.length === 2 ? named(parts[0]!, parts[1]!) : named(namespace, parts[0]!)
  }
  const dnsName = SVC_DNS.exec(t)
  if (dnsName) return named(dnsName[3]!, dnsName[1]!)
  // a pod or a node of that name comes first (pod and node names may hold dots); a Service only where one exists
  const short = SVC_SHORT.exec(t)
  if (short && !snapshot.pods.some((p) => p.name === t) && !snapshot.nodes.some((n) => n.name === t)) {
    const svc = services(snapshot).find((x) => x.namespace === short[3] && x.name === short[1])
    if (svc) return clusterTarget(svc, pickPort(svc, wanted, protocol, {dns: isClusterDns(svc)}))
  }
  if (t === 'dns' && !snapshot.pods.some((p) => p.name === 'dns') && !snapshot.nodes.some((n) => n.name === 'dns')) {
    const svc = services(snapshot).find(isClusterDns)
    if (!svc)
      throw new UsageError(
        `no cluster DNS Service in cluster ${snapshot.cluster.name} (looked for ${CLUSTER_DNS_NAMES.map((n) => `${CLUSTER_DNS_NAMESPACE}/${n}`).join(' and ')})`,
        false,
      )
    return clusterTarget(svc, pickPort(svc, wanted, protocol, {dns: true}))
  }
  if (isIp(t)) {
    const svc = services(snapshot).find((s) => sameIp(s.clusterIP, t))
    if (svc) return clusterTarget(svc, pickPort(svc, wanted, protocol, {dns: isClusterDns(svc)}))
    const owner = externalOwner(snapshot, t)
    return owner ? externalTarget(owner, t, pickPort(owner.svc, wanted, protocol)) : undefined
  }
  // EXTERNALIP:PORT, as a client outside the cluster would name it
  const hostPort = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(t)
  const owner = hostPort && isIp(hostPort[1]!) ? externalOwner(snapshot, hostPort[1]!) : undefined
  if (owner && hostPort)
    return externalTarget(owner, hostPort[1]!, pickPort(owner.svc, wanted ?? Number(hostPort[2]), protocol))
  const np = nodePortForm(snapshot, t)
  if (np) {
    const svc = services(snapshot).find((s) =>
      s.ports.some((p) => p.nodePort === np.port && (protocol === undefined || p.protocol.toLowerCase() === protocol)),
    )
    if (!svc)
      throw new UsageError(
        `no Service has NodePort ${np.port}${protocol ? `/${protocol.toUpperCase()}` : ''} in cluster ${snapshot.cluster.name}`,
        false,
      )
    const port = pickPort(svc, undefined, protocol, {nodePort: np.port})
    return {
      service: svc,
      port,
      via: 'nodePort',
      ip: np.ip,
      dport: np.port,
      protocol: port.protocol.toLowerCase() as Protocol,
      node: np.node,
    }
  }
  return undefined
}

/** Ready endpoints of the Service, as the EndpointSlices list them (no `conditions.ready` is ready, as kube-proxy reads it). */
export function readyEndpoints(svc: InventoryService): InventoryEndpoint[] {
  return (svc.endpoints ?? []).filter(isReady)
}

/** The endpoint (pod or address) an `--endpoint IP|POD` names, among the Service's and the rules' addresses. */
export function pickEndpoint(snapshot: Snapshot, svc: InventoryService, addresses: string[], text: string): string {
  const t = text.trim()
  if (isIp(t)) {
    const ip = addresses.find((a) => sameIp(a, t))
    if (ip) return ip
  } else {
    const [ns, name] = t.includes('/') ? (t.split('/', 2) as [string, string]) : [undefined, t]
    const pod = snapshot.pods.find(
      (p) => p.name === name && (ns === undefined || p.namespace === ns) && addresses.includes(p.ip),
    )
    if (pod) return pod.ip
    const ref = (svc.endpoints ?? []).find(
      (e) => e.targetRef?.name === name && (ns === undefined || e.targetRef.namespace === ns),
    )
    if (ref?.addresses[0]) return ref.addresses[0]
  }
  throw new UsageError(
    `--endpoint ${t}: not an endpoint of Service ${svc.namespace}/${svc.name} (its endpoints: ${addresses.join(', ') || 'none'})`,
    false,
  )
}

/**
 * The query's protocol and port checked and completed: a Service DST takes the
 * Service port's protocol and port; any other DST sends ICMP unless told, and
 * a port goes with tcp or udp only.
 */
export function completeQuery(
  snapshot: Snapshot,
  query: TraceQuery,
  namespace?: string,
): {query: TraceQuery & {protocol: Protocol}; target?: ServiceTarget} {
  const target = resolveServiceTarget(snapshot, query, namespace)
  if (target) {
    if (query.protocol === 'icmp')
      throw new UsageError(
        `${query.dst.trim()} is Service ${target.service.namespace}/${target.service.name}: kube-proxy translates TCP and UDP only; leave out --protocol icmp`,
      )
    return {query: {...query, protocol: target.protocol, port: target.dport}, target}
  }
  if (query.endpoint !== undefined)
    throw new UsageError(
      `--endpoint is for a Service DST (svc/NAME, a ClusterIP, NODE:NODEPORT, an external or load-balancer IP, dns); ${query.dst.trim()} is not one`,
    )
  const protocol = query.protocol ?? 'icmp'
  if (typeof query.port === 'string')
    throw new UsageError(
      `--port ${query.port}: a port by name is a Service port's; ${query.dst.trim()} is not a Service`,
    )
  if (protocol === 'icmp' && query.port !== undefined)
    throw new UsageError('--port is for --protocol tcp or udp; ICMP has no ports')
  if (protocol !== 'icmp' && query.port === undefined)
    throw new UsageError(`--protocol ${protocol} needs --port (the destination port)`)
  return {query: {...query, protocol}}
}
