import {createHash} from 'node:crypto'
import path from 'node:path'

import {addToIPv4} from '../analyze/ip.js'
import {UsageError} from '../errors.js'
import {HOST_PROFILES, LAB_AGENT_DEFAULTS, PROXY_MODES, SERVICE_CIDR} from './agents/defaults.js'
import {planServices} from './agents/services.js'
import {LAB_BACKENDS, LAB_TOPOLOGIES, type LabNode, type LabOptions, type LabPlan, type LabPod, type LabSubnet} from './types.js'

/**
 * Address plan. Nothing here overlaps the machine's own networks (192.0.2.0/24
 * and 10.0.0.0/8), so a mistake can never look like traffic for them:
 * underlay 172.31.0.0/16, pods 172.20.0.0/16.
 */
export const CLUSTER_CIDR = '172.20.0.0/16'
const FLAT_SUBNET = '172.31.0.0/24'
const ROUTED_SUBNETS = ['172.31.1.0/24', '172.31.2.0/24']
export const UNDERLAY_MTU = 1500
export const CALICO_AS = 64512
export const MAX_NODES = 50
/**
 * The kernel's ARP table is one table for every namespace, and its gc_thresh3
 * (1024 by default, settable only from the root namespace, which the lab never
 * touches) caps the dynamic entries of all of them together. A full mesh of N
 * nodes needs N×(N−1) underlay entries, so above this many nodes the lab writes
 * the underlay neighbours as PERMANENT entries, which the limit does not count.
 */
export const STATIC_UNDERLAY_NEIGH_ABOVE = 16

/** Lab names: lower-case words joined by '-'; they start every namespace name, followed by '.'. */
export const LAB_NAME_RE = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/

export function validateLabName(name: string): void {
  if (name.length > 24 || !LAB_NAME_RE.test(name)) {
    throw new UsageError(`invalid lab name '${name}': use 1-24 lower-case letters, digits and single '-' (e.g. demo-1)`)
  }
}

export function defaultStateRoot(): string {
  return process.env.NETCTL_STATE_DIR ?? '/run/netctl/labs'
}

/** Every namespace of lab NAME is called NAME.something; '.' never occurs in a lab name. */
export function netnsPrefix(lab: string): string {
  return `${lab}.`
}

function shortHash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex')
}

/** A stable, locally administered unicast MAC. */
export function stableMAC(...parts: string[]): string {
  const h = shortHash(...parts)
  const bytes = [0, 1, 2, 3, 4, 5].map((i) => Number.parseInt(h.slice(i * 2, i * 2 + 2), 16))
  bytes[0] = ((bytes[0] ?? 0) & 0xfe) | 0x02
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':')
}

export function isCalico(backend: string): boolean {
  return backend.startsWith('calico-')
}

export function validateLabOptions(o: LabOptions): void {
  validateLabName(o.name)
  if (!Number.isInteger(o.nodes) || o.nodes < 2 || o.nodes > MAX_NODES) throw new UsageError(`--nodes must be 2..${MAX_NODES}, got ${o.nodes}`)
  if (!Number.isInteger(o.podsPerNode) || o.podsPerNode < 0 || o.podsPerNode > 20) throw new UsageError(`--pods-per-node must be 0..20, got ${o.podsPerNode}`)
  if (!(LAB_BACKENDS as readonly string[]).includes(o.backend)) throw new UsageError(`unknown backend '${o.backend}': one of ${LAB_BACKENDS.join(', ')}`)
  if (!(LAB_TOPOLOGIES as readonly string[]).includes(o.topology)) throw new UsageError(`unknown topology '${o.topology}': flat or routed`)
  if (o.proxyMode !== undefined && !(PROXY_MODES as readonly string[]).includes(o.proxyMode)) throw new UsageError(`unknown proxy mode '${o.proxyMode}': one of ${PROXY_MODES.join(', ')}`)
  if (o.hostProfile !== undefined && !(HOST_PROFILES as readonly string[]).includes(o.hostProfile)) throw new UsageError(`unknown host profile '${o.hostProfile}': one of ${HOST_PROFILES.join(', ')}`)
  for (const pod of Object.keys(o.podLabels ?? {})) {
    const m = /^pod-node(\d+)-(\d+)$/.exec(pod)
    if (pod !== '*' && (!m || Number(m[1]) < 1 || Number(m[1]) > o.nodes || Number(m[2]) < 1 || Number(m[2]) > o.podsPerNode)) {
      throw new UsageError(`--pod-labels: no pod '${pod}' in this lab (pods are pod-nodeN-K, N 1..${o.nodes}, K 1..${o.podsPerNode}; * is every pod)`)
    }
  }
  if (o.backend === 'calico-rr') {
    if (!Number.isInteger(o.routeReflectors) || o.routeReflectors < 1 || o.routeReflectors >= o.nodes) {
      throw new UsageError(`--route-reflectors must be 1..${o.nodes - 1} for ${o.nodes} nodes, got ${o.routeReflectors}`)
    }
  }
}

/**
 * Plan a lab: every name, address and MAC, decided before anything is made.
 * Pure, so the plan can be tested and shown before `up` touches the kernel.
 */
