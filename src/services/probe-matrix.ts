/**
 * `check --probe`: one probe (src/services/probe.ts, as trace --probe sends it)
 * per node pair, from one pod per node to another node's pod, over a snapshot
 * just collected. Interface counters count every packet that crosses them, so
 * probes whose walks share a node never run at the same time (one pair's
 * packets would be counted as another's); node-disjoint pairs run together,
 * up to --parallel.
 */
import {type MatrixEndpoint, matrixEndpoints, walkPair} from '../analyze/matrix.js'
import {groupProbeFindings, type ProbedPair, type ProbeMatrix, probeMatrixOf} from '../analyze/probe-matrix.js'
import type {Finding} from '../model/finding.js'
import type {InventoryNode} from '../model/inventory.js'
import {podNetnsPath, type Snapshot} from '../model/snapshot.js'
import {shq} from '../util/shell.js'
import {type ProbeOptions, probeTrace, sendCommand} from './probe.js'
import {pathNodes} from './trace.js'

export interface ProbeMatrixOptions extends ProbeOptions {
  parallel: number
  /** --node: only the pairs from or to these nodes */
  nodes?: string[] | undefined
}

/**
 * The pod each node is probed from and to: the first by namespace/name that is not host-network and whose
 * network namespace its node showed (a pod the runtime runs: a probe has to enter it).
 */
export function probeEndpoints(snapshot: Snapshot): MatrixEndpoint[] {
  const running = snapshot.pods.filter((p) => podNetnsPath(snapshot, p) !== undefined)
  return matrixEndpoints({...snapshot, pods: running})
}

/**
 * Run `fn` over `items`, at most `limit` at a time, never two whose node sets meet.
 * Items are started in their order as soon as their nodes are free.
 */
export async function mapNodeDisjoint<T, R>(
  items: readonly T[],
  limit: number,
  nodesOf: (item: T) => readonly string[],
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length)
  const waiting = items.map((_item, i) => i)
  const busy = new Set<string>()
  let running = 0
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      if (waiting.length === 0 && running === 0) return resolve()
      for (let k = 0; k < waiting.length && running < limit;) {
        const i = waiting[k]!
        const nodes = nodesOf(items[i]!)
        if (nodes.some((n) => busy.has(n))) {
          k++
          continue
        }
        waiting.splice(k, 1)
        for (const n of nodes) busy.add(n)
        running++
        fn(items[i]!)
          .then((r) => {
            results[i] = r
            for (const n of nodes) busy.delete(n)
            running--
            pump()
          })
          .catch(reject)
      }
    }
    pump()
  })
  return results
}

/** Walk and probe every pair of the snapshot's endpoints; the matrix, and the probe's findings grouped by cause. */
export async function probeMatrix(
  snapshot: Snapshot,
  nodes: readonly InventoryNode[],
  opts: ProbeMatrixOptions,
): Promise<{probe: ProbeMatrix; findings: Finding[]}> {
  const endpoints = probeEndpoints(snapshot)
  const only = opts.nodes?.length ? new Set(opts.nodes) : undefined
  const walks = endpoints.flatMap((src) =>
    endpoints
      .filter((dst) => dst !== src && (!only || only.has(src.node) || only.has(dst.node)))
      .map((dst) => ({src, dst, walk: walkPair(snapshot, src, dst)})),
  )
  const results: ProbedPair[] = await mapNodeDisjoint(
    walks,
    opts.parallel,
    // the nodes whose counters the probe reads: the walk's, either way, and the two ends
    (w) => [...new Set([w.src.node, w.dst.node, ...pathNodes(w.walk)])],
    async (w) => ({...w, probed: await probeTrace(w.walk, snapshot, nodes, opts)}),
  )
  const first = walks[0]
  const sends = first
    ? `${sendCommand(first.walk).argv.replace(shq(first.dst.ip), 'DST')}, from each pod below to every other node's (DST: its IP)`
    : 'nothing: fewer than two nodes with a running pod'
  return {probe: probeMatrixOf(endpoints, sends, results), findings: groupProbeFindings(results, snapshot)}
}
