import {LAB_MODULE_BACKENDS, LAB_UP_BACKENDS, type LabModuleBackend} from '../model/backends.js'
import type {InventoryNetworkPolicy} from '../model/inventory.js'
import type {HostProfile, ProxyMode} from './agents/defaults.js'
import type {LabService} from './agents/services.js'

/** The backends a lab can run (`lab up`); names are the ones `backend set` will take too. */
export const LAB_BACKENDS = LAB_UP_BACKENDS
/**
 * Every backend module the lab has: the ones `lab up` builds, and those a lab
 * can only be switched to with `backend set` (src/model/backends.ts).
 */
export const LAB_BACKEND_MODULES = LAB_MODULE_BACKENDS
export type LabBackendName = LabModuleBackend

export const LAB_TOPOLOGIES = ['flat', 'routed'] as const
export type LabTopology = (typeof LAB_TOPOLOGIES)[number]

export interface LabOptions {
  name: string
  nodes: number
  podsPerNode: number
  backend: LabBackendName
  topology: LabTopology
  routeReflectors: number
  ssh: boolean
  /** kube-proxy's mode on every node (default LAB_AGENT_DEFAULTS.proxyMode) */
  proxyMode?: ProxyMode
  /** what the node's distribution adds (default LAB_AGENT_DEFAULTS.hostProfile) */
  hostProfile?: HostProfile
  /** labels beside each pod's app=<pod name>: by pod name, or '*' for every pod (--pod-labels) */
  podLabels?: Record<string, Record<string, string>>
  /** the Kubernetes namespace of a pod, by pod name or '*' (--pod-namespace; default: default) */
  podNamespaces?: Record<string, string>
  /** labels of the pods' namespaces, by namespace (--namespace-labels; the name label is implied) */
  namespaceLabels?: Record<string, Record<string, string>>
  /** container ports, by pod name or '*' (--pod-ports): what a NetworkPolicy's named port resolves against */
  podPorts?: Record<string, LabContainerPort[]>
}

/** A container port of a lab pod, as spec.containers[].ports holds it. */
export interface LabContainerPort {
  name: string
  containerPort: number
  protocol: 'TCP' | 'UDP' | 'SCTP'
}

/** One underlay L2 segment: a bridge in the fabric namespace. */
export interface LabSubnet {
  name: string
  /** bridge name inside the fabric namespace */
  bridge: string
  cidr: string
  /** the router's address on this subnet (routed topology only) */
  gateway?: string
}

export interface LabNode {
  name: string
  netns: string
  /** InternalIP: the address on the node's uplink eth0 */
  ip: string
  subnet: string
  podCIDR: string
  /** MAC of the node's uplink eth0 */
  uplinkMAC: string
  /** MAC of the node's VTEP (flannel.1 or vxlan.calico), fixed so it survives a backend switch */
  vtepMAC: string
  /** Calico's vxlan tunnel address: the first address of the node's block */
  tunnelIP: string
  /** the port on the fabric bridge that this node's eth0 plugs into */
  fabricPort: string
  /** a BGP route reflector (calico-rr) */
  routeReflector: boolean
  /** the node's topology.kubernetes.io/zone; absent in labs made before zones */
  zone?: string
  /** directory under the lab's state directory with the node's files */
  dir: string
}

export interface LabPod {
  name: string
  namespace: string
  node: string
  netns: string
  ip: string
  /** host-side veth inside the node namespace (vethXXXXXXXX or caliXXXXXXXXXXX) */
  hostVeth: string
  /** the pod's labels (app=<pod name>, then --pod-labels); absent in the state of labs made before labels */
  labels?: Record<string, string>
  /** its container ports (--pod-ports); absent: none */
  ports?: LabContainerPort[]
}

export interface LabPlan {
  name: string
  backend: LabBackendName
  topology: LabTopology
  clusterCIDR: string
  underlayMTU: number
  fabricNetns: string
  routerNetns?: string
  subnets: LabSubnet[]
  nodes: LabNode[]
  pods: LabPod[]
  /** labels of the pods' namespaces beside the name label (--namespace-labels); absent: none */
  namespaceLabels?: Record<string, Record<string, string>>
  ssh: boolean
  stateDir: string
  inventory: string
  /** BGP AS number for Calico modes */
  asNumber: number
  /** kube-proxy's mode; absent in labs made before agents existed (none) */
  proxyMode?: ProxyMode
  /** the host profile; absent in labs made before agents existed (plain) */
  hostProfile?: HostProfile
  /** the Service CIDR (kube-apiserver --service-cluster-ip-range), when the lab has Services */
  serviceCIDR?: string
  /** the lab's Services with their endpoints (only with kube-proxy: a lab without it has none) */
  services?: LabService[]
  /** NetworkPolicies recorded with `lab policy apply` (absent: none) */
  networkPolicies?: InventoryNetworkPolicy[]
}

/**
 * A network namespace's identity: the device and inode of its nsfs file, as
 * `stat -L /run/netns/NAME` or `stat -L /proc/PID/ns/net` gives them. A name
 * under /run/netns can be pointed at any namespace (`ip netns attach`), the
 * machine's own included; the identity says which namespace it really is.
 */
export interface NetnsId {
  dev: number
  ino: number
}

/** A process the lab started: PID and start time name one process (PIDs are reused), netns the namespace it was started in. */
export interface LabProcess {
  pid: number
  start: number
  netns: string
}

/** The lab's record on disk: the plan, plus what happened while it came up. */
export interface LabRecord extends LabPlan {
  status: 'creating' | 'up' | 'failed'
  createdAt: string
  warnings: string[]
  /** facts about how the lab differs from a real cluster, said so nobody is surprised */
  notes: string[]
  /** the netctl build that made it, for `lab list` */
  version: string
  /**
   * The identity of every namespace the lab made, written as each is made:
   * `lab down` signals only processes in these, and `lab status` calls a
   * name that points elsewhere missing. Absent in records of older netctl.
   */
  netnsIds?: Record<string, NetnsId>
  /**
   * The processes living in the lab's namespaces when its `lab up` finished
   * (BIRD, sshd, forwarders, the Service responders), each with its start time
   * and the namespace it lived in: `lab down` stops them wherever they are
   * then, also in a namespace whose name was deleted and whose recorded
   * identity went to another namespace. Absent in records of older netctl.
   */
  processes?: LabProcess[]
  /** the `lab up` process building the lab (while status is creating): PID and start time, so a dead one is told from a running one */
  owner?: {pid: number; start: number}
}
