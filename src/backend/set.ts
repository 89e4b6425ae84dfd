import {collectInventory} from '../collect/collect.js'
import {DEFAULT_TIMEOUT_MS, SETTLE_MS} from '../defaults.js'
import type {InventoryNode} from '../model/inventory.js'
import type {Transport} from '../transport/types.js'
import {type Abort, applyAll, type NodeApplyResult, stopOnSignal, whyStopped} from './act/apply.js'
import type {DaemonControl, ReachabilityCheck} from './act/daemons.js'
import {kubeSet} from './act/kubernetes.js'
import {labDaemons, labReachability, recordLabBackend} from './act/lab.js'
import {acquireLock, changeLockOf} from './act/lock.js'
import {podReachability} from './act/pod-ping.js'
import {rollback, type RollbackResult} from './act/rollback.js'
import {type ExpectedBreaks, verificationFailure, type VerifyResult, verifySwitch} from './act/verify.js'
import type {Preflight} from './plan/preflight.js'
import type {BackendType} from './plan/types.js'
import {type WhatIf, whatIf} from './plan/what-if.js'
import {breakLine, brokenPairs} from './plan/what-if-summary.js'
import {type CollectOpts, planBackend, type PlannedSwitch} from './service.js'
import {type BackendTarget, recordInventoryBackend} from './target.js'

/**
 * `netctl backend set TYPE`: plan, preflight, (confirm), apply, verify; on
 * any failure, Ctrl-C or SIGTERM, roll every touched node back to its
 * snapshot. The cluster's daemons and files are reached through the target:
 * the lab's backend registry, or in Kubernetes the CNI's objects
 * (act/kubernetes.ts).
 */

export type SetOutcome = 'applied' | 'noop' | 'dry-run' | 'refused' | 'declined' | 'rolled-back' | 'rollback-failed'

export interface SetResult extends PlannedSwitch {
  outcome: SetOutcome
  /** one line saying what happened */
  message: string
  apply?: NodeApplyResult[]
  verify?: VerifyResult
  rollback?: RollbackResult
  /** files rewritten for the new backend */
  files?: string[]
  /** Kubernetes: the API objects written (and restarted) */
  objects?: string[]
  /** the what-if run before anything is applied: the pairs the switch would break, and why */
  whatIf?: WhatIf
  /** --force: a predicted break did not stop the switch */
  forced?: boolean
}

export interface SetOptions extends CollectOpts {
  dryRun: boolean
  /** asked once the plan is shown and preflight passed; false declines */
  confirm: (planned: PlannedSwitch) => Promise<boolean>
  progress?: (line: string) => void
  /** how long verification waits for the new state (daemons, BGP) */
  settleMs?: number
  /** Kubernetes: how long a DaemonSet may take to roll out (default 5 minutes) */
  rolloutTimeoutMs?: number
  /** how long to wait for another run's change lock (default 0: refused at once) */
  lockTimeoutMs?: number
  /** switch even when the what-if predicts broken pairs (and past HOSTGW_NOT_L2_ADJACENT, which predicts them too) */
  force?: boolean
  /** set by the switch for a forced run: what verification accepts as predicted */
  expected?: ExpectedBreaks
}

/**
 * Preflight refusals that predict a break rather than an impossibility: the
 * switch can be made, and the what-if says what it breaks. --force goes past
 * them; every other refusal stands.
 */
const FORCEABLE: ReadonlySet<string> = new Set(['HOSTGW_NOT_L2_ADJACENT'])

function blockingFindings(preflight: Preflight, force: boolean) {
  return preflight.findings.filter((f) => f.severity === 'error' && !(force && FORCEABLE.has(f.code)))
}

/** What a forced switch's verification accepts: the routes the kernel refuses, the node pairs that break. */
function expectedBreaks(w: WhatIf, snapshot: PlannedSwitch['snapshot']): ExpectedBreaks {
  const nodeOf = (pod: string) => snapshot.pods.find((p) => `${p.namespace}/${p.name}` === pod)?.node ?? pod
  const nodePairs = [...new Set(brokenPairs(w).map((b) => `${nodeOf(b.src)} -> ${nodeOf(b.dst)}`))]
  return {routes: w.refusedRoutes, nodePairs}
}

