import type {KubeNetworkPolicy} from '../cluster/kube-types.js'
import {DEFAULT_PARALLEL, DEFAULT_TIMEOUT_MS} from '../defaults.js'
import {NetctlError} from '../errors.js'
import type {Inventory, InventoryNode, InventoryPod} from '../model/inventory.js'
import type {NodeState} from '../model/node-state.js'
import {type CollectionError, type Snapshot, SNAPSHOT_SCHEMA_VERSION} from '../model/snapshot.js'
import {createTransport, type TransportFactory} from '../transport/index.js'
import {ClusterRefusal, type Transport, TransportError, type TransportResult} from '../transport/types.js'
import {firstLine, mapLimit} from '../util/exec.js'
import {isCidr} from '../util/schema.js'
import {within} from '../util/wait.js'
import {assembleNodeState} from './node.js'
import {buildProbe} from './probe.js'
import {splitProbeOutput} from './sections.js'

/** How long past its own timeout a transport gets (and close() gets) before the node is given up on. */
const graceMs = (timeoutMs: number): number => Math.min(2_000, 100 + Math.round(timeoutMs / 10))

export interface CollectTarget {
  node: InventoryNode
  pods: InventoryPod[]
}

export type NodePhase = 'waiting' | 'probing' | 'done' | 'partial' | 'unreachable'

/** One node's progress, for a live display. */
export interface NodeProgress {
  node: string
  phase: NodePhase
  /** what reaches it ("netns lab.node1") */
  target?: string
  ms?: number
  message?: string
}

export interface CollectOptions {
  /** nodes probed at the same time */
  parallel?: number
  /** per node: the probe's whole round trip */
  timeoutMs?: number
  transportFactory?: TransportFactory
  onProgress?: (p: NodeProgress) => void
  /**
   * Each collected node's state as soon as it arrives (awaited before its slot takes the next node):
   * given, the states go there and are not kept, so memory holds only the nodes in flight.
   */
  onState?: (node: string, state: NodeState) => Promise<void> | void
}

export interface NodeResult {
  node: string
  state?: NodeState
  errors: CollectionError[]
  ms: number
}

const DEADLINE = Symbol('deadline')

/** Settle within `ms` whatever `p` does (a transport that never answers must not hold the run). */
const withDeadline = <T>(p: Promise<T>, ms: number): Promise<T | typeof DEADLINE> => within(p, ms, DEADLINE)

const seconds = (ms: number): string => `${Math.round(ms / 100) / 10}s`

/**
 * The run stops at a ClusterRefusal: exit 3 as for an unreachable cluster (the
 * nodes' state cannot be read; 4 is for a change netctl refused or rolled back).
 */
function refusalError(error: ClusterRefusal): NetctlError {
  return new NetctlError(error.message, 'unreachable', 'CLUSTER_REFUSED')
}

/**
 * Probe one node: one script, one round trip, bounded by the timeout. A node
 * that cannot be reached, answers late or answers nonsense comes back with
 * NODE_UNREACHABLE; one whose probe partly failed comes back with its state
 * and COLLECTION_PARTIAL. It throws only when the cluster refuses what every
 * node needs (a ClusterRefusal, as a NetctlError): the run stops there.
 */
