import type {KubeApi} from '../../cluster/kube-api.js'
import type {KubeConfigMap, KubeDaemonSet} from '../../cluster/kube-types.js'
import {collectInventory} from '../../collect/collect.js'
import {DEFAULT_TIMEOUT_MS, KUBE_SETTLE_MS, NODE_PARALLEL, ROLLOUT_TIMEOUT_MS} from '../../defaults.js'
import {NetctlError} from '../../errors.js'
import type {Snapshot} from '../../model/snapshot.js'
import {mapLimit} from '../../util/exec.js'
import {pollUntil} from '../../util/wait.js'
import {ownedState} from '../plan/current.js'
import {desiredNode} from '../plan/desired.js'
import {diffLines, diffNode} from '../plan/diff.js'
import {clusterFacts} from '../plan/facts.js'
import {describeKubeChange, type KubeChange, type ObjectRef} from '../plan/kube-objects.js'
import {nodeOps} from '../plan/ops.js'
import type {BackendType, ClusterFacts, ConfiguredBackend} from '../plan/types.js'
import type {PlannedSwitch} from '../service.js'
import type {SetOptions, SetOutcome, SetResult} from '../set.js'
import type {BackendTarget} from '../target.js'
import {type Abort, type NodeApplyResult, stopOnSignal, whyStopped} from './apply.js'
import {runBatch} from './batch.js'
import {podReachability} from './pod-ping.js'
import type {RollbackResult} from './rollback.js'
import {type Recollect, verificationFailure, type VerifyResult, verifySwitch} from './verify.js'

/**
 * `backend set` on a Kubernetes cluster. The CNI does the switch: netctl
 * writes its objects (flannel's net-conf.json + a DaemonSet restart, or
 * Calico's IPPools), waits until every node holds the new backend's state,
 * then removes what the old backend leaves behind — flanneld never deletes
 * flannel.1 or flannel0, and Felix leaves an unused vxlan.calico — through
 * the node transports (debug pods or SSH); on failure it writes the objects
 * back as they were and verifies the old state again. One file for the
 * whole switch: the object writes, the steps, and the flow.
 */

// ---- the objects: written, restarted, rolled out --------------------------------

/**
 * The API half of a Kubernetes backend switch: write the objects the CNI
 * reads its backend from, and for flannel restart its DaemonSet and wait for
 * the rollout, as `kubectl rollout restart` and `kubectl rollout status` do.
 * `back` writes the objects as they were before, the same way.
 */

const enc = encodeURIComponent
const configMapPath = (r: ObjectRef): string => `/api/v1/namespaces/${enc(r.namespace)}/configmaps/${enc(r.name)}`
const daemonSetPath = (r: ObjectRef): string => `/apis/apps/v1/namespaces/${enc(r.namespace)}/daemonsets/${enc(r.name)}`
const ipPoolPath = (name: string): string => `/apis/crd.projectcalico.org/v1/ippools/${enc(name)}`

/** The annotation `kubectl rollout restart` sets on the pod template. */
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt'

export interface KubeSwitchOptions {
  /** how long the DaemonSet may take to roll out */
  rolloutTimeoutMs: number
  abort?: Abort
  say?: (line: string) => void
  /** between rollout polls; default 1 s */
  pollMs?: number
}

/** Whether a DaemonSet has rolled out its current template, as `kubectl rollout status` decides it; else what is missing. */
export function rolloutState(ds: KubeDaemonSet): {done: boolean; message: string} {
  const st = (ds.status ?? {}) as {
    observedGeneration?: number
    desiredNumberScheduled?: number
    updatedNumberScheduled?: number
    numberAvailable?: number
  }
  const generation = Number(ds.metadata.generation ?? 0)
  const desired = st.desiredNumberScheduled ?? 0
  const updated = st.updatedNumberScheduled ?? 0
  const available = st.numberAvailable ?? 0
  if ((st.observedGeneration ?? 0) < generation)
    return {done: false, message: 'waiting for the controller to see the new template'}
  if (updated < desired) return {done: false, message: `${updated} of ${desired} updated pods scheduled`}
  if (available < desired) return {done: false, message: `${available} of ${desired} updated pods available`}
  return {done: true, message: `${desired} of ${desired} updated pods available`}
}

async function waitRollout(api: KubeApi, r: ObjectRef, opts: KubeSwitchOptions): Promise<void> {
  let last = ''
  await pollUntil(
    async () => {
      const state = rolloutState(await api.get<KubeDaemonSet>(daemonSetPath(r)))
      if (state.done) return true
      if (state.message !== last) opts.say?.(`  daemonset ${r.namespace}/${r.name}: ${state.message}`)
      last = state.message
      if (opts.abort?.aborted)
        throw new NetctlError(
          `stopped waiting for daemonset ${r.namespace}/${r.name}: ${opts.abort.reason ?? 'interrupted'}`,
        )
      return undefined
    },
    {
      timeoutMs: opts.rolloutTimeoutMs,
      intervalMs: opts.pollMs ?? 1000,
      reason: () =>
        `daemonset ${r.namespace}/${r.name} did not roll out within ${Math.round(opts.rolloutTimeoutMs / 1000)}s (${last}; kubectl -n ${r.namespace} rollout status ds/${r.name})`,
    },
  )
}

