import type {Hop, RouteLookup} from '../../model/trace.js'
import {lookupRoute, type PacketQuery} from '../fib.js'
import {birdEvidence} from './bgp.js'
import {deliverLocal} from './deliver.js'
import {decisionEvidence} from './evidence.js'
import {encapBlocked, filterChain, filterHop} from './filter.js'
import {checkMtu, forwardingEvidence, takeTtl} from './forward.js'
import {linkLayer} from './link-layer.js'
import {applyRewrite, unTranslate} from './nat.js'
import {describeHeader, header} from './packet.js'
import {isHost, type Place} from './place.js'
import {routeFailure} from './route-failure.js'
import type {Flight, Step, Walk} from './walk-state.js'
import {transmit} from './xmit.js'

/**
 * An IP packet in a namespace, received on `inDev` or originated there: the
 * route lookup (policy rules, longest prefix, reverse path, forwarding), then
 * the MTU, the filter chain, the next hop's link-layer address, and out.
 */
export function l3(w: Walk, place: Place, inDev: string | undefined, flight0: Flight, oif?: string): Step | undefined {
  let flight = flight0
  for (const s of ['links', 'addresses', 'routes4', ...(isHost(place) ? ['rules4'] : [])]) {
    if (
      !w.section(
        place,
        s,
        `the route lookup in ${place.pod ? `pod ${place.pod.namespace}/${place.pod.name}` : place.netns}`,
      )
    )
      return undefined
  }
  let h = header(flight)
  // routed again here after OUTPUT's mangle gave the packet a mark is no loop: the mark is part of the visit
  const markHere = flight.marks?.at === `${place.node}|${place.netns}` ? flight.marks.mark : 0
  const key = `${place.node}|${place.netns}|${h.dst}|${flight.pkt.encap.length}|${markHere}`
  if (w.seen.has(key)) {
    return w.stop('LOOP', {
      node: place.node,
      netns: place.netns,
      ...(inDev ? {in: inDev} : {}),
      action: 'drop',
      evidence: [`${describeHeader(h)} is back in ${place.netns} on ${place.node}: the path goes round in circles`],
      packet: flight.pkt,
    })
  }
  w.seen.add(key)

  // netfilter's PREROUTING (raw, mangle, nat, native nft chains) sees the packet before routing does
  let dnatHere = false
  if (inDev && isHost(place)) {
    const r = filterChain(w, place, 'PREROUTING', flight, {in: inDev})
    if (!r.passed) return undefined
    // DNAT / REDIRECT: routing takes the new destination
    dnatHere = r.rewrite?.dst !== undefined && r.rewrite.dst !== h.dst
    if (r.rewrite) flight = applyRewrite(w, place, flight, r.rewrite)
    const fh = filterHop(place, 'PREROUTING', {in: inDev}, r.evidence, flight, r)
    if (fh) w.hop(fh)
  }
  // a reply at the node that translated its request: back to the original source before routing (un-SNAT)
  const unsnat = unTranslate(w, place, flight, 'dst', inDev ? 'PREROUTING' : 'OUTPUT', inDev ? {in: inDev} : {})
  if (unsnat) {
    w.hop(unsnat.hop)
    flight = unsnat.flight
  }
  h = header(flight)

  // the mark netfilter gave the packet here (PREROUTING, or OUTPUT before a reroute) is routing's too: `ip rule fwmark`
  const mark = flight.marks?.at === `${place.node}|${place.netns}` ? flight.marks.mark : 0
  const q: PacketQuery = {
    dst: h.dst,
    ...(h.src ? {src: h.src} : {}),
    ...(inDev ? {iif: inDev} : {}),
    ...(oif ? {oif} : {}),
    ...(mark !== 0 ? {fwmark: mark} : {}),
  }
  const d = lookupRoute(place.fib, q)
  const bgp = birdEvidence(w, place, d.route)
  const lookup: RouteLookup = {
    dst: h.dst,
    ...(h.src ? {src: h.src} : {}),
    ...(inDev ? {iif: inDev} : {}),
    ...(oif ? {oif} : {}),
  }
  const evidence = [...decisionEvidence(d, place.fib.customRules.inet), ...bgp.evidence]
  const base = {node: place.node, netns: place.netns, ...(inDev ? {in: inDev} : {})}
  const findings = bgp.findings.length > 0 ? {findings: bgp.findings} : {}

  if (d.error)
    return routeFailure(w, place, inDev, d, flight, {
      ...base,
      action: 'route',
      evidence,
      lookup,
      packet: flight.pkt,
      ...findings,
    })
  if (d.type === 'local' || d.type === 'broadcast' || d.type === 'anycast') {
    const deliver: Hop = {...base, action: 'deliver', evidence, lookup: {...lookup, dev: 'lo'}, ...findings}
    if (!inDev && isHost(place) && d.type === 'local') return loopback(w, place, flight, deliver, oif)
    return deliverLocal(w, place, inDev, flight, deliver)
  }
  if (d.type !== 'unicast') {
    return w.stop('NO_ROUTE', {
      ...base,
      action: 'drop',
      evidence: [...evidence, `${d.type} destination: netctl traces unicast only`],
      packet: flight.pkt,
    })
  }
  const nh = d.nexthops?.[0]
  const dev = nh?.dev ?? d.dev
  const link = dev ? place.links.get(dev) : undefined
  // br_netfilter translated a frame that came up from a bridge port to an address behind the same bridge: the
  // kernel bridges it back from that port (its bridged DNAT), with no TTL taken; the walk routes it as before
  // (the route lookup still needs forwarding on), and the bridge then takes the ingress port's hairpin flag into account
  const here = `${place.node}|${place.netns}`
  if (
    dnatHere &&
    dev === inDev &&
    link?.kind === 'bridge' &&
    flight.bridgedIn?.at === here &&
    place.state.sysctls['net.bridge.bridge-nf-call-iptables'] === '1'
  )
    flight = {...flight, bridgedDnat: {at: here, port: flight.bridgedIn.port}}
  if (!nh || !dev || !link)
    return w.insufficient(place, `${place.node}: the device ${dev ?? '?'} the route names`, evidence)
  if ((d.nexthops?.length ?? 0) > 1)
    evidence.push(
      `multipath: the kernel hashes each flow onto one of ${d.nexthops?.length} nexthops; netctl follows the first (via ${nh.gateway ?? '-'} dev ${dev})`,
    )
  const routeHop: Hop = w.hop({
    ...base,
    out: dev,
    action: 'route',
    evidence,
    lookup: {...lookup, ...(nh.gateway ? {gateway: nh.gateway} : {}), dev},
    packet: flight.pkt,
    ...findings,
  })

  let f = flight
  if (inDev) {
    if (isHost(place) && !w.section(place, 'sysctls', `forwarding on ${place.node}`)) return undefined
    const bridged = f.bridgedDnat?.at === here
    if (!bridged) {
      const next = takeTtl(w, place, inDev, f)
      if (!next) return undefined
      f = next
    }
    const mtu = checkMtu(w, place, link, f, inDev)
    if (!mtu) return undefined
    const fwd: Hop = w.hop({
      ...base,
      out: dev,
      action: 'forward',
      evidence: [
        ...(isHost(place) ? forwardingEvidence(place, inDev) : []),
        ...mtu,
        ...(bridged
          ? [
              `br_netfilter's bridged DNAT: translated to an address behind ${dev}, the frame is bridged back from ${f.bridgedDnat!.port}, not routed (no TTL taken)`,
            ]
          : []),
      ],
      packet: f.pkt,
    })
    if (isHost(place)) {
      const r = filterChain(w, place, 'FORWARD', f, {in: inDev, out: dev})
      if (!r.passed) return undefined
      if (r.evidence.length === 0) fwd.evidence.push('filter FORWARD: no rules, policy ACCEPT')
      else w.hop(filterHop(place, 'FORWARD', {in: inDev, out: dev}, r.evidence, f, r)!)
    }
  } else {
    if (f.pkt.encap.length === 0 && !f.origin)
      f = {...f, origin: {node: place.node, netns: place.netns, dev, mtu: link.mtu}}
    const mtu = checkMtu(w, place, link, f)
    if (!mtu) return undefined
    routeHop.evidence.push(...mtu)
    if (isHost(place)) {
      const sent = output(w, place, f, dev, oif)
      if ('next' in sent) return sent.next
      f = sent.passed
    }
  }

  if (isHost(place)) {
    const r = filterChain(
      w,
      place,
      'POSTROUTING',
      f,
      {...(inDev ? {in: inDev} : {}), out: dev},
      inDev ? undefined : encapBlocked(w, place, f),
    )
    if (!r.passed) return undefined
    // SNAT / MASQUERADE: the packet leaves with the new source
    if (r.rewrite) f = applyRewrite(w, place, f, r.rewrite)
    const fh = filterHop(place, 'POSTROUTING', {out: dev}, r.evidence, f, r)
    if (fh) w.hop(fh)
    // a reply leaving the node that translated its request: from the original destination again (un-DNAT)
    const undnat = unTranslate(w, place, f, 'src', 'POSTROUTING', {out: dev})
    if (undnat) {
      w.hop(undnat.hop)
      f = undnat.flight
    }
  }

  const address = nh.gateway ?? h.dst
  const ll = linkLayer(w, place, link, address, f)
  if (!ll) return undefined
  routeHop.evidence.push(...ll.evidence)
  if (ll.proxyHop) w.hop(ll.proxyHop)
  return transmit(w, place, link, address, ll.mac, f)
}

