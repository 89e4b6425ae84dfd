/**
 * A check worker (check-workers.ts): the facts lines of its file, then its share of the state
 * lines, each parsed, checked against the schema and visited by the per-node checks; it answers
 * with what they raised per node, or with the error that stopped it.
 */
import {parentPort, workerData} from 'node:worker_threads'

import {ChecksByNode} from '../analyze/checks/index.js'
import {UsageError} from '../errors.js'
import {openSnapshotFile} from '../model/snapshot-file.js'
import type {WorkerAnswer, WorkerShare} from './check-workers.js'

async function checkShare({file, from, to, scope}: WorkerShare): Promise<WorkerAnswer> {
  try {
    const {head, indexed} = await openSnapshotFile(file)
    if (!indexed) throw new Error(`${file}: no index (a check worker needs one)`)
    const run = new ChecksByNode(head, scope)
    // the main thread checks the facts lines against the schema, and reports their errors
    for await (const {node, state} of indexed.facts({trusted: true})) run.addFacts(node, state, true)
    run.start({once: false})
    for await (const {node, state} of indexed.statesAt(from, to)) run.visit(node, state)
    return {visited: run.visited()}
  } catch (error) {
    return {error: (error as Error).message, usage: error instanceof UsageError}
  }
}

parentPort!.postMessage(await checkShare(workerData as WorkerShare))
