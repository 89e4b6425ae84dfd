/**
 * Which CNI a cluster runs and with which backend, decided from the objects
 * the API server holds (DaemonSets, the CNI's ConfigMaps, Calico's CRDs, node
 * annotations). Pure: it sees only what it is handed, so fixtures test it.
 */
import {policyDirections} from '../analyze/policy.js'
import {DETECTABLE_BACKENDS} from '../model/backends.js'
import type {
  CalicoBGPConfiguration,
  CalicoBGPPeer,
  CalicoIPPool,
  Container,
  KubeConfigMap,
  KubeDaemonSet,
  KubeNetworkPolicy,
  KubeNode,
} from './kube-types.js'

export type CniName = 'flannel' | 'calico' | 'canal' | 'weave' | 'romana' | 'unknown'

/** What the API server holds that tells the CNI apart; a CRD list is undefined when the CRD is not installed. */
export interface ClusterObjects {
  daemonSets: KubeDaemonSet[]
  configMaps: KubeConfigMap[]
  ipPools?: CalicoIPPool[]
  bgpConfigurations?: CalicoBGPConfiguration[]
  bgpPeers?: CalicoBGPPeer[]
  networkPolicies: KubeNetworkPolicy[]
  nodes: KubeNode[]
}

/** flannel's net-conf.json, with flannel's own defaults filled in. */
export interface FlannelNetConf {
  network?: string
  /** Backend.Type; flannel defaults to udp when Backend is absent */
  backendType: string
  vni?: number
  port?: number
  directRouting?: boolean
  mtu?: number
}

export interface FlannelDetails {
  /** ns/name of the ConfigMap the net-conf.json came from */
  configMap?: string
  netConf?: FlannelNetConf
  /** backend types the nodes' flannel.alpha.coreos.com/backend-type annotations name */
  nodeBackendTypes: string[]
}

export interface CalicoPool {
  name: string
  cidr: string
  ipipMode: string
  vxlanMode: string
  natOutgoing: boolean
  disabled: boolean
}

export interface CalicoDetails {
  /** CALICO_NETWORKING_BACKEND of calico-node: bird (BGP), vxlan (no BGP) or none */
  networkingBackend: string
  pools: CalicoPool[]
  /** where the pools came from: the IPPool CRDs, or calico-node's CALICO_IPV4POOL_* env when there are none */
  poolsFrom: 'ippools' | 'env' | 'none'
  bgp: {
    enabled: boolean
    nodeToNodeMesh: boolean
    asNumber: number
    peers: Array<{
      name: string
      peerIP?: string
      asNumber?: number
      node?: string
      nodeSelector?: string
      peerSelector?: string
    }>
    /** nodes with a projectcalico.org/RouteReflectorClusterID annotation, and the cluster ID */
    routeReflectors: Array<{node: string; clusterID: string}>
  }
}

export interface DetectedDaemonSet {
  namespace: string
  name: string
  /** what netctl took it for */
  cni: Exclude<CniName, 'unknown' | 'canal'> | 'canal'
  images: string[]
}

export interface NetworkPolicySummary {
  namespace: string
  name: string
  podSelector: Record<string, unknown>
  policyTypes: string[]
  ingressRules: number
  egressRules: number
}

export interface Detection {
  cni: CniName
  /** the dataplane: flannel-vxlan, flannel-host-gw, flannel-udp, calico-bgp, calico-rr, calico-ipip, calico-vxlan, ... or unknown */
  backend: string
  /** netctl can trace and check this backend */
  supported: boolean
  details: {
    daemonSets: DetectedDaemonSet[]
    flannel?: FlannelDetails
    calico?: CalicoDetails
    /** how the decision was made, and anything doubtful about it */
    notes: string[]
  }
  networkPolicies: NetworkPolicySummary[]
}

const CALICO_DEFAULT_AS = 64512

function containersOf(ds: KubeDaemonSet): Container[] {
  const spec = ds.spec?.template?.spec
  return [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]
}

/** An image reference without registry and tag: quay.io/coreos/flannel:v0.11.0-amd64 → coreos/flannel. */
function imageRepo(image: string): string {
  const noDigest = image.split('@')[0]!
  const parts = noDigest.split('/')
  if (parts.length > 1 && /[.:]|^localhost$/.test(parts[0]!)) parts.shift()
  const last = parts.pop()!.replace(/:[^:]*$/, '')
  return [...parts, last].join('/')
}

