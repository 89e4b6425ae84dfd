import type {FdbEntry, Link} from '../../model/node-state.js'
import type {Encapsulation, Hop} from '../../model/trace.js'
import {lookupRoute} from '../fib.js'
import {fdbLine} from '../iproute2.js'
import {formatVxlan} from './evidence.js'
import {vtepOwner} from './link-layer.js'
import {decapsulate, OVERHEAD} from './packet.js'
import type {Place} from './place.js'
import type {Flight, Step, Walk} from './walk-state.js'

/**
 * VXLAN (flannel.1: VNI 1, UDP 8472; vxlan.calico: VNI 4096, UDP 4789). The
 * sender looks the inner destination MAC up in the device's FDB: an exact
 * entry gives the remote VTEP's underlay address; failing that, all-zero
 * entries flood to every address they list; failing both, the frame is
 * dropped (FDB_MISS). The receiver needs a vxlan device on that UDP port with
 * that VNI, up, whose MAC is the inner destination MAC.
 */

const ZERO_MAC = '00:00:00:00:00:00'
const same = (a: string | undefined, b: string | undefined): boolean =>
  !!a && !!b && a.toLowerCase() === b.toLowerCase()

/** The vxlan device a node has with this MAC (the VTEP the inner frame is for). */
function nodeWithVtep(w: Walk, mac: string): string | undefined {
  for (const n of w.index.snapshot.nodes) {
    if (w.index.state(n.name)?.links.some((l) => l.kind === 'vxlan' && same(l.mac, mac))) return n.name
  }
  return undefined
}

export function vxlanEncap(
  w: Walk,
  place: Place,
  link: Link,
  nexthop: string,
  mac: string | undefined,
  flight: Flight,
): Step | undefined {
  if (!w.section(place, 'fdb', `${link.name}'s forwarding database on ${place.node}`)) return undefined
  const vx = link.vxlan
  if (!vx) return w.insufficient(place, `${place.node}: ${link.name}'s vxlan parameters`)
  const base = {node: place.node, netns: place.netns, out: link.name}
  const fdb = place.state.fdb.filter((e) => e.dev === link.name)
  let entry: FdbEntry | undefined = mac ? fdb.find((e) => same(e.mac, mac) && e.dst) : undefined
  const evidence: string[] = []
  if (!entry) {
    const flood = fdb.filter((e) => e.mac === ZERO_MAC && e.dst)
    // a flooded frame reaches every listed VTEP; the one whose MAC it is takes it
    entry = flood.find((e) => nodeWithVtep(w, mac ?? '') === w.index.nodeOwning(e.dst as string)?.name) ?? flood[0]
    if (entry)
      evidence.push(
        `no FDB entry for ${mac} on ${link.name}: flooded by the all-zero entries (${flood.map((e) => e.dst).join(', ')})`,
      )
  }
  if (!entry) {
    const owner = vtepOwner(w, nexthop)
    const why = `bridge fdb show dev ${link.name}: no entry for ${mac ?? 'the next hop'} and no all-zero default entry: the frame is dropped`
    const code = owner
      ? w.raise('FDB_MISSING', {
          node: place.node,
          subject: `${link.name} → ${owner.peer} (${owner.peerIP})`,
          message: `no FDB entry for ${owner.peer}'s VTEP ${mac ?? owner.vtepMAC} on ${link.name}`,
          evidence: [why],
          vars: {
            node: place.node,
            peer: owner.peer,
            peerIP: owner.peerIP,
            vtepMAC: mac ?? owner.vtepMAC,
            dev: link.name,
          },
        })
      : undefined
    return w.stop('FDB_MISS', {
      ...base,
      action: 'drop',
      evidence: [why],
      packet: flight.pkt,
      ...(code ? {findings: [code]} : {}),
    })
  }
  const dst = entry.dst as string
  const expected = mac ? nodeWithVtep(w, mac) : undefined
  const actual = w.index.nodeOwning(dst)?.name
  const codes = []
  if (expected && actual && expected !== actual) {
    const peer = w.index.node(expected)
    codes.push(
      w.raise('FDB_STALE', {
        node: place.node,
        subject: `${link.name} → ${expected}`,
        message: `${mac} is ${expected}'s VTEP, but ${link.name}'s FDB sends it to ${dst} (${actual})`,
        evidence: [fdbLine(entry)],
        vars: {vtepMAC: mac as string, staleIP: dst, peer: expected, dev: link.name, peerIP: peer?.internalIP ?? '?'},
      }),
    )
  }
  const outerSrc = vx.local ?? lookupRoute(place.fib, {dst, ...(vx.dev ? {oif: vx.dev} : {})}).src
  if (!outerSrc)
    return w.insufficient(place, `${place.node}: a source address for ${link.name}'s outer packets to ${dst}`)
  const encap: Encapsulation = {
    type: 'vxlan',
    outerSrc,
    outerDst: dst,
    vni: entry.vni ?? vx.vni,
    port: entry.port ?? vx.port,
  }
  const pkt = {...flight.pkt, size: flight.pkt.size + OVERHEAD.vxlan, encap: [...flight.pkt.encap, encap]}
  const tunnel = {
    node: place.node,
    dev: link.name,
    nexthop,
    ...(mac ? {mac} : {}),
    overhead: OVERHEAD.vxlan,
    ...(flight.tunnel ? {outer: flight.tunnel} : {}),
  }
  const hop: Hop = {
    ...base,
    action: 'encap',
    evidence: [fdbLine(entry), ...evidence, formatVxlan(link)],
    packet: pkt,
    ...(codes.length ? {findings: codes} : {}),
  }
  w.hop(hop)
  return {kind: 'l3', place, flight: {...flight, pkt, tunnel}, ...(vx.dev ? {oif: vx.dev} : {})}
}

