/**
 * `check` and `trace` on big clusters grown from a real lab (bench/synth.ts), as whole processes
 * the way a user runs them, plus the trace measured after start-up (reading its lines, walking,
 * checking) and after load (the snapshot in memory: walking and checking alone).
 *
 *   node --import tsx bench/scale.ts            (BENCH_SCALE="100,1000" to choose the sizes)
 *
 * Every node of the 100- and 1,000-node clusters is collected (every route, neighbour and FDB
 * entry of every node: ~3N entries per node); the 5,000-node cluster holds the state of the two
 * endpoint nodes only, as a live trace collects it. Snapshots are written as collect writes them
 * (JSON Lines with each node's facts and the index, a node at a time: no string of the whole). The 100-node case is the baseline of the same run; the
 * growth exponent is log(time ratio) / log(size ratio) against the previous size, in nodes and in
 * entries (routes, neighbours, FDB entries, links, addresses: ~3N per node, so N² in all).
 */
import {spawnSync} from 'node:child_process'
import {copyFileSync, mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs'
import {cpus, loadavg, tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import type {Snapshot} from '../src/model/snapshot.js'
import {synthesize, writeSynthetic} from './synth.js'
import {markdownTable} from './util.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const SIZES = (process.env.BENCH_SCALE ?? '100,1000,5000').split(',').map(Number)
const LAB = 'fixtures/snapshots/flannel-vxlan-lab.json'

interface Row {
  nodes: number
  stateOf: string
  mb: number
  /** routes, neighbours, FDB entries, links and addresses of every collected node */
  entries: number
  check?: Timed
  /** the same check in one thread (`--workers 1`): what the workers gain */
  checkOneThread?: Timed
  /** the floor: a process that reads the file once, parsing and validating every line, and does nothing else */
  floor: Timed
  trace: Timed
  /**
   * the first trace in a process whose modules are loaded, the third (the JIT warmed up; the head
   * and facts kept from the first), and a fourth over a copy of the file (warm, nothing kept)
   */
  traceAfterLoadMs: [first: number, third: number, fresh: number]
  /**
   * after load in the narrow sense: the snapshot (head and the path's states) already in memory, the
   * walk and the checks alone: the first in a process, then, warmed up by three more, the fastest of
   * three over other copies of it loaded the same way (nothing kept from the others but the JIT's work);
   * each the median of FIRST_TRACES processes
   */
  traceInMemoryMs: [first: number, warm: number]
}

async function writeCluster(dir: string, n: number): Promise<{file: string; endpoints: boolean; entries: number}> {
  const lab = JSON.parse(readFileSync(path.join(REPO, LAB), 'utf8')) as Snapshot
  const endpoints = n > 1000
  const g = synthesize(lab, n, endpoints ? {collected: new Set(['node1', `node${n}`])} : {})
  const file = path.join(dir, `${n}.jsonl`)
  // as collect writes it: each node's facts and state, the index in the head
  const {entries} = await writeSynthetic(g, file)
  return {file, endpoints, entries}
}

/** Read a snapshot file once, every line parsed and validated (what check's first pass does), from dist/. */
const READ_ONCE = `const {openSnapshotFile} = await import(${JSON.stringify(path.join(REPO, 'dist/src/model/snapshot-file.js'))})
const {states} = await openSnapshotFile(process.argv[1])
for await (const _ of states());`

interface Timed {
  ms: number
  /** CPU time, user and system, of every thread: on a loaded machine the wall clock says more of the others */
  cpuMs: number
  rssMB: number
  code: number
}

/** A whole process, timed, with its CPU time and peak memory (GNU time's maximum resident set). */
function timed(args: string[]): Timed {
  const t0 = performance.now()
  const p = spawnSync('/usr/bin/time', ['-f', '%M %U %S', process.execPath, ...args], {
    cwd: REPO,
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    env: {...process.env, NO_COLOR: '1'},
  })
  const ms = performance.now() - t0
  const [rssKB, user, sys] = p.stderr.trim().split('\n').pop()!.split(' ').map(Number)
  return {ms, cpuMs: (user! + sys!) * 1000, rssMB: rssKB! / 1024, code: p.status ?? -1}
}

/**
 * In a child, the modules loaded (start-up is the process's column), from dist/ as the CLI runs
 * them (through tsx, a module loaded lazily inside the timed part would be compiled there): the
 * trace as `--snapshot` runs it, reading the head and the facts lines, then the states of its
 * path's nodes at their offsets, walking, and running the checks of those nodes. Three times: the
 * first pays the JIT's warm-up, the third hardly, and reuses the head and facts the first read
 * (the trace service keeps them while the file is unchanged); then once over a copy of the file,
 * warm but reading everything again.
 */
async function traceAfterLoad(file: string, dst: string): Promise<[number, number, number]> {
  const {traceSnapshotStream} = (await import(
    path.join(REPO, 'dist/src/services/trace.js')
  )) as typeof import('../src/services/trace.js')
  const copy = `${file}.copy.jsonl`
  copyFileSync(file, copy)
  const ms: number[] = []
  try {
    for (const f of [file, file, file, copy]) {
      const t0 = performance.now()
      await traceSnapshotStream(f, {src: 'pod-node1-1', dst, protocol: 'icmp', size: 84, df: false})
      ms.push(performance.now() - t0)
    }
  } finally {
    rmSync(copy, {force: true})
  }
  return [ms[0]!, ms[2]!, ms[3]!]
}

/** In a child, the snapshot read whole first (as `readSnapshotFile` does), then traceInMemoryMs's traces. */
async function traceInMemory(file: string, dst: string): Promise<[number, number]> {
  const [{readSnapshotFile}, {traceSnapshotFile}] = (await Promise.all([
    import(path.join(REPO, 'dist/src/model/snapshot-file.js')),
    import(path.join(REPO, 'dist/src/services/trace.js')),
  ])) as [typeof import('../src/model/snapshot-file.js'), typeof import('../src/services/trace.js')]
  const query = {src: 'pod-node1-1', dst, protocol: 'icmp' as const, size: 84, df: false}
  const timedTrace = (s: Snapshot): number => {
    const t0 = performance.now()
    traceSnapshotFile(s, query)
    return performance.now() - t0
  }
  const loaded = await readSnapshotFile(file)
  const first = timedTrace(loaded)
  // the steady state: warmed up by three more over the same snapshot, then timed over copies
  for (let i = 0; i < 3; i++) timedTrace(loaded)
  const copies: Snapshot[] = []
  for (let i = 0; i < 3; i++) copies.push(await readSnapshotFile(file))
  return [first, Math.min(...copies.map(timedTrace))]
}

const inChild = (flag: string, file: string, dst: string): unknown =>
  JSON.parse(
    spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), flag, file, dst], {
      cwd: REPO,
      encoding: 'utf8',
    }).stdout,
  )