/** The net-conf.json of a ConfigMap named `namespace/name`, as the API holds it now. */
export async function readNetConf(api: KubeApi, nsName: string): Promise<string | undefined> {
  const [namespace, name] = nsName.split('/') as [string, string]
  return (await api.get<KubeConfigMap>(configMapPath({namespace, name}))).data?.['net-conf.json']
}

async function writeNetConf(api: KubeApi, r: ObjectRef, expect: string, text: string): Promise<void> {
  const cm = await api.get<KubeConfigMap>(configMapPath(r))
  const now = cm.data?.['net-conf.json']
  if (now !== expect && now !== text)
    throw new NetctlError(`configmap ${r.namespace}/${r.name} changed since netctl read it: plan again`)
  // resourceVersion in the patch: the server refuses it (409) if someone wrote in between
  await api.patch(
    configMapPath(r),
    {metadata: {resourceVersion: cm.metadata.resourceVersion}, data: {'net-conf.json': text}},
    'merge',
  )
}

/**
 * Apply a change (`forward`) or put its objects back as they were (`back`).
 * Each object written is pushed to `done` as it is, so a failure half-way
 * still says what changed.
 */
export async function applyKubeChange(
  api: KubeApi,
  change: KubeChange,
  direction: 'forward' | 'back',
  opts: KubeSwitchOptions,
  done: string[] = [],
): Promise<string[]> {
  if (change.family === 'flannel') {
    const [from, to] = direction === 'forward' ? [change.before, change.after] : [change.after, change.before]
    const cm = `configmap ${change.configMap.namespace}/${change.configMap.name}`
    opts.say?.(`${direction === 'forward' ? 'patching' : 'restoring'} ${cm} net-conf.json`)
    await writeNetConf(api, change.configMap, from, to)
    done.push(cm)
    const ds = `daemonset ${change.daemonSet.namespace}/${change.daemonSet.name}`
    opts.say?.(`restarting ${ds} (flanneld reads its backend at start) and waiting for the rollout`)
    await api.patch(
      daemonSetPath(change.daemonSet),
      {spec: {template: {metadata: {annotations: {[RESTARTED_AT]: new Date().toISOString()}}}}},
      'strategic',
    )
    done.push(ds)
    await waitRollout(api, change.daemonSet, opts)
    return done
  }
  for (const p of change.pools) {
    const modes = direction === 'forward' ? p.after : p.before
    opts.say?.(
      `${direction === 'forward' ? 'patching' : 'restoring'} ippool ${p.name}: ipipMode ${modes.ipipMode}, vxlanMode ${modes.vxlanMode}`,
    )
    // IPPools are custom resources: merge patch (strategic merge is refused for CRDs)
    await api.patch(ipPoolPath(p.name), {spec: modes}, 'merge')
    done.push(`ippool ${p.name}`)
  }
  return done
}

// ---- the steps: the CNI programs the nodes, netctl clears what the old backend left ----

export interface KubeStepOptions {
  version: string
  timeoutMs?: number
  rolloutTimeoutMs: number
  settleMs: number
  abort?: Abort
  say: (line: string) => void
}

/** Re-read the cluster: the inventory anew from the API (flanneld rewrites node annotations on start), then every node. */
export function kubeRecollect(
  target: BackendTarget,
  type: ConfiguredBackend,
  opts: Pick<KubeStepOptions, 'version' | 'timeoutMs'>,
): Recollect {
  const kube = target.kube!
  return async () => {
    const inventory = await kube.cluster.inventory(kube.detection)
    const snapshot = await collectInventory(inventory, {
      version: opts.version,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      transportFactory: (node) => target.source.transportFor(node),
    })
    snapshot.cluster.backend = type
    return snapshot
  }
}

/** Facts as the cluster states them now: VTEP MACs are the ones the restarted daemons announced. */
export const liveFacts = (s: Snapshot): ClusterFacts => clusterFacts(s)

/** Per node, the lines of `type` still missing, and the ops that remove everything not of `type`. */
function leftovers(
  s: Snapshot,
  type: ConfiguredBackend,
): {missing: string[]; removals: Array<{node: string; ip: string[]; bridge: string[]}>} {
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
    if (ops.removeIp.length + ops.removeBridge.length > 0)
      removals.push({node: n.name, ip: ops.removeIp, bridge: ops.removeBridge})
  }
  return {missing, removals}
}

/**
 * Wait until the CNI has programmed `type` on every node, then delete what
 * other backends left there. Never removes before the new state is whole, so
 * pods keep a path. Returns per node what was run.
 */
