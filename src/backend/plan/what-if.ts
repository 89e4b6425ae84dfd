/**
 * The what-if of a backend switch: the plan's per-node kernel diff applied to
 * the snapshot (no node touched), and the reachability matrix before and
 * after. Pure: a function from a snapshot and a plan to a snapshot.
 *
 * The kernel's own rules are applied as it would: a device removed takes its
 * addresses, routes, neighbours and FDB entries along; a route through a
 * gateway that is not on a connected subnet of its device (and not onlink) is
 * refused, as `ip route add` refuses it (host-gw across a router).
 *
 * MTU: pods keep their eth0 MTU until they are recreated (the plan rewrites
 * subnet.env / the CNI config for new pods only), while the new tunnel device
 * gets underlay − overhead at once. Every pair is walked a second time with a
 * full-size packet (the source pod's MTU, DF set) before and after: a pair
 * whose full-size packets got through and would then die is a predicted break.
 */
import {makeFinding} from '../../analyze/catalogue/index.js'
import {cidrContainsAddress, parseCidr} from '../../analyze/ip.js'
import {
  cellOf,
  type Matrix,
  type MatrixCell,
  type MatrixDiff,
  matrixDiffOf,
  matrixEndpoints,
  reachabilityMatrix,
} from '../../analyze/matrix.js'
import {traceSnapshot} from '../../analyze/trace/index.js'
import {udpDaemon} from '../../analyze/trace/udp.js'
import type {Finding} from '../../model/finding.js'
import type {Address, FdbEntry, Link, Neighbour, NodeState, Process, Route} from '../../model/node-state.js'
import type {Snapshot} from '../../model/snapshot.js'
import {routeLine} from './lines.js'
import {routeAddOp} from './ops.js'
import type {BackendPlan} from './plan.js'
import type {KAddress, KFdb, KLink, KNeigh, KRoute} from './types.js'

export interface WhatIf {
  /** per node, the routes the kernel would refuse, as `ip route add` lines with the reason, and the batch line netctl runs */
  refused: Array<{node: string; route: string; why: string; op: string}>
  /** per node, the same routes as `ip route` prints them (what verification of a forced switch expects missing) */
  refusedRoutes: Record<string, string[]>
  matrix: MatrixDiff
  mtu: MtuPrediction
}

/** A pair whose full-size packets (the source pod's MTU, DF set) get through now and would die after the switch. */
export interface MtuBreak {
  src: string
  dst: string
  /** bytes of the IP packet: the source pod's eth0 MTU */
  size: number
  after: MatrixCell
  /** the device that refuses it, and its MTU after the switch */
  dev?: string
  mtu?: number
}

export interface MtuPrediction {
  broken: MtuBreak[]
  /** one per source pod whose full-size packets would die, with the fix */
  findings: Finding[]
}

const routeIdentity = (r: {dst: string; type?: string; gateway?: string; dev?: string}): string =>
  `${r.type ?? 'unicast'} ${r.dst} ${r.gateway ?? ''} ${r.dev ?? ''}`

function modelLink(k: KLink, ifindex: number): Link {
  return {
    ifindex,
    name: k.name,
    kind: k.kind,
    mtu: k.mtu,
    ...(k.mac ? {mac: k.mac} : {}),
    operstate: k.up ? 'UNKNOWN' : 'DOWN',
    adminUp: k.up,
    flags: k.up ? ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'] : ['BROADCAST', 'MULTICAST'],
    ...(k.vxlan ? {vxlan: {...k.vxlan}} : {}),
    ...(k.kind === 'tun' ? {tun: {type: 'tun', pi: false}} : {}),
  }
}

function modelAddress(k: KAddress): Address {
  const [local, len] = k.cidr.split('/')
  return {dev: k.dev, family: 'inet', local: local!, prefixlen: Number(len ?? 32), scope: 'global'}
}

function modelRoute(k: KRoute): Route {
  return {
    family: 'inet',
    table: 'main',
    type: k.type,
    dst: parseCidr(k.dst) ? k.dst : `${k.dst}/32`,
    ...(k.gateway ? {gateway: k.gateway} : {}),
    ...(k.dev ? {dev: k.dev} : {}),
    ...(k.protocol ? {protocol: k.protocol} : {}),
    ...(k.scope ? {scope: k.scope} : {}),
    ...(k.src ? {prefsrc: k.src} : {}),
    ...(k.metric !== undefined ? {metric: k.metric} : {}),
    onlink: k.onlink,
    flags: [],
  }
}

const modelNeigh = (k: KNeigh): Neighbour => ({dst: k.dst, dev: k.dev, lladdr: k.lladdr, state: ['PERMANENT']})
const modelFdb = (k: KFdb): FdbEntry => ({
  mac: k.mac,
  dev: k.dev,
  dst: k.dst,
  self: true,
  permanent: true,
  static: false,
})

