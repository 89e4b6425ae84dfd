import {cidrContainsAddress, prefixLength, stripPrefix} from '../../analyze/ip.js'
import {
  backendInfo,
  CALICO_VXLAN_PORT,
  CALICO_VXLAN_VNI,
  FELIX_PROTO,
  FLANNEL_VXLAN_PORT,
  FLANNEL_VXLAN_VNI,
  kernelType,
  TUNNEL_DEVICES,
} from './profiles.js'
import {type ClusterFacts, type ConfiguredBackend, emptyKernel, type NodeDesired, type NodeFacts} from './types.js'

/**
 * The kernel state each node should hold for a backend, from the backend's
 * dataplane signature (docs/design.md) and the node facts alone. Pure.
 */

/** Two nodes on the same connected subnet, as CrossSubnet and host-gw see it. */
export function sameSubnet(a: NodeFacts, b: NodeFacts): boolean {
  return cidrContainsAddress(a.subnet, b.ip) && cidrContainsAddress(b.subnet, a.ip)
}

function peersOf(facts: ClusterFacts, node: NodeFacts): NodeFacts[] {
  return facts.nodes.filter((n) => n.name !== node.name)
}

function flannelVxlan(d: NodeDesired, facts: ClusterFacts, node: NodeFacts): void {
  const dev = TUNNEL_DEVICES.flannelVxlan
  d.links.push({
    name: dev,
    kind: 'vxlan',
    mtu: facts.underlayMTU - 50,
    up: true,
    mac: node.vtepMAC,
    vxlan: {vni: FLANNEL_VXLAN_VNI, port: FLANNEL_VXLAN_PORT, local: node.ip, dev: node.uplink, learning: false},
    owner: 'netctl',
  })
  d.addresses.push({dev, cidr: `${stripPrefix(node.podCIDR)}/32`, owner: 'netctl'})
  for (const peer of peersOf(facts, node)) {
    const vtep = stripPrefix(peer.podCIDR)
    d.routes.push({dst: peer.podCIDR, type: 'unicast', gateway: vtep, dev, onlink: true, owner: 'netctl'})
    d.neighbours.push({dst: vtep, dev, lladdr: peer.vtepMAC, owner: 'netctl'})
    d.fdb.push({mac: peer.vtepMAC, dev, dst: peer.ip, owner: 'netctl'})
  }
}

/** The peer's pods through the peer node itself, over the uplink: host-gw, a CrossSubnet neighbour (BGP across a router: birdRoute). */
function viaPeerRoute(
  node: NodeFacts,
  peer: NodeFacts,
  owner: NodeDesired['routes'][number]['owner'],
  protocol?: NodeDesired['routes'][number]['protocol'],
): NodeDesired['routes'][number] {
  return {
    dst: peer.podCIDR,
    type: 'unicast',
    gateway: peer.ip,
    dev: node.uplink,
    onlink: false,
    ...(protocol === undefined ? {} : {protocol}),
    owner,
  }
}

/**
 * The route BIRD installs for a peer's block: Calico's BIRD template resolves
 * the BGP next hop (the peer node) recursively (`gateway recursive`), so a
 * peer behind a router is reached via that router, as the node's own route to
 * the peer says; a peer on the subnet, or one no route reaches, via itself.
 */
function birdRoute(node: NodeFacts, peer: NodeFacts): NodeDesired['routes'][number] {
  const route = viaPeerRoute(node, peer, 'bird', 'bird')
  const via = sameSubnet(node, peer) ? undefined : node.gatewayTo?.[peer.name]
  return via ? {...route, gateway: via.gateway, dev: via.dev} : route
}

function flannelHostGw(d: NodeDesired, facts: ClusterFacts, node: NodeFacts): void {
  for (const peer of peersOf(facts, node)) d.routes.push(viaPeerRoute(node, peer, 'netctl'))
}

