/**
 * `netctl collect` behind the command: where the snapshot goes (--output-file,
 * or -o FILE, its old spelling), every node of the cluster the source flags
 * name read into it, and the snapshot written (to the file, replaced whole
 * only when a node was collected, or to a stream). Prints nothing itself: the
 * progress display and the deprecation notice are handed in.
 */
import type {Writable} from 'node:stream'

import {collectInventory, type NodeProgress} from '../collect/collect.js'
import {
  type ClusterSource,
  openClusterSource,
  resolveSource,
  sourceCollectOptions,
  type SourceFlags,
} from '../collect/source.js'
import {type CollectSummary, collectSummary} from '../collect/summary.js'
import {UsageError, type Verdict} from '../errors.js'
import type {Inventory} from '../model/inventory.js'
import type {NodeState} from '../model/node-state.js'
import type {Snapshot} from '../model/snapshot.js'
import {
  isGzip,
  isLines,
  type LinesSpool,
  openLinesSpool,
  snapshotChunks,
  snapshotJsonChunks,
  writeChunksTo,
} from '../model/snapshot-file.js'
import {openUserOutput, type UserOutput} from '../util/files.js'
import {collectVerdict} from './outcome.js'

/** What a person watching sees while the nodes are read: made once the cluster is known. */
export interface CollectDisplay {
  update(p: NodeProgress): void
  /** the snapshot read, the file it was written to (undefined: stdout, or nothing written), and how many nodes were collected */
  finish(snapshot: Snapshot, written: string | undefined, collected: number): void
}

export interface CollectRequest {
  source: SourceFlags
  /** -o: one of `formats`, or (the old spelling of --output-file) a file */
  output?: string | undefined
  formats: readonly string[]
  outputFile?: string | undefined
  parallel: number
  timeoutMs: number
  version: string
  /** where the snapshot goes without a file (stdout); undefined writes it nowhere (--json returns it) */
  stream?: Writable | undefined
  display?: ((inventory: Inventory, parallel: number) => CollectDisplay | undefined) | undefined
  /** said once when -o FILE is used, so that scripts learn the new flag */
  notice?: ((line: string) => void) | undefined
}

export interface CollectRun {
  /** the snapshot, or with a file what was written there */
  result: Snapshot | CollectSummary
  verdict: Verdict
}

/**
 * --output-file, or -o FILE (its old spelling) when -o is not a format; both
 * at once is a usage error.
 */
export function outputFileOf(
  req: Pick<CollectRequest, 'output' | 'outputFile' | 'formats' | 'notice'>,
): string | undefined {
  const {output, outputFile: file, formats} = req
  if (output === undefined || formats.includes(output)) return file
  if (file !== undefined)
    throw new UsageError(`-o ${output}: not a format (${formats.join(', ')}), and --output-file is given`)
  req.notice?.(
    'netctl: -o FILE is deprecated for collect: use --output-file FILE (-o is the output format, as in kubectl)',
  )
  return output
}

/** Read every node into a snapshot and write it; transports closed and an unwritten file left as it was, also on error. */
export async function runCollect(req: CollectRequest): Promise<CollectRun> {
  const file = outputFileOf(req)
  // opened first: a file that cannot be written is said before any node is read
  const output = file === undefined ? undefined : await openUserOutput(file)
  try {
    const source = await openClusterSource(resolveSource(req.source))
    try {
      return await collectInto(source, req, output)
    } finally {
      // debug pods deleted, SSH connections closed: also when collecting failed
      await source.close()
    }
  } finally {
    // not committed (nothing collected, or an error): the user's file stays as it was
    await output?.discard()
  }
}

async function collectInto(
  source: ClusterSource,
  req: CollectRequest,
  output: UserOutput | undefined,
): Promise<CollectRun> {
  const display = req.display?.(source.inventory, req.parallel)
  // FILE.jsonl: each node's line is spooled as it arrives (memory holds only the nodes in flight)
  const spool = output && isLines(output.file) ? await openLinesSpool() : undefined
  try {
    return await collectTo(source, req, output, spool, display)
  } finally {
    await spool?.close()
  }
}

async function collectTo(
  source: ClusterSource,
  req: CollectRequest,
  output: UserOutput | undefined,
  spool: LinesSpool | undefined,
  display: CollectDisplay | undefined,
): Promise<CollectRun> {
  const snapshot = await collectInventory(source.inventory, {
    parallel: req.parallel,
    timeoutMs: req.timeoutMs,
    version: req.version,
    ...sourceCollectOptions(source),
    ...(display ? {onProgress: (p: NodeProgress) => display.update(p)} : {}),
    ...(spool ? {onState: (node: string, state: NodeState) => spool.add(node, state)} : {}),
  })
  const collected = spool ? spool.nodes : Object.keys(snapshot.nodeStates).length
  // a snapshot without a single node replaces nothing: a good file from an earlier run is worth more
  const written = collected > 0
  display?.finish(snapshot, written ? output?.file : undefined, collected)

  // written in pieces, never as one string (a 1,000-node snapshot is more than V8 can hold in one);
  // FILE.jsonl is a line per node (version 2), FILE.gz is gzipped
  if (output) {
    if (written)
      await output.commit(spool ? spool.chunks(snapshot) : snapshotChunks(output.file, snapshot), {
        gzip: isGzip(output.file),
      })
  } else if (req.stream) await writeChunksTo(req.stream, snapshotJsonChunks(snapshot))
  // a node missing is exit 3 even when the others were written: the snapshot is not the whole cluster
  return {
    result: output ? collectSummary(snapshot, output.file, written, collected) : snapshot,
    verdict: collectVerdict(snapshot),
  }
}
