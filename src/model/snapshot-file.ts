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
import {decodeUtf8, printable} from '../util/text.js'
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
export function* snapshotLinesChunks(s: Snapshot, facts?: FactsMaker): Generator<string> {
  const states = Object.entries(s.nodeStates)
  if (!facts) {
    yield* snapshotLinesHead(s)
    for (const [node, state] of states) yield snapshotLine(node, state)
    return
  }
  // in memory already: the lines are made twice rather than held (their lengths go first, in the head)
  const factsOf = states.map(([node, state]) => factsLine(node, facts.of(state)))
  yield* snapshotLinesHead(s, {
    facts: facts.key,
    lines: states.map(([node, state], i) => [
      node,
      Buffer.byteLength(factsOf[i]!),
      Buffer.byteLength(snapshotLine(node, state)),
    ]),
  })
  yield* factsOf
  for (const [node, state] of states) yield snapshotLine(node, state)
}

export function* snapshotLinesHead(s: Snapshot, index?: LinesIndex): Generator<string> {
  const {nodeStates: _states, ...rest} = s
  yield `${JSON.stringify({...rest, schemaVersion: SNAPSHOT_LINES_VERSION, ...(index ? {index} : {})})}\n`
}

export const snapshotLine = (node: string, state: NodeState): string => `${JSON.stringify({node, state})}\n`

/**
 * How a writer makes each node's cluster facts (src/analyze/checks/facts.ts, handed in: the model
 * knows nothing of the checks), and the key a reader compares with its own before trusting them
 * (the facts' version and the backend they were cut for).
 */
export interface FactsMaker {
  key: string
  of(state: NodeState): NodeState
}

/**
 * The index of a version 2 file written with facts (docs/snapshot.md), in its head line: for each
 * node in line order its name, the bytes of its facts line and of its state line (newline
 * included). The facts lines come right after the head, in that order, then the state lines.
 */
export interface LinesIndex {
  facts: string
  lines: Array<[node: string, factsBytes: number, stateBytes: number]>
}

export const factsLine = (node: string, facts: NodeState): string => `${JSON.stringify({node, facts})}\n`

/**
 * Version 2 written as the nodes arrive (`collect` of a big cluster): each node's line goes to a
 * spool file at once, so memory holds no state but the one being written; the head line, known
 * only when collection ends (errors, finishedAt), comes first when the spool is read out. With a
 * FactsMaker, each node's facts line goes to a second spool, and the head carries the index.
 */
export interface LinesSpool {
  /** nodes written so far */
  readonly nodes: number
  add(node: string, state: NodeState): Promise<void>
  /** the whole file's pieces: the head of SKELETON (a snapshot whose states were spooled), then the spooled lines */
  chunks(skeleton: Snapshot): AsyncIterable<string | Buffer>
  /** remove the spool files */
  close(): Promise<void>
}

function spoolFile(file: string) {
  const out = createWriteStream(file)
  return {
    async write(line: string): Promise<void> {
      if (!out.write(line)) await new Promise<void>((resolve) => out.once('drain', () => resolve()))
    },
    finished: (): Promise<void> =>
      out.writableFinished
        ? Promise.resolve()
        : new Promise((resolve, reject) => out.end(() => resolve()).once('error', reject)),
  }
}

export async function openLinesSpool(dir = tmpdir(), facts?: FactsMaker): Promise<LinesSpool> {
  const spoolDir = await mkdtemp(path.join(dir, 'netctl-spool-'))
  const statesFile = path.join(spoolDir, 'nodes.jsonl')
  const factsFile = path.join(spoolDir, 'facts.jsonl')
  const states = spoolFile(statesFile)
  const factsOut = facts ? spoolFile(factsFile) : undefined
  const lines: LinesIndex['lines'] = []
  const finished = () => Promise.all([states.finished(), factsOut?.finished()])
  return {
    get nodes() {
      return lines.length
    },
    async add(node, state) {
      const stateLine = snapshotLine(node, state)
      const fl = facts ? factsLine(node, facts.of(state)) : ''
      lines.push([node, Buffer.byteLength(fl), Buffer.byteLength(stateLine)])
      if (factsOut) await factsOut.write(fl)
      await states.write(stateLine)
    },
    async *chunks(skeleton) {
      await finished()
      yield* snapshotLinesHead(skeleton, facts ? {facts: facts.key, lines} : undefined)
      if (facts) yield* createReadStream(factsFile) as AsyncIterable<Buffer>
      yield* createReadStream(statesFile) as AsyncIterable<Buffer>
    },
    async close() {
      await finished().catch(() => {})
      await rm(spoolDir, {recursive: true, force: true})
    },
  }
}

