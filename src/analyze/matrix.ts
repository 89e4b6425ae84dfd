/**
 * The reachability matrix: the trace walk (src/analyze/trace) for every pair
 * of endpoints of one snapshot — one pod per node by default, every pod with
 * `allPods` — each cell the walk's disposition, and for a pair that fails,
 * which way (request or reply), where it stopped and the findings. And the
 * differential matrix: two snapshots' cells compared, only those whose
 * disposition changed, each with the changed state on the nodes its paths
 * cross (src/analyze/diff.ts). With `services`, every Service port is a column
 * too: from each row's pod, the Service trace (src/analyze/trace/service-walk.ts),
 * which walks every endpoint kube-proxy's rules send to, so a cell says how
 * many of them the pod reaches. Pure.
 */
import ipaddr from 'ipaddr.js'

import type {InventoryService} from '../model/inventory.js'
import type {Snapshot} from '../model/snapshot.js'
import type {Disposition, Protocol, Trace} from '../model/trace.js'
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

/** A Service column: one port of one Service, reached through its ClusterIP. */
export interface MatrixService {
  /** NAMESPACE/NAME:PORT/PROTOCOL */
  id: string
  namespace: string
  name: string
  clusterIP: string
  port: number
  protocol: 'TCP' | 'UDP'
  /** the Service port's name */
  portName?: string
}

/** An endpoint the Service trace did not reach from the row's pod, and why. */
export interface MatrixUnreached {
  ip: string
  pod?: string
  node?: string
  disposition: Disposition
  direction: 'request' | 'reply'
}

/** The Service trace from one pod: DELIVERED only when every endpoint the rules send to is reached both ways. */
export interface MatrixServiceCell {
  src: string
  /** the column's id */
  service: string
  disposition: Disposition
  direction?: 'request' | 'reply'
  stoppedAt?: string
  /** endpoints reached both ways, of the `total` kube-proxy's rules send to (0 of 0: no rule sends anywhere) */
  reached: number
  total: number
  unreached: MatrixUnreached[]
  findings: string[]
  nodes: string[]
}

export interface ServiceCounts {
  cells: number
  /** every endpoint reached */
  delivered: number
  /** some endpoints reached, not all */
  partial: number
  /** none reached */
  failed: number
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
  /** with `services`: the Service columns, and row-major endpoints × services */
  services?: MatrixService[]
  serviceCells?: MatrixServiceCell[]
  serviceCounts?: ServiceCounts
}