export async function collectNode(target: CollectTarget, opts: CollectOptions = {}): Promise<NodeResult> {
  const name = target.node.name
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const started = Date.now()
  const report = opts.onProgress ?? (() => {})
  const unreachable = (message: string, via?: string): NodeResult => {
    const ms = Date.now() - started
    report({node: name, phase: 'unreachable', ms, message, ...(via ? {target: via} : {})})
    return {node: name, errors: [{node: name, code: 'NODE_UNREACHABLE', message}], ms}
  }

  let transport: Transport
  try {
    transport = opts.transportFactory ? opts.transportFactory(target.node) : createTransport(target.node)
  } catch (error) {
    return unreachable(
      error instanceof TransportError ? error.message : `cannot reach ${name}: ${(error as Error).message}`,
    )
  }
  report({node: name, phase: 'probing', target: transport.target})

  const probe = buildProbe({
    paths: target.node.paths,
    // a pod with neither netns nor PID (the Kubernetes API gives none) is looked up on the node with crictl
    pods: target.pods.map((p) =>
      p.netns !== undefined
        ? {netns: p.netns}
        : p.pid !== undefined
          ? {pid: p.pid}
          : {namespace: p.namespace, name: p.name},
    ),
    commandTimeoutSec: Math.min(10, Math.max(1, Math.floor(timeoutMs / 3000))),
  })
  const collectedAt = new Date().toISOString()
  let result: TransportResult | typeof DEADLINE
  try {
    result = await withDeadline(transport.exec(probe.script, {timeoutMs}), timeoutMs + graceMs(timeoutMs))
  } catch (error) {
    if (error instanceof ClusterRefusal) throw refusalError(error)
    const why = error instanceof TransportError ? error.message : `transport failed: ${(error as Error).message}`
    // transports that name their target themselves (a debug pod's errors do) are not named twice
    return unreachable(why.startsWith(`${transport.target}: `) ? why : `${transport.target}: ${why}`, transport.target)
  } finally {
    await withDeadline(
      transport.close().catch(() => {}),
      graceMs(timeoutMs),
    )
  }
  if (result === DEADLINE)
    return unreachable(`${transport.target}: no answer within ${seconds(timeoutMs)}`, transport.target)

  const split = splitProbeOutput(result.stdout, probe.marker)
  if (!split.started) {
    if (result.timedOut)
      return unreachable(`${transport.target}: no answer within ${seconds(timeoutMs)}`, transport.target)
    const said = firstLine(result.stderr) || firstLine(result.stdout)
    return unreachable(
      `${transport.target}: did not run the probe (exit code ${result.code}${said ? `: ${said.slice(0, 160)}` : ', no output'})`,
      transport.target,
    )
  }

  const {state, problems} = assembleNodeState(name, probe, split, target.pods, collectedAt)
  if (result.timedOut) problems.unshift(`the probe ran past the ${seconds(timeoutMs)} timeout and was stopped`)
  else if (!split.done && problems.length === 0)
    problems.push(`the probe output ended early (exit code ${result.code})`)
  const ms = Date.now() - started
  if (problems.length === 0) {
    report({node: name, phase: 'done', target: transport.target, ms})
    return {node: name, state, errors: [], ms}
  }
  const message = `${problems.length} section${problems.length === 1 ? '' : 's'} incomplete: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`
  report({node: name, phase: 'partial', target: transport.target, ms, message})
  return {node: name, state, errors: [{node: name, code: 'COLLECTION_PARTIAL', message}], ms}
}

/** Probe every node, at most `parallel` at a time; results in input order. */
export async function collectNodes(targets: CollectTarget[], opts: CollectOptions = {}): Promise<NodeResult[]> {
  for (const t of targets) opts.onProgress?.({node: t.node.name, phase: 'waiting'})
  const parallel = Math.max(1, Math.floor(opts.parallel ?? DEFAULT_PARALLEL))
  let stopped: unknown
  return mapLimit(targets, parallel, async (t) => {
    // after a refusal of the whole cluster no other node is touched
    if (stopped !== undefined) throw stopped
    try {
      const r = await collectNode(t, opts)
      if (!opts.onState || !r.state) return r
      await opts.onState(r.node, r.state)
      const {state: _handedOn, ...kept} = r
      return kept
    } catch (error) {
      stopped ??= error
      throw error
    }
  })
}

/** Every node of an inventory with its pods. */
export function inventoryTargets(inv: Inventory): CollectTarget[] {
  return inv.nodes.map((node) => ({node, pods: inv.pods.filter((p) => p.node === node.name)}))
}

/** What a snapshot keeps besides the inventory and the node states. */
export interface SnapshotMeta {
  startedAt: string
  finishedAt: string
  version: string
  /** Kubernetes: the cluster's NetworkPolicies, as the API holds them */
  networkPolicies?: KubeNetworkPolicy[]
}

