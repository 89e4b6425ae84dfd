/** `netctl matrix`: the reachability matrix of a snapshot (saved or collected now), or two snapshots' differential matrix. */
import {type Matrix, type MatrixDiff, matrixDiff, type MatrixOptions, reachabilityMatrix} from '../analyze/matrix.js'
import {collectInventory} from '../collect/collect.js'
import {type ClusterSource, sourceCollectOptions} from '../collect/source.js'
import type {Snapshot} from '../model/snapshot.js'
import {readSnapshotFile} from '../model/snapshot-file.js'

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
