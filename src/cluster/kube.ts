import {isIPv4} from 'node:net'

import {NetctlError, UsageError} from '../errors.js'
import {
  type Inventory,
  INVENTORY_API_VERSION,
  type InventoryContainerPort,
  type InventoryEndpoint,
  type InventoryService,
} from '../model/inventory.js'
import {type ClusterObjects, detectCni, type Detection} from './detect.js'
import {KubeApi, KubeApiError} from './kube-api.js'
import type {KubeConnectOptions} from './kube-config.js'
import type {
  CalicoBGPConfiguration,
  CalicoBGPPeer,
  CalicoIPPool,
  KubeConfigMap,
  KubeDaemonSet,
  KubeEndpointSlice,
  KubeNetworkPolicy,
  KubeNode,
  KubeObject,
  KubePod,
  KubeService,
  Taint,
} from './kube-types.js'

export type {KubeConnectOptions} from './kube-config.js'

/** The node annotations netctl reads, by name. */
export const ANNOTATIONS = {
  flannelBackendData: 'flannel.alpha.coreos.com/backend-data',
  flannelBackendType: 'flannel.alpha.coreos.com/backend-type',
  flannelPublicIP: 'flannel.alpha.coreos.com/public-ip',
  calicoIPv4Address: 'projectcalico.org/IPv4Address',
  calicoIPIPTunnelAddr: 'projectcalico.org/IPv4IPIPTunnelAddr',
  calicoVXLANTunnelAddr: 'projectcalico.org/IPv4VXLANTunnelAddr',
  calicoASNumber: 'projectcalico.org/ASNumber',
  calicoRRClusterID: 'projectcalico.org/RouteReflectorClusterID',
} as const

export interface ClusterNode {
  name: string
  internalIP: string
  externalIP?: string
  /** spec.podCIDR (the first IPv4 one of spec.podCIDRs); '' when the node has none */
  podCIDR: string
  podCIDRs: string[]
  ready: boolean
  unschedulable: boolean
  taints: Taint[]
  labels: Record<string, string>
  annotations: Record<string, string>
  flannel?: {backendType?: string; vtepMAC?: string; vni?: number; publicIP?: string}
  calico?: {
    ipv4Address?: string
    ipipTunnelAddr?: string
    vxlanTunnelAddr?: string
    asNumber?: number
    routeReflectorClusterID?: string
  }
}

export interface ClusterPod {
  name: string
  namespace: string
  node: string
  ip: string
  ips: string[]
  hostNetwork: boolean
  phase: string
  labels: Record<string, string>
  /** the containers' ports (NetworkPolicies name ports by these names) */
  ports: InventoryContainerPort[]
}

