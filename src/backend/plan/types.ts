/**
 * The vocabulary of `netctl backend`: backend types, the facts a desired state
 * is computed from, and the kernel state a backend owns on a node. Plain data,
 * shared by the pure parts (desired, current, diff, plan) and the I/O parts.
 */
import {type BackendName, SETTABLE_BACKENDS, type SettableBackend} from '../../model/backends.js'

/** Backends `backend set` takes (the one list is src/model/backends.ts). */
export const BACKEND_TYPES = SETTABLE_BACKENDS
export type BackendType = SettableBackend

/** What a cluster can be configured with: the settable types, and route reflectors (same kernel state as calico-bgp). */
export type ConfiguredBackend = BackendName

export function isBackendType(s: string): s is BackendType {
  return (BACKEND_TYPES as readonly string[]).includes(s)
}

/** Processes a backend runs on every node beside its kernel state. */
export type Daemon = 'bird' | 'flannel-udp'

/**
 * Who puts an item into the kernel: netctl itself (ip / bridge batches),
 * the kernel (a connected route that comes with an address), or a daemon
 * (BIRD exports its routes; socat owns flannel0 and its address).
 */
export type Owner = 'netctl' | 'kernel' | Daemon

export interface NodeFacts {
  name: string
  /** InternalIP, on the uplink */
  ip: string
  podCIDR: string
  /** the device holding InternalIP (eth0 in the lab) */
  uplink: string
  /** the connected subnet of the uplink address, e.g. 172.31.0.0/24 */
  subnet: string
  /** VTEP MAC for flannel.1 / vxlan.calico, stable across switches */
  vtepMAC: string
  /** Calico's tunnel address (vxlan.calico / tunl0): the first address of the block */
  tunnelIP: string
  /**
   * Per peer node (by name), the router this node reaches it through, from its
   * own routes (a peer off the uplink's subnet): where BIRD's recursive next
   * hop resolves. Absent: no gateway known (same subnet, or not collected).
   */
  gatewayTo?: Record<string, {gateway: string; dev: string}>
}

export interface ClusterFacts {
  name: string
  clusterCIDR: string
  /** MTU of the underlay (the uplinks) */
  underlayMTU: number
  nodes: NodeFacts[]
}

export interface KLink {
  name: string
  kind: 'vxlan' | 'tun' | 'ipip'
  mtu: number
  up: boolean
  mac?: string
  vxlan?: {vni: number; port: number; local?: string; dev?: string; learning: boolean}
  owner: Owner
}

export interface KAddress {
  dev: string
  /** local/prefixlen */
  cidr: string
  owner: Owner
}

export interface KRoute {
  dst: string
  type: 'unicast' | 'blackhole'
  gateway?: string
  dev?: string
  onlink: boolean
  /** undefined = boot (what `ip route add` gives) */
  protocol?: string
  scope?: string
  src?: string
  /** shown, and used to delete exactly; not part of the identity (BIRD picks its own) */
  metric?: number
  owner: Owner
}

/** Always PERMANENT: a backend's neighbours are written, never learned. */
export interface KNeigh {
  dst: string
  dev: string
  lladdr: string
  owner: Owner
}

/** A vxlan device's `self permanent` entry towards a remote VTEP. */
export interface KFdb {
  mac: string
  dev: string
  dst: string
  owner: Owner
}

/** The kernel state a backend owns on one node. */
export interface NodeKernel {
  links: KLink[]
  addresses: KAddress[]
  routes: KRoute[]
  neighbours: KNeigh[]
  fdb: KFdb[]
}

/** What a node should hold for a backend: its kernel state and the daemons that keep part of it. */
export interface NodeDesired extends NodeKernel {
  node: string
  daemons: Daemon[]
}

export const KINDS = ['links', 'addresses', 'routes', 'neighbours', 'fdb'] as const
export type Kind = (typeof KINDS)[number]

export function emptyKernel(): NodeKernel {
  return {links: [], addresses: [], routes: [], neighbours: [], fdb: []}
}