/** Pieces into a file, gzipped when its name ends in .gz. */
export async function writeChunks(
  file: string,
  chunks: Iterable<string> | AsyncIterable<string | Buffer>,
): Promise<void> {
  const out = createWriteStream(file)
  const source = Readable.from(chunks, {objectMode: false})
  if (isGzip(file)) await pipeline(source, createGzip(), out)
  else await pipeline(source, out)
}

/** The pieces of a snapshot in the layout a file name asks for (.json[.gz]: version 1, .jsonl[.gz]: version 2). */
export const snapshotChunks = (file: string, s: Snapshot, facts?: FactsMaker): Iterable<string> =>
  isLines(file) ? snapshotLinesChunks(s, facts) : snapshotJsonChunks(s)

/** Write a snapshot to a file in the layout its name asks for (version 2 with its facts and index when FACTS is given). */
export async function writeSnapshotFile(file: string, s: Snapshot, facts?: FactsMaker): Promise<void> {
  await writeChunks(file, snapshotChunks(file, s, facts))
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
 * How much text linesOf decodes at once: more than the ~1 MB over which Node keeps a string
 * outside V8's heap (decodeUtf8), so that lines are slices of one such string each time.
 */
const DECODE_BYTES = 8 << 20

/** Bytes read and not yet split into lines; lines are decoded a window at a time. */
class LineWindow {
  private bytes: Buffer
  private used = 0

  constructor(size = DECODE_BYTES) {
    this.bytes = Buffer.allocUnsafe(size)
  }

  /** where to read into next; the window doubles when one line fills it */
  room(): {buffer: Buffer; offset: number; length: number} {
    if (this.used === this.bytes.length) this.grow(this.used + 1)
    return {buffer: this.bytes, offset: this.used, length: this.bytes.length - this.used}
  }

  filled(n: number): void {
    this.used += n
  }

  append(chunk: Buffer): void {
    if (this.used + chunk.length > this.bytes.length) this.grow(this.used + chunk.length)
    chunk.copy(this.bytes, this.used)
    this.used += chunk.length
  }

  /**
   * The whole lines held, decoded as one text and dropped from the window, once a window's worth
   * is (undefined before), or at the END everything held.
   */
  take(end: boolean): string | undefined {
    let cut = this.used
    if (!end) {
      if (this.used < DECODE_BYTES) return undefined
      cut = this.bytes.lastIndexOf(10, this.used - 1)
      if (cut === -1) return undefined
    }
    const text = decodeUtf8(this.bytes, 0, cut)
    this.consumed(end ? cut : cut + 1)
    return text
  }

  /** the whole lines held once a window's worth is, or at the END everything held */
  *lines(end: boolean): Generator<string> {
    const text = this.take(end)
    if (text !== undefined) yield* linesIn(text, end)
  }

  /** the first line, once its newline is held (FROM: where to look from), decoded alone */
  firstLine(from: number): string | undefined {
    const nl = this.bytes.subarray(0, this.used).indexOf(10, from)
    return nl === -1 ? undefined : decodeUtf8(this.bytes, 0, nl)
  }

  private consumed(n: number): void {
    this.bytes.copy(this.bytes, 0, n, this.used)
    this.used -= n
  }

  private grow(atLeast: number): void {
    const bigger = Buffer.allocUnsafe(Math.max(atLeast, this.bytes.length * 2))
    this.bytes.copy(bigger, 0, 0, this.used)
    this.bytes = bigger
  }
}

/**
 * The lines of TEXT that take() gave: split on the decoded text, not the bytes (in UTF-8 a
 * character's offset is not its byte's); at the END, no empty line after a final newline.
 */
function* linesIn(text: string, end: boolean): Generator<string> {
  let start = 0
  for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
    yield text.slice(start, nl)
    start = nl + 1
  }
  if (!end || start < text.length) yield text.slice(start)
}

