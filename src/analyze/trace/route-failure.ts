import type {FindingCode} from '../../model/finding.js'
import type {Disposition, Hop} from '../../model/trace.js'
import {ERRNO_MESSAGE, type RouteDecision} from '../fib.js'
import {cidrContains, parseCidr} from '../ip.js'
import {forwardingEvidence, sysctlLine} from './forward.js'
import {header} from './packet.js'
import type {Place} from './place.js'
import type {Flight, Walk} from './walk-state.js'

/**
 * A route lookup that refused the packet, as a disposition and the finding
 * behind it: blackhole → BLACKHOLE; unreachable, prohibit, no route →
 * NO_ROUTE; forwarding off → FORWARDING_DISABLED; reverse path → RP_FILTER_DROP.
 */

/** The route each backend programs for a peer's pods, from what this node runs. */
export function expectedRoute(w: Walk, place: Place, peerName: string): {nexthop: string; dev: string} | undefined {
  const peer = w.index.node(peerName)
  const cidr = peer?.podCIDRs[0]
  if (!peer || !cidr) return undefined
  const links = place.state.links
  if (links.some((l) => l.name === 'flannel.1')) return {nexthop: cidr.split('/')[0] as string, dev: 'flannel.1'}
  if (links.some((l) => l.name === 'vxlan.calico'))
    return {
      nexthop: peer.annotations['projectcalico.org/IPv4VXLANTunnelAddr'] ?? (cidr.split('/')[0] as string),
      dev: 'vxlan.calico',
    }
  if (links.some((l) => l.kind === 'tun')) return undefined
  const me = w.index.node(place.node)
  const uplink = place.state.addresses.find((a) => a.local === me?.internalIP)?.dev ?? 'eth0'
  if (links.some((l) => l.kind === 'ipip' && l.adminUp)) return {nexthop: peer.internalIP, dev: 'tunl0'}
  return {nexthop: peer.internalIP, dev: uplink}
}

/** ROUTE_MISSING for a pod address of another node that this node has no route for. */
export function routeMissing(w: Walk, place: Place, dst: string, evidence: string[]): FindingCode | undefined {
  const peer = w.index.nodeForPodIP(dst)
  if (!peer || peer.name === place.node) return undefined
  const want = expectedRoute(w, place, peer.name)
  if (!want) return undefined
  return w.raise('ROUTE_MISSING', {
    node: place.node,
    subject: `${peer.podCIDRs[0]} (${peer.name})`,
    message: `${place.node} has no usable route to ${peer.name}'s pods ${peer.podCIDRs[0]}`,
    evidence,
    vars: {peer: peer.name, podCIDR: peer.podCIDRs[0] as string, nexthop: want.nexthop, dev: want.dev},
  })
}

function ownBlock(w: Walk, place: Place, cidr: string): boolean {
  const c = parseCidr(cidr)
  const me = w.index.node(place.node)
  return (
    !!c &&
    !!me?.podCIDRs.some((p) => {
      const x = parseCidr(p)
      return !!x && x.len === c.len && cidrContains(x, c.ip)
    })
  )
}

export function routeFailure(
  w: Walk,
  place: Place,
  inDev: string | undefined,
  d: RouteDecision,
  flight: Flight,
  routeHop: Hop,
): undefined {
  w.hop(routeHop)
  const h = header(flight)
  const why = `${d.reason ?? d.type}${d.error ? ` (ip route get: ${ERRNO_MESSAGE[d.error]})` : ''}`
  const evidence = [why]
  const codes: FindingCode[] = []
  let disposition: Disposition = 'NO_ROUTE'
  switch (d.type) {
    case 'blackhole': {
      disposition = 'BLACKHOLE'
      const dst = d.route?.dst ?? h.dst
      const mine = ownBlock(w, place, dst)
      if (mine) evidence.push(`${dst} is ${place.node}'s own block: no pod here has ${h.dst}`)
      // Calico's own blackholes are BIRD's (its IPAM blocks); any other, or one in a table an ip rule leads to, is
      // deleted where it is, not looked up in Calico's IPAM
      const table = d.table !== undefined && d.table !== 'main' && d.table !== '254' ? d.table : undefined
      const calicos = d.route?.protocol === 'bird' && table === undefined
      codes.push(
        w.raise('BLACKHOLE_ROUTE', {
          node: place.node,
          subject: dst,
          message: `blackhole ${dst}${table ? ` (table ${table})` : ''} on ${place.node} drops ${h.dst}`,
          evidence: [...routeHop.evidence],
          vars: {podCIDR: dst, table: table ?? 'main'},
          ...(mine ? {severity: 'warning' as const} : {}),
          ...(calicos
            ? {}
            : {
                fixTemplate: [
                  `# if nothing should drop <podCIDR> here, delete the route${table ? ' (in the table an ip rule leads to: ip rule show)' : ''}`,
                  `ip route del blackhole <podCIDR>${table ? ' table <table>' : ''}`,
                ].join('\n'),
              }),
        }),
      )
      break
    }
    case 'forwarding-disabled':
      disposition = 'FORWARDING_DISABLED'
      evidence.push(...forwardingEvidence(place, inDev ?? 'all').filter((l) => l.includes('forward')))
      codes.push(
        w.raise('IP_FORWARD_DISABLED', {
          node: place.node,
          subject: 'net.ipv4.ip_forward',
          message: `${place.node} does not forward: ${evidence.slice(1).join(', ')}`,
          evidence: evidence.slice(1),
          vars: {},
        }),
      )
      break
    case 'rp-filter': {
      disposition = 'RP_FILTER_DROP'
      const dev = inDev ?? 'all'
      evidence.push(
        ...[
          sysctlLine(place, 'net.ipv4.conf.all.rp_filter'),
          sysctlLine(place, `net.ipv4.conf.${dev}.rp_filter`),
        ].filter((l): l is string => !!l),
      )
      codes.push(
        w.raise('RP_FILTER_ASYMMETRIC', {
          node: place.node,
          subject: `rp_filter on ${dev}`,
          message: `${place.node} drops ${h.src} → ${h.dst} arriving on ${dev}: ${d.reason}`,
          evidence,
          vars: {dev},
        }),
      )
      break
    }
    case 'no-route': {
      const code = routeMissing(w, place, h.dst, [...routeHop.evidence, why])
      if (code) codes.push(code)
      break
    }
    default:
      break
  }
  return w.stop(disposition, {
    node: place.node,
    netns: place.netns,
    ...(inDev ? {in: inDev} : {}),
    action: 'drop',
    evidence,
    packet: flight.pkt,
    ...(codes.length ? {findings: codes} : {}),
  })
}