function looksLike(
  ds: KubeDaemonSet,
  images: string[],
): {flannel: boolean; calico: boolean; weave: boolean; romana: boolean} {
  const name = ds.metadata.name
  const repos = images.map(imageRepo)
  const cmds = containersOf(ds).flatMap((c) => c.command ?? [])
  return {
    // flannel-io/flannel, coreos/flannel, rancher/mirrored-flannelcni-flannel
    flannel:
      repos.some((r) => /(^|[/-])flannel$/.test(r)) ||
      cmds.some((c) => c.endsWith('/flanneld')) ||
      /^kube-flannel-ds/.test(name),
    // calico/node, rancher/mirrored-calico-node
    calico: repos.some((r) => /calico[/-]node$/.test(r)) || name === 'calico-node',
    weave: repos.some((r) => /weaveworks\/weave-kube$|(^|\/)weave-kube$/.test(r)) || name === 'weave-net',
    romana: repos.some((r) => /romana\/(agent|daemon)$/.test(r)) || /^romana-agent/.test(name),
  }
}

/** Which DaemonSets belong to a CNI netctl knows. */
export function classifyDaemonSets(daemonSets: readonly KubeDaemonSet[]): DetectedDaemonSet[] {
  const out: DetectedDaemonSet[] = []
  for (const ds of daemonSets) {
    const images = [
      ...new Set(
        containersOf(ds)
          .map((c) => c.image ?? '')
          .filter(Boolean),
      ),
    ]
    const l = looksLike(ds, images)
    const name = ds.metadata.name
    let cni: DetectedDaemonSet['cni'] | undefined
    // Canal ships one DaemonSet running both calico/node and flannel
    if ((l.flannel && l.calico) || name === 'canal' || name === 'rke2-canal') cni = 'canal'
    else if (l.calico) cni = 'calico'
    else if (l.flannel) cni = 'flannel'
    else if (l.weave) cni = 'weave'
    else if (l.romana) cni = 'romana'
    if (cni) out.push({namespace: ds.metadata.namespace ?? '', name, cni, images})
  }
  return out
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined
}

/** Parse flannel's net-conf.json (as kube-flannel-cfg or canal-config holds it); flannel's defaults filled in. */
export function parseNetConf(text: string): FlannelNetConf {
  const raw = JSON.parse(text) as Record<string, unknown>
  const backend = (raw.Backend ?? {}) as Record<string, unknown>
  const backendType = typeof backend.Type === 'string' && backend.Type !== '' ? backend.Type.toLowerCase() : 'udp'
  const conf: FlannelNetConf = {backendType}
  if (typeof raw.Network === 'string') conf.network = raw.Network
  if (backendType === 'vxlan') {
    conf.vni = num(backend.VNI) ?? 1
    // flannel passes 0 to the kernel, which then uses the Linux default 8472
    conf.port = num(backend.Port) || 8472
    conf.directRouting = backend.DirectRouting === true
    const mtu = num(backend.MTU)
    if (mtu !== undefined) conf.mtu = mtu
  } else if (backendType === 'udp') {
    conf.port = num(backend.Port) || 8285
  }
  return conf
}

function flannelDetails(objs: ClusterObjects, preferCanal: boolean, notes: string[]): FlannelDetails {
  const nodeBackendTypes = [
    ...new Set(
      objs.nodes
        .map((n) => n.metadata.annotations?.['flannel.alpha.coreos.com/backend-type'])
        .filter((t): t is string => Boolean(t)),
    ),
  ].sort()
  const names = preferCanal
    ? ['canal-config', 'rke2-canal-config', 'kube-flannel-cfg']
    : ['kube-flannel-cfg', 'canal-config']
  const cm = names
    .map((n) => objs.configMaps.find((c) => c.metadata.name === n && c.data?.['net-conf.json']))
    .find(Boolean)
  const details: FlannelDetails = {nodeBackendTypes}
  if (cm) {
    details.configMap = `${cm.metadata.namespace ?? ''}/${cm.metadata.name}`
    try {
      details.netConf = parseNetConf(cm.data!['net-conf.json']!)
    } catch (error) {
      notes.push(
        `${details.configMap} net-conf.json is not valid JSON (${(error as Error).message}); backend taken from node annotations`,
      )
    }
  } else {
    notes.push(`no ${names[0]} ConfigMap with a net-conf.json; backend taken from node annotations`)
  }
  if (
    details.netConf &&
    nodeBackendTypes.length > 0 &&
    !nodeBackendTypes.every((t) => t === details.netConf!.backendType)
  ) {
    notes.push(
      `net-conf.json says ${details.netConf.backendType} but nodes are annotated ${nodeBackendTypes.join(', ')} (flanneld not restarted since the change?)`,
    )
  }
  return details
}

function flannelBackend(d: FlannelDetails): string {
  const type = d.netConf?.backendType ?? (d.nodeBackendTypes.length === 1 ? d.nodeBackendTypes[0] : undefined)
  return type ? `flannel-${type}` : 'unknown'
}

