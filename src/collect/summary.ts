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
export function collectSummary(
  s: Snapshot,
  output: string,
  written = true,
  collected = Object.keys(s.nodeStates).length,
): CollectSummary {
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

/**
 * Exit 3: one line naming the nodes that could not be collected and why the
 * first could not (its transport's words: no such namespace, host key
 * changed, ...); undefined when every node was reached.
 */
export function uncollectedLine(nodes: number, errors: readonly CollectionError[]): string | undefined {
  const down = errors.filter((e) => e.code === 'NODE_UNREACHABLE')
  const [first, ...rest] = down
  if (!first) return undefined
  if (down.length >= nodes) return nothingCollectedLine({errors: down})
  const others = rest.length > 0 ? ` (and ${rest.map((e) => e.node).join(', ')})` : ''
  return `${down.length} of ${nodes} nodes could not be collected: ${first.node}: ${first.message}${others}`
}

/** Exit 3: one line saying that nothing at all was collected, and the first reason. */
export function nothingCollectedLine(s: Pick<Snapshot, 'errors'>): string {
  const first = s.errors[0]
  return `no node could be collected (${s.errors.length} unreachable)${first ? `: ${first.node}: ${first.message}` : ''}`
}
