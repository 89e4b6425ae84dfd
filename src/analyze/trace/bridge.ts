import type {FindingCode} from '../../model/finding.js'
import type {Link} from '../../model/node-state.js'
import {BR_NF, brNetfilterLine, linkLine} from '../checks/evidence.js'
import {fdbLine} from '../iproute2.js'
import {formatVeth} from './evidence.js'
import {filterChain, filterHop} from './filter.js'
import {linkDown, stopAtDownLink} from './link-state.js'
import {unTranslate} from './nat.js'
import {describeHeader, header} from './packet.js'
import type {Place} from './place.js'
import {vethPeer, wantPodBehind} from './veth.js'
import type {Flight, Step, Walk} from './walk-state.js'

/**
 * A Linux bridge (cni0): a frame for the bridge's own address (or a port's
 * own, a `master ... permanent` FDB entry) goes up to IP on the bridge;
 * any other is forwarded to the port the FDB names, or flooded to every
 * port when the FDB does not know the MAC. With br_netfilter loaded, a frame
 * bridged from port to port passes iptables' FORWARD chain too.
 */

const same = (a: string | undefined, b: string | undefined): boolean =>
  !!a && !!b && a.toLowerCase() === b.toLowerCase()

/** A frame arriving on a bridge port. */
export function bridgeIn(w: Walk, place: Place, port: Link, mac: string | undefined, flight: Flight): Step | undefined {
  if (!w.section(place, 'fdb', `the bridge ${port.master} on ${place.node}`)) return undefined
  const br = place.links.get(port.master as string)
  if (!br) return w.insufficient(place, `${place.node}: the bridge ${port.master}`)
  if (linkDown(port)) return stopAtDownLink(w, place, port, flight, port.name)
  if (linkDown(br)) return stopAtDownLink(w, place, br, flight, port.name)
  const localEntry = place.state.fdb.find((e) => e.master === br.name && e.permanent && !e.self && same(e.mac, mac))
  if (!mac || same(mac, br.mac) || localEntry) {
    const evidence = localEntry
      ? [fdbLine(localEntry), `${mac} is a local address of ${br.name}: up to IP`]
      : [`${br.name} ${br.mac ?? ''}: the bridge's own address, up to IP`]
    w.hop({
      node: place.node,
      netns: place.netns,
      in: port.name,
      out: br.name,
      action: 'bridge',
      evidence,
      packet: flight.pkt,
    })
    return {kind: 'l3', place, inDev: br.name, flight: {...flight, bridgedIn: {at: atOf(place), port: port.name}}}
  }
  return l2Forward(w, place, br, port.name, mac, flight)
}

/** IP sends out of the bridge device itself. */
export function bridgeOut(w: Walk, place: Place, br: Link, mac: string | undefined, flight: Flight): Step | undefined {
  if (!w.section(place, 'fdb', `the bridge ${br.name} on ${place.node}`)) return undefined
  return l2Forward(w, place, br, undefined, mac, flight)
}

const atOf = (place: Place): string => `${place.node}|${place.netns}`

/** HAIRPIN_OFF for the port a pod reaching itself through a Service is bridged back to, named as `check` names it. */
function hairpinOff(w: Walk, place: Place, br: Link, portName: string): FindingCode {
  const pod = vethPeer(w.index, place, portName)?.place.pod
  const who = pod ? `pod ${pod.namespace}/${pod.name}` : `the namespace behind ${portName}`
  const port = place.links.get(portName)
  return w.raise('HAIRPIN_OFF', {
    node: place.node,
    subject: `${who} (${portName} on ${br.name})`,
    message: `${who} reaches itself through a Service, and ${place.node}'s br_netfilter bridges the translated packet back out of ${portName}, the port it came in by; with hairpin off there, ${br.name} drops it`,
    evidence: [`${place.node} ip -d link: ${port ? linkLine(port) : portName} bridge_slave hairpin off`],
    vars: {node: place.node, dev: portName},
  })
}