/**
 * The lines of a file (gunzipped), or of bytes RANGE of a plain one (exported for its tests), split
 * on the bytes (readline was half of reading a big snapshot). A plain file is read into one window
 * reused from read to read; the text is decoded a window at a time (see LineWindow).
 */
export async function* linesOf(file: string, gzip: boolean, range?: ByteRange): AsyncGenerator<string> {
  const window = new LineWindow()
  if (gzip) {
    const input = createReadStream(file).pipe(createGunzip())
    try {
      for await (const chunk of input as AsyncIterable<Buffer>) {
        window.append(chunk)
        yield* window.lines(false)
      }
    } finally {
      input.destroy()
    }
  } else {
    const fh = await open(file, 'r')
    let position = range?.start ?? 0
    const end = range?.end ?? Infinity
    const readMore = (): Promise<number> | undefined => {
      if (position >= end) return undefined
      const room = window.room()
      const read = fh.read(room.buffer, room.offset, Math.min(room.length, end - position), position)
      const bytes = read.then(({bytesRead}) => bytesRead)
      // awaited later, after the lines before it are handed out: not an unhandled rejection meanwhile
      bytes.catch(() => undefined)
      return bytes
    }
    let reading = readMore()
    try {
      while (reading) {
        const bytesRead = await reading
        reading = undefined
        if (bytesRead === 0) break
        position += bytesRead
        window.filled(bytesRead)
        const text = window.take(false)
        // the next bytes are read while these lines are parsed and checked: the text no longer needs the window
        reading = readMore()
        if (text !== undefined) yield* linesIn(text, false)
      }
    } finally {
      // a reader that stops early: the read in flight lands in the window before the file is closed
      await reading?.catch(() => undefined)
      await fh.close()
    }
  }
  yield* window.lines(true)
}

/**
 * The first line of a plain file, read to its newline and decoded alone (a snapshot's head): the
 * rest of the file is not read. Yields it as linesOf would (nothing for an empty file).
 */
async function* firstLineOf(file: string): AsyncGenerator<string> {
  const fh = await open(file, 'r')
  const window = new LineWindow(1 << 20)
  try {
    for (let position = 0; ;) {
      const room = window.room()
      const {bytesRead} = await fh.read(room.buffer, room.offset, room.length, position)
      if (bytesRead === 0) break
      position += bytesRead
      window.filled(bytesRead)
      const first = window.firstLine(room.offset)
      if (first !== undefined) {
        yield first
        return
      }
    }
  } finally {
    await fh.close()
  }
  // no newline: the whole file is its one line
  yield* window.lines(true)
}

/** Bytes START (included) to END (excluded) of a plain file. */
export interface ByteRange {
  start: number
  end: number
}

/** One collected node's state, as a version 2 line holds it. */
export interface SnapshotNodeState {
  node: string
  state: NodeState
}

/** A line of a version 2 file with facts: a node's facts (`facts`) or its whole state. */
export interface SnapshotLine extends SnapshotNodeState {
  facts: boolean
}

/**
 * A snapshot file opened to be read node by node: its snapshot without node states (`head`), and
 * its nodes' states, read again from the file at each call of `states` (checked against the schema
 * at the first). A version 1 file is one document: it is loaded whole and its states come from memory.
 * A version 2 file written with its nodes' facts has `indexed`.
 */