export interface MatrixOptions {
  allPods?: boolean
  /** a column per Service port too */
  services?: boolean
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

type Outcome = Pick<MatrixCell, 'disposition' | 'direction' | 'stoppedAt' | 'findings' | 'nodes'>

/** A walk's outcome: the request's disposition when it failed, else the reply's; where it stopped; what it crossed. */
function outcomeOf(t: Trace): Outcome {
  const nodes = [...new Set([...t.hops, ...(t.returnPath?.hops ?? [])].map((h) => h.node).filter((n) => n !== ''))]
  const findings = [...new Set(t.findings.map((f) => f.code))]
  if (t.disposition !== 'DELIVERED')
    return {disposition: t.disposition, direction: 'request', ...stopped(t.hops), findings, nodes}
  const back = t.returnPath
  if (back && back.disposition !== 'DELIVERED')
    return {disposition: back.disposition, direction: 'reply', ...stopped(back.hops), findings, nodes}
  return {disposition: 'DELIVERED', findings, nodes}
}

/** One cell from one walk. */
export function cellOf(src: MatrixEndpoint, dst: MatrixEndpoint, t: Trace): MatrixCell {
  return {src: src.id, dst: dst.id, ...outcomeOf(t)}
}

/** The Service columns: every TCP and UDP port of every Service that has a ClusterIP (a headless one has none to walk to). */
export function matrixServices(s: Snapshot): MatrixService[] {
  const out: MatrixService[] = []
  const services = [...(s.services ?? [])].sort((a, b) => cmp(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`))
  for (const svc of services) {
    if (!hasClusterIP(svc)) continue
    for (const p of svc.ports) {
      if (p.protocol !== 'TCP' && p.protocol !== 'UDP') continue
      out.push({
        id: `${svc.namespace}/${svc.name}:${p.port}/${p.protocol}`,
        namespace: svc.namespace,
        name: svc.name,
        clusterIP: svc.clusterIP,
        port: p.port,
        protocol: p.protocol,
        ...(p.name ? {portName: p.name} : {}),
      })
    }
  }
  return out
}

/** A ClusterIP to walk to: an address (headless Services have `None`). */
const hasClusterIP = (svc: InventoryService): boolean => ipaddr.isValid(svc.clusterIP)

/** One Service cell from the Service trace: the trace's outcome, how many endpoints it reached, and the ones it did not. */
export function serviceCellOf(src: MatrixEndpoint, svc: MatrixService, t: Trace): MatrixServiceCell {
  const unreached: MatrixUnreached[] = []
  for (const e of t.endpoints ?? []) {
    if (e.disposition === undefined) continue
    const back = e.returnDisposition ?? 'INSUFFICIENT_INFO'
    if (e.disposition === 'DELIVERED' && back === 'DELIVERED') continue
    unreached.push({
      ip: e.ip,
      ...(e.pod ? {pod: `${e.namespace ? `${e.namespace}/` : ''}${e.pod}`} : {}),
      ...(e.node ? {node: e.node} : {}),
      disposition: e.disposition === 'DELIVERED' ? back : e.disposition,
      direction: e.disposition === 'DELIVERED' ? 'reply' : 'request',
    })
  }
  return {
    src: src.id,
    service: svc.id,
    ...outcomeOf(t),
    reached: t.service?.reached ?? 0,
    total: t.service?.total ?? 0,
    unreached,
  }
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
    ...(opts.services ? serviceColumns(s, endpoints) : {}),
  }
}

/** Walk from every row's pod to every Service port (the port's own protocol; kube-proxy translates no ICMP). */
function serviceColumns(
  s: Snapshot,
  endpoints: MatrixEndpoint[],
): Required<Pick<Matrix, 'services' | 'serviceCells' | 'serviceCounts'>> {
  const services = matrixServices(s)
  const serviceCells: MatrixServiceCell[] = []
  for (const src of endpoints) {
    for (const svc of services) {
      const {trace} = traceSnapshot(s, {
        src: src.id,
        // by its ClusterIP, not svc/NS/NAME: a name from the snapshot is never parsed as DST text
        dst: svc.clusterIP,
        port: svc.port,
        protocol: svc.protocol.toLowerCase() as Protocol,
        size: 84,
        df: false,
      })
      serviceCells.push(serviceCellOf(src, svc, trace))
    }
  }
  return {services, serviceCells, serviceCounts: serviceCountsOf(serviceCells)}
}

/** A cell is partial when the trace failed but reached some endpoints. */
export const isPartial = (c: MatrixServiceCell): boolean => c.disposition !== 'DELIVERED' && c.reached > 0

function serviceCountsOf(cells: readonly MatrixServiceCell[]): ServiceCounts {
  const delivered = cells.filter((c) => c.disposition === 'DELIVERED').length
  const partial = cells.filter(isPartial).length
  return {cells: cells.length, delivered, partial, failed: cells.length - delivered - partial}
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

/** Failing Service cells grouped by Service and cause: the same endpoints unreached the same way, from several pods. */
export interface ServiceFailureGroup {
  service: string
  disposition: Disposition
  direction: 'request' | 'reply'
  stoppedAt?: string
  findings: string[]
  reached: number
  total: number
  unreached: MatrixUnreached[]
  sources: string[]
}

export function serviceFailureGroups(cells: readonly MatrixServiceCell[]): ServiceFailureGroup[] {
  const groups = new Map<string, ServiceFailureGroup>()
  for (const c of cells) {
    if (c.disposition === 'DELIVERED') continue
    const key = [
      c.service,
      c.disposition,
      c.direction,
      c.stoppedAt ?? '',
      c.findings.join(','),
      `${c.reached}/${c.total}`,
      c.unreached.map((u) => `${u.ip} ${u.disposition} ${u.direction}`).join(','),
    ].join('|')
    let g = groups.get(key)
    if (!g) {
      g = {
        service: c.service,
        disposition: c.disposition,
        direction: c.direction ?? 'request',
        ...(c.stoppedAt ? {stoppedAt: c.stoppedAt} : {}),
        findings: c.findings,
        reached: c.reached,
        total: c.total,
        unreached: c.unreached,
        sources: [],
      }
      groups.set(key, g)
    }
    g.sources.push(c.src)
  }
  return [...groups.values()].sort((a, b) => b.sources.length - a.sources.length)
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
  /** with `services`: the Service cells whose disposition, failing way or reached endpoints changed */
  changedServices?: ChangedServiceCell[]
}

export interface ChangedServiceCell {
  src: string
  service: string
  before: MatrixServiceCell
  after: MatrixServiceCell
  changes: ChangedCell['changes']
  /** the Service's own lines that changed (its ports, its endpoints), as netctl diff prints them */
  objects?: SectionDiff
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
  const changesOn = (o: {nodes: string[]}, c: {nodes: string[]}): ChangedCell['changes'] =>
    [...new Set([...o.nodes, ...c.nodes])]
      .filter((n) => byNode.has(n))
      .map((node) => ({node, sections: byNode.get(node)!}))
  const changed: ChangedCell[] = []
  for (const c of b.cells) {
    const o = old.get(`${c.src}\u0000${c.dst}`)
    if (!o || (o.disposition === c.disposition && o.direction === c.direction)) continue
    changed.push({src: c.src, dst: c.dst, before: o, after: c, changes: changesOn(o, c)})
  }
  return {
    cluster: after.cluster.name,
    before: {startedAt: before.startedAt, counts: a.counts},
    after: {startedAt: after.startedAt, counts: b.counts},
    scope: b.scope,
    changed,
    ...(a.serviceCells && b.serviceCells
      ? {
          changedServices: changedServiceCells(a.serviceCells, b.serviceCells, changesOn, (id) =>
            serviceLines(diff.cluster, id),
          ),
        }
      : {}),
  }
}

/** The changed lines of the diff's Services section that are about one Service column's Service. */
function serviceLines(cluster: readonly SectionDiff[], column: string): SectionDiff | undefined {
  const section = cluster.find((c) => c.section === 'services and endpoints')
  if (!section) return undefined
  const name = column.slice(0, column.lastIndexOf(':'))
  const ours = (l: string): boolean => l.startsWith(`service ${name} `)
  const removed = section.removed.filter(ours)
  const added = section.added.filter(ours)
  return removed.length + added.length > 0 ? {section: section.section, removed, added} : undefined
}

/** Service cells of both matrices (a Service added or gone is no cell of either) whose outcome changed. */
function changedServiceCells(
  a: readonly MatrixServiceCell[],
  b: readonly MatrixServiceCell[],
  changesOn: (o: MatrixServiceCell, c: MatrixServiceCell) => ChangedCell['changes'],
  serviceDiff: (column: string) => SectionDiff | undefined,
): ChangedServiceCell[] {
  const old = new Map(a.map((c) => [`${c.src}\u0000${c.service}`, c]))
  const out: ChangedServiceCell[] = []
  for (const c of b) {
    const o = old.get(`${c.src}\u0000${c.service}`)
    if (
      !o ||
      (o.disposition === c.disposition && o.direction === c.direction && o.reached === c.reached && o.total === c.total)
    )
      continue
    const own = serviceDiff(c.service)
    out.push({
      src: c.src,
      service: c.service,
      before: o,
      after: c,
      changes: changesOn(o, c),
      ...(own ? {objects: own} : {}),
    })
  }
  return out
}