/**
 * A packet a node sends to one of its own addresses goes out over lo, so it passes OUTPUT and
 * POSTROUTING, then INPUT on lo, like any other it sends: kube-proxy's nat OUTPUT sends a node's
 * connection to its own NodePort on to an endpoint (the kernel routes it again), and a filter
 * OUTPUT or INPUT rule can drop it.
 */
function loopback(w: Walk, place: Place, flight0: Flight, deliver: Hop, oif: string | undefined): Step | undefined {
  // sent elsewhere: the local route it was first sent by is a step of the path (delivered, the deliver hop says it)
  const sent = output(w, place, flight0, 'lo', oif, {...deliver, action: 'route', out: 'lo'})
  if ('next' in sent) return sent.next
  let flight = sent.passed
  const post = filterChain(w, place, 'POSTROUTING', flight, {out: 'lo'})
  if (!post.passed) return undefined
  if (post.rewrite) flight = applyRewrite(w, place, flight, post.rewrite)
  const ph = filterHop(place, 'POSTROUTING', {out: 'lo'}, post.evidence, flight, post)
  if (ph) w.hop(ph)
  return deliverLocal(w, place, 'lo', flight, deliver)
}

/**
 * The OUTPUT hook for a packet this namespace sends by `dev`: passed (the hook behind it), dropped, or given a new
 * destination by a DNAT (or a new mark by mangle) and routed again (`next`: where that leads), the kernel's way:
 * the chains after it run after the new route. `routedFirst`: a hop for the route it was first sent by, shown when it is rerouted.
 */