export function planLab(o: LabOptions, stateRoot = defaultStateRoot()): LabPlan {
  validateLabOptions(o)
  const stateDir = path.join(stateRoot, o.name)
  const subnets: LabSubnet[] =
    o.topology === 'flat'
      ? [{name: 'underlay', bridge: 'br0', cidr: FLAT_SUBNET}]
      : ROUTED_SUBNETS.map((cidr, i) => ({name: `underlay-${'ab'[i]}`, bridge: `br-${'ab'[i]}`, cidr, gateway: addToIPv4(cidr, 1)}))
  const calico = isCalico(o.backend)
  const half = Math.ceil(o.nodes / 2)
  const nodes: LabNode[] = []
  for (let i = 1; i <= o.nodes; i++) {
    const name = `node${i}`
    // routed: the first half of the nodes on subnet a, the rest on subnet b
    const subnet = o.topology === 'flat' ? subnets[0]! : subnets[i <= half ? 0 : 1]!
    const hostIndex = o.topology === 'flat' ? 10 + i : 10 + (i <= half ? i : i - half)
    // flannel hands each node a /24; Calico's IPAM hands out /26 blocks
    const podCIDR = calico ? `172.20.${i}.0/26` : `172.20.${i}.0/24`
    nodes.push({
      name,
      netns: `${o.name}.${name}`,
      ip: addToIPv4(subnet.cidr, hostIndex),
      subnet: subnet.cidr,
      podCIDR,
      uplinkMAC: stableMAC(o.name, name, 'eth0'),
      vtepMAC: stableMAC(o.name, name, 'vtep'),
      tunnelIP: addToIPv4(podCIDR, 0),
      fabricPort: name,
      routeReflector: o.backend === 'calico-rr' && i <= o.routeReflectors,
      dir: path.join(stateDir, 'nodes', name),
    })
  }
  const pods: LabPod[] = []
  for (const node of nodes) {
    for (let k = 1; k <= o.podsPerNode; k++) {
      const name = `pod-${node.name}-${k}`
      const hash = shortHash(o.name, 'default', name)
      pods.push({
        name,
        namespace: 'default',
        node: node.name,
        netns: `${o.name}.${node.name}.pod${k}`,
        // .0 is the node's VTEP / tunnel address and .1 the bridge (flannel): pods start at .2
        ip: addToIPv4(node.podCIDR, k + 1),
        hostVeth: calico ? `cali${hash.slice(0, 11)}` : `veth${hash.slice(0, 8)}`,
        labels: {app: name, ...o.podLabels?.['*'], ...o.podLabels?.[name]},
      })
    }
  }
  const proxyMode = o.proxyMode ?? LAB_AGENT_DEFAULTS.proxyMode
  const hostProfile = o.hostProfile ?? LAB_AGENT_DEFAULTS.hostProfile
  return {
    name: o.name,
    backend: o.backend,
    topology: o.topology,
    clusterCIDR: CLUSTER_CIDR,
    underlayMTU: UNDERLAY_MTU,
    fabricNetns: `${o.name}.fabric`,
    ...(o.topology === 'routed' ? {routerNetns: `${o.name}.router`} : {}),
    subnets,
    nodes,
    pods,
    ssh: o.ssh,
    stateDir,
    inventory: path.join(stateDir, 'inventory.yaml'),
    asNumber: CALICO_AS,
    proxyMode,
    hostProfile,
    // Services exist where kube-proxy runs: a lab without it stays a bare dataplane
    ...(proxyMode === 'none' ? {} : {serviceCIDR: SERVICE_CIDR, services: planServices({nodes, pods})}),
  }
}

/** Every namespace the lab makes, fabric first, pods last. */
export function labNetnsNames(plan: LabPlan): string[] {
  return [plan.fabricNetns, ...(plan.routerNetns ? [plan.routerNetns] : []), ...plan.nodes.map((n) => n.netns), ...plan.pods.map((p) => p.netns)]
}

/** The pair of nodes that share an underlay subnet, i.e. are L2-adjacent. */
export function l2Adjacent(a: LabNode, b: LabNode): boolean {
  return a.subnet === b.subnet
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/

/**
 * `--pod-labels POD:KEY=VALUE[,KEY=VALUE...]` (repeatable; POD `*` is every pod)
 * as labels by pod name; keys and values as Kubernetes allows them.
 */
export function parsePodLabels(specs: readonly string[]): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {}
  for (const spec of specs) {
    const colon = spec.indexOf(':')
    const pod = spec.slice(0, colon).trim()
    if (colon <= 0 || pod === '') throw new UsageError(`--pod-labels '${spec}': use POD:KEY=VALUE[,KEY=VALUE] (POD * for every pod)`)
    for (const pair of spec.slice(colon + 1).split(',')) {
      const eq = pair.indexOf('=')
      const [key, value] = [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()]
      if (eq <= 0 || !LABEL_KEY.test(key) || key.length > 316 || !LABEL_VALUE.test(value) || value.length > 63) {
        throw new UsageError(`--pod-labels '${spec}': '${pair}' is not a label KEY=VALUE Kubernetes accepts`)
      }
      out[pod] = {...out[pod], [key]: value}
    }
  }
  return out
}