/** A node as netctl needs it, from the Node object alone. */
export function nodeFacts(node: KubeNode): ClusterNode {
  const a = node.metadata.annotations ?? {}
  const addr = (type: string): string | undefined => node.status?.addresses?.find((x) => x.type === type)?.address
  const podCIDRs = node.spec?.podCIDRs ?? (node.spec?.podCIDR ? [node.spec.podCIDR] : [])
  const out: ClusterNode = {
    name: node.metadata.name,
    internalIP: addr('InternalIP') ?? '',
    podCIDR: podCIDRs.find((c) => isIPv4(c.split('/')[0]!)) ?? node.spec?.podCIDR ?? '',
    podCIDRs,
    ready: node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True',
    unschedulable: node.spec?.unschedulable === true,
    taints: node.spec?.taints ?? [],
    labels: node.metadata.labels ?? {},
    annotations: a,
  }
  const ext = addr('ExternalIP')
  if (ext) out.externalIP = ext
  if (a[ANNOTATIONS.flannelBackendType] !== undefined || a[ANNOTATIONS.flannelBackendData] !== undefined) {
    const flannel: NonNullable<ClusterNode['flannel']> = {}
    if (a[ANNOTATIONS.flannelBackendType]) flannel.backendType = a[ANNOTATIONS.flannelBackendType]
    if (a[ANNOTATIONS.flannelPublicIP]) flannel.publicIP = a[ANNOTATIONS.flannelPublicIP]
    try {
      // vxlan: {"VNI":1,"VtepMAC":"..."}; host-gw and udp: null
      const data = JSON.parse(a[ANNOTATIONS.flannelBackendData] ?? 'null') as {VtepMAC?: unknown; VNI?: unknown} | null
      if (data && typeof data.VtepMAC === 'string') flannel.vtepMAC = data.VtepMAC
      if (data && typeof data.VNI === 'number') flannel.vni = data.VNI
    } catch {
      /* an unreadable annotation is reported by the checks, not here */
    }
    out.flannel = flannel
  }
  const calicoKeys = [
    ANNOTATIONS.calicoIPv4Address,
    ANNOTATIONS.calicoIPIPTunnelAddr,
    ANNOTATIONS.calicoVXLANTunnelAddr,
    ANNOTATIONS.calicoASNumber,
    ANNOTATIONS.calicoRRClusterID,
  ]
  if (calicoKeys.some((k) => a[k] !== undefined)) {
    const calico: NonNullable<ClusterNode['calico']> = {}
    if (a[ANNOTATIONS.calicoIPv4Address]) calico.ipv4Address = a[ANNOTATIONS.calicoIPv4Address]
    if (a[ANNOTATIONS.calicoIPIPTunnelAddr]) calico.ipipTunnelAddr = a[ANNOTATIONS.calicoIPIPTunnelAddr]
    if (a[ANNOTATIONS.calicoVXLANTunnelAddr]) calico.vxlanTunnelAddr = a[ANNOTATIONS.calicoVXLANTunnelAddr]
    if (a[ANNOTATIONS.calicoASNumber] && /^\d+$/.test(a[ANNOTATIONS.calicoASNumber]!))
      calico.asNumber = Number(a[ANNOTATIONS.calicoASNumber])
    if (a[ANNOTATIONS.calicoRRClusterID]) calico.routeReflectorClusterID = a[ANNOTATIONS.calicoRRClusterID]
    out.calico = calico
  }
  return out
}

export function podFacts(pod: KubePod): ClusterPod {
  const ips = pod.status?.podIPs?.map((p) => p.ip) ?? (pod.status?.podIP ? [pod.status.podIP] : [])
  return {
    name: pod.metadata.name,
    namespace: pod.metadata.namespace ?? '',
    node: pod.spec?.nodeName ?? '',
    ip: pod.status?.podIP ?? ips[0] ?? '',
    ips,
    hostNetwork: pod.spec?.hostNetwork === true,
    phase: pod.status?.phase ?? 'Unknown',
    labels: pod.metadata.labels ?? {},
    ports: (pod.spec?.containers ?? []).flatMap((c) => containerPorts(c.ports)),
  }
}

/** spec.containers[].ports as the API holds them, the protocol defaulted to TCP as the API server does. */
function containerPorts(ports: unknown): InventoryContainerPort[] {
  if (!Array.isArray(ports)) return []
  return ports.flatMap((p: Record<string, unknown>) => {
    if (typeof p?.containerPort !== 'number') return []
    const protocol = p.protocol === 'UDP' || p.protocol === 'SCTP' ? p.protocol : 'TCP'
    return [
      {
        ...(typeof p.name === 'string' && p.name !== '' ? {name: p.name} : {}),
        containerPort: p.containerPort,
        protocol,
      },
    ]
  })
}

/** The smallest IPv4 prefix holding every given CIDR (the cluster CIDR when nothing names it). */
export function coveringCIDR(cidrs: readonly string[]): string {
  const v4 = cidrs.filter((c) => isIPv4(c.split('/')[0]!))
  if (v4.length === 0) return ''
  const toInt = (ip: string): number => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0)
  let lo = Infinity
  let hi = -Infinity
  for (const c of v4) {
    const [ip, len] = c.split('/') as [string, string]
    const start = toInt(ip)
    const size = 2 ** (32 - Number(len))
    lo = Math.min(lo, start - (start % size))
    hi = Math.max(hi, start - (start % size) + size - 1)
  }
  let len = 32
  while (len > 0 && Math.floor(lo / 2 ** (32 - len)) !== Math.floor(hi / 2 ** (32 - len))) len--
  const base = Math.floor(lo / 2 ** (32 - len)) * 2 ** (32 - len)
  return `${[24, 16, 8, 0].map((s) => Math.floor(base / 2 ** s) % 256).join('.')}/${len}`
}

