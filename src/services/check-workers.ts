/**
 * check's per-node checks on every core: the state lines of a version 2 file with its index are
 * shared out by bytes, in line order, among this thread and worker threads. Each worker reads the
 * facts lines and its own byte range of state lines (at their offsets), parses, checks and visits
 * its nodes, and hands back what it raised per node; this thread reads the facts too, runs the
 * checks that need no more than them, checks the first share itself, and merges the workers'
 * shares, so that the findings come out in the order of one run over every node (run.ts
 * ChecksByNode). The analysis stays in src/analyze; this is only who reads which bytes where.
 */
import {availableParallelism} from 'node:os'
import {Worker} from 'node:worker_threads'

import {type CheckOptions, ChecksByNode, type StreamedChecks, type VisitedChecks} from '../analyze/checks/index.js'
import {UsageError} from '../errors.js'
import type {Snapshot} from '../model/snapshot.js'
import type {IndexedLines} from '../model/snapshot-file.js'
import {standaloneModule} from '../util/paths.js'

export interface WorkerOptions {
  /** at most this many threads, this one included (never more than the machine's cores): 1 checks in this thread alone */
  workers?: number
  /** a file with fewer bytes of state lines is checked in-process: a worker's start-up would cost more than it saves */
  minBytes?: number
}

/**
 * Threads for a big file: as many as there are cores, up to this. Each worker holds every node's
 * facts and its V8 heap's slack, ~200 MB at 1,000 nodes: 2 threads keep a 1,000-node check under
 * the 1 GiB of issue 13.
 */
export const DEFAULT_WORKERS = 2
/**
 * Below this many bytes of state lines, one thread: a worker's start-up (its isolate, modules, its
 * own compiled code and the facts lines read again) measured 0.35–0.5 s of CPU more for 100 nodes
 * (8 MB) and 0.7 s for 200 (24 MB), for no gain in time there.
 */
export const MIN_WORKER_BYTES = 32 * 1024 * 1024

/** What a worker is given (workerData) and what it answers. */
export interface WorkerShare {
  file: string
  /** places in the index's node list, FROM included, TO excluded */
  from: number
  to: number
  scope: CheckOptions
}

export type WorkerAnswer = {visited: VisitedChecks} | {error: string; usage: boolean}

/** How many threads check this file's states, this one included: 0 when this one alone reads it (one pass). */
export function workersFor(indexed: IndexedLines, opts: WorkerOptions = {}): number {
  if (indexed.gzip) return 0
  const bytes = indexed.nodes.reduce((a, l) => a + l[2], 0)
  if (bytes < (opts.minBytes ?? MIN_WORKER_BYTES)) return 0
  const n = Math.min(availableParallelism(), opts.workers ?? DEFAULT_WORKERS, indexed.nodes.length)
  return n >= 2 ? n : 0
}

/**
 * Consecutive shares of the node list, of about the same bytes of state lines each, the first
 * share counting FIRST_EXTRA bytes more: the thread that checks it has other work too.
 */
export function shareOut(
  nodes: IndexedLines['nodes'],
  count: number,
  firstExtra = 0,
): Array<[from: number, to: number]> {
  const total = nodes.reduce((a, l) => a + l[2], 0) + firstExtra
  const shares: Array<[number, number]> = []
  let from = 0
  let bytes = firstExtra
  for (let at = 0; at < nodes.length; at++) {
    bytes += nodes[at]![2]
    // the k-th share ends where the bytes so far pass k/count of the whole
    if (shares.length < count - 1 && bytes >= (total * (shares.length + 1)) / count) {
      shares.push([from, at + 1])
      from = at + 1
    }
  }
  if (from < nodes.length) shares.push([from, nodes.length])
  return shares
}

/**
 * The streamed checks of FILE (read by the caller's `openSnapshotFile`: its head and index) with
 * the state lines checked by COUNT threads, this one and COUNT − 1 workers: the same findings, in
 * the same order, as runChecksOnePass over the same lines.
 */
export async function runChecksInWorkers(
  file: string,
  head: Snapshot,
  indexed: IndexedLines,
  scope: CheckOptions,
  count: number,
): Promise<StreamedChecks> {
  // this thread also validates the facts lines and runs the cluster checks over them (a worker only
  // parses them): its share is lighter by the facts' bytes (measured: it finished last by about that)
  const [own, ...others] = shareOut(
    indexed.nodes,
    count,
    indexed.nodes.reduce((a, l) => a + l[1], 0),
  )
  // started first: their start-up and their read of the facts overlap this thread's
  const workers = others.map(([from, to]) => startWorker({file, from, to, scope}))
  try {
    const run = new ChecksByNode(head, scope)
    for await (const {node, state} of indexed.facts()) run.addFacts(node, state, true)
    run.start()
    // the first share: an error in it comes before any worker's, in line order
    for await (const {node, state} of indexed.statesAt(own![0], own![1])) run.visit(node, state)
    const answers = await Promise.all(workers.map((w) => w.answer))
    // the first error in line order, as a read of the file through would meet it
    const failed = answers.find((a): a is {error: string; usage: boolean} => 'error' in a)
    if (failed) throw failed.usage ? new UsageError(failed.error, false) : new Error(failed.error)
    for (const a of answers) run.merge((a as {visited: VisitedChecks}).visited)
    return run.finish()
  } finally {
    await Promise.all(workers.map((w) => w.worker.terminate()))
  }
}

/** A worker on its share; its answer never rejects (an error is an answer), so no rejection goes unhandled. */
function startWorker(share: WorkerShare): {worker: Worker; answer: Promise<WorkerAnswer>} {
  const {entry, execArgv} = workerEntry()
  const worker = new Worker(entry, {workerData: share, ...(execArgv ? {execArgv} : {})})
  const answer = new Promise<WorkerAnswer>((resolve) => {
    worker.once('message', (m: WorkerAnswer) => resolve(m))
    worker.once('error', (e) => resolve({error: e.message, usage: false}))
    worker.once('exit', (code) => resolve({error: `a check worker stopped (exit ${code})`, usage: false}))
  })
  return {worker, answer}
}

/** The worker's module: the built file, or its source through tsx when netctl runs from TypeScript (tests). */
function workerEntry(): {entry: string; execArgv?: string[]} {
  const m = standaloneModule('src/services/check-worker.ts', import.meta.url)
  if (!m) throw new Error("the check worker's module is missing: run 'npm run build'")
  return m.execArgv.length > 0 ? {entry: m.file, execArgv: m.execArgv} : {entry: m.file}
}
