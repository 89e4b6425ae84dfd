/** `netctl matrix`: the reachability matrix of a snapshot (saved or collected now), or two snapshots' differential matrix. */
import {type Matrix, type MatrixDiff, matrixDiff, type MatrixOptions, reachabilityMatrix} from '../analyze/matrix.js'
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
import {readSnapshotFile} from '../model/snapshot-file.js'
import {matrixDiffVerdict, matrixVerdict} from './outcome.js'

export interface MatrixRun {
  matrix: Matrix
  /** nodes collected (0: nothing was learned) */
  collected: number
}

export function matrixOf(snapshot: Snapshot, opts: MatrixOptions = {}): MatrixRun {
  return {matrix: reachabilityMatrix(snapshot, opts), collected: Object.keys(snapshot.nodeStates).length}
}

/** Every node read (the walks cross any of them), then the matrix. */
export async function matrixLive(
  source: ClusterSource,
  opts: MatrixOptions & {version: string; parallel: number; timeoutMs: number},
): Promise<MatrixRun> {
  const snapshot = await collectInventory(source.inventory, {
    parallel: opts.parallel,
    timeoutMs: opts.timeoutMs,
    version: opts.version,
    ...sourceCollectOptions(source),
  })
  return matrixOf(snapshot, opts)
}

/** Two saved snapshots: only the cells that changed. */
export async function matrixDiffFiles(
  beforeFile: string,
  afterFile: string,
  opts: MatrixOptions = {},
): Promise<MatrixDiff> {
  const [before, after] = await Promise.all([readSnapshotFile(beforeFile), readSnapshotFile(afterFile)])
  return matrixDiff(before, after, opts)
}

export interface MatrixRequest extends MatrixOptions {
  /** two saved snapshots to compare (both or neither) */
  before?: string | undefined
  after?: string | undefined
  /** one saved snapshot, else the cluster of `source` read now */
  snapshot?: string | undefined
  source: SourceFlags
  /** the flags given that choose a cluster (--lab, --inventory, ...), for the usage errors that name them */
  clusterFlags: string[]
  /** the output asked for: svg and html draw one matrix, so they cannot show a comparison */
  format: string
  version: string
  parallel: number
  timeoutMs: number
}

/** What `netctl matrix` answers: one matrix, or the cells that changed between two snapshots. */
export type MatrixAnswer =
  {kind: 'matrix'; matrix: Matrix; verdict: Verdict} | {kind: 'diff'; diff: MatrixDiff; verdict: Verdict}

/**
 * `netctl matrix [BEFORE AFTER]`: two snapshots compared, or one state's
 * matrix (a saved snapshot, else the cluster read now, its transports closed
 * after); the sources asked for must not contradict each other.
 */
export async function runMatrix(req: MatrixRequest): Promise<MatrixAnswer> {
  const opts: MatrixOptions = {
    ...(req.allPods === undefined ? {} : {allPods: req.allPods}),
    ...(req.services === undefined ? {} : {services: req.services}),
  }
  if (req.before !== undefined) {
    if (req.after === undefined)
      throw new UsageError(
        'give two snapshots, BEFORE and AFTER, or one state with --snapshot FILE (or --lab, --inventory, a kubeconfig)',
      )
    const other = req.snapshot === undefined ? req.clusterFlags[0] : '--snapshot'
    if (other) throw new UsageError(`BEFORE and AFTER are the snapshots compared: ${other} is not for them`)
    if (req.format === 'svg' || req.format === 'html')
      throw new UsageError(`-o ${req.format} draws one matrix; with BEFORE and AFTER the output is text, json or yaml`)
    const diff = await matrixDiffFiles(req.before, req.after, opts)
    return {kind: 'diff', diff, verdict: matrixDiffVerdict(diff)}
  }
  if (req.snapshot !== undefined && req.clusterFlags.length > 0)
    throw new UsageError(`--snapshot and ${req.clusterFlags[0]} both say where the state comes from: give one`)
  let run: MatrixRun
  if (req.snapshot === undefined) {
    const source = await openClusterSource(resolveSource(req.source), {orElse: ['a snapshot (--snapshot FILE)']})
    try {
      run = await matrixLive(source, {...opts, version: req.version, parallel: req.parallel, timeoutMs: req.timeoutMs})
    } finally {
      await source.close()
    }
  } else {
    run = matrixOf(await readSnapshotFile(req.snapshot), opts)
  }
  return {kind: 'matrix', matrix: run.matrix, verdict: matrixVerdict(run)}
}