/** The parts of the API netctl reads. */
const PATHS = {
  nodes: '/api/v1/nodes',
  pods: (ns?: string) => (ns ? `/api/v1/namespaces/${encodeURIComponent(ns)}/pods` : '/api/v1/pods'),
  configMaps: '/api/v1/configmaps',
  daemonSets: '/apis/apps/v1/daemonsets',
  networkPolicies: '/apis/networking.k8s.io/v1/networkpolicies',
  ipPools: '/apis/crd.projectcalico.org/v1/ippools',
  bgpConfigurations: '/apis/crd.projectcalico.org/v1/bgpconfigurations',
  bgpPeers: '/apis/crd.projectcalico.org/v1/bgppeers',
  blockAffinities: '/apis/crd.projectcalico.org/v1/blockaffinities',
  services: '/api/v1/services',
  endpointSlices: '/apis/discovery.k8s.io/v1/endpointslices',
}

/** The label an EndpointSlice names its Service by. */
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name'

/** An endpoint's topology hints as the inventory keeps them: the named zones and nodes; none: no field. */
function hintsOf(
  h: NonNullable<NonNullable<KubeEndpointSlice['endpoints']>[number]['hints']> | undefined,
): Pick<InventoryEndpoint, 'hints'> {
  const names = (xs: Array<{name?: string}> | undefined): Array<{name: string}> =>
    (xs ?? []).flatMap((x) => (typeof x.name === 'string' && x.name !== '' ? [{name: x.name}] : []))
  const forZones = names(h?.forZones)
  const forNodes = names(h?.forNodes)
  if (forZones.length === 0 && forNodes.length === 0) return {}
  return {hints: {...(forZones.length > 0 ? {forZones} : {}), ...(forNodes.length > 0 ? {forNodes} : {})}}
}

/**
 * Services with their EndpointSlices' endpoints, as an inventory's `services:`
 * holds them: a named targetPort taken from the slices' port of that name (what
 * kube-proxy programs); headless and ExternalName Services left out (no ClusterIP to trace to).
 */
