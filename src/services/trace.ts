/**
 * `netctl trace` as a service: knows nothing of flags or output. On a saved
 * snapshot it walks once. Live, it collects only what the walk needs: the
 * nodes of SRC and DST first, then whatever nodes the walk asks for
 * (`needNodes`), each node at most once, walking again after every round.
 */
import {CHECKS, runChecks} from '../analyze/checks/index.js'
import * as engine from '../analyze/trace/index.js'
import {checkSameFamily, inNamespace} from '../analyze/trace/resolve.js'
import type {ResolvedEndpoint, TraceQuery, TraceResult} from '../analyze/trace/api.js'
import {findingsAsTyped} from '../analyze/catalogue/as-typed.js'
import {makeFinding} from '../analyze/catalogue/index.js'
import type {Inventory} from '../model/inventory.js'
import type {KubeNetworkPolicy} from '../cluster/kube-types.js'
import {collectNodes, type CollectOptions, type CollectTarget, type NodeResult, snapshotOf} from '../collect/collect.js'
import {ExitCode, type ExitCodeValue} from '../errors.js'
import type {Finding} from '../model/finding.js'
import type {Snapshot} from '../model/snapshot.js'
import type {Trace} from '../model/trace.js'

/** The trace engine (src/analyze/trace); tests hand in a fake. */
export interface Walker {
  traceSnapshot(snapshot: Snapshot, query: TraceQuery): TraceResult
  resolveEndpoint(snapshot: Snapshot, text: string): ResolvedEndpoint
}

/** Probes nodes (src/collect collectNodes); tests hand in a fake or fake transports. */
export type Collector = (targets: CollectTarget[], opts: CollectOptions) => Promise<NodeResult[]>

export interface TraceRunOptions extends CollectOptions {
  /** netctl's version, for the snapshot's generator */
  version: string
  walker?: Walker
  collect?: Collector
  /** before each collection round, the nodes it is about to probe (a live display adds them) */
  onRound?: (nodes: string[]) => void
  /** the checks run on the path's nodes (default: src/analyze/checks runChecks) */
  checks?: NodeChecks
  /** Kubernetes: the cluster's NetworkPolicies, kept in the snapshot the walk sees */
  networkPolicies?: KubeNetworkPolicy[]
  /** Kubernetes: a bare pod NAME is a pod of this namespace, as kubectl reads it (-n, else the context's) */
  namespace?: string
}

/** Findings about these nodes of the snapshot, beyond the packet's own path. */
export type NodeChecks = (snapshot: Snapshot, nodes: string[]) => Finding[]
/** the checks scoped to the path's nodes: the per-node checks look at those nodes only, never at all of them */
const defaultChecks: NodeChecks = (snapshot, nodes) => runChecks(snapshot, {nodes})
// the walker says which NetworkPolicies touch this flow; the check's list of every policy would be noise here
const OWN = new Set(['NODE_UNREACHABLE', 'COLLECTION_PARTIAL', 'POLICY_UNENFORCED', 'POLICY_DENY'])

export interface TraceRun {
  trace: Trace
  /** the snapshot the last walk saw (live: only the collected nodes have state) */
  snapshot: Snapshot
  /** live: the nodes probed, round by round (the first is SRC's and DST's); [] on a saved snapshot */
  rounds: string[][]
  exitCode: ExitCodeValue
}

const defaultWalker: Walker = {traceSnapshot: engine.traceSnapshot, resolveEndpoint: engine.resolveEndpoint}

/** The trace's fixes as they are typed on this machine (a lab node's in its namespace; no kubectl without Kubernetes). */
function fixesAsTyped(trace: Trace, snapshot: Snapshot): Trace {
  return {...trace, findings: findingsAsTyped(trace.findings, snapshot)}
}

/** Walk a saved snapshot once. */
export function traceSnapshotFile(snapshot: Snapshot, query: TraceQuery, opts: {walker?: Walker; checks?: NodeChecks} = {}): TraceRun {
  const walker = opts.walker ?? defaultWalker
  const src = walker.resolveEndpoint(snapshot, query.src)
  const dst = walker.resolveEndpoint(snapshot, query.dst)
  checkSameFamily(query, src, dst)
  const result = walker.traceSnapshot(snapshot, query)
  const trace = fixesAsTyped(withNodeChecks(withCollectionFindings(result.trace, snapshot, new Set([src.node, dst.node, ...result.needNodes])), snapshot, opts.checks), snapshot)
  return {trace, snapshot, rounds: [], exitCode: traceExitCode(trace, snapshot, src.node)}
}