export async function clearLeftovers(
  recollect: Recollect,
  type: ConfiguredBackend,
  target: BackendTarget,
  opts: KubeStepOptions,
): Promise<NodeApplyResult[]> {
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
  if (found.removals.length > 0)
    opts.say(`removing what the old backend left on ${found.removals.map((r) => r.node).join(', ')}`)
  return mapLimit(found.removals, NODE_PARALLEL, async (r): Promise<NodeApplyResult> => {
    const node = target.inventory.nodes.find((n) => n.name === r.node) ?? {
      name: r.node,
      internalIP: '',
      podCIDR: '',
      access: {},
    }
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
    await applyKubeChange(
      target.kube!.cluster.api,
      change,
      direction,
      {
        rolloutTimeoutMs: opts.rolloutTimeoutMs,
        say: opts.say,
        ...(direction === 'forward' && opts.abort ? {abort: opts.abort} : {}),
      },
      objects,
    )
  } catch (error) {
    return {objects, nodes: [], error: (error as Error).message}
  }
  const nodes = await clearLeftovers(
    kubeRecollect(target, type, opts),
    type,
    target,
    direction === 'back' ? {...opts, abort: {aborted: false}} : opts,
  )
  const failed = nodes.find((n) => !n.ok)
  return {objects, nodes, ...(failed ? {error: `${failed.node}: ${failed.error}`} : {})}
}

// ---- the flow: forward, verify, back on failure ------------------------------

/** The Kubernetes half: write the CNI's objects, let it program the nodes, clear leftovers, verify; on failure write them back. */
export async function kubeSet(
  target: BackendTarget,
  planned: PlannedSwitch,
  to: BackendType,
  opts: SetOptions,
  abort: Abort,
): Promise<SetResult> {
  const say = opts.progress ?? (() => {})
  const {plan} = planned
  const change = planned.kubeChange!
  const switchEnded = stopOnSignal(abort, say)
  const step = {
    version: opts.version,
    ...(opts.timeoutMs ? {timeoutMs: opts.timeoutMs} : {}),
    rolloutTimeoutMs: opts.rolloutTimeoutMs ?? ROLLOUT_TIMEOUT_MS,
    settleMs: opts.settleMs ?? KUBE_SETTLE_MS,
    say,
  }
  // real pings between pods, from inside their namespaces on their nodes (the runtime's netns paths, read before the switch)
  const reachability = podReachability(planned.snapshot, target.inventory.nodes, (node) =>
    target.source.transportFor(node),
  )
  const verifyOpts = {timeoutMs: step.settleMs, factsOf: liveFacts, reachability}
  try {
    say(`switching ${plan.from} -> ${to} through the cluster's objects`)
    const forward = await kubeStep(target, change, 'forward', to, {...step, abort})
    let verify: VerifyResult | undefined
    let failure = forward.error
    if (!failure && !abort.aborted) {
      say('verifying: re-collecting every node, tracing pod pairs')
      verify = await verifySwitch(kubeRecollect(target, to, step), planned.facts, to, {
        ...verifyOpts,
        ...(opts.expected ? {expected: opts.expected} : {}),
      })
      if (!verify.ok) failure = verificationFailure(verify)
    }
    failure = whyStopped(abort, failure)
    const objects = describeKubeChange(change)
    if (!failure) {
      return {
        ...planned,
        outcome: 'applied',
        message: `${plan.from} -> ${to}: ${forward.objects.join(', ')} changed; every node verified`,
        apply: forward.nodes,
        ...(verify ? {verify} : {}),
        objects,
      }
    }

    if (forward.objects.length === 0) {
      // nothing was written (the ConfigMap changed under us, a patch refused): nothing to put back or restart
      const rb: RollbackResult = {restored: true, nodes: [], verify: {ok: true, stateOk: true, problems: []}}
      return {
        ...planned,
        outcome: 'rolled-back',
        message: `not applied: ${failure}; nothing in the cluster was changed`,
        apply: [],
        rollback: rb,
        objects: [],
      }
    }
    say(`putting the objects back: ${failure}`)
    const back = await kubeStep(target, change, 'back', plan.from, step)
    const rbVerify = back.error
      ? {ok: false, stateOk: false, problems: [back.error]}
      : await verifySwitch(kubeRecollect(target, plan.from, step), planned.facts, plan.from, verifyOpts)
    const rb: RollbackResult = {restored: rbVerify.stateOk, nodes: back.nodes, verify: rbVerify}
    const outcome: SetOutcome = rb.restored ? 'rolled-back' : 'rollback-failed'
    const message = rb.restored
      ? `rolled back: ${failure}; ${back.objects.join(', ')} restored and every node holds ${plan.from} again`
      : `ROLLBACK INCOMPLETE after: ${failure}; still off: ${rbVerify.problems.slice(0, 3).join('; ')}`
    return {...planned, outcome, message, apply: forward.nodes, ...(verify ? {verify} : {}), rollback: rb, objects}
  } finally {
    switchEnded()
  }
}
