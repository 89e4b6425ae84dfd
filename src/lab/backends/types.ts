import type {NsScript} from '../script.js'
import type {BgpSessionStatus} from '../status.js'
import type {LabBackendName, LabNode, LabPlan, LabPod} from '../types.js'

export type BackendFamily = 'flannel' | 'calico'

/**
 * One overlay backend as the lab builds it: the kernel state a real node of
 * that backend has (docs/design.md, "dataplane signature") and the daemons it runs.
 */
export interface LabBackend {
  name: LabBackendName
  family: BackendFamily
  /** MTU of pod interfaces (and of cni0) for an underlay of `underlay` bytes */
  podMTU(underlay: number): number
  /** Devices and per-peer state, added to the node's script (runs in the node netns). */
  nodeState(script: NsScript, plan: LabPlan, node: LabNode): void
  /** Node facts a cluster would hold for this backend (annotations). */
  annotations(plan: LabPlan, node: LabNode): Record<string, string>
  /** Start the backend's daemons once every node is configured. */
  start?(plan: LabPlan): Promise<void>
  /** Wait until the dataplane is complete (e.g. BGP sessions Established). Returns warnings. */
  ready?(plan: LabPlan, timeoutMs: number): Promise<string[]>
  /** BGP sessions as BIRD reports them on every node (Calico modes). */
  sessions?(plan: LabPlan): Promise<BgpSessionStatus[]>
  /** What this backend cannot do on this plan's topology, said up front. */
  warnings?(plan: LabPlan): string[]
  /** The daemon it runs on every node, driven node by node when a lab switches backend. */
  daemon?: LabNodeDaemon
}

/**
 * A backend's per-node daemon (BIRD; socat with the udp forwarder), named as
 * `backend set` names it. Start and reconfigure take the plan of the backend
 * the daemon is to serve; stop needs only the node.
 */
export interface LabNodeDaemon {
  name: 'bird' | 'flannel-udp'
  start(plan: LabPlan, node: LabNode): Promise<void>
  stop(node: LabNode): Promise<void>
  /** take the plan's config without a restart (BIRD keeps its sessions); absent: stop and start */
  reconfigure?(plan: LabPlan, node: LabNode): Promise<void>
}

/** How a family plugs a pod into its node. */
export interface PodPlumbing {
  /** node-wide state every pod needs (e.g. the cni0 bridge) */
  nodeState(script: NsScript, plan: LabPlan, node: LabNode, mtu: number): void
  pod(script: NsScript, plan: LabPlan, node: LabNode, pod: LabPod, mtu: number): void
}
