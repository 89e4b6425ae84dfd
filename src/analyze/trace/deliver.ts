import type {Hop} from '../../model/trace.js'
import {encapBlocked, filterChain, filterHop} from './filter.js'
import {ipipDecap} from './ipip.js'
import {applyRewrite, unTranslate} from './nat.js'
import {isHost, type Place} from './place.js'
import {udpDecap} from './udp.js'
import {vxlanDecap} from './vxlan.js'
import type {Flight, Step, Walk} from './walk-state.js'

/**
 * The destination address is one of this namespace's own. The node's INPUT
 * chain has its say first; then an encapsulated packet goes to its tunnel
 * (vxlan socket, udp daemon, ipip device) and a plain one is delivered.
 */
export function deliverLocal(
  w: Walk,
  place: Place,
  inDev: string | undefined,
  flight0: Flight,
  hop: Hop,
): Step | undefined {
  let flight = flight0
  if (isHost(place) && inDev) {
    const r = filterChain(w, place, 'INPUT', flight, {in: inDev}, encapBlocked(w, place, flight))
    if (!r.passed) return undefined
    if (r.rewrite) flight = applyRewrite(w, place, flight, r.rewrite)
    const fh = filterHop(place, 'INPUT', {in: inDev}, r.evidence, flight, r)
    if (fh) w.hop(fh)
  }
  // a reply delivered at the node that translated its request: from the original destination again (un-DNAT)
  const undnat = unTranslate(w, place, flight, 'src', 'INPUT', inDev ? {in: inDev} : {})
  if (undnat) {
    w.hop(undnat.hop)
    flight = undnat.flight
  }
  const e = flight.pkt.encap.at(-1)
  if (e && inDev) {
    if (e.type === 'vxlan') return vxlanDecap(w, place, inDev, flight, hop)
    if (e.type === 'udp') return udpDecap(w, place, inDev, flight, hop)
    return ipipDecap(w, place, inDev, flight, hop)
  }
  // the reply starts from here, to the source as it arrived (translated)
  w.delivered = {place, flight}
  return w.stop('DELIVERED', hop)
}
