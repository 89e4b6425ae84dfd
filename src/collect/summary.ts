import type {CollectionError, Snapshot} from '../model/snapshot.js'

/** `netctl collect --output-file FILE --json`: what was written and how complete it is. */
export interface CollectSummary {
  output: string
  /** false when no node was collected: FILE was left as it was */
  written: boolean
  cluster: string
  nodes: number
  collected: number
  partial: number
  unreachable: number
  errors: CollectionError[]
}

/** @param collected the nodes whose state was written, when they were streamed out of the snapshot (collect to FILE.jsonl) */
export function collectSummary(s: Snapshot, output: string, written = true, collected = Object.keys(s.nodeStates).length): CollectSummary {
  const partial = s.errors.filter((e) => e.code === 'COLLECTION_PARTIAL').length
  return {
    output,
    written,
    cluster: s.cluster.name,
    nodes: s.nodes.length,
    collected,
    partial,
    unreachable: s.errors.filter((e) => e.code === 'NODE_UNREACHABLE').length,
    errors: s.errors,
  }
}
