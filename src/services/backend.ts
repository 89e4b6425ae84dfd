/**
 * `netctl backend get | plan | set` behind the commands: the cluster the
 * flags name opened as a backend target, the one operation run on it, and the
 * target closed (debug pods deleted, SSH connections closed), also when the
 * operation failed. Prints nothing: a switch's progress, the plan before the
 * question and the question itself are handed in by the command.
 */
import type {BackendView} from '../backend/plan/drift.js'
import type {BackendType} from '../backend/plan/types.js'
import {type WhatIf, whatIf} from '../backend/plan/what-if.js'
import {backendGet, planBackend, type PlannedSwitch} from '../backend/service.js'
import {backendSet, type SetResult} from '../backend/set.js'
import {type BackendTarget, resolveTarget} from '../backend/target.js'
import type {SourceFlags} from '../collect/source.js'
import {UsageError, type Verdict} from '../errors.js'
import {backendGetVerdict, planVerdict, setVerdict} from './outcome.js'

export interface BackendRequest {
  source: SourceFlags
  /** how long each node may take to be read */
  timeoutMs: number
  /** netctl's version, recorded in the snapshots */
  version: string
}

/** The target the flags name, `work` run on it, the target closed at the end (also on error). */
async function onTarget<T>(source: SourceFlags, work: (target: BackendTarget) => Promise<T>): Promise<T> {
  const target = await resolveTarget(source)
  try {
    return await work(target)
  } finally {
    // debug pods deleted, SSH connections closed
    await target.close()
  }
}

/** `backend get`: what every node has programmed, and the drift from the configured backend. */
export async function runBackendGet(req: BackendRequest): Promise<{view: BackendView; verdict: Verdict}> {
  const view = await onTarget(req.source, (target) =>
    backendGet(target, {version: req.version, timeoutMs: req.timeoutMs}),
  )
  return {view, verdict: backendGetVerdict(view)}
}

/** `backend plan TYPE [--what-if]`: what a switch would change, whether preflight lets it, and (what-if) what the packets would then do. */
export async function runBackendPlan(
  req: BackendRequest & {to: BackendType; whatIf?: boolean},
): Promise<{planned: PlannedSwitch; predicted?: WhatIf | undefined; verdict: Verdict}> {
  const planned = await onTarget(req.source, (target) =>
    planBackend(target, req.to, {version: req.version, timeoutMs: req.timeoutMs}),
  )
  const predicted = req.whatIf ? whatIf(planned.snapshot, planned.plan) : undefined
  return {planned, predicted, verdict: planVerdict(planned, predicted)}
}

export interface BackendSetRequest extends BackendRequest {
  to: BackendType
  /** --yes: apply without asking */
  yes: boolean
  dryRun: boolean
  /** --force: switch even when the what-if predicts broken pairs */
  force: boolean
  /** --lock-timeout: how long to wait for another run's change */
  lockTimeoutMs: number
  rolloutTimeoutMs: number
  /** whether a person is there to be asked (stdin and stderr are terminals) */
  terminal: boolean
  /** the switch's progress lines (none with --json) */
  progress?: ((line: string) => void) | undefined
  /** shows the plan before the question (nothing with --json) */
  show?: ((planned: PlannedSwitch) => void) | undefined
  /** asks a yes/no question on the terminal */
  ask: (question: string) => Promise<boolean>
}

export interface BackendSetRun {
  result: SetResult
  /** whether the plan was shown before the question (the result then leaves it out) */
  shown: boolean
  verdict: Verdict
}

/**
 * `backend set TYPE`: without --yes (or --dry-run) a person must be there to
 * confirm, or it is a usage error before anything is read; the switch runs
 * with the plan shown and asked about once preflight passed.
 */
export async function runBackendSet(req: BackendSetRequest): Promise<BackendSetRun> {
  if (!req.yes && !req.dryRun && !req.terminal)
    throw new UsageError('not a terminal, so netctl cannot ask: pass --yes to apply (or --dry-run to only plan)', false)
  let shown = false
  const result = await onTarget(req.source, (target) =>
    backendSet(target, req.to, {
      version: req.version,
      timeoutMs: req.timeoutMs,
      rolloutTimeoutMs: req.rolloutTimeoutMs,
      lockTimeoutMs: req.lockTimeoutMs,
      dryRun: req.dryRun,
      force: req.force,
      ...(req.progress ? {progress: req.progress} : {}),
      confirm: async (planned) => {
        if (req.yes) return true
        req.show?.(planned)
        shown = true
        return req.ask(`apply ${planned.plan.to} on ${planned.plan.nodes.length} nodes?`)
      },
    }),
  )
  return {result, shown, verdict: setVerdict(result)}
}
