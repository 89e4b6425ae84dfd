import type {Link} from '../../model/node-state.js'
import type {Encapsulation, Hop} from '../../model/trace.js'
import {lookupRoute} from '../fib.js'
import {decapsulate, OVERHEAD} from './packet.js'
import type {Place} from './place.js'
import type {Flight, Step, Walk} from './walk-state.js'

/**
 * Calico IPIP: `<block> via <nodeIP> dev tunl0 onlink`. tunl0 is the
 * fallback IPIP device (no fixed remote): the outer destination is the
 * route's gateway, the outer header adds 20 bytes (IP protocol 4). The
 * receiver needs an IPIP device that is up to take the packet off.
 */

function describe(link: Link): string {
  return `${link.name}: ipip mtu ${link.mtu}${link.adminUp ? '' : ' (down)'}`
}

export function ipipEncap(w: Walk, place: Place, link: Link, nexthop: string, flight: Flight): Step | undefined {
  const outerSrc = lookupRoute(place.fib, {dst: nexthop}).src ?? w.index.node(place.node)?.internalIP
  if (!outerSrc) return w.insufficient(place, `${place.node}: a source address towards ${nexthop}`)
  const encap: Encapsulation = {type: 'ipip', outerSrc, outerDst: nexthop}
  const pkt = {...flight.pkt, size: flight.pkt.size + OVERHEAD.ipip, encap: [...flight.pkt.encap, encap]}
  w.hop({
    node: place.node,
    netns: place.netns,
    out: link.name,
    action: 'encap',
    evidence: [describe(link), `outer header ${outerSrc} → ${nexthop}, IP protocol 4`],
    packet: pkt,
  })
  const tunnel = {
    node: place.node,
    dev: link.name,
    nexthop,
    overhead: OVERHEAD.ipip,
    ...(flight.tunnel ? {outer: flight.tunnel} : {}),
  }
  return {kind: 'l3', place, flight: {...flight, pkt, tunnel}}
}

export function ipipDecap(w: Walk, place: Place, inDev: string, flight: Flight, hop: Hop): Step | undefined {
  const dev = place.state.links.find((l) => l.kind === 'ipip')
  if (!dev || !dev.adminUp) {
    const why = dev
      ? `${dev.name} on ${place.node} is down: IP protocol 4 finds no tunnel`
      : `${place.node} has no IPIP device: IP protocol 4 finds no tunnel`
    const code = dev
      ? w.raise('TUNNEL_DEVICE_DOWN', {
          node: place.node,
          subject: dev.name,
          message: why,
          evidence: [describe(dev)],
          vars: {dev: dev.name, node: place.node},
        })
      : w.raise('TUNNEL_DEVICE_MISSING', {
          node: place.node,
          subject: 'tunl0',
          message: why,
          evidence: [],
          vars: {node: place.node, dev: 'tunl0'},
        })
    return w.stop('DECAP_REJECTED', {
      node: place.node,
      netns: place.netns,
      in: inDev,
      action: 'drop',
      evidence: [why],
      packet: flight.pkt,
      findings: [code],
    })
  }
  return decapsulate(
    w,
    place,
    flight,
    {in: inDev, out: dev.name, action: 'decap', evidence: [...hop.evidence, describe(dev)]},
    OVERHEAD.ipip,
  )
}
