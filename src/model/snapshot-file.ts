/**
 * Snapshot files that scale: written as a stream of pieces (never one string
 * of the whole snapshot, which V8 caps near 512 MB: a 1,000-node cluster is
 * more), read node by node, gzip-compressed when the name ends in `.gz`.
 *
 * Two layouts (docs/snapshot.md):
 * - version 1, one JSON document (`.json`, `.json.gz`): what netctl always wrote;
 * - version 2, JSON Lines (`.jsonl`, `.jsonl.gz`): line 1 is the snapshot
 *   without its node states (`"schemaVersion": 2`), then one line per
 *   collected node, `{"node": NAME, "state": NodeState}`. Each line is parsed
 *   and validated as it is read, so no string holds more than one node.
 */
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdtemp, open, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {Readable, type Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGunzip, createGzip, gunzipSync} from 'node:zlib'

import {UsageError} from '../errors.js'
import {firstSchemaError, validatorForDefinition} from '../util/schema.js'
import {printable} from '../util/text.js'
import type {NodeState} from './node-state.js'
import {loadSnapshot, parseSnapshot, type Snapshot, SNAPSHOT_SCHEMA_VERSION, validateSnapshot} from './snapshot.js'

/** The file layout netctl writes JSON Lines snapshots in. */
export const SNAPSHOT_LINES_VERSION = 2

export const isGzip = (file: string): boolean => file.endsWith('.gz')
export const isLines = (file: string): boolean => /\.jsonl(\.gz)?$/.test(file)

const indent = (text: string, by: string): string => text.replace(/\n/g, `\n${by}`)

/**
 * Version 1 as pieces: the same bytes as `JSON.stringify(s, null, 2)` and a
 * newline, one top-level field or one node state at a time.
 */
export function* snapshotJsonChunks(s: Snapshot): Generator<string> {
  const fields = Object.entries(s).filter(([, v]) => v !== undefined)
  yield '{'
  let first = true
  for (const [key, value] of fields) {
    yield `${first ? '' : ','}\n  ${JSON.stringify(key)}: `
    first = false
    if (key === 'nodeStates') {
      const states = Object.entries(value as Record<string, NodeState>)
      if (states.length === 0) yield '{}'
      else {
        yield '{'
        let firstState = true
        for (const [name, state] of states) {
          yield `${firstState ? '' : ','}\n    ${JSON.stringify(name)}: ${indent(JSON.stringify(state, null, 2), '    ')}`
          firstState = false
        }
        yield '\n  }'
      }
    } else yield indent(JSON.stringify(value, null, 2), '  ')
  }
  yield '\n}\n'
}

/** Version 2 (JSON Lines) as pieces: the snapshot without states, then a line per node. */
export function* snapshotLinesChunks(s: Snapshot): Generator<string> {
  yield* snapshotLinesHead(s)
  for (const [node, state] of Object.entries(s.nodeStates)) yield snapshotLine(node, state)
}

export function* snapshotLinesHead(s: Snapshot): Generator<string> {
  const {nodeStates: _states, ...rest} = s
  yield `${JSON.stringify({...rest, schemaVersion: SNAPSHOT_LINES_VERSION})}\n`
}

export const snapshotLine = (node: string, state: NodeState): string => `${JSON.stringify({node, state})}\n`

/**
 * Version 2 written as the nodes arrive (`collect` of a big cluster): each node's line goes to a
 * spool file at once, so memory holds no state but the one being written; the head line, known
 * only when collection ends (errors, finishedAt), comes first when the spool is read out.
 */
export interface LinesSpool {
  /** nodes written so far */
  readonly nodes: number
  add(node: string, state: NodeState): Promise<void>
  /** the whole file's pieces: the head of SKELETON (a snapshot whose states were spooled), then the spooled lines */
  chunks(skeleton: Snapshot): AsyncIterable<string | Buffer>
  /** remove the spool file */
  close(): Promise<void>
}

