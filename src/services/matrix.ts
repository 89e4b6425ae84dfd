/** `netctl matrix`: the reachability matrix of a snapshot (saved or collected now), or two snapshots' differential matrix. */
import {type Matrix, type MatrixDiff, matrixDiff, type MatrixOptions, reachabilityMatrix} from '../analyze/matrix.js'
import {collectInventory} from '../collect/collect.js'
import type {ClusterSource} from '../collect/source.js'
import {ExitCode, type ExitCodeValue} from '../errors.js'
import type {Snapshot} from '../model/snapshot.js'
import {readSnapshotFile} from '../model/snapshot-file.js'

export interface MatrixRun {
  matrix: Matrix
  exitCode: ExitCodeValue
}

/** 1 when a pair fails (a fault found), 3 when no node was collected. */
export function matrixOf(snapshot: Snapshot, opts: MatrixOptions = {}): MatrixRun {
  const matrix = reachabilityMatrix(snapshot, opts)
  const exitCode = Object.keys(snapshot.nodeStates).length === 0 ? ExitCode.UNREACHABLE : matrix.counts.failed > 0 ? ExitCode.FAULT : ExitCode.OK
  return {matrix, exitCode}
}

/** Every node read (the walks cross any of them), then the matrix. */
export async function matrixLive(source: ClusterSource, opts: MatrixOptions & {version: string; parallel: number; timeoutMs: number}): Promise<MatrixRun> {
  const snapshot = await collectInventory(source.inventory, {
    parallel: opts.parallel,
    timeoutMs: opts.timeoutMs,
    version: opts.version,
    transportFactory: (node) => source.transportFor(node),
    ...(source.networkPolicies ? {networkPolicies: source.networkPolicies} : {}),
  })
  return matrixOf(snapshot, opts)
}

/** Two saved snapshots: only the cells that changed. 1 when a pair that was delivered no longer is. */
export async function matrixDiffFiles(beforeFile: string, afterFile: string, opts: MatrixOptions = {}): Promise<{diff: MatrixDiff; exitCode: ExitCodeValue}> {
  const [before, after] = await Promise.all([readSnapshotFile(beforeFile), readSnapshotFile(afterFile)])
  const diff = matrixDiff(before, after, opts)
  const broke = diff.changed.some((c) => c.before.disposition === 'DELIVERED')
  return {diff, exitCode: broke ? ExitCode.FAULT : ExitCode.OK}
}