export function servicesOf(services: KubeService[], slices: KubeEndpointSlice[]): InventoryService[] {
  const out: InventoryService[] = []
  for (const svc of services) {
    const ip = svc.spec?.clusterIP
    if (!ip || ip === 'None' || svc.spec?.type === 'ExternalName') continue
    const ns = svc.metadata.namespace ?? 'default'
    const own = slices.filter(
      (s) =>
        (s.metadata.namespace ?? 'default') === ns &&
        s.metadata.labels?.[SERVICE_NAME_LABEL] === svc.metadata.name &&
        s.addressType !== 'FQDN',
    )
    const ports = (svc.spec?.ports ?? []).map((p) => {
      const protocol = p.protocol ?? 'TCP'
      const named =
        typeof p.targetPort === 'string'
          ? own.flatMap((s) => s.ports ?? []).find((x) => x.name === (p.name ?? '') && x.port !== undefined)?.port
          : undefined
      const targetPort =
        typeof p.targetPort === 'number' ? p.targetPort : (named ?? (p.targetPort === undefined ? p.port : undefined))
      return {
        ...(p.name ? {name: p.name} : {}),
        protocol,
        port: p.port,
        ...(targetPort !== undefined ? {targetPort} : {}),
        ...(p.nodePort ? {nodePort: p.nodePort} : {}),
      }
    })
    const endpoints = own.flatMap((s) =>
      (s.endpoints ?? []).map((e) => ({
        addresses: e.addresses,
        ...(e.conditions ? {conditions: e.conditions} : {}),
        ...(e.nodeName ? {nodeName: e.nodeName} : {}),
        ...(e.zone ? {zone: e.zone} : {}),
        ...hintsOf(e.hints),
        ...(e.targetRef?.kind && e.targetRef.name
          ? {
              targetRef: {
                kind: e.targetRef.kind,
                name: e.targetRef.name,
                ...(e.targetRef.namespace ? {namespace: e.targetRef.namespace} : {}),
              },
            }
          : {}),
      })),
    )
    const type = svc.spec?.type === 'NodePort' || svc.spec?.type === 'LoadBalancer' ? svc.spec.type : 'ClusterIP'
    // kube-proxy's default stickiness when the config leaves it out (v1.DefaultClientIPServiceAffinitySeconds)
    const affinity =
      svc.spec?.sessionAffinity === 'ClientIP'
        ? {
            sessionAffinity: {
              clientIP: {timeoutSeconds: svc.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800},
            },
          }
        : {}
    const local = {
      ...(svc.spec?.internalTrafficPolicy === 'Local' ? {internalTrafficPolicy: 'Local' as const} : {}),
      ...(svc.spec?.externalTrafficPolicy === 'Local' ? {externalTrafficPolicy: 'Local' as const} : {}),
    }
    const distribution = svc.spec?.trafficDistribution ? {trafficDistribution: svc.spec.trafficDistribution} : {}
    // the addresses kube-proxy captures besides the ClusterIP: externalIPs, and a load balancer's VIPs (not a Proxy ingress)
    const externalIPs = (svc.spec?.externalIPs ?? []).filter((a) => isIPv4(a))
    const loadBalancerIPs = (svc.status?.loadBalancer?.ingress ?? []).flatMap((i) =>
      i.ip && isIPv4(i.ip) && i.ipMode !== 'Proxy' ? [i.ip] : [],
    )
    const external = {
      ...(externalIPs.length > 0 ? {externalIPs} : {}),
      ...(type === 'LoadBalancer' && loadBalancerIPs.length > 0 ? {loadBalancerIPs} : {}),
      ...(type === 'LoadBalancer' && svc.spec?.loadBalancerSourceRanges?.length
        ? {loadBalancerSourceRanges: svc.spec.loadBalancerSourceRanges.map((r) => r.trim())}
        : {}),
      ...(svc.spec?.healthCheckNodePort ? {healthCheckNodePort: svc.spec.healthCheckNodePort} : {}),
    }
    out.push({
      name: svc.metadata.name,
      namespace: ns,
      type,
      clusterIP: ip,
      ...external,
      ...local,
      ...affinity,
      ...distribution,
      ports,
      endpoints,
    })
  }
  return out.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name))
}

/** ConfigMaps a CNI keeps its settings in. */
const CNI_CONFIG_MAPS = ['kube-flannel-cfg', 'canal-config', 'calico-config']

/**
 * The cluster as netctl sees it through the Kubernetes API: nodes and their
 * network annotations, pods, the CNI and its backend.
 */
export class KubeCluster {
  constructor(readonly api: KubeApi) {}

  static async connect(opts: KubeConnectOptions = {}): Promise<KubeCluster> {
    return new KubeCluster(await KubeApi.connect(opts))
  }

  get namespace(): string {
    return this.api.namespace
  }

  async nodes(): Promise<ClusterNode[]> {
    const list = await this.api.list<KubeNode>(PATHS.nodes)
    return list.items.map(nodeFacts).sort((a, b) => a.name.localeCompare(b.name))
  }

  async node(name: string): Promise<ClusterNode> {
    try {
      return nodeFacts(await this.api.get<KubeNode>(`${PATHS.nodes}/${encodeURIComponent(name)}`))
    } catch (error) {
      if (error instanceof KubeApiError && error.code === 'NOT_FOUND')
        throw new UsageError(`node "${name}" not found (context ${this.api.config.context})`)
      throw error
    }
  }

