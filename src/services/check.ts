/**
 * `netctl check` behind the command: read the state (a saved snapshot, or
 * every node of a live cluster), run the findings catalogue over it, and say
 * what the result means for the exit code. Prints nothing.
 */
import {findingsAsTyped} from '../analyze/catalogue/as-typed.js'
import {countFindings, factsMakerFor, runChecks, runChecksOnePass, runChecksStreamed} from '../analyze/checks/index.js'
import {collectInventory} from '../collect/collect.js'
import {
  type ClusterSource,
  openClusterSource,
  resolveSource,
  sourceCollectOptions,
  type SourceFlags,
} from '../collect/source.js'
import {UsageError, type Verdict} from '../errors.js'
import type {Snapshot} from '../model/snapshot.js'
import {type OpenOptions, openSnapshotFile} from '../model/snapshot-file.js'
import {closest} from '../util/edit-distance.js'
import {type CheckResult, checkResult} from './check-result.js'
import {runChecksInWorkers, type WorkerOptions, workersFor} from './check-workers.js'
import {checkVerdict} from './outcome.js'
import {probeMatrix} from './probe-matrix.js'

export interface CheckRequest {
  /** a snapshot file written by netctl collect; else the live cluster the source flags name */
  snapshot?: string | undefined
  source: SourceFlags
  /** report only findings about these nodes (every node is still read: peers' state is part of the comparison) */
  nodes?: string[] | undefined
  /** live: nodes read at the same time, and how long each may take */
  parallel: number
  timeoutMs: number
  /** netctl's version, recorded in the snapshot */
  version: string
  /** live: after collecting, send one real packet per node pair (src/services/probe-matrix.ts) */
  probe?: boolean
  /** --snapshot: at most this many threads check the nodes' states of a big indexed file (check-workers.ts) */
  workers?: number | undefined
}

export interface CheckRun {
  result: CheckResult
  /** every node of the cluster, read or not (the report's scope is out of these) */
  allNodes: number
  verdict: Verdict
  /** threads that checked the nodes' states, this one and workers (0: this one alone, in one pass) */
  workers: number
}

/** Check a saved snapshot or a live cluster (whose transports are closed at the end, also on error). */
export async function runCheck(req: CheckRequest): Promise<CheckRun> {
  if (req.probe && req.snapshot !== undefined)
    throw new UsageError(
      '--probe sends real packets, so it needs a live cluster (--lab, --inventory, Kubernetes), not --snapshot',
    )
  if (req.snapshot !== undefined)
    return checkSnapshotFile(req.snapshot, req.nodes, req.workers === undefined ? {} : {workers: req.workers})
  const source = await openClusterSource(resolveSource(req.source), {orElse: ['a snapshot (--snapshot FILE)']})
  try {
    // a mistyped --node is a usage error before any node is read (or any debug pod made)
    knownNodes(
      req.nodes,
      source.inventory.nodes.map((n) => n.name),
      source.inventory.cluster.name,
    )
    const snapshot = await collect(source, req)
    const run = checkSnapshot(snapshot, sourceOf(source), req.nodes)
    if (!req.probe) return run
    const {probe, findings} = await probeMatrix(snapshot, source.inventory.nodes, {
      transportFor: (node) => source.transportFor(node),
      timeoutMs: req.timeoutMs,
      version: req.version,
      parallel: req.parallel,
      nodes: req.nodes,
    })
    const all = [...run.result.findings, ...findings]
    const result = {...run.result, findings: all, counts: countFindings(all), probe}
    return {...run, result, verdict: checkVerdict(result)}
  } finally {
    // debug pods deleted, SSH connections closed: also when the check failed
    await source.close()
  }
}

function checkSnapshot(snapshot: Snapshot, source: CheckResult['source'], asked: string[] | undefined): CheckRun {
  const known = snapshot.nodes.map((n) => n.name)
  knownNodes(asked, known, snapshot.cluster.name)
  const nodes = asked?.length ? [...new Set(asked)] : known
  // fixes as typed here: a lab node's through ip netns exec, no kubectl without Kubernetes
  const findings = findingsAsTyped(runChecks(snapshot, asked?.length ? {nodes} : {}), snapshot)
  const result = checkResult(snapshot, source, nodes, findings, countFindings(findings))
  return {result, allNodes: known.length, verdict: checkVerdict(result), workers: 0}
}

/**
 * A saved snapshot, read node by node: memory holds the cluster facts and one node's state, however
 * big the file. A file with its nodes' facts (collect writes them) is read once (runChecksOnePass),
 * one without them, or with facts another netctl made, twice (runChecksStreamed). A big plain file
 * with facts has its states checked by this thread and worker threads, one share of the lines each
 * (check-workers.ts).
 */
export async function checkSnapshotFile(
  file: string,
  asked: string[] | undefined,
  opts: OpenOptions & WorkerOptions = {},
): Promise<CheckRun> {
  const {head, states, indexed} = await openSnapshotFile(file, opts)
  const known = head.nodes.map((n) => n.name)
  knownNodes(asked, known, head.cluster.name)
  const nodes = asked?.length ? [...new Set(asked)] : known
  const scope = asked?.length ? {nodes} : {}
  const onePass = indexed && indexed.factsKey === factsMakerFor(head.cluster).key ? indexed : undefined
  const workers = onePass ? workersFor(onePass, opts) : 0
  const {raised, facts} = onePass
    ? workers > 0
      ? await runChecksInWorkers(file, head, onePass, scope, workers)
      : await runChecksOnePass(head, onePass.lines, scope)
    : await runChecksStreamed(head, states, scope)
  const findings = findingsAsTyped(
    raised.map((r) => r.finding),
    facts,
  )
  const result = checkResult(facts, {kind: 'snapshot', name: file}, nodes, findings, countFindings(findings))
  return {result, allNodes: known.length, verdict: checkVerdict(result), workers}
}

function collect(source: ClusterSource, req: CheckRequest): Promise<Snapshot> {
  return collectInventory(source.inventory, {
    parallel: req.parallel,
    timeoutMs: req.timeoutMs,
    version: req.version,
    ...sourceCollectOptions(source),
  })
}

/** Every --node is a node of the cluster, or a one-line usage error with a suggestion. */
function knownNodes(asked: string[] | undefined, known: string[], cluster: string): void {
  for (const n of asked ?? []) {
    if (known.includes(n)) continue
    const guess = closest(n, known)
    throw new UsageError(
      `no node '${n}' in ${cluster}${guess ? `: did you mean ${guess}?` : ''} (nodes: ${known.join(', ')})`,
    )
  }
}

/** What the report says it checked: the lab, the inventory file, or the Kubernetes context. */
function sourceOf(source: ClusterSource): CheckResult['source'] {
  const {spec} = source
  if (spec.kind === 'lab') return {kind: 'lab', name: spec.name}
  if (spec.kind === 'inventory') return {kind: 'inventory', name: spec.file}
  return {kind: 'kubernetes', name: source.kube?.context ?? source.inventory.cluster.name}
}
