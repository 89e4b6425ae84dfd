import {createHash} from 'node:crypto'
import path from 'node:path'

import {addToIPv4} from '../analyze/ip.js'
import {UsageError} from '../errors.js'
import {backendCni} from '../model/backends.js'
import {HOST_PROFILES, LAB_AGENT_DEFAULTS, PROXY_MODES, SERVICE_CIDR} from './agents/defaults.js'
import {planServices} from './agents/services.js'
import {
  LAB_BACKENDS,
  LAB_TOPOLOGIES,
  type LabContainerPort,
  type LabNode,
  type LabOptions,
  type LabPlan,
  type LabPod,
  type LabSubnet,
} from './types.js'

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
/**
 * A lab node's zone (its topology.kubernetes.io/zone label): odd nodes in zone-a, even ones in zone-b, so
 * that node1 and node2 (where the first Services' endpoints are) are in different zones and node3 shares
 * node1's.
 */
export const labZone = (index: number): string => (index % 2 === 1 ? 'zone-a' : 'zone-b')

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
  if (!Number.isInteger(o.nodes) || o.nodes < 2 || o.nodes > MAX_NODES)
    throw new UsageError(`--nodes must be 2..${MAX_NODES}, got ${o.nodes}`)
  if (!Number.isInteger(o.podsPerNode) || o.podsPerNode < 0 || o.podsPerNode > 20)
    throw new UsageError(`--pods-per-node must be 0..20, got ${o.podsPerNode}`)
  if (!(LAB_BACKENDS as readonly string[]).includes(o.backend))
    throw new UsageError(`unknown backend '${o.backend}': one of ${LAB_BACKENDS.join(', ')}`)
  if (!(LAB_TOPOLOGIES as readonly string[]).includes(o.topology))
    throw new UsageError(`unknown topology '${o.topology}': flat or routed`)
  if (o.proxyMode !== undefined && !(PROXY_MODES as readonly string[]).includes(o.proxyMode))
    throw new UsageError(`unknown proxy mode '${o.proxyMode}': one of ${PROXY_MODES.join(', ')}`)
  if (o.hostProfile !== undefined && !(HOST_PROFILES as readonly string[]).includes(o.hostProfile))
    throw new UsageError(`unknown host profile '${o.hostProfile}': one of ${HOST_PROFILES.join(', ')}`)
  const perPod: Array<[string, Record<string, unknown> | undefined]> = [
    ['--pod-labels', o.podLabels],
    ['--pod-namespace', o.podNamespaces],
    ['--pod-ports', o.podPorts],
  ]
  for (const [flag, byPod] of perPod) {
    for (const pod of Object.keys(byPod ?? {})) {
      const m = /^pod-node(\d+)-(\d+)$/.exec(pod)
      if (
        pod !== '*' &&
        (!m || Number(m[1]) < 1 || Number(m[1]) > o.nodes || Number(m[2]) < 1 || Number(m[2]) > o.podsPerNode)
      ) {
        throw new UsageError(
          `${flag}: no pod '${pod}' in this lab (pods are pod-nodeN-K, N 1..${o.nodes}, K 1..${o.podsPerNode}; * is every pod)`,
        )
      }
    }
  }
  if (o.backend === 'calico-rr') {
    if (!Number.isInteger(o.routeReflectors) || o.routeReflectors < 1 || o.routeReflectors >= o.nodes) {
      throw new UsageError(
        `--route-reflectors must be 1..${o.nodes - 1} for ${o.nodes} nodes, got ${o.routeReflectors}`,
      )
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
      : ROUTED_SUBNETS.map((cidr, i) => ({
          name: `underlay-${'ab'[i]}`,
          bridge: `br-${'ab'[i]}`,
          cidr,
          gateway: addToIPv4(cidr, 1),
        }))
  // Calico's IPAM hands out blocks; Canal's host-local IPAM takes flannel's podCIDR
  const calico = isCalico(o.backend)
  // the calico CNI plugin (Calico and Canal) names host veths cali*; the bridge plugin veth*
  const caliVeths = backendCni(o.backend) !== 'flannel'
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
      zone: labZone(i),
      dir: path.join(stateDir, 'nodes', name),
    })
  }
  const pods: LabPod[] = []
  for (const node of nodes) {
    for (let k = 1; k <= o.podsPerNode; k++) {
      const name = `pod-${node.name}-${k}`
      const namespace = o.podNamespaces?.[name] ?? o.podNamespaces?.['*'] ?? 'default'
      const hash = shortHash(o.name, namespace, name)
      const ports = o.podPorts?.[name] ?? o.podPorts?.['*']
      pods.push({
        name,
        namespace,
        node: node.name,
        netns: `${o.name}.${node.name}.pod${k}`,
        // .0 is the node's VTEP / tunnel address and .1 the bridge (flannel): pods start at .2
        ip: addToIPv4(node.podCIDR, k + 1),
        hostVeth: caliVeths ? `cali${hash.slice(0, 11)}` : `veth${hash.slice(0, 8)}`,
        labels: {app: name, ...o.podLabels?.['*'], ...o.podLabels?.[name]},
        ...(ports ? {ports} : {}),
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
    ...(o.namespaceLabels && Object.keys(o.namespaceLabels).length > 0 ? {namespaceLabels: o.namespaceLabels} : {}),
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
  return [
    plan.fabricNetns,
    ...(plan.routerNetns ? [plan.routerNetns] : []),
    ...plan.nodes.map((n) => n.netns),
    ...plan.pods.map((p) => p.netns),
  ]
}

/** The pair of nodes that share an underlay subnet, i.e. are L2-adjacent. */
export function l2Adjacent(a: LabNode, b: LabNode): boolean {
  return a.subnet === b.subnet
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/
const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

/**
 * `SUBJECT:KEY=VALUE[,KEY=VALUE...]` flag values (repeatable), by subject: the
 * one shape of --pod-labels, --namespace-labels and --pod-ports. `check` says
 * whether a pair is one the flag takes.
 */
function parseSubjectPairs(
  flag: string,
  usage: string,
  specs: readonly string[],
  check: (key: string, value: string) => boolean,
): Record<string, Array<[string, string]>> {
  const out: Record<string, Array<[string, string]>> = {}
  for (const spec of specs) {
    const colon = spec.indexOf(':')
    const subject = spec.slice(0, colon).trim()
    if (colon <= 0 || subject === '') throw new UsageError(`${flag} '${spec}': use ${usage}`)
    for (const pair of spec.slice(colon + 1).split(',')) {
      const eq = pair.indexOf('=')
      const [key, value] = [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()]
      if (eq <= 0 || !check(key, value))
        throw new UsageError(
          `${flag} '${spec}': '${pair}' is not ${flag === '--pod-ports' ? 'a port NAME=PORT[/PROTOCOL] Kubernetes accepts' : 'a label KEY=VALUE Kubernetes accepts'}`,
        )
      out[subject] = [...(out[subject] ?? []), [key, value]]
    }
  }
  return out
}

const labelOk = (key: string, value: string): boolean =>
  LABEL_KEY.test(key) && key.length <= 316 && LABEL_VALUE.test(value) && value.length <= 63

function labelsOf(flag: string, usage: string, specs: readonly string[]): Record<string, Record<string, string>> {
  const pairs = parseSubjectPairs(flag, usage, specs, labelOk)
  return Object.fromEntries(Object.entries(pairs).map(([subject, kv]) => [subject, Object.fromEntries(kv)]))
}

/**
 * `--pod-labels POD:KEY=VALUE[,KEY=VALUE...]` (repeatable; POD `*` is every pod)
 * as labels by pod name; keys and values as Kubernetes allows them.
 */
export function parsePodLabels(specs: readonly string[]): Record<string, Record<string, string>> {
  return labelsOf('--pod-labels', 'POD:KEY=VALUE[,KEY=VALUE] (POD * for every pod)', specs)
}

/** `--namespace-labels NS:KEY=VALUE[,KEY=VALUE...]` (repeatable) as labels by namespace. */
export function parseNamespaceLabels(specs: readonly string[]): Record<string, Record<string, string>> {
  const out = labelsOf('--namespace-labels', 'NAMESPACE:KEY=VALUE[,KEY=VALUE]', specs)
  for (const ns of Object.keys(out))
    if (!NAMESPACE_NAME.test(ns) || ns.length > 63)
      throw new UsageError(`--namespace-labels: '${ns}' is not a namespace name`)
  return out
}

/** `--pod-namespace POD:NAMESPACE` (repeatable; POD `*` is every pod) as the namespace by pod name. */
export function parsePodNamespaces(specs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const spec of specs) {
    const colon = spec.indexOf(':')
    const [pod, ns] = [spec.slice(0, colon).trim(), spec.slice(colon + 1).trim()]
    if (colon <= 0 || pod === '' || !NAMESPACE_NAME.test(ns) || ns.length > 63)
      throw new UsageError(
        `--pod-namespace '${spec}': use POD:NAMESPACE (POD * for every pod; a namespace name is lower-case letters, digits and '-')`,
      )
    out[pod] = ns
  }
  return out
}

const PORT_NAME = /^(?=.*[a-z])[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/
const PORT_PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const

/**
 * `--pod-ports POD:NAME=PORT[/PROTOCOL][,...]` (repeatable; POD `*` is every
 * pod) as the pods' container ports, which a NetworkPolicy names by NAME
 * (IANA_SVC_NAME: at most 15 characters, a letter among them).
 */
export function parsePodPorts(specs: readonly string[]): Record<string, LabContainerPort[]> {
  const portOf = (value: string): LabContainerPort['protocol'] | undefined => {
    const [port, proto = 'TCP'] = value.split('/')
    const n = Number(port)
    return Number.isInteger(n) &&
      n >= 1 &&
      n <= 65_535 &&
      (PORT_PROTOCOLS as readonly string[]).includes(proto.toUpperCase())
      ? (proto.toUpperCase() as LabContainerPort['protocol'])
      : undefined
  }
  const pairs = parseSubjectPairs(
    '--pod-ports',
    'POD:NAME=PORT[/TCP|UDP|SCTP][,...] (POD * for every pod)',
    specs,
    (name, value) => PORT_NAME.test(name) && portOf(value) !== undefined,
  )
  return Object.fromEntries(
    Object.entries(pairs).map(([pod, kv]) => [
      pod,
      kv.map(([name, value]) => ({name, containerPort: Number(value.split('/')[0]), protocol: portOf(value)!})),
    ]),
  )
}