/**
 * One change at a time per cluster: the change lock (lock.ts) is taken before
 * planning and held through verify or rollback. A dry run changes nothing and
 * takes no lock, as `backend plan` takes none.
 */
export async function backendSet(target: BackendTarget, to: BackendType, opts: SetOptions): Promise<SetResult> {
  const abort: Abort = {aborted: false}
  if (opts.dryRun) return switchBackend(target, to, opts, abort)
  const say = opts.progress ?? (() => {})
  const lock = changeLockOf(target, `backend set ${to}`, {
    onLost: (by) => {
      say(`lost the change lock to ${by}: stopping the switch and rolling back`)
      abort.aborted = true
      abort.reason ??= `lost the change lock to ${by}`
    },
  })
  const {waited} = await acquireLock(lock, {timeoutMs: opts.lockTimeoutMs ?? 0, say})
  let current = target
  try {
    // another run changed the cluster while this one waited: what was read before is stale
    if (waited && target.reopen) current = await target.reopen()
    return await switchBackend(current, to, opts, abort)
  } finally {
    await lock.release()
    if (current !== target) await current.close()
  }
}

async function switchBackend(
  target: BackendTarget,
  to: BackendType,
  opts: SetOptions,
  abort: Abort,
): Promise<SetResult> {
  const say = opts.progress ?? (() => {})
  say(`collecting ${target.inventory.nodes.length} nodes and planning ${target.configured} -> ${to}`)
  const planned = await planBackend(target, to, opts)
  const {plan, preflight, snapshot} = planned
  if (plan.noop)
    return {...planned, outcome: 'noop', message: `already ${to}: every node holds its state, nothing to change`}
  const force = opts.force === true
  // the what-if before anything is touched: pure, over the snapshot just collected
  const predicted = whatIf(snapshot, plan)
  const breaks = breakLine(predicted)
  const blocking = blockingFindings(preflight, force)
  if (blocking.length > 0) {
    const first = blocking[0]!
    // a refusal --force would go past says so, with what the what-if predicts
    const forceable = blocking.every((f) => FORCEABLE.has(f.code))
    const more = forceable ? `${breaks ? `; the what-if: ${breaks}` : ''}; --force switches anyway` : ''
    return {
      ...planned,
      whatIf: predicted,
      outcome: 'refused',
      message: `refused by preflight (${first.code}): ${first.message}${more}`,
    }
  }
  if (breaks && !force)
    return {
      ...planned,
      whatIf: predicted,
      outcome: 'refused',
      message: `refused by the what-if: ${breaks}; --force switches anyway`,
    }
  const forced = breaks !== undefined || !preflight.ok
  if (opts.dryRun)
    return {
      ...planned,
      whatIf: predicted,
      ...(forced ? {forced} : {}),
      outcome: 'dry-run',
      message: `dry run: ${plan.nodes.reduce((s, n) => s + n.changes, 0)} changes on ${plan.nodes.filter((n) => n.changes > 0).length} nodes not applied`,
    }
  if (!(await opts.confirm(planned)))
    return {...planned, whatIf: predicted, outcome: 'declined', message: 'not applied: declined at the prompt'}
  const expected = forced ? expectedBreaks(predicted, snapshot) : undefined
  const refusable = forced ? refusableOps(predicted) : undefined
  const done = await applySwitch(target, planned, to, {...opts, ...(expected ? {expected} : {})}, abort, refusable)
  if (!forced) return {...done, whatIf: predicted}
  // a forced switch that held says what it broke, as predicted
  const message =
    done.outcome === 'applied' && breaks ? `${done.message}; forced past the what-if: ${breaks}` : done.message
  return {...done, message, whatIf: predicted, forced}
}