export async function openLinesSpool(dir = tmpdir()): Promise<LinesSpool> {
  const spoolDir = await mkdtemp(path.join(dir, 'netctl-spool-'))
  const file = path.join(spoolDir, 'nodes.jsonl')
  const out = createWriteStream(file)
  let nodes = 0
  const finished = (): Promise<void> =>
    out.writableFinished
      ? Promise.resolve()
      : new Promise((resolve, reject) => out.end(() => resolve()).once('error', reject))
  return {
    get nodes() {
      return nodes
    },
    async add(node, state) {
      nodes++
      if (!out.write(snapshotLine(node, state)))
        await new Promise<void>((resolve) => out.once('drain', () => resolve()))
    },
    async *chunks(skeleton) {
      await finished()
      yield* snapshotLinesHead(skeleton)
      yield* createReadStream(file) as AsyncIterable<Buffer>
    },
    async close() {
      await finished().catch(() => {})
      await rm(spoolDir, {recursive: true, force: true})
    },
  }
}

/** Pieces into a file, gzipped when its name ends in .gz. */
export async function writeChunks(file: string, chunks: Iterable<string> | AsyncIterable<string>): Promise<void> {
  const out = createWriteStream(file)
  const source = Readable.from(chunks, {objectMode: false})
  if (isGzip(file)) await pipeline(source, createGzip(), out)
  else await pipeline(source, out)
}

/** The pieces of a snapshot in the layout a file name asks for (.json[.gz]: version 1, .jsonl[.gz]: version 2). */
export const snapshotChunks = (file: string, s: Snapshot): Iterable<string> =>
  isLines(file) ? snapshotLinesChunks(s) : snapshotJsonChunks(s)

/** Write a snapshot to a file in the layout its name asks for. */
export async function writeSnapshotFile(file: string, s: Snapshot): Promise<void> {
  await writeChunks(file, snapshotChunks(file, s))
}

/** Pieces to a stream (stdout), waiting whenever it is full. */
export async function writeChunksTo(out: Writable, chunks: Iterable<string>): Promise<void> {
  for (const c of chunks) if (!out.write(c)) await new Promise((resolve) => out.once('drain', resolve))
}

async function sniff(file: string): Promise<{gzip: boolean}> {
  let fh
  try {
    fh = await open(file, 'r')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new UsageError(`${file}: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`)
  }
  try {
    const {buffer, bytesRead} = await fh.read(Buffer.alloc(2), 0, 2, 0)
    return {gzip: bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b}
  } finally {
    await fh.close()
  }
}

/**
 * A file's lines, split on the bytes (faster than readline, which was half of reading a big
 * snapshot): no string ever holds more than one line, that is one node.
 */
async function* linesOf(file: string, gzip: boolean): AsyncGenerator<string> {
  const input = gzip ? createReadStream(file).pipe(createGunzip()) : createReadStream(file, {highWaterMark: 1 << 20})
  let rest: Buffer[] = []
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let start = 0
      let nl = chunk.indexOf(10)
      while (nl !== -1) {
        if (rest.length > 0) {
          rest.push(chunk.subarray(start, nl))
          yield Buffer.concat(rest).toString('utf8')
          rest = []
        } else yield chunk.toString('utf8', start, nl)
        start = nl + 1
        nl = chunk.indexOf(10, start)
      }
      if (start < chunk.length) rest.push(chunk.subarray(start))
    }
    if (rest.length > 0) yield Buffer.concat(rest).toString('utf8')
  } finally {
    input.destroy()
  }
}

/** One collected node's state, as a version 2 line holds it. */
export interface SnapshotNodeState {
  node: string
  state: NodeState
}

/**
 * A snapshot file opened to be read node by node: its snapshot without node states (`head`), and
 * its nodes' states, read again from the file at each call of `states` (checked against the schema
 * at the first). A version 1 file is one document: it is loaded whole and its states come from memory.
 */
export interface SnapshotStream {
  head: Snapshot
  states(): AsyncIterable<SnapshotNodeState>
}

