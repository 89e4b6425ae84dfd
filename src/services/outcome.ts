/**
 * What each command's result means for its exit code, in one place: the row
 * of ERROR_CLASSES (src/errors.ts) a result falls in, and the one line that
 * says why when it is not ok. BaseCommand turns the outcome into the code.
 */
import type {MatrixDiff} from '../analyze/matrix.js'
import type {BackendView} from '../backend/plan/drift.js'
import type {WhatIf} from '../backend/plan/what-if.js'
import {breakLine} from '../backend/plan/what-if-summary.js'
import type {PlannedSwitch} from '../backend/service.js'
import type {SetOutcome, SetResult} from '../backend/set.js'
import {uncollectedLine} from '../collect/summary.js'
import type {Outcome, Verdict} from '../errors.js'
import type {BenchReport} from '../lab/bench.js'
import type {LabStatus} from '../lab/status.js'
import type {CollectionError, Snapshot} from '../model/snapshot.js'
import type {Trace} from '../model/trace.js'
import type {CleanupResult} from '../transport/kube-debug.js'
import type {CheckResult} from './check-result.js'
import type {MatrixRun} from './matrix.js'

/**
 * A node not read is unreachable (exit 3) even when the others were: the
 * result is not the whole cluster. The line names the node and why.
 */
function collected(nodes: number, errors: readonly CollectionError[]): Verdict | undefined {
  const missing = uncollectedLine(nodes, errors)
  return missing === undefined ? undefined : {outcome: 'unreachable', why: missing}
}

/** collect: every node collected is ok; a collection is not a diagnosis. */
export function collectVerdict(s: {nodes: readonly unknown[]; errors: readonly CollectionError[]}): Verdict {
  return collected(s.nodes.length, s.errors) ?? {outcome: 'ok'}
}

/**
 * trace: SRC's node not reached is unreachable (nothing about the path is
 * known); delivered both ways with no error finding is ok; every other answer
 * is a fault found (a diagnosis).
 */
export function traceVerdict(trace: Trace, snapshot: Snapshot, srcNode: string): Verdict {
  const srcUnreachable =
    snapshot.nodeStates[srcNode] === undefined &&
    snapshot.errors.some((e) => e.node === srcNode && e.code === 'NODE_UNREACHABLE')
  if (srcUnreachable) return {outcome: 'unreachable'}
  // a Service: every endpoint its rules send to (or the one --endpoint names) reached
  const allReached = !trace.service || trace.service.reached === trace.service.total
  const delivered = trace.disposition === 'DELIVERED' && trace.returnPath?.disposition === 'DELIVERED' && allReached
  return {outcome: delivered && !trace.findings.some((f) => f.severity === 'error') ? 'ok' : 'fault'}
}

/** check: nothing collected is unreachable; an error finding, or a pair --probe lost, is a fault (warnings and info are not). */
export function checkVerdict(r: CheckResult): Verdict {
  if (r.collected === 0) return {outcome: 'unreachable'}
  // --probe: a pair whose packet was lost is a fault even where no node's state shows why
  return {outcome: r.counts.error > 0 || (r.probe?.counts.lost ?? 0) > 0 ? 'fault' : 'ok'}
}

/** backend get: a node not read before any drift (the view is not the whole cluster); drift is a fault. */
export function backendGetVerdict(view: BackendView): Verdict {
  return collected(view.nodes.length, view.errors) ?? {outcome: view.drift.length > 0 ? 'fault' : 'ok'}
}

/**
 * backend plan: a switch preflight would refuse is refused; so is one whose
 * what-if (when asked for) predicts a break, as `backend set` would refuse it
 * without --force; nothing to do is ok.
 */
export function planVerdict(planned: PlannedSwitch, predicted?: WhatIf): Verdict {
  if (planned.plan.noop) return {outcome: 'ok'}
  if (!planned.preflight.ok) return {outcome: 'refused'}
  const breaks = predicted ? breakLine(predicted) : undefined
  return breaks ? {outcome: 'refused', why: `the what-if: ${breaks}`} : {outcome: 'ok'}
}

/** backend set: how each way a switch can end maps onto the table. */
const SET_OUTCOMES: Record<SetOutcome, Outcome> = {
  applied: 'ok',
  noop: 'ok',
  'dry-run': 'ok',
  // refused by preflight or another run's lock, declined at the prompt, rolled back (wholly or not)
  refused: 'refused',
  declined: 'refused',
  'rolled-back': 'refused',
  'rollback-failed': 'refused',
}

/** backend set: applied (or nothing to do) is ok; every other ending is refused, with the switch's own line. */
export function setVerdict(r: SetResult): Verdict {
  const outcome = SET_OUTCOMES[r.outcome]
  return outcome === 'ok' ? {outcome} : {outcome, why: r.message}
}

/** lab bench: a backend whose lab could not be built is a step that failed (the other rows are still measured). */
export function benchVerdict(report: BenchReport): Verdict {
  return {outcome: report.results.some((b) => b.status === 'failed') ? 'failed' : 'ok'}
}

/** lab status: a lab not up, a pod pair that does not ping or a BGP session not Established is a fault. */
export function labStatusVerdict(status: LabStatus): Verdict {
  const unhealthy =
    status.status !== 'up' ||
    (status.reachability && status.reachability.ok < status.reachability.pairs) ||
    status.bgp?.some((b) => b.state !== 'Established')
  return {outcome: unhealthy ? 'fault' : 'ok'}
}

/** debug cleanup: a pod that could not be deleted is a step that failed. */
export function debugCleanupVerdict(result: CleanupResult): Verdict {
  return {outcome: result.failed.length > 0 ? 'failed' : 'ok'}
}

/** matrix: nothing collected is unreachable; a pair that fails is a fault found. */
export function matrixVerdict(run: MatrixRun): Verdict {
  if (run.collected === 0) return {outcome: 'unreachable'}
  const svc = run.matrix.serviceCounts
  const failed = run.matrix.counts.failed + (svc ? svc.partial + svc.failed : 0)
  return {outcome: failed > 0 ? 'fault' : 'ok'}
}

/** matrix BEFORE AFTER: a pair that was delivered and no longer is (a Service cell that reaches fewer endpoints) is a fault; one mended, or none changed, is ok. */
export function matrixDiffVerdict(d: MatrixDiff): Verdict {
  const lost = (d.changedServices ?? []).some(
    (c) => c.before.disposition === 'DELIVERED' || c.after.reached < c.before.reached,
  )
  return {outcome: lost || d.changed.some((c) => c.before.disposition === 'DELIVERED') ? 'fault' : 'ok'}
}