function output(
  w: Walk,
  place: Place,
  flight: Flight,
  dev: string,
  oif: string | undefined,
  routedFirst?: Hop,
): {passed: Flight} | {next: Step | undefined} {
  const hookOut = flight.outputResume?.out ?? dev
  const r = filterChain(w, place, 'OUTPUT', flight, {out: hookOut}, encapBlocked(w, place, flight))
  if (!r.passed) return {next: undefined}
  const f = r.rewrite ? applyRewrite(w, place, flight, r.rewrite) : flight
  const rerouting = (r.rewrite?.dst !== undefined && r.rewrite.dst !== header(flight).dst) || r.markRerouted === true
  if (rerouting && routedFirst) w.hop({...routedFirst, packet: flight.pkt})
  const fh = filterHop(place, 'OUTPUT', {out: hookOut}, r.evidence, f, r)
  if (fh) w.hop(fh)
  // the nat chains have decided; the hook goes on after the new route
  if (rerouting) return {next: l3(w, place, undefined, rerouted(f, r.outputDone, hookOut), oif)}
  return {passed: hookDone(f)}
}

/**
 * Routed again after OUTPUT's DNAT: the nat chains have decided, and the hook goes on past the chains that ran,
 * with the device it was entered with (`out`).
 */
const rerouted = (f: Flight, done: string[] | undefined, out: string): Flight => ({
  ...f,
  outputResume: {done: done ?? [], out},
})

/** The OUTPUT hook is behind the packet: what follows (a tunnel's outer packet sent from here too) starts afresh. */
function hookDone(f: Flight): Flight {
  if (!f.outputResume) return f
  const {outputResume: _resume, ...rest} = f
  return rest
}