export async function openSnapshotFile(file: string): Promise<SnapshotStream> {
  const {gzip} = await sniff(file)
  let first: Record<string, unknown> | undefined
  let empty = true
  try {
    for await (const line of linesOf(file, gzip)) {
      empty = false
      first = parseLine(line)
      break
    }
  } catch (error) {
    throw new UsageError(`${file}: ${(error as Error).message}`, false)
  }
  if (!isLinesHead(first)) {
    if (empty) throw new UsageError(`${file}: not a netctl snapshot (empty)`, false)
    // version 1: one document, read whole as always
    const whole = gzip
      ? parseSnapshot(gunzipSync(await readFile(file)).toString('utf8'), file)
      : await loadSnapshot(file)
    return {
      head: whole,

      async *states() {
        for (const [node, state] of Object.entries(whole.nodeStates)) yield {node, state}
      },
    }
  }
  if (typeof first.schemaVersion === 'number' && first.schemaVersion > SNAPSHOT_LINES_VERSION) {
    throw new UsageError(
      `${file}: snapshot version ${first.schemaVersion} is newer than this netctl supports (${SNAPSHOT_LINES_VERSION})`,
      false,
    )
  }
  // the states are validated line by line; the rest as a version 1 snapshot without them
  const head = validateSnapshot({...first, schemaVersion: SNAPSHOT_SCHEMA_VERSION, nodeStates: {}}, file)
  let checked = false
  return {
    head,
    async *states() {
      const validate = !checked
      const seen = new Set<string>()
      yield* nodeLines(file, gzip, validate, seen)
      checked = true
    },
  }
}

async function* nodeLines(
  file: string,
  gzip: boolean,
  validate: boolean,
  seen: Set<string>,
): AsyncGenerator<SnapshotNodeState> {
  const validState = validate ? validatorForDefinition('snapshot', 'nodeState') : undefined
  let lineNo = 0
  let entry: SnapshotNodeState
  try {
    for await (const line of linesOf(file, gzip)) {
      lineNo++
      if (lineNo === 1 || line.trim() === '') continue
      const parsed = parseLine(line)
      if (!parsed || typeof parsed.node !== 'string' || parsed.state === undefined)
        throw new UsageError(`${file}:${lineNo}: invalid snapshot: expected {"node": NAME, "state": {...}}`, false)
      if (validState && !validState(parsed.state)) {
        // the error's path as a version 1 file would give it: nodeStates["node2"].routes
        const where = firstSchemaError(validState.errors).replace(/^\(top level\)/, '')
        throw new UsageError(
          `${file}:${lineNo}: invalid snapshot: nodeStates[${printable(JSON.stringify(parsed.node))}]${where.startsWith('[') || where.startsWith(':') ? '' : '.'}${where}`,
          false,
        )
      }
      if (validate) {
        if (seen.has(parsed.node))
          throw new UsageError(
            `${file}:${lineNo}: invalid snapshot: the state of ${printable(JSON.stringify(parsed.node))} is there twice`,
            false,
          )
        seen.add(parsed.node)
      }
      entry = {node: parsed.node, state: parsed.state as NodeState}
      yield entry
    }
  } catch (error) {
    if (error instanceof UsageError) throw error
    throw new UsageError(`${file}: ${(error as Error).message}`, false)
  }
}

/**
 * Load a snapshot file of either layout, compressed or not (told by its first
 * bytes, not its name). Version 2 is read a line, that is a node, at a time.
 */
export async function readSnapshotFile(file: string): Promise<Snapshot> {
  const {head, states} = await openSnapshotFile(file)
  if (head.schemaVersion === SNAPSHOT_SCHEMA_VERSION && Object.keys(head.nodeStates).length > 0) return head
  const nodeStates: Record<string, NodeState> = {}
  for await (const {node, state} of states()) nodeStates[node] = state
  if (Object.keys(nodeStates).length === 0) return head
  // in the nodes' order, as a version 1 file holds them (collect writes the lines as the nodes answer)
  const ordered: Record<string, NodeState> = {}
  for (const n of head.nodes) if (nodeStates[n.name] !== undefined) ordered[n.name] = nodeStates[n.name]!
  return {
    ...head,
    nodeStates: Object.keys(ordered).length === Object.keys(nodeStates).length ? ordered : {...ordered, ...nodeStates},
  }
}

function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(line) as unknown
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

const isLinesHead = (v: Record<string, unknown> | undefined): v is Record<string, unknown> =>
  v !== undefined &&
  typeof v.schemaVersion === 'number' &&
  v.schemaVersion >= SNAPSHOT_LINES_VERSION &&
  !('nodeStates' in v)