export interface SnapshotStream {
  head: Snapshot
  states(): AsyncIterable<SnapshotNodeState>
  indexed?: IndexedLines
}

/** A version 2 file with its facts lines and index (docs/snapshot.md). */
export interface IndexedLines {
  /** what the writer's facts were made by (FactsMaker.key): a reader with another key does not use them */
  factsKey: string
  /** every facts line, then every state line, in one read of the file, each line parsed once */
  lines(): AsyncIterable<SnapshotLine>
  /**
   * the facts lines only (the state lines are not read); `trusted`: not checked against the schema,
   * because another reader of the same file checks them (a check worker: check-workers.ts)
   */
  facts(opts?: {trusted?: boolean}): AsyncIterable<SnapshotNodeState>
  /** the states of these nodes only: each line read at its offset (gzip: read through, the others unparsed) */
  statesOf(nodes: ReadonlySet<string>): Promise<SnapshotNodeState[]>
  /** every node in line order, with the bytes of its facts line and of its state line */
  nodes: LinesIndex['lines']
  /** gzip-compressed: no line can be read at its offset */
  gzip: boolean
  /**
   * the state lines of the nodes at places FROM (included) to TO (excluded) of `nodes`, read at
   * their offsets in one stream and checked as `lines` checks them (a plain file only)
   */
  statesAt(from: number, to: number): AsyncIterable<SnapshotLine>
}

export interface OpenOptions {
  /** told of every line parsed (the tests count them) */
  onParse?: (what: 'head' | 'facts' | 'state', node?: string) => void
}