  /** Pods of one namespace, or of all of them. */
  async pods(
    opts: {namespace?: string; allNamespaces?: boolean; fieldSelector?: string; labelSelector?: string} = {},
  ): Promise<ClusterPod[]> {
    const ns = opts.allNamespaces ? undefined : (opts.namespace ?? this.namespace)
    const list = await this.api.list<KubePod>(PATHS.pods(ns), {
      fieldSelector: opts.fieldSelector,
      labelSelector: opts.labelSelector,
    })
    return list.items.map(podFacts)
  }

  /**
   * A pod as a user names it: `name` (in the context's namespace), `ns/name`,
   * or its IP. An IP that belongs to host-network pods only is a node's, and
   * is said to be so.
   */
  async findPod(ref: string): Promise<ClusterPod> {
    const ip = ref.includes(':') || isIPv4(ref) ? ref : undefined
    if (ip) {
      const pods = await this.pods({allNamespaces: true, fieldSelector: `status.podIP=${ip}`})
      const own = pods.filter((p) => !p.hostNetwork && p.phase !== 'Succeeded' && p.phase !== 'Failed')
      if (own.length === 1) return own[0]!
      if (own.length > 1)
        throw new UsageError(
          `${ip} is the IP of ${own.length} pods (${own.map((p) => `${p.namespace}/${p.name}`).join(', ')}); name one as ns/name`,
        )
      if (pods.some((p) => p.hostNetwork))
        throw new UsageError(`${ip} is a node's address (host-network pods use it), not a pod's`)
      throw new UsageError(`no pod has IP ${ip} (context ${this.api.config.context})`)
    }
    const parts = ref.split('/')
    if (parts.length > 2 || parts.some((p) => p === ''))
      throw new UsageError(`pod '${ref}': expected NAME, NAMESPACE/NAME or an IP`)
    const [ns, name] = parts.length === 2 ? (parts as [string, string]) : [this.namespace, parts[0]!]
    try {
      return podFacts(await this.api.get<KubePod>(`${PATHS.pods(ns)}/${encodeURIComponent(name)}`))
    } catch (error) {
      if (error instanceof KubeApiError && error.code === 'NOT_FOUND') {
        throw new UsageError(
          `pod "${name}" not found in namespace "${ns}"${parts.length === 1 ? ' (name another namespace as ns/name)' : ''}`,
        )
      }
      throw error
    }
  }

  /** A list that may be absent (a CRD not installed) or unreadable; the reason goes to notes. */
  private async optionalList<T extends KubeObject>(
    p: string,
    what: string,
    notes: string[],
    query?: Record<string, string>,
  ): Promise<T[] | undefined> {
    try {
      return (await this.api.list<T>(p, query)).items
    } catch (error) {
      if (error instanceof KubeApiError && error.code === 'NOT_FOUND') return undefined
      if (error instanceof KubeApiError && error.code === 'FORBIDDEN') {
        notes.push(`cannot read ${what}: ${error.message}`)
        return undefined
      }
      throw error
    }
  }

  /** Everything detection looks at, read in parallel. */
  async objects(): Promise<{objects: ClusterObjects; notes: string[]}> {
    const notes: string[] = []
    const [nodes, daemonSets, networkPolicies, ipPools, bgpConfigurations, bgpPeers, ...configMaps] = await Promise.all(
      [
        this.api.list<KubeNode>(PATHS.nodes).then((l) => l.items),
        this.api.list<KubeDaemonSet>(PATHS.daemonSets).then((l) => l.items),
        this.optionalList<KubeNetworkPolicy>(PATHS.networkPolicies, 'NetworkPolicies', notes),
        this.optionalList<CalicoIPPool>(PATHS.ipPools, 'Calico IPPools', notes),
        this.optionalList<CalicoBGPConfiguration>(PATHS.bgpConfigurations, 'Calico BGPConfigurations', notes),
        this.optionalList<CalicoBGPPeer>(PATHS.bgpPeers, 'Calico BGPPeers', notes),
        ...CNI_CONFIG_MAPS.map((name) =>
          this.optionalList<KubeConfigMap>(PATHS.configMaps, `ConfigMap ${name}`, notes, {
            fieldSelector: `metadata.name=${name}`,
          }),
        ),
      ],
    )
    return {
      objects: {
        nodes,
        daemonSets,
        networkPolicies: networkPolicies ?? [],
        configMaps: configMaps.flatMap((l) => l ?? []),
        ...(ipPools ? {ipPools} : {}),
        ...(bgpConfigurations ? {bgpConfigurations} : {}),
        ...(bgpPeers ? {bgpPeers} : {}),
      },
      notes,
    }
  }

