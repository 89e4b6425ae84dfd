import {cidrWithin} from '../../analyze/ip.js'
import type {NodeState, Route} from '../../model/node-state.js'
import {TUNNEL_DEVICE_NAMES, TUNNEL_DEVICES} from './profiles.js'
import {
  type ClusterFacts,
  type Daemon,
  type KLink,
  type KRoute,
  type NodeDesired,
  type NodeFacts,
  type Owner,
} from './types.js'

/**
 * The part of a node's collected state that belongs to an overlay backend:
 * its tunnel devices and everything on them, and the routes to pod blocks
 * (not the node's own bridge route, not the /32 routes to local pods). This
 * is what a switch removes or keeps, and what a rollback restores. Pure.
 */

/** tunl0 exists in every namespace once the ipip module is loaded; it is Calico's only when it is up. */
function ownedLink(name: string, adminUp: boolean): boolean {
  if (!TUNNEL_DEVICE_NAMES.has(name)) return false
  return name !== TUNNEL_DEVICES.calicoIpip || adminUp
}

function linkOwner(name: string): Owner {
  return name === TUNNEL_DEVICES.flannelUdp ? 'flannel-udp' : 'netctl'
}

function routeOwner(r: Route): Owner {
  if (r.protocol === 'kernel') return 'kernel'
  if (r.protocol === 'bird') return 'bird'
  return 'netctl'
}

/** A route that belongs to the backend: on one of its devices, or to a pod block that is not a local pod or the node's bridge. */
function ownedRoute(r: Route, facts: ClusterFacts, devices: Set<string>): boolean {
  if (r.family !== 'inet' || r.table !== 'main') return false
  if (r.type !== 'unicast' && r.type !== 'blackhole') return false
  if (r.dev !== undefined && devices.has(r.dev)) return true
  if (r.nexthops?.some((h) => h.dev !== undefined && devices.has(h.dev))) return true
  if (!cidrWithin(r.dst, facts.clusterCIDR)) return false
  // connected routes (cni0) and the /32 scope-link routes to local pods (cali*) belong to the CNI plugin
  if (r.protocol === 'kernel') return false
  if (r.scope === 'link' && r.gateway === undefined) return false
  return true
}

export function ownedState(state: NodeState, facts: ClusterFacts): NodeDesired {
  const devices = new Set(state.links.filter((l) => ownedLink(l.name, l.adminUp)).map((l) => l.name))
  const links: KLink[] = state.links
    .filter((l) => devices.has(l.name))
    .map((l) => {
      const kind = l.kind === 'vxlan' || l.kind === 'tun' || l.kind === 'ipip' ? l.kind : 'vxlan'
      const link: KLink = {name: l.name, kind, mtu: l.mtu, up: l.adminUp, owner: linkOwner(l.name)}
      if (l.kind === 'vxlan' && l.mac) link.mac = l.mac
      if (l.vxlan) {
        link.vxlan = {vni: l.vxlan.vni, port: l.vxlan.port, learning: l.vxlan.learning}
        if (l.vxlan.local) link.vxlan.local = l.vxlan.local
        if (l.vxlan.dev) link.vxlan.dev = l.vxlan.dev
      }
      return link
    })
  const routes: KRoute[] = state.routes
    .filter((r) => ownedRoute(r, facts, devices))
    .map((r) => {
      const k: KRoute = {
        dst: r.dst,
        type: r.type === 'blackhole' ? 'blackhole' : 'unicast',
        onlink: r.onlink,
        owner: routeOwner(r),
      }
      const gw = r.gateway ?? r.nexthops?.[0]?.gateway
      const dev = r.dev ?? r.nexthops?.[0]?.dev
      if (gw) k.gateway = gw
      if (dev) k.dev = dev
      if (r.protocol && r.protocol !== 'boot') k.protocol = r.protocol
      if (r.protocol === 'kernel' && r.scope) k.scope = r.scope
      if (r.protocol === 'kernel' && r.prefsrc) k.src = r.prefsrc
      if (r.metric !== undefined && r.metric !== 0) k.metric = r.metric
      return k
    })
  return {
    node: state.node,
    links,
    addresses: state.addresses
      .filter((a) => a.family === 'inet' && devices.has(a.dev))
      .map((a) => ({dev: a.dev, cidr: `${a.local}/${a.prefixlen}`, owner: linkOwner(a.dev)})),
    routes,
    neighbours: state.neighbours
      .filter((n) => devices.has(n.dev) && n.state.includes('PERMANENT') && n.lladdr)
      .map((n) => ({dst: n.dst, dev: n.dev, lladdr: n.lladdr!, owner: 'netctl'})),
    fdb: state.fdb
      .filter((f) => devices.has(f.dev) && f.dst !== undefined && f.mac !== '00:00:00:00:00:00')
      .map((f) => ({mac: f.mac, dev: f.dev, dst: f.dst!, owner: 'netctl'})),
    daemons: runningDaemons(state),
  }
}

/** Backend daemons running in the node's namespace, as the probe saw its processes. */
export function runningDaemons(state: NodeState): Daemon[] {
  const out: Daemon[] = []
  if (state.processes.some((p) => p.name === 'bird' || /^bird\b/.test(p.args))) out.push('bird')
  if (state.processes.some((p) => p.name.startsWith('netctl-udp-for') || /netctl-udp-forwarder/.test(p.args)))
    out.push('flannel-udp')
  return out
}

/** How a node reaches one peer's pod block, named by the backend whose signature the route carries. */
export type RouteVia =
  | 'flannel-vxlan'
  | 'flannel-host-gw'
  | 'flannel-udp'
  | 'calico-bgp'
  | 'calico-vxlan'
  | 'calico-direct'
  | 'calico-ipip'
  | 'none'
  | 'other'

/** Classify the route a node uses for a peer's block (longest prefix among the owned routes). */
export function routeVia(owned: NodeDesired, node: NodeFacts, peer: NodeFacts): {via: RouteVia; route?: KRoute} {
  const candidates = owned.routes.filter((r) => r.type === 'unicast' && cidrWithin(peer.podCIDR, r.dst))
  candidates.sort(
    (a, b) => Number(b.dst.split('/')[1]) - Number(a.dst.split('/')[1]) || (a.metric ?? 0) - (b.metric ?? 0),
  )
  const route = candidates[0]
  if (!route) return {via: 'none'}
  const via = ((): RouteVia => {
    if (route.dev === TUNNEL_DEVICES.flannelVxlan) return 'flannel-vxlan'
    if (route.dev === TUNNEL_DEVICES.flannelUdp) return 'flannel-udp'
    if (route.dev === TUNNEL_DEVICES.calicoVxlan) return 'calico-vxlan'
    if (route.dev === TUNNEL_DEVICES.calicoIpip) return 'calico-ipip'
    if (route.gateway === peer.ip && route.dev === node.uplink) {
      if (route.protocol === 'bird') return 'calico-bgp'
      if (route.protocol === '80') return 'calico-direct'
      return 'flannel-host-gw'
    }
    return 'other'
  })()
  return {via, route}
}
