import type {Link, Route} from '../../model/node-state.js'
import {numberToIPv4, parseCidr, parseIp, parsePrefixUncached} from '../ip.js'
import type {Place, SnapshotIndex} from './place.js'

/**
 * The other end of a veth pair. A pod's eth0 names its peer's ifindex in the
 * node's namespace; the node's end names the pod end's ifindex, which is the
 * same (2) in every pod, so from the node the pod is found by the pod end's
 * peer ifindex. Where the indexes do not tie up, a /32 route to the pod's
 * address on the device (Calico) or the bridge FDB entry of the pod's MAC on
 * the port (the bridge plugin) names the pairing.
 */
export interface VethPeer {
  place: Place
  dev: string
  /** how the pairing was found */
  how: 'ifindex' | 'route' | 'fdb'
}

function podAddresses(place: Place): string[] {
  return (place.pod?.addresses ?? []).filter((a) => a.family === 'inet' && a.scope !== 'host').map((a) => a.local)
}

/**
 * per routing table read (keyed by the array: a state given new routes is worked out again), the
 * device of the first main-table /32 route to each address: parsed once, not per hop
 */
const hostRoutes = new WeakMap<Route[], Map<string, string>>()

function hostRouteDev(host: Place, ip: string): string | undefined {
  const t = parseIp(ip)?.text
  if (t === undefined) return undefined
  let devs = hostRoutes.get(host.state.routes)
  if (!devs) {
    devs = new Map()
    for (const r of host.state.routes) {
      if (r.table !== 'main' || !r.dev) continue
      // IPv4 as numbers first: only the /32s need their text (every peer's subnet is a route here)
      const p = parsePrefixUncached(r.dst)
      if (p) {
        if (p.len === 32 && !devs.has(numberToIPv4(p.net))) devs.set(numberToIPv4(p.net), r.dev)
        continue
      }
      const c = parseCidr(r.dst)
      if (c?.len === 32 && !devs.has(c.ip.text)) devs.set(c.ip.text, r.dev)
    }
    hostRoutes.set(host.state.routes, devs)
  }
  return devs.get(t)
}

/** From a pod's veth end to its node. */
function fromPod(index: SnapshotIndex, place: Place, link: Link): VethPeer | undefined {
  const host = index.host(place.node)
  if (!host) return undefined
  const byIndex = host.state.links.find((l) => l.kind === 'veth' && l.ifindex === link.peerIfindex)
  if (byIndex) return {place: host, dev: byIndex.name, how: 'ifindex'}
  for (const ip of podAddresses(place)) {
    const dev = hostRouteDev(host, ip)
    if (dev && host.links.get(dev)?.kind === 'veth') return {place: host, dev, how: 'route'}
  }
  const learnt = link.mac ? host.state.fdb.find((e) => e.master && !e.self && e.mac === link.mac) : undefined
  return learnt ? {place: host, dev: learnt.dev, how: 'fdb'} : undefined
}

/** From a node's veth to the pod behind it; undefined for the node's own uplink. */
function fromHost(index: SnapshotIndex, place: Place, link: Link): VethPeer | undefined {
  const pods = place.state.pods.map((p) => index.podPlace(p, place.node)).filter((p): p is Place => !!p)
  for (const pod of pods) {
    const end = pod.pod?.links.find((l) => l.kind === 'veth' && l.peerIfindex === link.ifindex)
    if (end) return {place: pod, dev: end.name, how: 'ifindex'}
  }
  for (const pod of pods) {
    if (podAddresses(pod).some((ip) => hostRouteDev(place, ip) === link.name)) {
      const end = pod.pod?.links.find((l) => l.kind === 'veth')
      if (end) return {place: pod, dev: end.name, how: 'route'}
    }
  }
  const learnt = place.state.fdb.filter((e) => e.dev === link.name && e.master && !e.permanent).map((e) => e.mac)
  for (const pod of pods) {
    const end = pod.pod?.links.find((l) => l.kind === 'veth' && l.mac && learnt.includes(l.mac))
    if (end) return {place: pod, dev: end.name, how: 'fdb'}
  }
  return undefined
}

/**
 * The walk needs the pod behind this node veth and vethPeer found none: it may be a pod whose
 * namespace was not read (a live trace reads only the pods it needs), so every unread pod of the
 * node is wanted. A veth holding an address of the node is its own uplink (a lab node's), no pod's.
 */
export function wantPodBehind(index: SnapshotIndex, place: Place, dev: string): void {
  if (place.pod || place.links.get(dev)?.kind !== 'veth') return
  if (!place.state.addresses.some((a) => a.dev === dev && a.scope === 'global')) index.wantUnreadPods(place.node)
}

export function vethPeer(index: SnapshotIndex, place: Place, dev: string): VethPeer | undefined {
  const link = place.links.get(dev)
  if (!link || link.kind !== 'veth') return undefined
  return place.pod ? fromPod(index, place, link) : fromHost(index, place, link)
}
