/**
 * The reachability matrix: the trace walk (src/analyze/trace) for every pair
 * of endpoints of one snapshot — one pod per node by default, every pod with
 * `allPods` — each cell the walk's disposition, and for a pair that fails,
 * which way (request or reply), where it stopped and the findings. And the
 * differential matrix: two snapshots' cells compared, only those whose
 * disposition changed, each with the changed state on the nodes its paths
 * cross (src/analyze/diff.ts). Pure.
 */
import type {Snapshot} from '../model/snapshot.js'
import type {Disposition, Trace} from '../model/trace.js'
import {diffSnapshots, type SectionDiff} from './diff.js'
import {traceSnapshot} from './trace/index.js'

export interface MatrixEndpoint {
  /** the name a trace takes: NAMESPACE/NAME */
  id: string
  node: string
  ip: string
}

export interface MatrixCell {
  src: string
  dst: string
  /** DELIVERED only when the reply came back too */
  disposition: Disposition
  /** the way that failed: the request, or its reply */
  direction?: 'request' | 'reply'
  /** the node where the failing walk stopped */
  stoppedAt?: string
  /** finding codes of the walk */
  findings: string[]
  /** every node either path crosses */
  nodes: string[]
}

export interface Matrix {
  cluster: string
  backend: string
  /** node: one pod per node; pod: every pod */
  scope: 'node' | 'pod'
  endpoints: MatrixEndpoint[]
  /** row-major: endpoints × endpoints, the diagonal left out */
  cells: MatrixCell[]
  counts: {pairs: number; delivered: number; failed: number}
}

export interface MatrixOptions {
  allPods?: boolean
}

