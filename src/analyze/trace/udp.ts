import type {Link, Process} from '../../model/node-state.js'
import type {Encapsulation, Hop} from '../../model/trace.js'
import {lookupRoute} from '../fib.js'
import {decapsulate, OVERHEAD} from './packet.js'
import type {Place} from './place.js'
import type {Flight, Step, Walk} from './walk-state.js'

/**
 * Flannel's udp backend. The route `<clusterCIDR> dev flannel0` hands every
 * remote pod packet to the TUN device; the daemon behind it (flanneld, in a
 * lab netctl-udp-forwarder) picks the peer whose subnet holds the inner
 * destination and sends the bare IP packet in UDP 8285; the peer's daemon
 * writes it into its own flannel0, where the kernel routes it on.
 *
 * With the daemon gone the kernel still accepts packets into flannel0 (or
 * UDP 8285 on the receiver) and nobody carries them on: a silent drop, not
 * a lack of information. The sender's side ends in BLACKHOLE (the TUN queue
 * is the hole), the receiver's in DECAP_REJECTED (the datagram finds no
 * socket, ICMP port unreachable), both with UDP_DAEMON_DOWN.
 */

export const FLANNEL_UDP_PORT = 8285

export function udpDaemon(processes: Process[]): Process | undefined {
  return processes.find(
    (p) => p.name === 'flanneld' || p.name.startsWith('netctl-udp-for') || p.args.includes('netctl-udp-forwarder'),
  )
}

function daemonLine(p: Process): string {
  return `${p.pid} ${p.name}: ${p.args.trim()}`
}

function daemonDown(
  w: Walk,
  place: Place,
  disposition: 'BLACKHOLE' | 'DECAP_REJECTED',
  flight: Flight,
  where: {in?: string; out?: string},
): undefined {
  const evidence = [
    `no flanneld (or netctl-udp-forwarder) among ${place.node}'s processes: nothing carries flannel0's packets`,
  ]
  const code = w.raise('UDP_DAEMON_DOWN', {
    node: place.node,
    subject: 'flannel0',
    message: `the udp backend's daemon is not running on ${place.node}`,
    evidence,
    vars: {node: place.node},
  })
  return w.stop(disposition, {
    node: place.node,
    netns: place.netns,
    ...where,
    action: 'drop',
    evidence,
    packet: flight.pkt,
    findings: [code],
  })
}

export function udpForward(w: Walk, place: Place, link: Link, flight: Flight): Step | undefined {
  if (!w.section(place, 'processes', `the udp backend's daemon on ${place.node}`)) return undefined
  const daemon = udpDaemon(place.state.processes)
  if (!daemon) return daemonDown(w, place, 'BLACKHOLE', flight, {out: link.name})
  const dst = flight.pkt.dst
  const peer = w.index.nodeForPodIP(dst)
  const base = {node: place.node, netns: place.netns, in: link.name}
  if (!peer || peer.name === place.node) {
    return w.stop('NO_ROUTE', {
      ...base,
      action: 'drop',
      evidence: [daemonLine(daemon), `no other node's subnet holds ${dst}: the daemon has nowhere to send it`],
      packet: flight.pkt,
    })
  }
  const outerSrc = lookupRoute(place.fib, {dst: peer.internalIP}).src ?? w.index.node(place.node)?.internalIP
  if (!outerSrc) return w.insufficient(place, `${place.node}: a source address towards ${peer.internalIP}`)
  const encap: Encapsulation = {type: 'udp', outerSrc, outerDst: peer.internalIP, port: FLANNEL_UDP_PORT}
  const pkt = {...flight.pkt, size: flight.pkt.size + OVERHEAD.udp, encap: [...flight.pkt.encap, encap]}
  w.hop({
    ...base,
    action: 'udp-forward',
    evidence: [
      `${link.name}: tun mtu ${link.mtu}`,
      daemonLine(daemon),
      `${dst} is in ${peer.name}'s subnet ${peer.podCIDRs.join(', ')}: UDP ${outerSrc}:${FLANNEL_UDP_PORT} → ${peer.internalIP}:${FLANNEL_UDP_PORT}`,
    ],
    packet: pkt,
  })
  const tunnel = {
    node: place.node,
    dev: link.name,
    nexthop: peer.internalIP,
    overhead: OVERHEAD.udp,
    ...(flight.tunnel ? {outer: flight.tunnel} : {}),
  }
  return {kind: 'l3', place, flight: {...flight, pkt, tunnel}}
}

export function udpDecap(w: Walk, place: Place, inDev: string, flight: Flight, hop: Hop): Step | undefined {
  const e = flight.pkt.encap.at(-1) as Encapsulation
  if (e.port !== FLANNEL_UDP_PORT) {
    return w.stop('DECAP_REJECTED', {
      node: place.node,
      netns: place.netns,
      in: inDev,
      action: 'drop',
      evidence: [`UDP ${e.port}: the udp backend listens on ${FLANNEL_UDP_PORT}`],
      packet: flight.pkt,
    })
  }
  if (!w.section(place, 'processes', `the udp backend's daemon on ${place.node}`)) return undefined
  const daemon = udpDaemon(place.state.processes)
  if (!daemon) return daemonDown(w, place, 'DECAP_REJECTED', flight, {in: inDev})
  const tun = place.state.links.find((l) => l.kind === 'tun' && l.tun?.type !== 'tap')
  if (!tun) {
    const code = w.raise('TUNNEL_DEVICE_MISSING', {
      node: place.node,
      subject: 'flannel0',
      message: `${place.node} has no flannel0: the daemon cannot hand the packet to the kernel`,
      evidence: [],
      vars: {node: place.node, dev: 'flannel0'},
    })
    return w.stop('DECAP_REJECTED', {
      node: place.node,
      netns: place.netns,
      in: inDev,
      action: 'drop',
      evidence: [`no TUN device on ${place.node}`],
      packet: flight.pkt,
      findings: [code],
    })
  }
  return decapsulate(
    w,
    place,
    flight,
    {
      in: inDev,
      out: tun.name,
      action: 'udp-forward',
      evidence: [...hop.evidence, daemonLine(daemon), `the daemon writes the packet into ${tun.name}`],
    },
    OVERHEAD.udp,
  )
}
