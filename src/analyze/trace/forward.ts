import type {FindingCode} from '../../model/finding.js'
import type {Link} from '../../model/node-state.js'
import type {Hop} from '../../model/trace.js'
import {sysctlLine as formatSysctl} from '../checks/evidence.js'
import {describeHeader, header} from './packet.js'
import type {Place} from './place.js'
import type {Flight, Walk} from './walk-state.js'

/**
 * The checks between the route and the wire: forwarding and reverse-path
 * filtering as the node is set (the FIB has already applied them; here they
 * become evidence), the TTL, and the MTU of the device the packet leaves by.
 */

/** A sysctl of the node as `sysctl` prints it; a device's '.' is '/' in the name. */
export function sysctlLine(place: Place, key: string): string | undefined {
  const s = place.state.sysctls
  const alt = key.replace(
    /^(net\.ipv4\.conf\.)(.+)(\.[a-z_]+)$/,
    (_m, a: string, dev: string, b: string) => `${a}${dev.replace(/\./g, '/')}${b}`,
  )
  for (const k of [key, alt]) if (s[k] !== undefined) return formatSysctl(k, s[k] as string)
  return undefined
}

function value(line: string | undefined): number {
  return line === undefined ? 0 : Number(line.split('=')[1]?.trim() ?? 0)
}

/** ip_forward and rp_filter as they stand for a packet coming in on `inDev`. */
export function forwardingEvidence(place: Place, inDev: string): string[] {
  const lines: string[] = []
  const fwd = sysctlLine(place, 'net.ipv4.ip_forward')
  const dev = sysctlLine(place, `net.ipv4.conf.${inDev}.forwarding`)
  if (fwd) lines.push(fwd)
  if (dev && value(dev) === 0) lines.push(dev)
  const all = sysctlLine(place, 'net.ipv4.conf.all.rp_filter')
  const rp = sysctlLine(place, `net.ipv4.conf.${inDev}.rp_filter`)
  const eff = Math.max(value(all), value(rp))
  if (eff === 0) lines.push(all ?? 'net.ipv4.conf.all.rp_filter: not in the snapshot (taken as 0)')
  else
    lines.push(
      ...[all, rp].filter((l): l is string => !!l),
      `rp_filter ${eff} (${eff === 1 ? 'strict' : 'loose'}) on ${inDev}: the source must route back ${eff === 1 ? `out of ${inDev}` : 'somewhere'}`,
    )
  return lines
}

/** TTL: a node forwards a packet only while it has more than one left. */
export function takeTtl(w: Walk, place: Place, inDev: string, flight: Flight): Flight | undefined {
  if (flight.ttl <= 1) {
    w.stop('LOOP', {
      node: place.node,
      netns: place.netns,
      in: inDev,
      action: 'drop',
      evidence: [`TTL exceeded: ${describeHeader(header(flight))} has been forwarded ${64 - flight.ttl + 1} times`],
    })
    return undefined
  }
  return {...flight, ttl: flight.ttl - 1}
}

/**
 * The packet must fit the device's MTU. With DF set the kernel refuses it
 * (EMSGSIZE at the sender, ICMP "fragmentation needed" when forwarding);
 * without, it fragments. An encapsulated packet that no longer fits the
 * uplink is the tunnel device's MTU set too high for its overhead.
 */
export function checkMtu(w: Walk, place: Place, link: Link, flight: Flight, inDev?: string): string[] | undefined {
  const size = flight.pkt.size
  if (size <= link.mtu) return [`${link.name} mtu ${link.mtu}: ${size} bytes fit`]
  if (!flight.pkt.df) return [`${link.name} mtu ${link.mtu}: ${size} bytes are fragmented (DF not set)`]
  const codes: FindingCode[] = []
  const evidence = [
    `${link.name} mtu ${link.mtu} < ${size} bytes with DF set: ${inDev ? 'ICMP fragmentation needed goes back to the sender' : 'the sender gets EMSGSIZE (message too long)'}`,
  ]
  const t = flight.tunnel
  if (t && flight.pkt.encap.length > 0) {
    const fit = link.mtu - t.overhead
    evidence.push(
      `${t.dev} on ${t.node} lets ${size - t.overhead}-byte packets in, but with ${t.overhead} bytes of encapsulation they need ${size} on ${link.name}`,
    )
    codes.push(
      w.raise('MTU_EXCEEDS_ENCAP', {
        node: t.node,
        subject: t.dev,
        message: `${t.dev}'s MTU leaves no room for ${t.overhead} bytes of encapsulation on ${link.name} (mtu ${link.mtu})`,
        evidence,
        vars: {mtu: fit, dev: t.dev},
      }),
    )
  }
  const o = flight.origin
  if (inDev && !t && o && o.mtu > link.mtu) {
    // the sender's interface takes more than the path: full-size packets with DF die here
    evidence.push(`${o.dev} in ${o.netns} has mtu ${o.mtu}: the sender believes ${o.mtu}-byte packets fit`)
    codes.push(
      w.raise('MTU_MISMATCH', {
        node: o.node,
        subject: `${o.dev} in ${o.netns}`,
        message: `${o.dev} in ${o.netns} has mtu ${o.mtu}, but the path takes ${link.mtu} at ${link.name} on ${place.node}`,
        evidence,
        vars: {dev: o.dev, mtu: link.mtu},
      }),
    )
  }
  const hop: Hop = {
    node: place.node,
    netns: place.netns,
    ...(inDev ? {in: inDev} : {}),
    out: link.name,
    action: 'drop',
    evidence,
    packet: flight.pkt,
    ...(codes.length ? {findings: codes} : {}),
  }
  w.stop('MTU_EXCEEDED', hop)
  return undefined
}
