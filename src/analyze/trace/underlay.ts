import type {FindingCode} from '../../model/finding.js'
import type {Link} from '../../model/node-state.js'
import {cidrContains, parseCidr, parseIp} from '../ip.js'
import {header} from './packet.js'
import type {Place} from './place.js'
import {expectedRoute, routeMissing} from './route-failure.js'
import type {Flight, Step, Walk} from './walk-state.js'

/**
 * The packet leaves the node by its uplink onto the underlay. A next hop
 * that is a cluster node takes the frame on the device holding that
 * address (same subnet: L2). A next hop that is not a node is a router the
 * snapshot does not see: netctl assumes the underlay carries node-to-node
 * traffic to the node that owns the destination, and says so. A pod's
 * packet sent to such a router is lost: no router knows pod routes; so is a
 * packet for an address of no node or pod (a Service address left uncaptured).
 */

function deviceHolding(place: Place, ip: string): string | undefined {
  const t = parseIp(ip)?.text
  return place.state.addresses.find((a) => parseIp(a.local)?.text === t)?.dev
}

export function underlay(
  w: Walk,
  place: Place,
  link: Link,
  nexthop: string,
  mac: string | undefined,
  flight: Flight,
): Step | undefined {
  const h = header(flight)
  const base = {node: place.node, netns: place.netns, out: link.name}
  const owner = w.index.nodeOwning(nexthop)
  if (owner && owner.name !== place.node) {
    const receiver = w.host(owner.name, place)
    if (!receiver) return undefined
    const dev = deviceHolding(receiver, nexthop)
    if (!dev) return w.insufficient(receiver, `${owner.name}: the device holding ${nexthop}`)
    const rlink = receiver.links.get(dev)
    w.hop({
      ...base,
      action: 'underlay',
      evidence: [
        `${nexthop} is ${owner.name}'s address on ${dev}${rlink?.mac ? ` (${rlink.mac})` : ''}: the same underlay segment`,
      ],
      packet: flight.pkt,
    })
    return {kind: 'frame', place: receiver, dev, ...(mac ? {mac} : {}), flight}
  }
  const target = w.index.nodeOwning(h.dst)
  const plain = flight.pkt.encap.length === 0 && w.index.isPodAddress(h.dst)
  if (!owner && target && target.name !== place.node && !plain) {
    const receiver = w.host(target.name, place)
    if (!receiver) return undefined
    const dev = deviceHolding(receiver, h.dst)
    if (!dev) return w.insufficient(receiver, `${target.name}: the device holding ${h.dst}`)
    w.hop({
      ...base,
      action: 'underlay',
      evidence: [
        `next hop ${nexthop} is not a cluster node: netctl assumes the underlay routes node-to-node traffic to ${target.name} (${h.dst})`,
      ],
      packet: flight.pkt,
    })
    return {kind: 'l3', place: receiver, inDev: dev, flight}
  }
  // a pod's address no router knows; any other address is no node's or pod's (a Service address no
  // rule here captured): it leaves the cluster, and nothing in the snapshot brings it back
  const evidence = [
    w.index.isPodAddress(h.dst)
      ? `next hop ${nexthop} is not a cluster node and no router on the underlay knows the pod network: ${h.dst} is lost there`
      : `next hop ${nexthop} is not a cluster node and ${h.dst} is no node's or pod's address: the packet leaves the cluster here and is lost to it`,
  ]
  const codes: FindingCode[] = []
  const peer = w.index.nodeForPodIP(h.dst)
  if (peer && peer.name !== place.node) {
    const code = routeMissing(w, place, h.dst, evidence)
    if (code) codes.push(code)
    const want = expectedRoute(w, place, peer.name)
    const sameSegment = place.state.addresses.some(
      (a) => a.dev === want?.dev && a.family === 'inet' && sameSubnet(a.local, a.prefixlen, peer.internalIP),
    )
    if (
      want &&
      want.dev === link.name &&
      !sameSegment &&
      !place.state.links.some((l) => ['vxlan', 'tun', 'ipip'].includes(l.kind ?? ''))
    ) {
      codes.push(
        w.raise('HOSTGW_NOT_L2_ADJACENT', {
          node: place.node,
          subject: `${place.node} ↔ ${peer.name}`,
          message: `${peer.name} (${peer.internalIP}) is not on ${place.node}'s underlay subnet: a route via it cannot exist`,
          evidence,
          vars: {},
        }),
      )
    }
  }
  return w.stop('NO_ROUTE', {
    ...base,
    action: 'drop',
    evidence,
    packet: flight.pkt,
    ...(codes.length ? {findings: codes} : {}),
  })
}

function sameSubnet(local: string, len: number, other: string): boolean {
  const c = parseCidr(`${local}/${len}`)
  const b = parseIp(other)
  return !!c && !!b && cidrContains(c, b)
}