/** The outer packet reached its node: which vxlan device takes it, and whether it accepts the inner frame. */
export function vxlanDecap(w: Walk, place: Place, inDev: string, flight: Flight, hop: Hop): Step | undefined {
  const e = flight.pkt.encap.at(-1) as Encapsulation
  const t = flight.tunnel
  const devs = place.state.links.filter((l) => l.kind === 'vxlan' && l.vxlan)
  const onPort = devs.filter((l) => l.vxlan?.port === e.port)
  const dev = onPort.find((l) => l.vxlan?.vni === e.vni)
  const fail = (
    why: string,
    code: Parameters<Walk['raise']>[0],
    vars: Record<string, string | number>,
    node = place.node,
  ): undefined => {
    const c = w.raise(code, {
      node,
      subject: dev?.name ?? t?.dev ?? 'vxlan',
      message: why,
      evidence: [...hop.evidence, ...devs.map(formatVxlan)],
      vars,
    })
    return w.stop('DECAP_REJECTED', {
      node: place.node,
      netns: place.netns,
      in: inDev,
      action: 'drop',
      evidence: [why, ...devs.map(formatVxlan)],
      packet: flight.pkt,
      findings: [c],
    })
  }
  const name = t?.dev ?? 'flannel.1'
  if (devs.length === 0)
    return fail(`${place.node} has no vxlan device: nothing listens on UDP ${e.port}`, 'TUNNEL_DEVICE_MISSING', {
      node: place.node,
      dev: name,
    })
  if (onPort.length === 0)
    return fail(
      `no vxlan device on ${place.node} listens on UDP ${e.port} (${devs.map((l) => `${l.name}: ${l.vxlan?.port}`).join(', ')})`,
      'VXLAN_PORT_MISMATCH',
      {port: e.port ?? 0, node: place.node, dev: devs[0]!.name},
    )
  if (!dev)
    return fail(
      `no vxlan device on ${place.node} has VNI ${e.vni} on UDP ${e.port} (${onPort.map((l) => `${l.name}: id ${l.vxlan?.vni}`).join(', ')})`,
      'VNI_MISMATCH',
      {vni: e.vni ?? 0, dev: onPort[0]!.name, node: place.node},
    )
  if (!dev.adminUp)
    return fail(`${dev.name} on ${place.node} is down`, 'TUNNEL_DEVICE_DOWN', {dev: dev.name, node: place.node})
  if (t?.mac && dev.mac && !same(t.mac, dev.mac)) {
    const sender = w.index.node(t.node)
    return fail(
      `the inner frame is for ${t.mac}, but ${dev.name} on ${place.node} is ${dev.mac}: not its own, dropped`,
      'VTEP_MAC_MISMATCH',
      {staleMAC: t.mac, peer: place.node, vtepIP: t.nexthop, vtepMAC: dev.mac, dev: t.dev, peerIP: e.outerDst},
      sender?.name ?? t.node,
    )
  }
  return decapsulate(
    w,
    place,
    flight,
    {
      in: inDev,
      out: dev.name,
      action: 'decap',
      evidence: [...hop.evidence, formatVxlan(dev), `inner destination ${t?.mac ?? '?'} is ${dev.name}'s own address`],
    },
    OVERHEAD.vxlan,
  )
}
