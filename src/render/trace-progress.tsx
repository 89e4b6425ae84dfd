import type {TraceQuery} from '../analyze/trace/api.js'
import type {Inventory} from '../model/inventory.js'
import type {Snapshot} from '../model/snapshot.js'
import {type ProgressHandle, renderCollectProgress} from './collect-progress.js'
import {traceCollectFooter} from './trace.js'

/** The collect display, for a trace that learns which nodes it needs as it walks. */
export type TraceProgressHandle = ProgressHandle

/**
 * Live per-node progress while `netctl trace` collects (stderr, TTY only):
 * the same rows as `netctl collect`, starting empty; nodes join (addNodes) as the walk asks for them.
 */
export function renderTraceProgress(title: string, stream: NodeJS.WriteStream = process.stderr): TraceProgressHandle {
  return renderCollectProgress(title, [], stream)
}

/**
 * The live trace's display (src/services/trace.ts TraceDisplay): titled with
 * the query and the cluster, and ending in the collection's footer.
 */
export function traceProgressDisplay(
  query: Pick<TraceQuery, 'src' | 'dst'>,
  stream: NodeJS.WriteStream = process.stderr,
) {
  return (inventory: Inventory) => {
    const handle = renderTraceProgress(
      `tracing ${query.src} → ${query.dst} in ${inventory.cluster.name} (${inventory.cluster.backend}): collecting the nodes on the path`,
      stream,
    )
    return {
      addNodes: (nodes: string[]) => handle.addNodes(nodes),
      update: handle.update,
      finish: (run: {snapshot: Snapshot; rounds: string[][]} | undefined) =>
        handle.finish(run ? traceCollectFooter(run.snapshot, run.rounds) : ''),
    }
  }
}