/** Collect what the walk needs from a live cluster, and walk. */
export async function traceLive(inventory: Inventory, query: TraceQuery, opts: TraceRunOptions): Promise<TraceRun> {
  const {walker = defaultWalker, collect = collectNodes, onRound, checks, version: _v, networkPolicies, namespace, ...collectOpts} = opts
  const startedAt = new Date().toISOString()
  const meta = () => ({startedAt, finishedAt: new Date().toISOString(), version: opts.version, ...(networkPolicies ? {networkPolicies} : {})})
  const results: NodeResult[] = []
  let snapshot = snapshotOf(inventory, results, meta())
  if (namespace !== undefined) query = {...query, src: inNamespace(snapshot, query.src, namespace), dst: inNamespace(snapshot, query.dst, namespace)}

  // Endpoints first, on the skeleton: a typo is a usage error before any node is touched.
  const src = walker.resolveEndpoint(snapshot, query.src)
  const dst = walker.resolveEndpoint(snapshot, query.dst)
  checkSameFamily(query, src, dst)
  const known = new Set(inventory.nodes.map((n) => n.name))
  const attempted = new Set<string>()
  const wanted = new Set([src.node, dst.node])
  const rounds: string[][] = []

  let next = [...new Set([src.node, dst.node])]
  let result: TraceResult
  for (;;) {
    // each node once: a node that failed stays failed for this run, and the loop ends
    const round = next.filter((n) => known.has(n) && !attempted.has(n))
    if (round.length > 0) {
      for (const n of round) attempted.add(n)
      rounds.push(round)
      onRound?.(round)
      results.push(...(await collect(targetsOf(inventory, round), collectOpts)))
      snapshot = snapshotOf(inventory, results, meta())
    }
    result = walker.traceSnapshot(snapshot, query)
    for (const n of result.needNodes) wanted.add(n)
    next = result.needNodes.filter((n) => known.has(n) && !attempted.has(n))
    if (next.length === 0) break
  }

  const trace = fixesAsTyped(withNodeChecks(withCollectionFindings(result.trace, snapshot, wanted), snapshot, checks), snapshot)
  return {trace, snapshot, rounds, exitCode: traceExitCode(trace, snapshot, src.node)}
}

function targetsOf(inventory: Inventory, names: string[]): CollectTarget[] {
  return names.map((name) => ({node: inventory.nodes.find((n) => n.name === name)!, pods: inventory.pods.filter((p) => p.node === name)}))
}

/**
 * The snapshot's collection errors for the nodes this trace involves, as
 * findings (NODE_UNREACHABLE, COLLECTION_PARTIAL), unless the walker already
 * raised the same one.
 */
export function withCollectionFindings(trace: Trace, snapshot: Snapshot, nodes: Set<string>): Trace {
  const involved = new Set([...nodes, ...trace.hops.map((h) => h.node), ...(trace.returnPath?.hops ?? []).map((h) => h.node)])
  const have = new Set(trace.findings.map((f) => `${f.code} ${f.node ?? ''}`))
  const added: Finding[] = []
  for (const e of snapshot.errors) {
    if (!involved.has(e.node) || have.has(`${e.code} ${e.node}`)) continue
    have.add(`${e.code} ${e.node}`)
    const ip = snapshot.nodes.find((n) => n.name === e.node)?.internalIP
    added.push(makeFinding(e.code, {node: e.node, subject: ip ? `${e.node} (${ip})` : e.node, message: e.message, evidence: [e.message], vars: {node: e.node}}))
  }
  return added.length === 0 ? trace : {...trace, findings: [...trace.findings, ...added]}
}

/**
 * What the checks find on the nodes the path crosses (either way), beyond the
 * packet's own hops: a VTEP MAC that disagrees with the node's annotation, a
 * stale FDB entry, inconsistent MTUs, a BGP session down. Findings the walker
 * already raised (same code, node and subject) are not repeated.
 */
export function withNodeChecks(trace: Trace, snapshot: Snapshot, checks: NodeChecks = defaultChecks): Trace {
  const nodes = [...new Set([...trace.hops, ...(trace.returnPath?.hops ?? [])].map((h) => h.node))].filter((n) => snapshot.nodeStates[n] !== undefined)
  if (nodes.length === 0) return trace
  const have = new Set(trace.findings.map((f) => `${f.code} ${f.node ?? ''} ${f.subject}`))
  const added = checks(snapshot, nodes).filter((f) => !have.has(`${f.code} ${f.node ?? ''} ${f.subject}`) && !OWN.has(f.code))
  const ran = {nodes, codes: CHECKS.map((c) => c.code).filter((c) => !OWN.has(c))}
  return {...trace, findings: [...trace.findings, ...added], checks: ran}
}

/**
 * docs/design.md's exit codes for a trace: 3 when SRC's node could not be reached
 * (nothing about the path is known); 0 when delivered both ways with no
 * error finding; 1 for every other answer (a diagnosis).
 */
export function traceExitCode(trace: Trace, snapshot: Snapshot, srcNode: string): ExitCodeValue {
  const srcUnreachable = snapshot.nodeStates[srcNode] === undefined && snapshot.errors.some((e) => e.node === srcNode && e.code === 'NODE_UNREACHABLE')
  if (srcUnreachable) return ExitCode.UNREACHABLE
  const delivered = trace.disposition === 'DELIVERED' && trace.returnPath?.disposition === 'DELIVERED'
  return delivered && !trace.findings.some((f) => f.severity === 'error') ? ExitCode.OK : ExitCode.FAULT
}
