import type {NodeDiff} from './diff.js'
import {routeSlot} from './lines.js'
import type {Daemon, KAddress, KFdb, KLink, KNeigh, KRoute} from './types.js'

/**
 * A node's diff turned into the commands that make it so, in an order that
 * keeps pods connected as long as possible: stop the daemons that go; add the
 * new state (`ip -batch`, `bridge -batch`; a route to the same block and
 * metric is replaced in place); start or reconfigure daemons; then remove the
 * old state. Removing a device takes everything on it, so nothing on a
 * removed device is deleted one by one. Pure.
 */

export interface NodeOps {
  node: string
  stop: Daemon[]
  addIp: string[]
  addBridge: string[]
  start: Daemon[]
  reconfigure: Daemon[]
  removeBridge: string[]
  removeIp: string[]
}

function routeArgs(r: KRoute, withMetric: boolean): string[] {
  const a: string[] = []
  if (r.type === 'blackhole') a.push('blackhole')
  a.push(r.dst)
  if (r.gateway) a.push('via', r.gateway)
  if (r.dev) a.push('dev', r.dev)
  if (r.protocol) a.push('proto', r.protocol)
  if (withMetric && r.metric !== undefined) a.push('metric', String(r.metric))
  if (r.onlink) a.push('onlink')
  return a
}

/** The batch line that adds (or replaces) a route, as nodeOps writes it. */
export function routeAddOp(r: KRoute): string {
  return ['route', 'replace', ...routeArgs(r, true)].join(' ')
}

function addLink(l: KLink): string[] {
  if (l.kind === 'vxlan' && l.vxlan) {
    const v = l.vxlan
    const add = ['link', 'add', l.name, ...(l.mac ? ['address', l.mac] : []), 'type', 'vxlan', 'id', String(v.vni)]
    if (v.local) add.push('local', v.local)
    if (v.dev) add.push('dev', v.dev)
    add.push('dstport', String(v.port))
    if (!v.learning) add.push('nolearning')
    return [add.join(' '), `link set ${l.name} mtu ${l.mtu}`, ...(l.up ? [`link set ${l.name} up`] : [])]
  }
  // tunl0 is the ipip module's fallback device: it exists already, netctl only configures it
  if (l.kind === 'ipip') return [`link set ${l.name} mtu ${l.mtu}`, ...(l.up ? [`link set ${l.name} up`] : [])]
  return []
}

export function nodeOps(diff: NodeDiff, reconfigure: Daemon[] = []): NodeOps {
  const k = diff.kinds
  const links = {add: k.links.add as KLink[], remove: k.links.remove as KLink[]}
  const addedNames = new Set(links.add.map((l) => l.name))
  // devices that go for good; a device removed and added again is recreated before the adds
  const deleted = new Set(links.remove.filter((l) => !addedNames.has(l.name)).map((l) => l.name))
  const recreated = links.remove.filter((l) => addedNames.has(l.name) && l.owner === 'netctl')
  const onDeleted = (dev: string | undefined): boolean => dev !== undefined && deleted.has(dev)

  const addIp: string[] = []
  for (const l of recreated) addIp.push(l.kind === 'ipip' ? `link set ${l.name} down` : `link del ${l.name}`)
  for (const l of links.add) if (l.owner === 'netctl') addIp.push(...addLink(l))
  for (const a of k.addresses.add as KAddress[])
    if (a.owner === 'netctl') addIp.push(`addr replace ${a.cidr} dev ${a.dev}`)
  for (const n of k.neighbours.add as KNeigh[])
    addIp.push(`neigh replace ${n.dst} lladdr ${n.lladdr} dev ${n.dev} nud permanent`)
  const addedRoutes = (k.routes.add as KRoute[]).filter((r) => r.owner === 'netctl')
  for (const r of addedRoutes) addIp.push(routeAddOp(r))
  const addBridge = (k.fdb.add as KFdb[]).map((f) => `fdb replace ${f.mac} dev ${f.dev} dst ${f.dst} self permanent`)

  const taken = new Set(addedRoutes.map(routeSlot))
  const removeBridge = (k.fdb.remove as KFdb[])
    .filter((f) => !onDeleted(f.dev) && !addedNames.has(f.dev))
    .map((f) => `fdb del ${f.mac} dev ${f.dev} dst ${f.dst} self`)
  const removeIp: string[] = []
  for (const n of k.neighbours.remove as KNeigh[])
    if (!onDeleted(n.dev) && !addedNames.has(n.dev)) removeIp.push(`neigh del ${n.dst} dev ${n.dev}`)
  for (const r of k.routes.remove as KRoute[]) {
    // kernel routes go with their address; a replaced route is gone already
    if (
      r.owner === 'kernel' ||
      onDeleted(r.dev) ||
      (r.dev !== undefined && addedNames.has(r.dev)) ||
      taken.has(routeSlot(r))
    )
      continue
    removeIp.push(['route', 'del', ...routeArgs(r, true)].join(' '))
  }
  for (const a of k.addresses.remove as KAddress[])
    if (!onDeleted(a.dev) && !addedNames.has(a.dev) && a.owner === 'netctl')
      removeIp.push(`addr del ${a.cidr} dev ${a.dev}`)
  for (const l of links.remove) {
    if (!deleted.has(l.name)) continue
    // tunl0 cannot be deleted (the module's fallback device): it is taken down and emptied
    if (l.kind === 'ipip') removeIp.push(`link set ${l.name} down`)
    else removeIp.push(`link del ${l.name}`)
  }
  return {
    node: diff.node,
    stop: diff.daemons.stop,
    addIp,
    addBridge,
    start: diff.daemons.start,
    reconfigure,
    removeBridge,
    removeIp,
  }
}

export function opsEmpty(o: NodeOps): boolean {
  return (
    o.stop.length +
      o.addIp.length +
      o.addBridge.length +
      o.start.length +
      o.reconfigure.length +
      o.removeBridge.length +
      o.removeIp.length ===
    0
  )
}