export async function openSnapshotFile(file: string, opts: OpenOptions = {}): Promise<SnapshotStream> {
  const {gzip} = await sniff(file)
  let first: Record<string, unknown> | undefined
  let headBytes = 0
  let empty = true
  try {
    // a plain file's head is read to its newline, nothing after it (trace reads little else)
    for await (const line of gzip ? linesOf(file, gzip) : firstLineOf(file)) {
      empty = false
      headBytes = Buffer.byteLength(line) + 1
      first = parseLine(line)
      opts.onParse?.('head')
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
  const {index: rawIndex, ...rest} = first
  const index = rawIndex === undefined ? undefined : indexOf(file, rawIndex)
  // the states are validated line by line; the rest as a version 1 snapshot without them
  const head = validateSnapshot({...rest, schemaVersion: SNAPSHOT_SCHEMA_VERSION, nodeStates: {}}, file)
  const reader = new LinesReader(file, gzip, index, opts)
  return {
    head,
    states: () => reader.read({facts: false, states: true}),
    ...(index
      ? {
          indexed: {
            factsKey: index.facts,
            lines: () => reader.read({facts: true, states: true}),
            facts: (o = {}) => reader.read({facts: true, states: false, trusted: o.trusted ?? false}, headBytes),
            statesOf: (nodes) => reader.statesOf(nodes, headBytes),
            nodes: index.lines,
            gzip,
            statesAt: (from, to) => reader.statesAt(from, to, headBytes),
          },
        }
      : {}),
  }
}

function indexOf(file: string, raw: unknown): LinesIndex {
  const bad = (why: string) => new UsageError(`${file}:1: invalid snapshot: index: ${why}`, false)
  const r = raw as Partial<LinesIndex> | null
  if (r === null || typeof r !== 'object' || typeof r.facts !== 'string' || !Array.isArray(r.lines))
    throw bad('expected {"facts": KEY, "lines": [[NODE, BYTES, BYTES], ...]}')
  const seen = new Set<string>()
  for (const l of r.lines as unknown[]) {
    if (
      !Array.isArray(l) ||
      l.length !== 3 ||
      typeof l[0] !== 'string' ||
      !Number.isSafeInteger(l[1]) ||
      !Number.isSafeInteger(l[2]) ||
      (l[1] as number) < 0 ||
      (l[2] as number) < 1
    )
      throw bad('expected [NODE, BYTES, BYTES] in lines')
    if (seen.has(l[0])) throw bad(`${printable(JSON.stringify(l[0]))} is there twice`)
    seen.add(l[0])
  }
  return r as LinesIndex
}

/** The node lines of a version 2 file, as the index (when there is one) lays them out. */
class LinesReader {
  /** the facts lines and the state lines have been read through once, and checked then */
  private readonly checked = {facts: false, states: false}
  /** nodes whose state line statesOf has checked already (read again, the same bytes: trace's kept file) */
  private readonly checkedStates = new Set<string>()
  private readonly validState = validatorForDefinition('snapshot', 'nodeState')

  constructor(
    private readonly file: string,
    private readonly gzip: boolean,
    private readonly index: LinesIndex | undefined,
    private readonly opts: OpenOptions,
  ) {}

  /** the facts lines, the state lines or both, in one read; validated at the first read of them all */
  async *read(
    want: {facts: boolean; states: boolean; trusted?: boolean},
    headBytes?: number,
  ): AsyncGenerator<SnapshotLine> {
    const validate = {facts: !this.checked.facts && !want.trusted, states: !this.checked.states}
    const seen = {facts: new Set<string>(), states: new Set<string>()}
    const factsLines = this.index?.lines.length ?? 0
    // the facts alone of a plain indexed file: their bytes only, after the head (each line's node is checked against the index)
    const range =
      want.facts && !want.states && this.index && !this.gzip && headBytes !== undefined
        ? {start: headBytes, end: this.statesStart(headBytes)}
        : undefined
    let lineNo = range ? 1 : 0
    try {
      for await (const line of linesOf(this.file, this.gzip, range)) {
        lineNo++
        if (lineNo === 1 || line.trim() === '') continue
        const isFacts = lineNo <= 1 + factsLines
        // lines not asked for are not parsed; past the facts, a read of the facts alone is over
        if (isFacts ? !want.facts : !want.states) {
          if (!want.states) break
          continue
        }
        const check = isFacts ? validate.facts : validate.states
        const entry = this.parse(line, lineNo, isFacts, check)
        if (check) this.once(entry, lineNo, isFacts ? seen.facts : seen.states)
        yield entry
      }
    } catch (error) {
      if (error instanceof UsageError) throw error
      throw new UsageError(`${this.file}: ${(error as Error).message}`, false)
    }
    // read to the end (a consumer that stops early leaves the rest unchecked)
    if (want.facts && !want.trusted) this.checked.facts = true
    if (want.states) this.checked.states = true
  }

  /** The state lines at places FROM to TO of the index, in one read of their bytes, each checked. */
  async *statesAt(from: number, to: number, headBytes: number): AsyncGenerator<SnapshotLine> {
    const lines = this.index!.lines
    if (this.gzip) throw new Error('a gzipped snapshot cannot be read at an offset')
    if (from >= to) return
    let start = this.statesStart(headBytes)
    for (let at = 0; at < from; at++) start += lines[at]![2]
    let end = start
    for (let at = from; at < to; at++) end += lines[at]![2]
    let at = from
    try {
      for await (const line of linesOf(this.file, false, {start, end})) {
        if (at >= to) break
        const lineNo = 2 + lines.length + at
        yield this.parse(line, lineNo, false, true, lines[at]![0])
        at++
      }
    } catch (error) {
      if (error instanceof UsageError) throw error
      throw new UsageError(`${this.file}: ${(error as Error).message}`, false)
    }
    if (at < to)
      throw new UsageError(
        `${this.file}:${2 + lines.length + at}: invalid snapshot: the index says ${printable(JSON.stringify(lines[at]![0]))}'s state is here, the file ends before`,
        false,
      )
  }

  /**
   * The state lines of NODES only. A plain file is read at each line's offset (the head's bytes,
   * then every facts line, then the state lines before it); a gzipped one is read through, and
   * only those lines are parsed.
   */
  async statesOf(nodes: ReadonlySet<string>, headBytes: number): Promise<SnapshotNodeState[]> {
    const index = this.index!
    const wanted: Array<{at: number; offset: number; bytes: number}> = []
    let offset = this.statesStart(headBytes)
    index.lines.forEach(([node, , bytes], at) => {
      if (nodes.has(node)) wanted.push({at, offset, bytes})
      offset += bytes
    })
    if (wanted.length === 0) return []
    const lineNoOf = (at: number) => 2 + index.lines.length + at
    const out: SnapshotNodeState[] = []
    try {
      if (!this.gzip) {
        const fh = await open(this.file, 'r')
        try {
          for (const w of wanted) {
            const {buffer, bytesRead} = await fh.read(Buffer.allocUnsafe(w.bytes), 0, w.bytes, w.offset)
            const line = decodeUtf8(buffer, 0, buffer[bytesRead - 1] === 10 ? bytesRead - 1 : bytesRead)
            out.push(this.parseState(line, lineNoOf(w.at), index.lines[w.at]![0]))
          }
        } finally {
          await fh.close()
        }
        return out
      }
      const byLine = new Map(wanted.map((w) => [lineNoOf(w.at), w.at]))
      const last = Math.max(...byLine.keys())
      let lineNo = 0
      for await (const line of linesOf(this.file, true)) {
        lineNo++
        const at = byLine.get(lineNo)
        if (at !== undefined) out.push(this.parseState(line, lineNo, index.lines[at]![0]))
        if (lineNo >= last) break
      }
      return out
    } catch (error) {
      if (error instanceof UsageError) throw error
      throw new UsageError(`${this.file}: ${(error as Error).message}`, false)
    }
  }

  /** where the state lines start in a plain indexed file: after the head and every facts line */
  private statesStart(headBytes: number): number {
    return this.index!.lines.reduce((a, l) => a + l[1], headBytes)
  }

  /** a state line statesOf reads, checked against the schema the first time only */
  private parseState(line: string, lineNo: number, node: string): SnapshotLine {
    const check = !this.checked.states && !this.checkedStates.has(node)
    const entry = this.parse(line, lineNo, false, check, node)
    this.checkedStates.add(node)
    return entry
  }

  private parse(line: string, lineNo: number, facts: boolean, validate: boolean, expected?: string): SnapshotLine {
    const key = facts ? 'facts' : 'state'
    const parsed = parseLine(line)
    this.opts.onParse?.(key, typeof parsed?.node === 'string' ? parsed.node : undefined)
    if (!parsed || typeof parsed.node !== 'string' || parsed[key] === undefined)
      throw new UsageError(`${this.file}:${lineNo}: invalid snapshot: expected {"node": NAME, "${key}": {...}}`, false)
    const indexed = expected ?? (this.index ? this.index.lines[(lineNo - 2) % this.index.lines.length]?.[0] : undefined)
    if (indexed !== undefined && parsed.node !== indexed)
      throw new UsageError(
        `${this.file}:${lineNo}: invalid snapshot: the index says this line is ${printable(JSON.stringify(indexed))}'s`,
        false,
      )
    if (validate && !this.validState(parsed[key])) {
      // the error's path as a version 1 file would give it: nodeStates["node2"].routes
      const where = firstSchemaError(this.validState.errors).replace(/^\(top level\)/, '')
      throw new UsageError(
        `${this.file}:${lineNo}: invalid snapshot: ${facts ? 'facts' : 'nodeStates'}[${printable(JSON.stringify(parsed.node))}]${where.startsWith('[') || where.startsWith(':') ? '' : '.'}${where}`,
        false,
      )
    }
    return {node: parsed.node, state: parsed[key] as NodeState, facts}
  }

  private once(entry: SnapshotLine, lineNo: number, seen: Set<string>): void {
    if (seen.has(entry.node))
      throw new UsageError(
        `${this.file}:${lineNo}: invalid snapshot: the ${entry.facts ? 'facts' : 'state'} of ${printable(JSON.stringify(entry.node))} is there twice`,
        false,
      )
    seen.add(entry.node)
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