function l2Forward(
  w: Walk,
  place: Place,
  br: Link,
  inPort: string | undefined,
  mac: string | undefined,
  flight0: Flight,
): Step | undefined {
  let flight = flight0
  const ports = place.state.links.filter((l) => l.master === br.name)
  const entry = place.state.fdb.find((e) => e.master === br.name && !e.self && same(e.mac, mac))
  let outPort: string | undefined = entry?.dev
  const evidence = entry ? [fdbLine(entry)] : []
  if (!entry) {
    // unknown unicast is flooded: the port whose far end owns the MAC takes it
    const owner = ports.find((p) => {
      const peer = p.name === inPort ? undefined : vethPeer(w.index, place, p.name)
      return !!peer && same(peer.place.links.get(peer.dev)?.mac, mac)
    })
    outPort = owner?.name
    // no pod read has it: one not read may
    if (!owner)
      for (const p of ports)
        if (p.name !== inPort && !vethPeer(w.index, place, p.name)) wantPodBehind(w.index, place, p.name)
    evidence.push(
      `no FDB entry for ${mac} on ${br.name}: flooded to every port${owner ? `; the pod behind ${owner.name} has it` : ''}`,
    )
  }
  const base = {node: place.node, netns: place.netns, in: inPort ?? br.name}
  if (!outPort)
    return w.stop('NEIGHBOR_UNRESOLVED', {
      ...base,
      action: 'drop',
      evidence: [...evidence, `nothing behind ${br.name} has ${mac}: the frame is lost`],
      packet: flight.pkt,
    })
  // br_netfilter's bridged DNAT: the frame is bridged again from the port it came in by
  const dnatFrom = inPort === undefined && flight.bridgedDnat?.at === atOf(place) ? flight.bridgedDnat.port : undefined
  const cameFrom = inPort ?? dnatFrom
  if (outPort === cameFrom && place.links.get(outPort)?.bridgePort?.hairpin !== true)
    return w.stop('NEIGHBOR_UNRESOLVED', {
      ...base,
      action: 'drop',
      evidence: [
        ...evidence,
        ...(dnatFrom
          ? [
              `${BR_NF} = 1: translated by br_netfilter to an address behind ${br.name}, the frame is bridged back from ${dnatFrom}, the port it came in by`,
            ]
          : []),
        `${mac} is behind the port the frame came in on: a bridge does not send it back (hairpin off)`,
      ],
      packet: flight.pkt,
      ...(dnatFrom ? {findings: [hairpinOff(w, place, br, outPort)]} : {}),
    })
  const port = place.links.get(outPort)
  if (!port) return w.insufficient(place, `${place.node}: the bridge port ${outPort}`)
  if (linkDown(port)) return stopAtDownLink(w, place, port, flight, inPort)
  const brnf = place.state.sysctls[BR_NF]
  const findings: FindingCode[] = []
  if (inPort && brnf === '1') {
    // br_netfilter: a bridged IPv4 frame passes netfilter's PREROUTING, FORWARD and POSTROUTING, so conntrack
    // translates a reply back here as it does a routed one (un-SNAT before, un-DNAT after)
    const unsnat = unTranslate(w, place, flight, 'dst', 'PREROUTING', {in: br.name})
    if (unsnat) {
      w.hop(unsnat.hop)
      flight = unsnat.flight
    }
    const r = filterChain(w, place, 'FORWARD', flight, {
      in: br.name,
      out: br.name,
      phys: {in: inPort, out: outPort, bridged: true},
    })
    if (!r.passed) return undefined
    evidence.push(`${BR_NF} = 1: bridged IPv4 passes iptables`)
    const fh = filterHop(place, 'FORWARD', {in: br.name, out: br.name}, r.evidence, flight, r)
    if (fh) w.hop(fh)
    const undnat = unTranslate(w, place, flight, 'src', 'POSTROUTING', {out: br.name})
    if (undnat) {
      w.hop(undnat.hop)
      flight = undnat.flight
    }
  } else if (inPort) {
    // without it conntrack never sees the bridged frame: a reply whose request was translated here stays as it is
    const missed =
      unTranslate(w, place, flight, 'dst', 'PREROUTING', {in: br.name}) ??
      unTranslate(w, place, flight, 'src', 'POSTROUTING', {out: br.name})
    if (missed) {
      const line = missed.hop.evidence.at(-1)!.replace(/^conntrack /, '')
      const setting = brnf === undefined ? 'br_netfilter is not loaded' : `${BR_NF} = ${brnf}`
      evidence.push(`${setting}: bridged, the reply bypasses conntrack, which does not do its ${line}`)
      findings.push(
        w.raise('BR_NETFILTER_OFF', {
          node: place.node,
          subject: BR_NF,
          severity: 'error',
          message: `frames bridged on ${br.name} of ${place.node} bypass netfilter (${setting}): the reply ${describeHeader(header(flight))} is not translated back by conntrack, so the client, which sent to ${missed.flight.pkt.src}${missed.flight.sport !== undefined ? `:${missed.flight.sport}` : ''}, does not take it`,
          evidence: [brNetfilterLine(brnf), line],
          vars: {},
        }),
      )
    }
  }
  w.hop({
    ...base,
    out: outPort,
    action: 'bridge',
    evidence,
    packet: flight.pkt,
    ...(findings.length > 0 ? {findings} : {}),
  })
  const peer = vethPeer(w.index, place, outPort)
  if (!peer) wantPodBehind(w.index, place, outPort)
  if (!peer) return w.insufficient(place, `${place.node}: the namespace behind the bridge port ${outPort}`)
  w.hop({
    node: place.node,
    netns: place.netns,
    out: outPort,
    action: 'veth',
    evidence: [formatVeth(port, {dev: peer.dev, netns: peer.place.netns})],
    packet: flight.pkt,
  })
  return {kind: 'frame', place: peer.place, dev: peer.dev, ...(mac ? {mac} : {}), flight}
}

/** A frame arriving on a device: a bridge port hands it to the bridge; any other device takes it up to IP if it is for its MAC. */
export function frameIn(w: Walk, place: Place, dev: string, mac: string | undefined, flight: Flight): Step | undefined {
  const link = place.links.get(dev)
  if (!link) return w.insufficient(place, `${place.node}: the device ${dev} in ${place.netns}`)
  if (link.master && place.links.get(link.master)?.kind === 'bridge') return bridgeIn(w, place, link, mac, flight)
  if (linkDown(link)) return stopAtDownLink(w, place, link, flight, dev)
  if (mac && link.mac && !same(mac, link.mac) && !same(mac, 'ff:ff:ff:ff:ff:ff')) {
    return w.stop('NEIGHBOR_UNRESOLVED', {
      node: place.node,
      netns: place.netns,
      in: dev,
      action: 'drop',
      evidence: [
        `the frame is for ${mac}, but ${dev} is ${link.mac}: not for this host, dropped`,
        'the sender holds a neighbour entry with a MAC nobody on the link has',
      ],
      packet: flight.pkt,
    })
  }
  return {kind: 'l3', place, inDev: dev, flight}
}
