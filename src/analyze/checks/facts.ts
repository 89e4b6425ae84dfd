/**
 * A node's cluster facts: what the checks of OTHER nodes read of its state, kept while a streamed
 * run (run.ts runChecksStreamed) drops the rest. A node holds a route, a neighbour and an FDB entry
 * per peer (~3N entries), and that is what is dropped; what stays does not grow with the cluster:
 * its links (VTEP MACs, MTUs, VNIs, ports), addresses (its uplink's subnets), sysctls, firewall
 * rules, pods, BIRD's sessions, subnet.env, sections, and of its routes only those a peer asks about
 * — Calico's blackhole routes for its own blocks (its pod subnets) and, on tunnel backends, the
 * routes not through the tunnel (where a packet back to a peer's pods may leave by the uplink:
 * native.ts arrivalFrom).
 */
import type {NodeState, Route} from '../../model/node-state.js'
import type {BackendProfile} from './backend.js'

/**
 * The facts of one node's state. Without a profile (a backend the snapshot does not name, settled
 * by a vote over the states) every main-table route is kept, as with Calico's CrossSubnet (a peer
 * on the same subnet is reached natively, and which is first matters).
 */
export function clusterFacts(state: NodeState, profile: BackendProfile | undefined): NodeState {
  return {
    ...state,
    routes: factRoutes(state.routes, profile),
    neighbours: [],
    fdb: [],
    ...(state.bird ? {bird: {sessions: state.bird.sessions, routes: []}} : {}),
  }
}

function factRoutes(routes: Route[], profile: BackendProfile | undefined): Route[] {
  const main = routes.filter((r) => r.family === 'inet' && r.table === 'main')
  if (!profile || profile.crossSubnet) return main
  const tunnel = profile.tunnel?.dev
  if (!tunnel) return main.filter((r) => r.type === 'blackhole')
  // a subnet whose first route goes through the tunnel reads as "through the tunnel" with or without it
  const throughTunnel = new Set<string>()
  const seen = new Set<string>()
  for (const r of main) {
    if (seen.has(r.dst)) continue
    seen.add(r.dst)
    if (r.dev === tunnel) throughTunnel.add(r.dst)
  }
  return main.filter((r) => r.type === 'blackhole' || !throughTunnel.has(r.dst))
}

/** Entries a state holds per peer (routes, neighbours, FDB entries): what the facts must not grow with. */
export const peerEntries = (s: NodeState): number => s.routes.length + s.neighbours.length + s.fdb.length
