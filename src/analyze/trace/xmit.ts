import type {Link} from '../../model/node-state.js'
import {bridgeOut} from './bridge.js'
import {formatVeth} from './evidence.js'
import {ipipEncap} from './ipip.js'
import {linkDown, stopAtDownLink} from './link-state.js'
import type {Place} from './place.js'
import {udpForward} from './udp.js'
import {underlay} from './underlay.js'
import {vethPeer, wantPodBehind} from './veth.js'
import {vxlanEncap} from './vxlan.js'
import type {Flight, Step, Walk} from './walk-state.js'

/**
 * The packet leaves by `link` towards `nexthop` (whose MAC is `mac`): into
 * a tunnel, down a bridge, across a veth pair into the next namespace, or
 * onto the underlay.
 */
export function transmit(
  w: Walk,
  place: Place,
  link: Link,
  nexthop: string,
  mac: string | undefined,
  flight: Flight,
): Step | undefined {
  if (linkDown(link)) return stopAtDownLink(w, place, link, flight)
  switch (link.kind) {
    case 'vxlan':
      return vxlanEncap(w, place, link, nexthop, mac, flight)
    case 'tun':
      return udpForward(w, place, link, flight)
    case 'ipip':
      return ipipEncap(w, place, link, nexthop, flight)
    case 'bridge':
      return bridgeOut(w, place, link, mac, flight)
    default:
      break
  }
  if (link.kind === 'veth') {
    const peer = vethPeer(w.index, place, link.name)
    if (peer) {
      w.hop({
        node: place.node,
        netns: place.netns,
        out: link.name,
        action: 'veth',
        evidence: [formatVeth(link, {dev: peer.dev, netns: peer.place.netns})],
        packet: flight.pkt,
      })
      return {kind: 'frame', place: peer.place, dev: peer.dev, ...(mac ? {mac} : {}), flight}
    }
    wantPodBehind(w.index, place, link.name)
    if (place.pod)
      return w.insufficient(
        place,
        `${place.node}: the node end of ${place.pod.namespace}/${place.pod.name}'s ${link.name} (ifindex ${link.peerIfindex ?? '?'})`,
      )
  }
  return underlay(w, place, link, nexthop, mac, flight)
}
