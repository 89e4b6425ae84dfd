import type {KAddress, KFdb, KLink, Kind, KNeigh, KRoute, NodeKernel} from './types.js'

/**
 * Kernel items as iproute2 prints them (`ip route`, `ip neigh`, `bridge fdb`,
 * `ip -d link`, `ip addr`), and the identity two items are compared by. Pure.
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

export function routeLine(r: KRoute): string {
  const parts: string[] = []
  if (r.type === 'blackhole') parts.push('blackhole')
  parts.push(r.dst)
  if (r.gateway) parts.push('via', r.gateway)
  if (r.dev) parts.push('dev', r.dev)
  if (r.protocol) parts.push('proto', r.protocol)
  if (r.scope) parts.push('scope', r.scope)
  if (r.src) parts.push('src', r.src)
  if (r.metric !== undefined) parts.push('metric', String(r.metric))
  if (r.onlink) parts.push('onlink')
  return parts.join(' ')
}

export function neighLine(n: KNeigh): string {
  return `${n.dst} dev ${n.dev} lladdr ${n.lladdr} PERMANENT`
}

export function fdbLine(f: KFdb): string {
  return `${f.mac} dev ${f.dev} dst ${f.dst} self permanent`
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
