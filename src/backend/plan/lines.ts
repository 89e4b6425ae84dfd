import {fdbLine as bridgeFdbLine, formatNeighbour, formatRoute} from '../../analyze/iproute2.js'
import type {Route} from '../../model/node-state.js'
import type {KAddress, KFdb, KLink, Kind, KNeigh, KRoute, NodeKernel} from './types.js'

/**
 * Kernel items as iproute2 prints them (`ip route`, `ip neigh`, `bridge fdb`
 * through src/analyze/iproute2.ts; a short `ip -d link` and `ip addr` form of
 * the backend's own devices), and the identity two items are compared by. Pure.
 */

export function linkLine(l: KLink): string {
  const parts = [`${l.name}:`, 'mtu', String(l.mtu), l.up ? 'up' : 'down']
  if (l.mac) parts.push('link/ether', l.mac)
  parts.push(l.kind)
  if (l.vxlan) {
    parts.push('id', String(l.vxlan.vni))
    if (l.vxlan.local) parts.push('local', l.vxlan.local)
    if (l.vxlan.dev) parts.push('dev', l.vxlan.dev)
    parts.push('dstport', String(l.vxlan.port))
    if (!l.vxlan.learning) parts.push('nolearning')
  }
  return parts.join(' ')
}

export function addressLine(a: KAddress): string {
  return `inet ${a.cidr} scope global ${a.dev}`
}

/** A route as `ip route` prints it (src/analyze/iproute2.ts): the kernel's own form, metric 0 and proto boot left out. */
export function routeLine(r: KRoute): string {
  const route: Route = {
    family: r.dst.includes(':') ? 'inet6' : 'inet',
    table: 'main',
    type: r.type,
    dst: r.dst,
    ...(r.gateway ? {gateway: r.gateway} : {}),
    ...(r.dev ? {dev: r.dev} : {}),
    ...(r.protocol ? {protocol: r.protocol} : {}),
    ...(r.scope ? {scope: r.scope} : {}),
    ...(r.src ? {prefsrc: r.src} : {}),
    ...(r.metric !== undefined ? {metric: r.metric} : {}),
    onlink: r.onlink,
    flags: [],
  }
  return formatRoute(route, {table: false})
}

export function neighLine(n: KNeigh): string {
  return formatNeighbour({dst: n.dst, dev: n.dev, lladdr: n.lladdr, state: ['PERMANENT']})
}

/** A vxlan device's `self permanent` entry, as `bridge fdb` prints it. */
export function fdbLine(f: KFdb): string {
  return bridgeFdbLine({mac: f.mac, dev: f.dev, dst: f.dst, self: true, permanent: true, static: false})
}

/** Identity of a route: everything but the metric (BIRD chooses its own) and the owner. */
export function routeKey(r: KRoute): string {
  return routeLine({...r, metric: undefined, owner: 'netctl'} as KRoute)
}

/** The kernel's own identity of a route in a table: two routes with the same one cannot coexist. */
export function routeSlot(r: KRoute): string {
  return `${r.dst} metric ${r.metric ?? 0}`
}

export type AnyItem = KLink | KAddress | KRoute | KNeigh | KFdb

export function lineOf(kind: Kind, item: AnyItem): string {
  switch (kind) {
    case 'links':
      return linkLine(item as KLink)
    case 'addresses':
      return addressLine(item as KAddress)
    case 'routes':
      return routeLine(item as KRoute)
    case 'neighbours':
      return neighLine(item as KNeigh)
    case 'fdb':
      return fdbLine(item as KFdb)
  }
}

export function keyOf(kind: Kind, item: AnyItem): string {
  return kind === 'routes' ? routeKey(item as KRoute) : lineOf(kind, item)
}

/** Every item of a node as printed lines, per kind. */
export function kernelLines(k: NodeKernel): Record<Kind, string[]> {
  return {
    links: k.links.map(linkLine),
    addresses: k.addresses.map(addressLine),
    routes: k.routes.map(routeLine),
    neighbours: k.neighbours.map(neighLine),
    fdb: k.fdb.map(fdbLine),
  }
}
