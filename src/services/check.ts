/**
 * `netctl check` behind the command: read the state (a saved snapshot, or
 * every node of a live cluster), run the findings catalogue over it, and say
 * what the result means for the exit code. Prints nothing.
 */
import {findingsAsTyped} from '../analyze/catalogue/as-typed.js'
import {countFindings, runChecks, runChecksStreamed} from '../analyze/checks/index.js'
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
import {openSnapshotFile} from '../model/snapshot-file.js'
import {closest} from '../util/edit-distance.js'
import {type CheckResult, checkResult} from './check-result.js'
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
}

export interface CheckRun {
  result: CheckResult
  /** every node of the cluster, read or not (the report's scope is out of these) */
  allNodes: number
  verdict: Verdict
}

/** Check a saved snapshot or a live cluster (whose transports are closed at the end, also on error). */
export async function runCheck(req: CheckRequest): Promise<CheckRun> {
  if (req.probe && req.snapshot !== undefined)
    throw new UsageError(
      '--probe sends real packets, so it needs a live cluster (--lab, --inventory, Kubernetes), not --snapshot',
    )
  if (req.snapshot !== undefined) return checkSnapshotFile(req.snapshot, req.nodes)
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
  return {result, allNodes: known.length, verdict: checkVerdict(result)}
}

/**
 * A saved snapshot, read node by node (runChecksStreamed): memory holds the cluster facts and one
 * node's state, however big the file.
 */
async function checkSnapshotFile(file: string, asked: string[] | undefined): Promise<CheckRun> {
  const {head, states} = await openSnapshotFile(file)
  const known = head.nodes.map((n) => n.name)
  knownNodes(asked, known, head.cluster.name)
  const nodes = asked?.length ? [...new Set(asked)] : known
  const {raised, facts} = await runChecksStreamed(head, states, asked?.length ? {nodes} : {})
  const findings = findingsAsTyped(
    raised.map((r) => r.finding),
    facts,
  )
  const result = checkResult(facts, {kind: 'snapshot', name: file}, nodes, findings, countFindings(findings))
  return {result, allNodes: known.length, verdict: checkVerdict(result)}
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
