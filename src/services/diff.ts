/** `netctl diff BEFORE AFTER`: two snapshot files read, and what changed between them (src/analyze/diff.ts). */
import {diffSnapshots, type SnapshotDiff} from '../analyze/diff.js'
import {UsageError} from '../errors.js'
import type {Snapshot} from '../model/snapshot.js'
import {readSnapshotFile} from '../model/snapshot-file.js'
import {closest} from '../util/edit-distance.js'

export interface DiffResult extends SnapshotDiff {
  before: SnapshotDiff['before'] & {file?: string}
  after: SnapshotDiff['after'] & {file?: string}
}

/** Every --node is a node of one of the snapshots (a node added or removed is one too), or a usage error with a suggestion. */
function checkNodes(asked: readonly string[], before: Snapshot, after: Snapshot): void {
  const known = [...new Set([...before.nodes, ...after.nodes].map((n) => n.name))]
  for (const n of asked) {
    if (known.includes(n)) continue
    const guess = closest(n, known)
    throw new UsageError(`no node '${n}' in either snapshot${guess ? `: did you mean ${guess}?` : ''}`)
  }
}

export function diffResult(
  before: Snapshot,
  after: Snapshot,
  opts: {nodes?: string[]; all?: boolean; files?: [string, string]} = {},
): DiffResult {
  if (opts.nodes?.length) checkNodes(opts.nodes, before, after)
  const d = diffSnapshots(before, after, {all: opts.all ?? false, ...(opts.nodes?.length ? {nodes: opts.nodes} : {})})
  if (!opts.files) return d
  return {...d, before: {file: opts.files[0], ...d.before}, after: {file: opts.files[1], ...d.after}}
}

export async function diffSnapshotFiles(
  beforeFile: string,
  afterFile: string,
  opts: {nodes?: string[]; all?: boolean} = {},
): Promise<DiffResult> {
  const [before, after] = await Promise.all([readSnapshotFile(beforeFile), readSnapshotFile(afterFile)])
  return diffResult(before, after, {...opts, files: [beforeFile, afterFile]})
}