/** Why the kernel would refuse this route on this state, if it would. */
function refusal(state: NodeState, r: Route): string | undefined {
  if (!r.gateway || r.onlink || !r.dev) return undefined
  const connected = state.addresses
    .filter((a) => a.dev === r.dev && a.family === 'inet')
    .some((a) => cidrContainsAddress(`${a.local}/${a.prefixlen}`, r.gateway!))
  return connected ? undefined : `Nexthop has invalid gateway: ${r.gateway} is on no subnet of ${r.dev}`
}

/**
 * The node's processes once the plan's daemons are stopped and started. Only
 * flannel udp's daemon is read by the walk (it carries flannel0's packets): a
 * started one stands in with pid 0 (a prediction, not a process); a stopped
 * one is netctl's lab forwarder (a cluster's flanneld keeps running as the
 * agent of the next backend).
 */
function applyDaemons(processes: Process[], daemons: BackendPlan['nodes'][number]['daemons']): Process[] {
  let out = processes
  if (daemons.stop.includes('flannel-udp'))
    out = out.filter((p) => !(udpDaemon([p]) !== undefined && p.name !== 'flanneld'))
  if (daemons.start.includes('flannel-udp') && !udpDaemon(out))
    out = [...out, {pid: 0, name: 'flanneld', args: 'the flannel udp daemon the switch starts (what-if)'}]
  return out
}

/** One node's state with its plan applied. */
function applyNode(state: NodeState, plan: BackendPlan['nodes'][number], refused: WhatIf['refused']): NodeState {
  const diff = plan.diff
  if (!diff) return state
  const k = diff.kinds
  const goneLinks = new Set((k.links.remove as KLink[]).map((l) => l.name))
  const onGone = (dev: string | undefined): boolean => dev !== undefined && goneLinks.has(dev)
  const rmAddr = new Set((k.addresses.remove as KAddress[]).map((a) => `${a.dev} ${a.cidr}`))
  const rmRoute = new Set((k.routes.remove as KRoute[]).map(routeIdentity))
  const rmNeigh = new Set((k.neighbours.remove as KNeigh[]).map((n) => `${n.dst} ${n.dev}`))
  const rmFdb = new Set((k.fdb.remove as KFdb[]).map((f) => `${f.mac} ${f.dev} ${f.dst}`))
  let ifindex = Math.max(0, ...state.links.map((l) => l.ifindex))
  const next: NodeState = {
    ...state,
    processes: applyDaemons(state.processes, plan.daemons),
    links: [
      ...state.links.filter((l) => !goneLinks.has(l.name)),
      ...(k.links.add as KLink[]).map((l) => modelLink(l, ++ifindex)),
    ],
    addresses: [
      ...state.addresses.filter((a) => !onGone(a.dev) && !rmAddr.has(`${a.dev} ${a.local}/${a.prefixlen}`)),
      ...(k.addresses.add as KAddress[]).map(modelAddress),
    ],
    routes: state.routes.filter((r) => {
      const gw = r.gateway ?? r.nexthops?.[0]?.gateway
      const dev = r.dev ?? r.nexthops?.[0]?.dev
      return (
        !onGone(dev) &&
        !(
          r.table === 'main' &&
          rmRoute.has(routeIdentity({dst: r.dst, type: r.type, ...(gw ? {gateway: gw} : {}), ...(dev ? {dev} : {})}))
        )
      )
    }),
    neighbours: [
      ...state.neighbours.filter((n) => !onGone(n.dev) && !rmNeigh.has(`${n.dst} ${n.dev}`)),
      ...(k.neighbours.add as KNeigh[]).map(modelNeigh),
    ],
    fdb: [
      ...state.fdb.filter((f) => !onGone(f.dev) && !rmFdb.has(`${f.mac} ${f.dev} ${f.dst ?? ''}`)),
      ...(k.fdb.add as KFdb[]).map(modelFdb),
    ],
  }
  // routes last: the kernel checks each against the addresses the node has by then
  for (const kr of k.routes.add as KRoute[]) {
    const r = modelRoute(kr)
    const why = refusal(next, r)
    if (why) refused.push({node: state.node, route: `ip route add ${routeLine(kr)}`, why, op: routeAddOp(kr)})
    else next.routes.push(r)
  }
  return next
}

/** Per node, the refused routes as `ip route` prints them. */
function refusedRoutesOf(plan: BackendPlan, refused: WhatIf['refused']): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const n of plan.nodes) {
    const ops = new Set(refused.filter((r) => r.node === n.node).map((r) => r.op))
    const lines = ((n.diff?.kinds.routes.add ?? []) as KRoute[]).filter((r) => ops.has(routeAddOp(r))).map(routeLine)
    if (lines.length > 0) out[n.node] = lines
  }
  return out
}

