import {snapshotJsonChunks} from '../model/snapshot-file.js'
import type {Snapshot} from '../model/snapshot.js'
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
