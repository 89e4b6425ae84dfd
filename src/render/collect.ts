import {snapshotJsonChunks} from '../model/snapshot-file.js'
import type {CollectionError, Snapshot} from '../model/snapshot.js'
import {collectSummary} from '../collect/summary.js'

/** The snapshot as written to a file or stdout. */
export function snapshotJson(s: Snapshot): string {
  return [...snapshotJsonChunks(s)].join('')
}

/** The last line under the progress display. */
export function collectFooter(s: Snapshot, output: string | undefined, collected?: number): string {
  const c = collectSummary(s, output ?? '-', true, collected)
  const ms = Date.parse(s.finishedAt) - Date.parse(s.startedAt)
  const parts = [`collected ${c.collected}/${c.nodes} nodes in ${(ms / 1000).toFixed(1)}s`]
  if (c.partial > 0) parts.push(`${c.partial} partial`)
  if (c.unreachable > 0) parts.push(`${c.unreachable} unreachable`)
  return `${parts.join(', ')}${output ? ` → ${output}` : ''}`
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