/** The snapshot as it would be after the plan, and the refused routes. */
export function applyPlan(snapshot: Snapshot, plan: BackendPlan): {snapshot: Snapshot; refused: WhatIf['refused']} {
  const refused: WhatIf['refused'] = []
  const nodeStates: Record<string, NodeState> = {}
  for (const [name, state] of Object.entries(snapshot.nodeStates)) {
    const p = plan.nodes.find((n) => n.node === name)
    nodeStates[name] = p ? applyNode(state, p, refused) : state
  }
  return {snapshot: {...snapshot, cluster: {...snapshot.cluster, backend: plan.to}, nodeStates}, refused}
}

/** Each pod's eth0 MTU, by NAMESPACE/NAME. */
function podMTUs(s: Snapshot): Map<string, number> {
  const out = new Map<string, number>()
  for (const state of Object.values(s.nodeStates))
    for (const p of state.pods) {
      const mtu = p.links.find((l) => l.name === 'eth0')?.mtu
      if (mtu) out.set(`${p.namespace}/${p.name}`, mtu)
    }
  return out
}

/** The walk of a full-size ping (the source pod's MTU, DF set) from src to dst, as a matrix cell. */
function fullSizeCell(s: Snapshot, src: Matrix['endpoints'][number], dst: Matrix['endpoints'][number], size: number) {
  const {trace} = traceSnapshot(s, {src: src.id, dst: dst.id, protocol: 'icmp', size, df: true})
  const cell = cellOf(src, dst, trace)
  const path = cell.direction === 'reply' ? trace.returnPath?.hops : trace.hops
  return {cell, drop: path?.at(-1)}
}

/**
 * The pairs whose full-size packets get through before and die after (small
 * packets still delivered: those are the matrix's). Pods keep their MTU: the
 * snapshot after the plan has the pods' links as they were.
 */
function mtuPrediction(before: Snapshot, after: Snapshot, matrixAfter: Matrix): MtuPrediction {
  const mtus = podMTUs(before)
  const small = new Map(matrixAfter.cells.map((c) => [`${c.src}\u0000${c.dst}`, c]))
  const broken: MtuBreak[] = []
  const endpoints = matrixEndpoints(after)
  for (const src of endpoints) {
    const size = mtus.get(src.id)
    if (!size) continue
    for (const dst of endpoints) {
      if (src === dst || small.get(`${src.id}\u0000${dst.id}`)?.disposition !== 'DELIVERED') continue
      const now = fullSizeCell(before, src, dst, size)
      if (now.cell.disposition !== 'DELIVERED') continue
      const then = fullSizeCell(after, src, dst, size)
      if (then.cell.disposition !== 'MTU_EXCEEDED') continue
      const dev = then.drop?.out
      const link = dev ? after.nodeStates[then.drop!.node]?.links.find((l) => l.name === dev) : undefined
      broken.push({
        src: src.id,
        dst: dst.id,
        size,
        after: then.cell,
        ...(dev ? {dev: `${dev} on ${then.drop!.node}`} : {}),
        ...(link ? {mtu: link.mtu} : {}),
      })
    }
  }
  const bySrc = new Map<string, MtuBreak[]>()
  for (const b of broken) bySrc.set(b.src, [...(bySrc.get(b.src) ?? []), b])
  const findings = [...bySrc.entries()].map(([src, bs]) => {
    const fits = Math.min(...bs.map((b) => b.mtu ?? b.size))
    const node = endpoints.find((e) => e.id === src)!.node
    const where = [...new Set(bs.map((b) => b.dev).filter((d): d is string => d !== undefined))]
    return makeFinding('MTU_MISMATCH', {
      severity: 'error',
      node,
      subject: `eth0 in ${src}`,
      message: `after the switch, ${src} keeps eth0 mtu ${bs[0]!.size} (pods keep their MTU until recreated) but the path takes ${fits} at ${where.join(', ') || 'the tunnel'}: its full-size packets with DF set die towards ${bs.length} pod(s)`,
      evidence: bs.map(
        (b) =>
          `${b.src} -> ${b.dst}: ${b.size} bytes, DF: ${b.after.disposition}${b.dev ? ` at ${b.dev} (mtu ${b.mtu ?? '?'})` : ''}`,
      ),
      vars: {dev: 'eth0', mtu: fits},
    })
  })
  return {broken, findings}
}

/** The matrix before → after the plan: only the pairs that change, with the state that changes them; and the full-size packets it would kill. */
export function whatIf(snapshot: Snapshot, plan: BackendPlan): WhatIf {
  const {snapshot: after, refused} = applyPlan(snapshot, plan)
  const matrixAfter = reachabilityMatrix(after)
  return {
    refused,
    refusedRoutes: refusedRoutesOf(plan, refused),
    matrix: matrixDiffOf(snapshot, after, reachabilityMatrix(snapshot), matrixAfter),
    mtu: mtuPrediction(snapshot, after, matrixAfter),
  }
}