/** Collect a whole inventory into a snapshot (without its node states when `onState` takes them as they arrive). */
export async function collectInventory(
  inv: Inventory,
  opts: CollectOptions & {version: string; networkPolicies?: KubeNetworkPolicy[]},
): Promise<Snapshot> {
  const startedAt = new Date().toISOString()
  const results = await collectNodes(inventoryTargets(inv), opts)
  return snapshotOf(inv, results, {
    startedAt,
    finishedAt: new Date().toISOString(),
    version: opts.version,
    ...(opts.networkPolicies ? {networkPolicies: opts.networkPolicies} : {}),
  })
}

const SNAPSHOT_SOURCE = {lab: 'lab', file: 'inventory', kubernetes: 'kubernetes'} as const

/**
 * A node's pod ranges as the snapshot keeps them: its podCIDR first, then the
 * others of spec.podCIDRs (dual-stack), each once; a node without one (Calico
 * IPAM leaves spec.podCIDR empty) has none, not an empty string.
 */
function nodePodCIDRs(n: InventoryNode): string[] {
  return [...new Set([n.podCIDR, ...(n.podCIDRs ?? [])])].filter((c) => isCidr(c))
}

export function snapshotOf(inv: Inventory, results: NodeResult[], meta: SnapshotMeta): Snapshot {
  const nodeStates: Record<string, NodeState> = {}
  for (const r of results) if (r.state) nodeStates[r.node] = r.state
  return {
    schemaVersion: SNAPSHOT_SCHEMA_VERSION,
    generator: {name: 'netctl', version: meta.version},
    startedAt: meta.startedAt,
    finishedAt: meta.finishedAt,
    cluster: {
      source: SNAPSHOT_SOURCE[inv.cluster.source] ?? 'inventory',
      name: inv.cluster.name,
      backend: inv.cluster.backend,
      // unknown (no CNI said, no node has a podCIDR): empty, as the schema allows, never a made-up range
      clusterCIDR: isCidr(inv.cluster.clusterCIDR) ? inv.cluster.clusterCIDR : '',
      ...(inv.cluster.cni ? {cni: inv.cluster.cni} : {}),
      ...(inv.cluster.serviceCIDR ? {serviceCIDR: inv.cluster.serviceCIDR} : {}),
    },
    nodes: inv.nodes.map((n) => ({
      name: n.name,
      internalIP: n.internalIP,
      ...(n.externalIP ? {externalIP: n.externalIP} : {}),
      ...(n.access.netns !== undefined ? {netns: n.access.netns} : {}),
      podCIDRs: nodePodCIDRs(n),
      annotations: n.annotations ?? {},
      labels: n.labels ?? {},
    })),
    pods: inv.pods.map((p) => ({
      name: p.name,
      namespace: p.namespace,
      node: p.node,
      ip: p.ip,
      ...(p.netns !== undefined ? {netns: p.netns} : {}),
      ...(p.pid !== undefined ? {pid: p.pid} : {}),
      ...(p.labels ? {labels: p.labels} : {}),
      ...(p.hostNetwork ? {hostNetwork: true} : {}),
      ...(p.ports ? {ports: p.ports} : {}),
    })),
    nodeStates,
    errors: results.flatMap((r) => r.errors),
    ...(inv.services ? {services: inv.services} : {}),
    ...(inv.namespaces ? {namespaces: inv.namespaces} : {}),
    // the API's policies when it was asked; else the inventory's (a lab's, or written by hand)
    ...((meta.networkPolicies ?? inv.networkPolicies)
      ? {
          networkPolicies: (meta.networkPolicies ?? inv.networkPolicies ?? []).map((np) => ({
            namespace: np.metadata.namespace ?? 'default',
            name: np.metadata.name,
            spec: (np.spec ?? {}) as Record<string, unknown>,
          })),
        }
      : {}),
  }
}
