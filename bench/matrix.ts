/**
 * The reachability matrix and the snapshot diff of a 50-node cluster grown from a real lab
 * (bench/synth.ts), in process after load: the matrix's time per pair against one trace of a
 * pair walked alone (a ratio below 1: the matrix walks pairs no slower than single traces), and
 * the diff of two 50-node snapshots (one FDB entry deleted on one node).
 *
 *   node --import tsx bench/matrix.ts           (BENCH_MATRIX_NODES=50 to choose the size)
 */
import {readFileSync} from 'node:fs'
import {cpus, loadavg} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {diffSnapshots} from '../src/analyze/diff.js'
import {reachabilityMatrix} from '../src/analyze/matrix.js'
import {traceSnapshot} from '../src/analyze/trace/index.js'
import {parseSnapshot} from '../src/model/snapshot.js'
import {synthesizeSnapshot} from './synth.js'
import {markdownTable, median} from './util.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const N = Number(process.env.BENCH_MATRIX_NODES ?? 50)
const lab = parseSnapshot(readFileSync(path.join(REPO, 'fixtures/snapshots/flannel-vxlan-lab.json'), 'utf8'))
const before = synthesizeSnapshot(lab, N)
const after = synthesizeSnapshot(lab, N)
after.nodeStates.node1!.fdb = after.nodeStates.node1!.fdb.filter(
  (e, i) => !(e.dev === 'flannel.1' && i === after.nodeStates.node1!.fdb.findIndex((f) => f.dev === 'flannel.1')),
)

const time = (f: () => unknown): number => {
  const t = performance.now()
  f()
  return performance.now() - t
}
const [src, dst] = [before.pods[0]!, before.pods.at(-1)!]
const query = {
  src: `${src.namespace}/${src.name}`,
  dst: `${dst.namespace}/${dst.name}`,
  protocol: 'icmp' as const,
  size: 84,
  df: false,
}
for (let i = 0; i < 3; i++) traceSnapshot(before, query)
const single = median(Array.from({length: 9}, () => time(() => traceSnapshot(before, query))))
let pairs = 0
const matrixMs = time(() => (pairs = reachabilityMatrix(before).counts.pairs))
const diffMs = median(Array.from({length: 3}, () => time(() => diffSnapshots(before, after))))
const changes = diffSnapshots(before, after).changes

console.log(`${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(2)}; ${N} nodes, ${pairs} pairs\n`)
console.log(
  markdownTable(
    ['what', 'time'],
    [
      ['one trace, walked alone (median of 9, after 3)', `${single.toFixed(1)} ms`],
      [`matrix, ${pairs} pairs`, `${(matrixMs / 1000).toFixed(2)} s`],
      ['matrix per pair', `${(matrixMs / pairs).toFixed(2)} ms`],
      ['per pair / one trace', `${(matrixMs / pairs / single).toFixed(2)}`],
      [`diff of two ${N}-node snapshots (${changes} changed line), median of 3`, `${diffMs.toFixed(0)} ms`],
    ],
  ),
)
