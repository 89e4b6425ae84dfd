import type {Hop} from '../../model/trace.js'
import type {Place} from './place.js'
import type {Flight, Step, Walk} from './walk-state.js'

/** Bytes each encapsulation adds: outer IP + UDP + VXLAN + inner Ethernet; outer IP + UDP; outer IP. */
export const OVERHEAD = {vxlan: 50, udp: 28, ipip: 20} as const

/**
 * A tunnel device took the outer header off (vxlan, ipip, the udp daemon's
 * TUN): the hop that says so, with the packet smaller by the encapsulation's
 * `overhead` and its outermost encapsulation gone, then routing of the inner
 * packet as arrived on `hop.out`; a tunnel this one was nested in is the
 * flight's tunnel again.
 */
export function decapsulate(
  w: Walk,
  place: Place,
  flight: Flight,
  hop: {in: string; out: string; action: Hop['action']; evidence: string[]},
  overhead: number,
): Step {
  const inner = {...flight.pkt, size: flight.pkt.size - overhead, encap: flight.pkt.encap.slice(0, -1)}
  w.hop({node: place.node, netns: place.netns, ...hop, packet: inner})
  const {tunnel: t, ...rest} = flight
  return {kind: 'l3', place, inDev: hop.out, flight: {...rest, pkt: inner, ...(t?.outer ? {tunnel: t.outer} : {})}}
}

/** The outermost header of the packet: what routing, filtering and the MTU see. */
export interface Header {
  src: string
  dst: string
  /** icmp, tcp, udp, or '4' (IPIP) */
  protocol: string
  sport?: number
  dport?: number
}

export function header(f: Flight): Header {
  const e = f.pkt.encap.at(-1)
  if (!e) {
    const ports =
      f.pkt.protocol === 'icmp'
        ? {}
        : {...(f.pkt.port !== undefined ? {dport: f.pkt.port} : {}), ...(f.sport !== undefined ? {sport: f.sport} : {})}
    return {src: f.pkt.src, dst: f.pkt.dst, protocol: f.pkt.protocol, ...ports}
  }
  if (e.type === 'ipip') return {src: e.outerSrc, dst: e.outerDst, protocol: '4'}
  return {
    src: e.outerSrc,
    dst: e.outerDst,
    protocol: 'udp',
    ...(e.port !== undefined ? {dport: e.port} : {}),
    ...(e.type === 'udp' && e.port !== undefined ? {sport: e.port} : {}),
  }
}

/** `tcp/80`, `icmp`, `udp 172.31.0.11 → 172.31.0.12:8472`: a packet in a few words. */
export function describeHeader(h: Header): string {
  const proto = h.protocol === '4' ? 'ipip' : h.protocol
  return `${proto} ${h.src} → ${h.dst}${h.dport !== undefined ? `:${h.dport}` : ''}`
}
