import type {FindingCode} from '../../model/finding.js'
import type {Link} from '../../model/node-state.js'
import type {Hop} from '../../model/trace.js'
import {cidrContains, parseCidr, parseIp} from '../ip.js'
import {formatNeighbour} from '../iproute2.js'
import {resolveNeighbour} from '../neighbour.js'
import {whoAnswers} from './arp.js'
import {describeHeader, header} from './packet.js'
import type {Place} from './place.js'
import {vethPeer} from './veth.js'
import type {Flight, Walk} from './walk-state.js'

/**
 * The next hop's link-layer address on the way out: the neighbour entry, or,
 * when there is none yet (or it is FAILED or INCOMPLETE, which the kernel
 * resolves again for the next packet), whoever on the link answers the
 * kernel's ARP request. Nobody answering ends the walk in NEIGHBOR_UNRESOLVED.
 */
export interface LinkLayer {
  /** destination MAC; absent on devices that need none (tun, ipip) */
  mac?: string
  evidence: string[]
  /** a proxy-ARP answer from the node (Calico's 169.254.1.1) */
  proxyHop?: Hop
}

/** The node a VTEP address belongs to, and its VTEP MAC, for the overlay findings. */
export function vtepOwner(w: Walk, address: string): {peer: string; peerIP: string; vtepMAC: string} | undefined {
  const t = parseIp(address)?.text
  for (const n of w.index.snapshot.nodes) {
    const s = w.index.state(n.name)
    const dev = s?.links.find(
      (l) => l.kind === 'vxlan' && s.addresses.some((a) => a.dev === l.name && parseIp(a.local)?.text === t),
    )
    if (dev?.mac) return {peer: n.name, peerIP: n.internalIP, vtepMAC: dev.mac}
    const data = n.annotations['flannel.alpha.coreos.com/backend-data']
    const vtep = n.podCIDRs.some((c) => c.split('/')[0] === t)
    if (vtep && data) {
      try {
        const mac = (JSON.parse(data) as {VtepMAC?: string}).VtepMAC
        if (mac) return {peer: n.name, peerIP: n.internalIP, vtepMAC: mac}
      } catch {
        /* not JSON: no MAC to offer */
      }
    }
    const calicoMac = n.annotations['projectcalico.org/VXLANTunnelMACAddr']
    if (calicoMac && n.annotations['projectcalico.org/IPv4VXLANTunnelAddr'] === t)
      return {peer: n.name, peerIP: n.internalIP, vtepMAC: calicoMac}
  }
  return undefined
}

export function linkLayer(w: Walk, place: Place, link: Link, address: string, flight: Flight): LinkLayer | undefined {
  if (!w.section(place, 'neighbours', `the neighbour of ${address} on ${link.name}`)) return undefined
  const r = resolveNeighbour(
    {neighbours: place.neighbours, links: [...place.links.values()]},
    {address, dev: link.name},
  )
  const base = {node: place.node, netns: place.netns, out: link.name}
  if (r.status === 'noarp') return {evidence: [...r.evidence, `${link.name} needs no neighbour resolution`]}
  if (r.status === 'resolved') {
    const evidence = [...r.evidence]
    if (link.kind === 'vxlan' && r.state !== 'PERMANENT') {
      const owner = vtepOwner(w, address)
      if (owner)
        w.raise('NEIGH_NOT_PERMANENT', {
          node: place.node,
          subject: `${link.name} → ${owner.peer}`,
          message: `${formatNeighbour(r.entry!)}: not PERMANENT, it can age out`,
          evidence,
          vars: {vtepIP: address, vtepMAC: owner.vtepMAC, dev: link.name},
        })
    }
    return {...(r.lladdr ? {mac: r.lladdr} : {}), evidence}
  }
  const sender = header(flight).src
  const who = whoAnswers(w.index, place, link, address, sender)
  if ('missing' in who) {
    if (who.node) w.shared.needNodes.add(who.node)
    w.insufficient(place, who.missing)
    return undefined
  }
  if ('found' in who) {
    // no entry, or a FAILED / INCOMPLETE one: the next packet makes the kernel ask again, and this time someone answers
    const a = who.found
    const head = r.entry
      ? `${formatNeighbour(r.entry)}: the kernel resolves it again for the next packet`
      : `no neighbour entry for ${address} on ${link.name}: the kernel resolves it`
    const evidence = [head, ...a.evidence]
    const proxy = a.how === 'proxy_arp' || a.how === 'proxy-entry'
    const proxyHop: Hop | undefined = proxy
      ? {node: a.node, netns: a.netns, in: a.dev, action: 'proxy-arp', evidence: a.evidence}
      : undefined
    return {
      ...(a.mac ? {mac: a.mac} : {}),
      evidence: proxy ? [evidence[0]!] : evidence,
      ...(proxyHop ? {proxyHop} : {}),
    }
  }
  // nobody on the link answers: the entry stays INCOMPLETE, then FAILED, and the packet is dropped
  const evidence = [...r.evidence, r.reason, who.none]
  const codes: FindingCode[] = []
  if (link.kind === 'vxlan') {
    const owner = vtepOwner(w, address)
    if (owner)
      codes.push(
        w.raise('NEIGH_MISSING', {
          node: place.node,
          subject: `${link.name} → ${owner.peer}`,
          message: `no usable neighbour entry for ${owner.peer}'s VTEP ${address} on ${link.name}`,
          evidence,
          vars: {peer: owner.peer, vtepIP: address, vtepMAC: owner.vtepMAC, dev: link.name},
        }),
      )
  }
  const bridgeCode = bridgeGatewayMissing(w, place, link, address, evidence)
  if (bridgeCode) codes.push(bridgeCode)
  w.stop('NEIGHBOR_UNRESOLVED', {
    ...base,
    action: 'drop',
    evidence: [...evidence, `${describeHeader(header(flight))} cannot leave ${link.name}`],
    ...(codes.length ? {findings: codes} : {}),
  })
  return undefined
}

/**
 * A pod behind a bridge whose gateway nobody answers for: the bridge plugin
 * gives the bridge the first address of the node's podCIDR, and it lacks it.
 */
function bridgeGatewayMissing(
  w: Walk,
  place: Place,
  link: Link,
  address: string,
  evidence: string[],
): FindingCode | undefined {
  if (!place.pod || link.kind !== 'veth') return undefined
  const peer = vethPeer(w.index, place, link.name)
  const bridge = peer ? peer.place.links.get(peer.dev)?.master : undefined
  const cidr = w.index
    .node(place.node)
    ?.podCIDRs.map((c) => parseCidr(c))
    .find((c) => !!c && cidrContains(c, parseIp(address)!))
  if (!peer || !bridge || !cidr || !parseIp(address)) return undefined
  const gateway = place.pod.routes.some((r) => r.gateway && parseIp(r.gateway)?.text === parseIp(address)?.text)
  if (!gateway) return undefined
  const held = peer.place.state.addresses
    .filter((a) => a.dev === bridge && a.family === 'inet')
    .map((a) => `${a.local}/${a.prefixlen}`)
  return w.raise('BRIDGE_ADDR_MISMATCH', {
    node: place.node,
    subject: `${bridge} on ${place.node}`,
    message: `${place.pod.namespace}/${place.pod.name}'s gateway ${address} is not on ${bridge} (${held.length ? held.join(', ') : 'no IPv4 address'})`,
    evidence,
    vars: {bridgeAddr: `${address}/${cidr.len}`},
  })
}
