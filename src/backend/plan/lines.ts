import {
  addrLine,
  fdbLine as bridgeFdbLine,
  formatNeighbour,
  formatRoute,
  linkLine as ipLinkLine,
} from '../../analyze/iproute2.js'
import type {Route} from '../../model/node-state.js'
import type {KAddress, KFdb, Kind, KLink, KNeigh, KRoute, NodeKernel} from './types.js'

/**
 * Kernel items as iproute2 prints them, through the one printer
 * (src/analyze/iproute2.ts): `ip -d -o link`, `ip -o addr`, `ip route`, `ip
 * neigh`, `bridge fdb`; and the identity two items are compared by. Pure.
 */

/**
 * The link flags the kernel gives a device of each kind, as `ip link` prints
 * them: the ones a backend's devices always carry, with UP and LOWER_UP when
 * it is up. Such devices have no carrier of their own: up, their state is UNKNOWN.
 */
const KIND_FLAGS: Record<KLink['kind'], string[]> = {
  vxlan: ['BROADCAST', 'MULTICAST'],
  tun: ['POINTOPOINT', 'MULTICAST', 'NOARP'],
  ipip: ['NOARP'],
}

/** `ip -d -o link` of a backend's device, without the index (the kernel gives it one when it is made). */
export function linkLine(l: KLink): string {
  return ipLinkLine({
    name: l.name,
    kind: l.kind,
    mtu: l.mtu,
    ...(l.mac ? {mac: l.mac} : {}),
    flags: [...KIND_FLAGS[l.kind], ...(l.up ? ['UP', 'LOWER_UP'] : [])],
    operstate: l.up ? 'UNKNOWN' : 'DOWN',
    ...(l.vxlan ? {vxlan: l.vxlan} : {}),
  })
}

/** `ip -o -4 addr` of an address a backend puts on its device, without the index. */
export function addressLine(a: KAddress): string {
  const [local, len] = a.cidr.split('/')
  return addrLine({dev: a.dev, family: 'inet', local: local!, prefixlen: Number(len ?? 32), scope: 'global'})
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