/** An env value of the calico-node container, following a configMapKeyRef into the ConfigMaps at hand. */
function calicoEnv(objs: ClusterObjects, ds: KubeDaemonSet | undefined, name: string): string | undefined {
  const c =
    ds?.spec?.template?.spec?.containers?.find((x) => x.name === 'calico-node') ??
    ds?.spec?.template?.spec?.containers?.[0]
  const env = (c?.env ?? []) as Array<{
    name: string
    value?: string
    valueFrom?: {configMapKeyRef?: {name: string; key: string}}
  }>
  const e = env.find((x) => x.name === name)
  if (!e) return undefined
  if (e.value !== undefined) return e.value
  const ref = e.valueFrom?.configMapKeyRef
  if (!ref) return undefined
  const cm = objs.configMaps.find(
    (m) => m.metadata.name === ref.name && (m.metadata.namespace ?? '') === (ds?.metadata.namespace ?? ''),
  )
  return cm?.data?.[ref.key]
}

function mode(v: unknown): string {
  return typeof v === 'string' && v !== '' ? v : 'Never'
}

function calicoDetails(objs: ClusterObjects, ds: KubeDaemonSet | undefined, notes: string[]): CalicoDetails {
  const networkingBackend = (calicoEnv(objs, ds, 'CALICO_NETWORKING_BACKEND') ?? 'bird').toLowerCase()
  let pools: CalicoPool[] = (objs.ipPools ?? [])
    .filter((p) => typeof p.spec?.cidr === 'string' && !p.spec.cidr.includes(':'))
    .map((p) => ({
      name: p.metadata.name,
      cidr: p.spec!.cidr!,
      ipipMode: mode(p.spec?.ipipMode),
      vxlanMode: mode(p.spec?.vxlanMode),
      natOutgoing: p.spec?.natOutgoing === true,
      disabled: p.spec?.disabled === true,
    }))
  let poolsFrom: CalicoDetails['poolsFrom'] = pools.length ? 'ippools' : 'none'
  if (pools.length === 0) {
    // calico-node creates the default pool from its env on first start
    const cidr = calicoEnv(objs, ds, 'CALICO_IPV4POOL_CIDR')
    const ipip = calicoEnv(objs, ds, 'CALICO_IPV4POOL_IPIP')
    const vxlan = calicoEnv(objs, ds, 'CALICO_IPV4POOL_VXLAN')
    if (ds && (cidr || ipip || vxlan)) {
      pools = [
        {
          name: 'default-ipv4-ippool',
          cidr: cidr ?? '192.168.0.0/16',
          ipipMode: mode(ipip ?? 'Always'),
          vxlanMode: mode(vxlan),
          natOutgoing: true,
          disabled: false,
        },
      ]
      poolsFrom = 'env'
      notes.push(
        objs.ipPools === undefined
          ? 'the IPPool CRD is not readable; pool modes taken from calico-node env'
          : 'no IPPool objects; pool modes taken from calico-node env',
      )
    }
  }
  const conf = objs.bgpConfigurations?.find((c) => c.metadata.name === 'default')
  const routeReflectors = objs.nodes
    .map((n) => ({
      node: n.metadata.name,
      clusterID: n.metadata.annotations?.['projectcalico.org/RouteReflectorClusterID'] ?? '',
    }))
    .filter((r) => r.clusterID !== '')
  return {
    networkingBackend,
    pools,
    poolsFrom,
    bgp: {
      enabled: networkingBackend === 'bird',
      nodeToNodeMesh: conf?.spec?.nodeToNodeMeshEnabled !== false,
      asNumber: num(conf?.spec?.asNumber) ?? CALICO_DEFAULT_AS,
      peers: (objs.bgpPeers ?? []).map((p) => ({
        name: p.metadata.name,
        ...(p.spec?.peerIP ? {peerIP: p.spec.peerIP} : {}),
        ...(p.spec?.asNumber !== undefined ? {asNumber: p.spec.asNumber} : {}),
        ...(p.spec?.node ? {node: p.spec.node} : {}),
        ...(p.spec?.nodeSelector ? {nodeSelector: p.spec.nodeSelector} : {}),
        ...(p.spec?.peerSelector ? {peerSelector: p.spec.peerSelector} : {}),
      })),
      routeReflectors,
    },
  }
}

/**
 * Calico's dataplane: VXLAN when an enabled pool encapsulates with VXLAN,
 * IPIP when one uses IPIP, else plain BGP routes, with route reflectors when
 * the full mesh is off and nodes peer through RRs.
 */