/** flannel0 (owned by the udp daemon) with <podCIDR>.0 and the cluster prefix, whose connected route steers every remote pod into it. */
function flannelUdp(d: NodeDesired, facts: ClusterFacts, node: NodeFacts): void {
  const dev = TUNNEL_DEVICES.flannelUdp
  const address = stripPrefix(node.podCIDR)
  d.links.push({name: dev, kind: 'tun', mtu: facts.underlayMTU - 28, up: true, owner: 'flannel-udp'})
  d.addresses.push({dev, cidr: `${address}/${prefixLength(facts.clusterCIDR)}`, owner: 'flannel-udp'})
  d.routes.push({
    dst: facts.clusterCIDR,
    type: 'unicast',
    dev,
    onlink: false,
    protocol: 'kernel',
    scope: 'link',
    src: address,
    owner: 'kernel',
  })
}

/** Calico: every peer's block routed direct (same subnet or no encapsulation) or through the tunnel. */
function calico(d: NodeDesired, facts: ClusterFacts, node: NodeFacts, type: ConfiguredBackend): void {
  const info = backendInfo(type)
  const felix = info.encap === 'vxlan'
  // With VXLAN, Felix programs every pool route; otherwise BIRD does (its own block as a blackhole too).
  const proto = felix ? FELIX_PROTO : 'bird'
  const owner = felix ? 'netctl' : 'bird'
  d.routes.push({dst: node.podCIDR, type: 'blackhole', onlink: false, protocol: proto, owner})
  const tunnel =
    info.encap === 'vxlan' ? TUNNEL_DEVICES.calicoVxlan : info.encap === 'ipip' ? TUNNEL_DEVICES.calicoIpip : undefined
  if (tunnel === TUNNEL_DEVICES.calicoVxlan) {
    d.links.push({
      name: tunnel,
      kind: 'vxlan',
      mtu: facts.underlayMTU - info.overhead,
      up: true,
      mac: node.vtepMAC,
      vxlan: {vni: CALICO_VXLAN_VNI, port: CALICO_VXLAN_PORT, local: node.ip, dev: node.uplink, learning: false},
      owner: 'netctl',
    })
  } else if (tunnel) {
    d.links.push({name: tunnel, kind: 'ipip', mtu: facts.underlayMTU - info.overhead, up: true, owner: 'netctl'})
  }
  if (tunnel) d.addresses.push({dev: tunnel, cidr: `${node.tunnelIP}/32`, owner: 'netctl'})
  for (const peer of peersOf(facts, node)) {
    const direct = !tunnel || (info.crossSubnet && sameSubnet(node, peer))
    if (direct) {
      d.routes.push(owner === 'bird' ? birdRoute(node, peer) : viaPeerRoute(node, peer, owner, proto))
    } else if (tunnel === TUNNEL_DEVICES.calicoVxlan) {
      d.routes.push({
        dst: peer.podCIDR,
        type: 'unicast',
        gateway: peer.tunnelIP,
        dev: tunnel,
        onlink: true,
        protocol: proto,
        owner,
      })
    } else if (tunnel) {
      d.routes.push({
        dst: peer.podCIDR,
        type: 'unicast',
        gateway: peer.ip,
        dev: tunnel,
        onlink: true,
        protocol: proto,
        owner,
      })
    }
    // Felix writes every remote VTEP's neighbour and FDB entry, also for peers it reaches directly.
    if (tunnel === TUNNEL_DEVICES.calicoVxlan) {
      d.neighbours.push({dst: peer.tunnelIP, dev: tunnel, lladdr: peer.vtepMAC, owner: 'netctl'})
      d.fdb.push({mac: peer.vtepMAC, dev: tunnel, dst: peer.ip, owner: 'netctl'})
    }
  }
}

/** Desired state of one node. */
export function desiredNode(type: ConfiguredBackend, facts: ClusterFacts, node: NodeFacts): NodeDesired {
  const d: NodeDesired = {node: node.name, ...emptyKernel(), daemons: [...backendInfo(type).daemons]}
  const k = kernelType(type)
  if (k === 'flannel-vxlan') flannelVxlan(d, facts, node)
  else if (k === 'flannel-host-gw') flannelHostGw(d, facts, node)
  else if (k === 'flannel-udp') flannelUdp(d, facts, node)
  else calico(d, facts, node, type)
  return d
}

/** Desired state of every node, in the facts' order. */
export function desiredState(type: ConfiguredBackend, facts: ClusterFacts): NodeDesired[] {
  return facts.nodes.map((n) => desiredNode(type, facts, n))
}
