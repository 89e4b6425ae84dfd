import {traceSnapshot} from '../../analyze/trace/index.js'
import {SETTLE_MS} from '../../defaults.js'
import type {NodeState} from '../../model/node-state.js'
import type {Snapshot} from '../../model/snapshot.js'
import {pollUntil} from '../../util/wait.js'
import {ownedState} from '../plan/current.js'
import {desiredNode} from '../plan/desired.js'
import {diffIsEmpty, diffLines, diffNode} from '../plan/diff.js'
import {routeLine} from '../plan/lines.js'
import type {ClusterFacts, ConfiguredBackend, NodeDesired} from '../plan/types.js'
import type {ReachabilityCheck} from './daemons.js'

/**
 * After a switch (or a rollback): re-collect until every node holds exactly
 * the target state — the new signature present, the old one gone, its
 * daemons running, BGP sessions Established — or time runs out; then ping
 * pod pairs for real where the cluster lets us.
 */

export interface Recollect {
  (): Promise<Snapshot>
}

export interface VerifyResult {
  ok: boolean
  /** every node holds the target state (reachability aside) */
  stateOk: boolean
  problems: string[]
  reachability?: {pairs: number; ok: number; failed: Array<{from: string; to: string; toIP: string}>}
  /** why reachability was not checked */
  reachabilityNote?: string
  /** netctl trace over the re-collected state: one pod pair per ordered node pair, both directions */
  traced?: {pairs: number; delivered: number; failed: Array<{from: string; to: string; disposition: string}>}
  snapshot?: Snapshot
  /** a forced switch: the failures the what-if predicted, accepted rather than rolled back */
  expected?: string[]
}

/**
 * What a forced switch is expected to break (from its what-if): the routes
 * the kernel refuses stay missing, and the node pairs whose pods stop
 * reaching each other may fail their trace and ping. Anything else still fails
 * the verification.
 */
export interface ExpectedBreaks {
  /** per node, the refused routes as `ip route` prints them */
  routes: Record<string, string[]>
  /** ordered node pairs as "a -> b" */
  nodePairs: string[]
}

function bgpProblems(state: NodeState, node: string): string[] {
  const sessions = state.bird?.sessions ?? []
  if (sessions.length === 0) return [`${node}: BIRD reports no BGP session`]
  return sessions
    .filter((s) => s.bgpState !== 'Established')
    .map((s) => `${node}: BGP ${s.name} (${s.neighborAddress ?? '?'}) is ${s.bgpState || s.state}`)
}

/** What is off on one node against a target state; empty when it matches. */
function nodeProblems(
  state: NodeState | undefined,
  facts: ClusterFacts,
  want: NodeDesired,
  checkBgp: boolean,
): string[] {
  if (!state) return [`${want.node}: not collected`]
  const have = ownedState(state, facts)
  const d = diffNode(have, want)
  const out: string[] = []
  if (!diffIsEmpty(d)) {
    const lines = diffLines(d)
    const missing = Object.values(lines).flatMap((l) => l.add)
    const extra = Object.values(lines).flatMap((l) => l.remove)
    if (missing.length > 0) out.push(`${want.node}: missing ${missing.length} line(s), e.g. ${missing[0]}`)
    if (extra.length > 0) out.push(`${want.node}: ${extra.length} line(s) left over, e.g. ${extra[0]}`)
    if (d.daemons.start.length > 0) out.push(`${want.node}: ${d.daemons.start.join(', ')} not running`)
    if (d.daemons.stop.length > 0) out.push(`${want.node}: ${d.daemons.stop.join(', ')} still running`)
  }
  if (checkBgp && want.daemons.includes('bird')) out.push(...bgpProblems(state, want.node))
  return out
}

async function poll(
  recollect: Recollect,
  check: (s: Snapshot) => string[],
  timeoutMs: number,
): Promise<{problems: string[]; snapshot: Snapshot}> {
  let last: {problems: string[]; snapshot: Snapshot} | undefined
  // out of time, the last attempt says what is still off
  await pollUntil(
    async () => {
      const snapshot = await recollect()
      last = {
        problems: [...snapshot.errors.map((e) => `${e.node}: ${e.code}: ${e.message}`), ...check(snapshot)],
        snapshot,
      }
      return last.problems.length === 0 ? last : undefined
    },
    {timeoutMs, intervalMs: 1000},
  )
  return last!
}

async function ping(
  reach: ReachabilityCheck | undefined,
): Promise<Pick<VerifyResult, 'reachability' | 'reachabilityNote' | 'problems'>> {
  if (!reach) return {reachabilityNote: 'reachability not checked', problems: []}
  const {note: pingNote, ...r} = await reach.check()
  return {
    reachability: r,
    ...(pingNote ? {reachabilityNote: pingNote} : {}),
    problems: r.failed.map((f) => `${f.from} -> ${f.to} (${f.toIP}): no reply`),
  }
}

/**
 * Trace one pod pair per ordered node pair over the re-collected snapshot: the
 * dataplane netctl itself now reads must deliver, both ways, as the pings do.
 */
