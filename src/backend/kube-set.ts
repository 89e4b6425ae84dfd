import {DEFAULT_TIMEOUT_MS, NODE_PARALLEL} from '../defaults.js'
import {collectInventory} from '../collect/collect.js'
import type {Snapshot} from '../model/snapshot.js'
import type {Abort, NodeApplyResult} from './apply.js'
import {runBatch} from './batch.js'
import {ownedState} from './current.js'
import {desiredNode} from './desired.js'
import {diffLines, diffNode} from './diff.js'
import {clusterFacts} from './facts.js'
import type {KubeChange} from './kube-objects.js'
import {applyKubeChange} from './kube-switch.js'
import {nodeOps} from './ops.js'
import type {BackendTarget} from './target.js'
import type {ClusterFacts, ConfiguredBackend} from './types.js'
import type {Recollect} from './verify.js'
import {mapLimit} from '../util/exec.js'
import {pollUntil} from '../util/wait.js'

/**
 * `backend set` on a Kubernetes cluster. The CNI does the switch: netctl
 * writes its objects (flannel's net-conf.json + a DaemonSet restart, or
 * Calico's IPPools), waits until every node holds the new backend's state,
 * then removes what the old backend leaves behind — flanneld never deletes
 * flannel.1 or flannel0, and Felix leaves an unused vxlan.calico — through
 * the node transports (debug pods or SSH).
 */

export interface KubeStepOptions {
  version: string
  timeoutMs?: number
  rolloutTimeoutMs: number
  settleMs: number
  abort?: Abort
  say: (line: string) => void
}

/** Re-read the cluster: the inventory anew from the API (flanneld rewrites node annotations on start), then every node. */
export function kubeRecollect(target: BackendTarget, type: ConfiguredBackend, opts: Pick<KubeStepOptions, 'version' | 'timeoutMs'>): Recollect {
  const kube = target.kube!
  return async () => {
    const inventory = await kube.cluster.inventory(kube.detection)
    const snapshot = await collectInventory(inventory, {version: opts.version, timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, transportFactory: (node) => target.source.transportFor(node)})
    snapshot.cluster.backend = type
    return snapshot
  }
}

/** Facts as the cluster states them now: VTEP MACs are the ones the restarted daemons announced. */
export const liveFacts = (s: Snapshot): ClusterFacts => clusterFacts(s)

/** Per node, the lines of `type` still missing, and the ops that remove everything not of `type`. */
function leftovers(s: Snapshot, type: ConfiguredBackend): {missing: string[]; removals: Array<{node: string; ip: string[]; bridge: string[]}>} {
  const facts = liveFacts(s)
  const missing: string[] = []
  const removals: Array<{node: string; ip: string[]; bridge: string[]}> = []
  for (const n of facts.nodes) {
    const state = s.nodeStates[n.name]
    if (!state) {
      missing.push(`${n.name}: not collected`)
      continue
    }
    const diff = diffNode(ownedState(state, facts), desiredNode(type, facts, n))
    const add = Object.values(diffLines(diff)).flatMap((l) => l.add)
    if (add.length > 0) missing.push(`${n.name}: missing ${add.length} line(s), e.g. ${add[0]}`)
    const ops = nodeOps(diff)
    if (ops.removeIp.length + ops.removeBridge.length > 0) removals.push({node: n.name, ip: ops.removeIp, bridge: ops.removeBridge})
  }
  return {missing, removals}
}

/**
 * Wait until the CNI has programmed `type` on every node, then delete what
 * other backends left there. Never removes before the new state is whole, so
 * pods keep a path. Returns per node what was run.
 */
export async function clearLeftovers(recollect: Recollect, type: ConfiguredBackend, target: BackendTarget, opts: KubeStepOptions): Promise<NodeApplyResult[]> {
  let found: ReturnType<typeof leftovers> = {missing: [], removals: []}
  await pollUntil(
    async () => {
      found = leftovers(await recollect(), type)
      return found.missing.length === 0 ? found : undefined
    },
    {timeoutMs: opts.settleMs, intervalMs: 1000, ...(opts.abort ? {abort: opts.abort} : {})},
  )
  // the new state is not whole: removing the old would cut pods off; verification says what is missing
  if (found.missing.length > 0) return []
  if (found.removals.length > 0) opts.say(`removing what the old backend left on ${found.removals.map((r) => r.node).join(', ')}`)
  return mapLimit(found.removals, NODE_PARALLEL, async (r): Promise<NodeApplyResult> => {
    const node = target.inventory.nodes.find((n) => n.name === r.node) ?? {name: r.node, internalIP: '', podCIDR: '', access: {}}
    const step = `remove: ip -batch (${r.ip.length} lines), bridge -batch (${r.bridge.length})`
    opts.say(`  ${r.node}: ${step}`)
    try {
      await runBatch(r.node, target.source.transportFor(node), r.ip, r.bridge, {force: true})
      return {node: r.node, touched: true, ok: true, steps: [step]}
    } catch (error) {
      return {node: r.node, touched: true, ok: false, error: (error as Error).message, steps: [step]}
    }
  })
}

/** Write the objects (forward) or put them back (back), then let the CNI program the nodes and clear the rest. */
export async function kubeStep(
  target: BackendTarget,
  change: KubeChange,
  direction: 'forward' | 'back',
  type: ConfiguredBackend,
  opts: KubeStepOptions,
): Promise<{objects: string[]; nodes: NodeApplyResult[]; error?: string}> {
  const objects: string[] = []
  try {
    await applyKubeChange(target.kube!.cluster.api, change, direction, {rolloutTimeoutMs: opts.rolloutTimeoutMs, say: opts.say, ...(direction === 'forward' && opts.abort ? {abort: opts.abort} : {})}, objects)
  } catch (error) {
    return {objects, nodes: [], error: (error as Error).message}
  }
  const nodes = await clearLeftovers(kubeRecollect(target, type, opts), type, target, direction === 'back' ? {...opts, abort: {aborted: false}} : opts)
  const failed = nodes.find((n) => !n.ok)
  return {objects, nodes, ...(failed ? {error: `${failed.node}: ${failed.error}`} : {})}
}