function calicoBackend(d: CalicoDetails, notes: string[]): string {
  const active = d.pools.filter((p) => !p.disabled)
  const vxlan = active.filter((p) => p.vxlanMode !== 'Never')
  const ipip = active.filter((p) => p.ipipMode !== 'Never')
  if (vxlan.length && ipip.length)
    notes.push(
      `pools mix encapsulations: VXLAN in ${vxlan.map((p) => p.name).join(', ')}, IPIP in ${ipip.map((p) => p.name).join(', ')}`,
    )
  if (vxlan.length) return 'calico-vxlan'
  if (ipip.length) return 'calico-ipip'
  if (!d.bgp.enabled) {
    notes.push(
      `CALICO_NETWORKING_BACKEND is ${d.networkingBackend} and no pool encapsulates: pods on different nodes have no route`,
    )
    return d.networkingBackend === 'vxlan' ? 'calico-vxlan' : 'unknown'
  }
  if (!d.bgp.nodeToNodeMesh) {
    if (d.bgp.peers.some((p) => p.peerSelector) || d.bgp.routeReflectors.length > 0) return 'calico-rr'
    if (d.bgp.peers.length === 0) notes.push('node-to-node mesh is off and there is no BGPPeer: nodes learn no routes')
  }
  return 'calico-bgp'
}

function summarisePolicies(policies: readonly KubeNetworkPolicy[]): NetworkPolicySummary[] {
  return policies
    .map((p) => {
      const types = policyDirections((p.spec ?? {}) as Record<string, unknown>)
      return {
        namespace: p.metadata.namespace ?? '',
        name: p.metadata.name,
        podSelector: (p.spec?.podSelector ?? {}) as Record<string, unknown>,
        policyTypes: types,
        ingressRules: p.spec?.ingress?.length ?? 0,
        egressRules: p.spec?.egress?.length ?? 0,
      }
    })
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name))
}

/** Decide the CNI and its backend from the cluster's objects. */
export function detectCni(objs: ClusterObjects): Detection {
  const notes: string[] = []
  const daemonSets = classifyDaemonSets(objs.daemonSets)
  const has = (c: DetectedDaemonSet['cni']): boolean => daemonSets.some((d) => d.cni === c)
  const calicoDs = objs.daemonSets.find((ds) => {
    const d = daemonSets.find((x) => x.name === ds.metadata.name && x.namespace === (ds.metadata.namespace ?? ''))
    return d?.cni === 'calico' || d?.cni === 'canal'
  })
  const networkPolicies = summarisePolicies(objs.networkPolicies)
  const nodeAnnotated = (prefix: string): boolean =>
    objs.nodes.some((n) => Object.keys(n.metadata.annotations ?? {}).some((k) => k.startsWith(prefix)))

  let cni: CniName = 'unknown'
  if (has('canal') || (has('calico') && has('flannel'))) cni = 'canal'
  else if (has('calico')) cni = 'calico'
  else if (has('flannel')) cni = 'flannel'
  else if (has('weave')) cni = 'weave'
  else if (has('romana')) cni = 'romana'
  else if (nodeAnnotated('flannel.alpha.coreos.com/')) {
    // k3s and RKE2 run flannel inside their own agent, with no DaemonSet
    cni = 'flannel'
    notes.push('no CNI DaemonSet; flannel recognised by its node annotations (embedded flannel, as in k3s)')
  } else if ((objs.ipPools?.length ?? 0) > 0) {
    cni = 'calico'
    notes.push(
      'no calico-node DaemonSet found; Calico recognised by its IPPools (operator-managed in another namespace?)',
    )
  }

  const details: Detection['details'] = {daemonSets, notes}
  let backend = 'unknown'
  if (cni === 'flannel' || cni === 'canal') {
    details.flannel = flannelDetails(objs, cni === 'canal', notes)
    backend = flannelBackend(details.flannel)
    if (cni === 'canal') details.calico = calicoDetails(objs, calicoDs, notes)
  } else if (cni === 'calico') {
    details.calico = calicoDetails(objs, calicoDs, notes)
    backend = calicoBackend(details.calico, notes)
  } else if (cni === 'weave' || cni === 'romana') {
    notes.push(`${cni} is recognised but not supported: netctl cannot trace or check its dataplane`)
  } else {
    notes.push('no DaemonSet of a CNI netctl knows (flannel, calico, canal, weave, romana)')
  }
  const supported = DETECTABLE_BACKENDS.has(backend) && (cni === 'flannel' || cni === 'calico' || cni === 'canal')
  if ((cni === 'flannel' || cni === 'canal' || cni === 'calico') && !supported)
    notes.push(`backend ${backend} is not one netctl supports`)
  if (cni === 'flannel' && networkPolicies.length > 0)
    notes.push(`flannel enforces no NetworkPolicy: ${networkPolicies.length} policies have no effect`)
  return {cni, backend, supported, details, networkPolicies}
}