export function tracePairs(snapshot: Snapshot): NonNullable<VerifyResult['traced']> {
  const firstPod = new Map<string, Snapshot['pods'][number]>()
  for (const p of snapshot.pods) if (!firstPod.has(p.node)) firstPod.set(p.node, p)
  const failed: Array<{from: string; to: string; disposition: string}> = []
  let pairs = 0
  for (const a of firstPod.values()) {
    for (const b of firstPod.values()) {
      if (a === b) continue
      pairs++
      const from = `${a.namespace}/${a.name}`
      const to = `${b.namespace}/${b.name}`
      const {trace} = traceSnapshot(snapshot, {src: from, dst: to, protocol: 'icmp', size: 84, df: false})
      const back = trace.returnPath?.disposition
      if (trace.disposition !== 'DELIVERED' || back !== 'DELIVERED')
        failed.push({
          from,
          to,
          disposition: trace.disposition === 'DELIVERED' ? `reply ${back ?? 'not walked'}` : trace.disposition,
        })
    }
  }
  return {pairs, delivered: pairs - failed.length, failed}
}

/** The target state less the routes a forced switch expects the kernel to refuse. */
function withoutRefused(want: NodeDesired, expected: ExpectedBreaks | undefined): NodeDesired {
  const refused = new Set(expected?.routes[want.node] ?? [])
  return refused.size === 0 ? want : {...want, routes: want.routes.filter((r) => !refused.has(routeLine(r)))}
}

/** The node of a pod named by NAMESPACE/NAME, NAME or IP. */
function podNode(snapshot: Snapshot, pod: string): string | undefined {
  return snapshot.pods.find((p) => `${p.namespace}/${p.name}` === pod || p.name === pod || p.ip === pod)?.node
}

export async function verifySwitch(
  recollect: Recollect,
  facts: ClusterFacts,
  type: ConfiguredBackend,
  opts: {
    timeoutMs?: number
    reachability?: ReachabilityCheck
    factsOf?: (s: Snapshot) => ClusterFacts
    expected?: ExpectedBreaks
  },
): Promise<VerifyResult> {
  // Kubernetes: the facts are re-read each time (a restarted flanneld announces a new VTEP MAC)
  const check = (s: Snapshot): string[] => {
    const f = opts.factsOf ? opts.factsOf(s) : facts
    return f.nodes.flatMap((n) =>
      nodeProblems(s.nodeStates[n.name], f, withoutRefused(desiredNode(type, f, n), opts.expected), true),
    )
  }
  const {problems, snapshot} = await poll(recollect, check, opts.timeoutMs ?? SETTLE_MS)
  if (problems.length > 0) return {ok: false, stateOk: false, problems, snapshot}
  const traced = tracePairs(snapshot)
  const traceProblems = traced.failed.map((f) => ({
    pair: [f.from, f.to],
    line: `netctl trace ${f.from} -> ${f.to}: ${f.disposition}`,
  }))
  const reach = await ping(opts.reachability)
  const pingProblems = (reach.reachability?.failed ?? []).map((f, i) => ({
    pair: [f.from, f.toIP],
    line: reach.problems[i]!,
  }))
  const predicted = new Set(opts.expected?.nodePairs ?? [])
  const isExpected = ([a, b]: string[]): boolean =>
    predicted.has(`${podNode(snapshot, a!) ?? a} -> ${podNode(snapshot, b!) ?? b}`)
  const all = [...traceProblems, ...pingProblems]
  const unexpected = all.filter((p) => !isExpected(p.pair)).map((p) => p.line)
  const expected = all.filter((p) => isExpected(p.pair)).map((p) => p.line)
  return {
    ok: unexpected.length === 0,
    stateOk: true,
    snapshot,
    traced,
    ...reach,
    problems: unexpected,
    ...(opts.expected ? {expected} : {}),
  }
}

/** A rollback is complete when every touched node holds again what it held before (kernel state and daemons). */
export async function verifyRestored(
  recollect: Recollect,
  before: Snapshot,
  facts: ClusterFacts,
  nodes: string[],
  opts: {timeoutMs?: number; reachability?: ReachabilityCheck},
): Promise<VerifyResult> {
  const was = new Map(nodes.map((n) => [n, ownedState(before.nodeStates[n]!, facts)]))
  // the same diff as a switch, with the node's own past as the target: kernel state, daemons, BGP sessions
  const bgpWasUp = (n: string): boolean =>
    (before.nodeStates[n]?.bird?.sessions ?? []).every((x) => x.bgpState === 'Established')
  const check = (s: Snapshot): string[] =>
    nodes.flatMap((n) => nodeProblems(s.nodeStates[n], facts, was.get(n)!, bgpWasUp(n)))
  const {problems, snapshot} = await poll(recollect, check, opts.timeoutMs ?? SETTLE_MS)
  if (problems.length > 0) return {ok: false, stateOk: false, problems, snapshot}
  const reach = await ping(opts.reachability)
  return {ok: reach.problems.length === 0, stateOk: true, snapshot, ...reach}
}

/** One line for a failed verification: its first problems. */
export function verificationFailure(v: VerifyResult): string {
  return `verification failed: ${v.problems.slice(0, 3).join('; ')}${v.problems.length > 3 ? `; ... (${v.problems.length - 3} more)` : ''}`
}