/** Per node, the batch lines of the routes the what-if predicts the kernel refuses. */
function refusableOps(w: WhatIf): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const r of w.refused) out[r.node] = [...(out[r.node] ?? []), r.op]
  return out
}

async function applySwitch(
  target: BackendTarget,
  planned: PlannedSwitch,
  to: BackendType,
  opts: SetOptions,
  abort: Abort,
  refusable: Record<string, string[]> | undefined,
): Promise<SetResult> {
  const say = opts.progress ?? (() => {})
  const {plan, facts, snapshot} = planned
  if (target.kind === 'kubernetes') return kubeSet(target, planned, to, opts, abort)
  const daemons: DaemonControl | undefined = target.record ? labDaemons(target.record) : undefined
  // in a lab netctl pings from the pod namespaces it made; elsewhere from the namespaces the probe found
  const reachability: ReachabilityCheck = target.record
    ? labReachability(target.record)
    : podReachability(snapshot, target.inventory.nodes, (node) => target.source.transportFor(node))
  const transportFor = (node: InventoryNode): Transport => target.source.transportFor(node)
  const recollect = () =>
    collectInventory(target.inventory, {
      version: opts.version,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      transportFactory: transportFor,
    })
  const switchEnded = stopOnSignal(abort, say)
  try {
    say(`applying ${plan.to} on ${plan.nodes.length} nodes`)
    const ops = plan.nodes.map((n) => n.ops!)
    const applied = await applyAll(ops, {
      nodes: target.inventory.nodes,
      transportFor,
      ...(daemons ? {daemons} : {}),
      type: to,
      abort,
      ...(refusable ? {refusable} : {}),
      onStep: (node, step) => say(`  ${node}: ${step}`),
    })
    let verify: VerifyResult | undefined
    // the node that failed on its own, not the ones it stopped
    let failure = (applied.find((r) => !r.ok && !r.interrupted) ?? applied.find((r) => !r.ok))?.error
    if (!failure && !abort.aborted) {
      say('verifying: re-collecting every node, tracing and pinging pod pairs')
      verify = await verifySwitch(recollect, facts, to, {
        timeoutMs: opts.settleMs ?? SETTLE_MS,
        reachability,
        ...(opts.expected ? {expected: opts.expected} : {}),
      })
      if (!verify.ok) failure = verificationFailure(verify)
    }
    failure = whyStopped(abort, failure)
    if (!failure) {
      const files = target.record
        ? await recordLabBackend(target.record, to)
        : await recordInventoryBackend(target.inventoryFile!, to, facts)
      const changed = plan.nodes.filter((n) => n.changes > 0).length
      return {
        ...planned,
        outcome: 'applied',
        message: `${plan.from} -> ${to}: applied on ${changed} node(s) and verified`,
        apply: applied,
        ...(verify ? {verify} : {}),
        files,
      }
    }

    const touched = applied.filter((r) => r.touched).map((r) => r.node)
    say(`rolling back ${touched.length} node(s): ${failure}`)
    const rb = await rollback(
      snapshot,
      facts,
      plan.from,
      touched,
      recollect,
      {
        nodes: target.inventory.nodes,
        transportFor,
        ...(daemons ? {daemons} : {}),
        abort,
        onStep: (node, step) => say(`  ${node}: ${step}`),
      },
      {
        timeoutMs: opts.settleMs ?? SETTLE_MS,
        reachability,
      },
    )
    const outcome: SetOutcome = rb.restored ? 'rolled-back' : 'rollback-failed'
    const message = rb.restored
      ? `rolled back: ${failure}; every touched node (${touched.join(', ') || 'none'}) holds its state from before again`
      : `ROLLBACK INCOMPLETE after: ${failure}; still off: ${rb.verify.problems.slice(0, 3).join('; ')}`
    return {...planned, outcome, message, apply: applied, ...(verify ? {verify} : {}), rollback: rb}
  } finally {
    switchEnded()
  }
}
