import type {Link} from '../../model/node-state.js'
import {LINK_NO_CARRIER_FIX} from '../catalogue/host.js'
import {linkHead} from '../iproute2.js'
import type {Place} from './place.js'
import type {Flight, Walk} from './walk-state.js'

/** A link the kernel would not send on: administratively down, or no carrier. */
export function linkDown(link: Link): boolean {
  return (
    !link.adminUp ||
    link.operstate === 'DOWN' ||
    link.operstate === 'LOWERLAYERDOWN' ||
    link.flags.includes('NO-CARRIER')
  )
}

/** Stop at a device that is down: NO_ROUTE, with LINK_DOWN naming it. */
export function stopAtDownLink(w: Walk, place: Place, link: Link, flight: Flight, inDev?: string): undefined {
  const message = `${link.name} is down (${link.adminUp ? 'no carrier' : 'administratively down'}) on ${place.node}`
  const tunnel = ['vxlan', 'tun', 'ipip'].includes(link.kind ?? '')
  const code = tunnel
    ? w.raise('TUNNEL_DEVICE_DOWN', {
        node: place.node,
        subject: link.name,
        message,
        evidence: [linkHead(link)],
        vars: {dev: link.name, node: place.node},
      })
    : w.raise('LINK_DOWN', {
        node: place.node,
        subject: `${link.name} in ${place.netns}`,
        message,
        evidence: [linkHead(link)],
        vars: {dev: link.name},
        ...(link.adminUp ? {fixTemplate: LINK_NO_CARRIER_FIX} : {}),
      })
  return w.stop('NO_ROUTE', {
    node: place.node,
    netns: place.netns,
    ...(inDev ? {in: inDev} : {}),
    out: link.name,
    action: 'drop',
    evidence: [linkHead(link), `${link.name} is down: the packet is lost`],
    packet: flight.pkt,
    findings: [code],
  })
}