/** The pods a matrix walks between: one per node (the first by name, not host-network), or every pod. */
export function matrixEndpoints(s: Snapshot, opts: MatrixOptions = {}): MatrixEndpoint[] {
  const order = new Map(s.nodes.map((n, i) => [n.name, i]))
  const pods = s.pods
    .filter((p) => !p.hostNetwork)
    .sort(
      (a, b) =>
        (order.get(a.node) ?? 0) - (order.get(b.node) ?? 0) ||
        cmp(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`),
    )
  const out: MatrixEndpoint[] = []
  const seen = new Set<string>()
  for (const p of pods) {
    if (!opts.allPods && seen.has(p.node)) continue
    seen.add(p.node)
    out.push({id: `${p.namespace}/${p.name}`, node: p.node, ip: p.ip})
  }
  return out
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** One cell from one walk. */
export function cellOf(src: MatrixEndpoint, dst: MatrixEndpoint, t: Trace): MatrixCell {
  const nodes = [...new Set([...t.hops, ...(t.returnPath?.hops ?? [])].map((h) => h.node).filter((n) => n !== ''))]
  const findings = [...new Set(t.findings.map((f) => f.code))]
  if (t.disposition !== 'DELIVERED')
    return {
      src: src.id,
      dst: dst.id,
      disposition: t.disposition,
      direction: 'request',
      ...stopped(t.hops),
      findings,
      nodes,
    }
  const back = t.returnPath
  if (back && back.disposition !== 'DELIVERED')
    return {
      src: src.id,
      dst: dst.id,
      disposition: back.disposition,
      direction: 'reply',
      ...stopped(back.hops),
      findings,
      nodes,
    }
  return {src: src.id, dst: dst.id, disposition: 'DELIVERED', findings, nodes}
}

function stopped(hops: Trace['hops']): {stoppedAt?: string} {
  const last = hops.at(-1)?.node
  return last ? {stoppedAt: last} : {}
}

/** The walk of one pair: an ICMP echo of a plain ping's size (check --probe sends this one for real). */
export function walkPair(s: Snapshot, src: MatrixEndpoint, dst: MatrixEndpoint): Trace {
  return traceSnapshot(s, {src: src.id, dst: dst.id, protocol: 'icmp', size: 84, df: false}).trace
}

/** Walk every pair (ICMP echo, a plain ping's size). */
export function reachabilityMatrix(s: Snapshot, opts: MatrixOptions = {}): Matrix {
  const endpoints = matrixEndpoints(s, opts)
  const cells: MatrixCell[] = []
  for (const src of endpoints) {
    for (const dst of endpoints) {
      if (src === dst) continue
      cells.push(cellOf(src, dst, walkPair(s, src, dst)))
    }
  }
  const delivered = cells.filter((c) => c.disposition === 'DELIVERED').length
  return {
    cluster: s.cluster.name,
    backend: s.cluster.backend,
    scope: opts.allPods ? 'pod' : 'node',
    endpoints,
    cells,
    counts: {pairs: cells.length, delivered, failed: cells.length - delivered},
  }
}

/** Failing pairs grouped by cause: the disposition, the way, where it stopped and the findings. */
export interface FailureGroup {
  disposition: Disposition
  direction: 'request' | 'reply'
  stoppedAt?: string
  findings: string[]
  pairs: Array<{src: string; dst: string}>
}

export function failureGroups(cells: readonly MatrixCell[]): FailureGroup[] {
  const groups = new Map<string, FailureGroup>()
  for (const c of cells) {
    if (c.disposition === 'DELIVERED') continue
    const key = [c.disposition, c.direction, c.stoppedAt ?? '', c.findings.join(',')].join('|')
    let g = groups.get(key)
    if (!g) {
      g = {
        disposition: c.disposition,
        direction: c.direction ?? 'request',
        ...(c.stoppedAt ? {stoppedAt: c.stoppedAt} : {}),
        findings: c.findings,
        pairs: [],
      }
      groups.set(key, g)
    }
    g.pairs.push({src: c.src, dst: c.dst})
  }
  return [...groups.values()].sort((a, b) => b.pairs.length - a.pairs.length)
}

export interface ChangedCell {
  src: string
  dst: string
  before: MatrixCell
  after: MatrixCell
  /** what changed on the nodes either walk crosses, before or after */
  changes: Array<{node: string; sections: SectionDiff[]}>
}

export interface MatrixDiff {
  cluster: string
  before: {startedAt: string; counts: Matrix['counts']}
  after: {startedAt: string; counts: Matrix['counts']}
  scope: Matrix['scope']
  /** pairs only one side has (a pod added or gone) are not cells of either */
  changed: ChangedCell[]
}

/** Only the cells whose disposition (or failing way) changed, each with the changed state that explains it. */
export function matrixDiff(before: Snapshot, after: Snapshot, opts: MatrixOptions = {}): MatrixDiff {
  const a = reachabilityMatrix(before, opts)
  const b = reachabilityMatrix(after, opts)
  return matrixDiffOf(before, after, a, b)
}

/** The same, from matrices already walked (a what-if has its own). */
export function matrixDiffOf(before: Snapshot, after: Snapshot, a: Matrix, b: Matrix): MatrixDiff {
  const diff = diffSnapshots(before, after)
  const byNode = new Map(diff.nodeDiffs.map((d) => [d.node, d.sections]))
  const old = new Map(a.cells.map((c) => [`${c.src}\u0000${c.dst}`, c]))
  const changed: ChangedCell[] = []
  for (const c of b.cells) {
    const o = old.get(`${c.src}\u0000${c.dst}`)
    if (!o || (o.disposition === c.disposition && o.direction === c.direction)) continue
    const nodes = [...new Set([...o.nodes, ...c.nodes])]
    const changes = nodes.filter((n) => byNode.has(n)).map((node) => ({node, sections: byNode.get(node)!}))
    changed.push({src: c.src, dst: c.dst, before: o, after: c, changes})
  }
  return {
    cluster: after.cluster.name,
    before: {startedAt: before.startedAt, counts: a.counts},
    after: {startedAt: after.startedAt, counts: b.counts},
    scope: b.scope,
    changed,
  }
}