  async detect(): Promise<Detection> {
    const {objects, notes} = await this.objects()
    const d = detectCni(objects)
    d.details.notes.push(...notes)
    return d
  }

  /**
   * The cluster in the shape of an inventory file, so the collector treats
   * both alike. Nodes carry no access method: the caller picks one (--via).
   */
  async inventory(detection?: Detection): Promise<Inventory> {
    const [nodes, pods, det] = await Promise.all([
      this.nodes(),
      this.pods({allNamespaces: true}),
      detection ? Promise.resolve(detection) : this.detect(),
    ])
    // Services and their EndpointSlices: a trace to a Service reads them; a cluster that does not let us read them still traces pods
    const [services, slices] = await Promise.all([
      this.optionalList<KubeService>(PATHS.services, 'Services', det.details.notes),
      this.optionalList<KubeEndpointSlice>(PATHS.endpointSlices, 'EndpointSlices', det.details.notes),
    ])
    if (nodes.length === 0)
      throw new NetctlError(`the cluster of context ${this.api.config.context} has no nodes`, 'unreachable', 'NO_NODES')
    // Calico IPAM hands out blocks, not spec.podCIDR: take the node's first confirmed block then
    if (det.cni === 'calico' && nodes.some((n) => n.podCIDR === '')) {
      const blocks = await this.optionalList<
        KubeObject & {spec?: {cidr?: string; node?: string; state?: string; deleted?: string | boolean}}
      >(PATHS.blockAffinities, 'Calico BlockAffinities', det.details.notes)
      for (const n of nodes) {
        if (n.podCIDR !== '') continue
        const b = blocks?.find(
          (x) =>
            x.spec?.node === n.name &&
            x.spec?.state === 'confirmed' &&
            x.spec?.cidr &&
            isIPv4(x.spec.cidr.split('/')[0]!),
        )
        if (b?.spec?.cidr) n.podCIDR = b.spec.cidr
      }
    }
    const clusterCIDR =
      det.details.flannel?.netConf?.network ??
      det.details.calico?.pools.find((p) => !p.disabled)?.cidr ??
      coveringCIDR(nodes.map((n) => n.podCIDR).filter(Boolean))
    const known = new Set(nodes.map((n) => n.name))
    return {
      apiVersion: INVENTORY_API_VERSION,
      kind: 'Inventory',
      cluster: {name: this.api.config.cluster, backend: det.backend, clusterCIDR, cni: det.cni, source: 'kubernetes'},
      nodes: nodes.map((n) => ({
        name: n.name,
        internalIP: n.internalIP,
        ...(n.externalIP ? {externalIP: n.externalIP} : {}),
        podCIDR: n.podCIDR,
        ...(n.podCIDRs.some((c) => c !== n.podCIDR) ? {podCIDRs: n.podCIDRs} : {}),
        access: {},
        annotations: n.annotations,
        labels: n.labels,
      })),
      // host-network pods have the node's address: they are the node, not pods on the overlay
      pods: pods
        .filter(
          (p) => !p.hostNetwork && p.ip !== '' && known.has(p.node) && (p.phase === 'Running' || p.phase === 'Pending'),
        )
        .map((p) => ({
          name: p.name,
          namespace: p.namespace,
          node: p.node,
          ip: p.ip,
          ...(Object.keys(p.labels).length > 0 ? {labels: p.labels} : {}),
          ...(p.ports.length > 0 ? {ports: p.ports} : {}),
        }))
        .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name)),
      ...(services ? {services: servicesOf(services, slices ?? [])} : {}),
    }
  }
}
