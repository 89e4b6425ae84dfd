/**
 * The what-if of a backend switch: the plan's per-node kernel diff applied to
 * the snapshot (no node touched), and the reachability matrix before and
 * after. Pure: a function from a snapshot and a plan to a snapshot.
 *
 * The kernel's own rules are applied as it would: a device removed takes its
 * addresses, routes, neighbours and FDB entries along; a route through a
 * gateway that is not on a connected subnet of its device (and not onlink) is
 * refused, as `ip route add` refuses it (host-gw across a router).
 */
import {cidrContainsAddress, parseCidr} from '../../analyze/ip.js'
import {type MatrixDiff, matrixDiffOf, reachabilityMatrix} from '../../analyze/matrix.js'
import type {Address, FdbEntry, Link, Neighbour, NodeState, Route} from '../../model/node-state.js'
import type {Snapshot} from '../../model/snapshot.js'
import {routeLine} from './lines.js'
import type {BackendPlan} from './plan.js'
import type {KAddress, KFdb, KLink, KNeigh, KRoute} from './types.js'

export interface WhatIf {
  /** per node, the routes the kernel would refuse, as `ip route add` lines with the reason */
  refused: Array<{node: string; route: string; why: string}>
  matrix: MatrixDiff
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
    if (why) refused.push({node: state.node, route: `ip route add ${routeLine(kr)}`, why})
    else next.routes.push(r)
  }
  return next
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

/** The matrix before → after the plan: only the pairs that change, with the state that changes them. */
export function whatIf(snapshot: Snapshot, plan: BackendPlan): WhatIf {
  const {snapshot: after, refused} = applyPlan(snapshot, plan)
  return {refused, matrix: matrixDiffOf(snapshot, after, reachabilityMatrix(snapshot), reachabilityMatrix(after))}
}
