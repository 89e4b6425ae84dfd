import type {Detection} from '../../cluster/detect.js'
import {backendInfo} from './profiles.js'
import type {ConfiguredBackend} from './types.js'

/**
 * What a switch changes in a Kubernetes cluster's API objects, decided from
 * the detection. Pure: the API calls are in act/kubernetes.ts.
 *
 * Flannel (and Canal) read the backend from net-conf.json in their ConfigMap
 * at start-up only, so the ConfigMap is patched and the DaemonSet restarted.
 * Calico's Felix and BIRD follow IPPool changes live: the pools are patched
 * and nothing restarts.
 */

export interface ObjectRef {
  namespace: string
  name: string
}

export interface FlannelChange {
  family: 'flannel'
  configMap: ObjectRef
  daemonSet: ObjectRef
  /** net-conf.json exactly as the ConfigMap holds it now, and as it will */
  before: string
  after: string
}

export interface PoolModes {
  ipipMode: string
  vxlanMode: string
}

export interface CalicoChange {
  family: 'calico'
  pools: Array<{name: string; before: PoolModes; after: PoolModes}>
}

export type KubeChange = FlannelChange | CalicoChange

/** The flannel Backend.Type of each flannel backend. */
const FLANNEL_TYPES: Partial<Record<ConfiguredBackend, string>> = {
  'flannel-vxlan': 'vxlan',
  'flannel-host-gw': 'host-gw',
  'flannel-udp': 'udp',
}

/** A Calico pool's encapsulation modes for each Calico backend that pools alone decide. */
const POOL_MODES: Partial<Record<ConfiguredBackend, PoolModes>> = {
  'calico-bgp': {ipipMode: 'Never', vxlanMode: 'Never'},
  'calico-vxlan': {ipipMode: 'Never', vxlanMode: 'Always'},
  'calico-vxlan-crosssubnet': {ipipMode: 'Never', vxlanMode: 'CrossSubnet'},
  'calico-ipip': {ipipMode: 'Always', vxlanMode: 'Never'},
  'calico-ipip-crosssubnet': {ipipMode: 'CrossSubnet', vxlanMode: 'Never'},
}

/**
 * net-conf.json with Backend.Type set to `type`, every other field kept (the
 * Network, EnableNFTables, the Backend's VNI/Port/DirectRouting, fields netctl
 * does not know). Written as the upstream manifest writes it: two-space
 * indentation and a final newline.
 */
export function netConfWithBackend(text: string, type: string): string {
  const conf = JSON.parse(text) as Record<string, unknown>
  const backend =
    conf.Backend && typeof conf.Backend === 'object' && !Array.isArray(conf.Backend)
      ? (conf.Backend as Record<string, unknown>)
      : {}
  // Type first, as flannel's docs and manifests write it
  const {Type: _old, ...rest} = backend
  conf.Backend = {Type: type, ...rest}
  return `${JSON.stringify(conf, null, 2)}\n`
}

function ref(nsName: string): ObjectRef {
  const [namespace, name] = nsName.includes('/') ? (nsName.split('/', 2) as [string, string]) : ['', nsName]
  return {namespace, name}
}

/**
 * The object change that takes the cluster from `from` to `to`, or why netctl
 * will not make it (one line, for the preflight's BACKEND_UNSUPPORTED).
 * `netConf` is the ConfigMap's net-conf.json text as read from the API.
 */
export function kubeChange(
  detection: Detection,
  from: ConfiguredBackend,
  to: ConfiguredBackend,
  netConf?: string,
): KubeChange | string {
  const family = backendInfo(to).family
  if (family !== backendInfo(from).family)
    return `${from} -> ${to} changes the CNI itself (${detection.cni}): that is a reinstall, not a backend switch`
  if (family === 'flannel') {
    const type = FLANNEL_TYPES[to]!
    const flannel = detection.details.flannel
    if (!flannel?.configMap || netConf === undefined)
      return `no flannel ConfigMap with a net-conf.json was found to change (${detection.details.notes.join('; ') || 'kube-flannel-cfg not readable'})`
    const ds =
      detection.details.daemonSets.find((d) => d.cni === (detection.cni === 'canal' ? 'canal' : 'flannel')) ??
      detection.details.daemonSets.find((d) => d.cni === 'flannel' || d.cni === 'canal')
    if (!ds)
      return "flannel runs without a DaemonSet here (embedded, as in k3s): change its backend in the distribution's own configuration"
    let after: string
    try {
      after = netConfWithBackend(netConf, type)
    } catch (error) {
      return `${flannel.configMap} net-conf.json is not valid JSON (${(error as Error).message}): mend it first`
    }
    return {
      family,
      configMap: ref(flannel.configMap),
      daemonSet: {namespace: ds.namespace, name: ds.name},
      before: netConf,
      after,
    }
  }
  const calico = detection.details.calico
  const want = POOL_MODES[to]
  if (!want)
    return `${to} is a change of BGP topology (BGPConfiguration, BGPPeers, route-reflector labels), not of IPPools: netctl does not make it in a Kubernetes cluster`
  if (from === 'calico-rr' && to !== 'calico-bgp') return `${from} -> ${to}: leave route reflection first`
  if (!calico || calico.poolsFrom !== 'ippools')
    return "Calico's pools are not IPPool objects here (only calico-node's environment): change CALICO_IPV4POOL_* and recreate the pool"
  if (!backendInfo(to).linkKinds.includes('vxlan') && calico.networkingBackend !== 'bird') {
    return `calico-node runs without BIRD (CALICO_NETWORKING_BACKEND=${calico.networkingBackend}): ${to} needs BGP; set calico_backend to bird in calico-config first`
  }
  const pools = calico.pools.filter((p) => !p.disabled && !p.cidr.includes(':'))
  if (pools.length === 0) return 'no enabled IPv4 IPPool to change'
  return {
    family,
    pools: pools.map((p) => ({name: p.name, before: {ipipMode: p.ipipMode, vxlanMode: p.vxlanMode}, after: want})),
  }
}

/** One line per object the change touches, for the plan and the result. */
export function describeKubeChange(c: KubeChange): string[] {
  if (c.family === 'flannel') {
    return [
      `configmap ${c.configMap.namespace}/${c.configMap.name}: net-conf.json Backend.Type -> ${(JSON.parse(c.after) as {Backend: {Type: string}}).Backend.Type}`,
      `daemonset ${c.daemonSet.namespace}/${c.daemonSet.name}: restarted`,
    ]
  }
  return c.pools.map(
    (p) =>
      `ippool ${p.name}: ipipMode ${p.before.ipipMode} -> ${p.after.ipipMode}, vxlanMode ${p.before.vxlanMode} -> ${p.after.vxlanMode}`,
  )
}