/**
 * traceInMemory in FIRST_TRACES fresh processes: the first trace of a process is one sample of a
 * noisy host (±15% between neighbours), so the median of them, each column apart.
 */
const FIRST_TRACES = 5
function inMemoryMedian(file: string, dst: string): [number, number] {
  const runs = Array.from({length: FIRST_TRACES}, () => inChild('--trace-in-memory', file, dst) as [number, number])
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1]!
  return [median(runs.map((r) => r[0])), median(runs.map((r) => r[1]))]
}

if (process.argv[2] === '--trace-after-load') {
  process.stdout.write(JSON.stringify(await traceAfterLoad(process.argv[3]!, process.argv[4]!)))
} else if (process.argv[2] === '--trace-in-memory') {
  process.stdout.write(JSON.stringify(await traceInMemory(process.argv[3]!, process.argv[4]!)))
} else {
  const dir = mkdtempSync(path.join(tmpdir(), 'scale-'))
  const rows: Row[] = []
  const loadAtStart = loadavg()[0]!
  try {
    for (const n of SIZES) {
      const {file, endpoints, entries} = await writeCluster(dir, n)
      const dst = `pod-node${n}-1`
      const row: Row = {
        nodes: n,
        stateOf: endpoints ? 'the 2 endpoint nodes' : 'every node',
        mb: statSync(file).size / 1e6,
        entries,
        floor: timed(['--input-type=module', '-e', READ_ONCE, file]),
        ...(endpoints
          ? {}
          : {
              check: timed(['bin/run.js', 'check', '--snapshot', file, '--json']),
              checkOneThread: timed(['bin/run.js', 'check', '--snapshot', file, '--workers', '1', '--json']),
            }),
        trace: timed(['bin/run.js', 'trace', 'pod-node1-1', dst, '--snapshot', file, '--json']),
        traceAfterLoadMs: inChild('--trace-after-load', file, dst) as [number, number, number],
        traceInMemoryMs: inMemoryMedian(file, dst),
      }
      rows.push(row)
      rmSync(file, {force: true})
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
  const base = rows[0]!
  const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`
  const exponent = (a: number, b: number, na: number, nb: number): string =>
    (Math.log(b / a) / Math.log(nb / na)).toFixed(2)
  console.log(
    `\n### check and trace at scale (\`bench/scale.ts\`) (${cpus().length} CPUs, load ${loadAtStart.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end; baseline: ${base.nodes} nodes)\n`,
  )
  console.log(
    markdownTable(
      [
        'nodes',
        'state of',
        'entries',
        'snapshot (JSON Lines)',
        'floor: read + parse once (CPU)',
        '`check` (process; CPU)',
        'check / floor',
        '`check --workers 1` (CPU)',
        'peak RSS',
        'growth exponent (nodes / entries)',
        '`trace` (process)',
        'peak RSS',
        'trace after start-up (reads its lines): 1st / 3rd in one process / warm over another file',
        `trace after load (snapshot in memory: walk and checks), median of ${FIRST_TRACES} processes: 1st / warm (after 4) over another copy`,
      ],
      rows.map((r, i) => {
        const prev = rows[i - 1]
        const growth =
          prev?.check && r.check
            ? `${exponent(prev.check.ms, r.check.ms, prev.nodes, r.nodes)} / ${exponent(prev.check.ms, r.check.ms, prev.entries, r.entries)}`
            : '—'
        return [
          String(r.nodes),
          r.stateOf,
          r.entries.toLocaleString('en'),
          `${r.mb.toFixed(0)} MB`,
          `${secs(r.floor.ms)} (${secs(r.floor.cpuMs)})`,
          r.check ? `${secs(r.check.ms)} (${(r.check.ms / base.check!.ms).toFixed(1)}x; ${secs(r.check.cpuMs)})` : '—',
          r.check ? `${(r.check.ms / r.floor.ms).toFixed(2)}x` : '—',
          r.checkOneThread ? `${secs(r.checkOneThread.ms)} (${secs(r.checkOneThread.cpuMs)})` : '—',
          r.check ? `${r.check.rssMB.toFixed(0)} MB` : '—',
          growth,
          `${(r.trace.ms / 1000).toFixed(2)} s`,
          `${r.trace.rssMB.toFixed(0)} MB`,
          `${r.traceAfterLoadMs.map((ms) => ms.toFixed(0)).join(' / ')} ms`,
          `${r.traceInMemoryMs.map((ms) => ms.toFixed(0)).join(' / ')} ms`,
        ]
      }),
    ),
  )
}
