import {addToIPv4, stripPrefix} from '../../analyze/ip.js'
import {l2Adjacent} from '../topology.js'
import type {LabNode} from '../types.js'
import type {LabBackend} from './types.js'
import {addVxlanDevice, addVxlanPeerFdb, peersOf} from './vxlan.js'

/** flannel's vxlan defaults: VNI 1 on UDP 8472 (the Linux kernel's historical port). */
export const FLANNEL_VXLAN = {device: 'flannel.1', vni: 1, port: 8472, overhead: 50} as const

/** The annotations flanneld's kube subnet manager writes on its node (backend-data `null` when the backend has none). */
export function flannelAnnotations(
  type: string,
  data: Record<string, unknown> | null,
  node: LabNode,
): Record<string, string> {
  return {
    'flannel.alpha.coreos.com/backend-type': type,
    'flannel.alpha.coreos.com/backend-data': data === null ? 'null' : JSON.stringify(data),
    'flannel.alpha.coreos.com/kube-subnet-manager': 'true',
    'flannel.alpha.coreos.com/public-ip': node.ip,
  }
}

/**
 * flannel vxlan: flannel.1 (VNI 1, port 8472, nolearning, <podCIDR>.0/32) and,
 * per peer, what flanneld writes: the onlink route via the peer's .0, a
 * PERMANENT neighbour for that .0, and a `self permanent` FDB entry to the peer.
 */
export const flannelVxlan: LabBackend = {
  name: 'flannel-vxlan',
  family: 'flannel',
  podMTU: (u) => u - FLANNEL_VXLAN.overhead,
  nodeState(s, plan, node) {
    const dev = FLANNEL_VXLAN.device
    addVxlanDevice(s, FLANNEL_VXLAN, plan, node, stripPrefix(node.podCIDR))
    for (const peer of peersOf(plan, node)) {
      const peerVtep = stripPrefix(peer.podCIDR)
      s.ip('route', 'add', peer.podCIDR, 'via', peerVtep, 'dev', dev, 'onlink')
      s.ip('neigh', 'add', peerVtep, 'lladdr', peer.vtepMAC, 'dev', dev, 'nud', 'permanent')
    }
    addVxlanPeerFdb(s, FLANNEL_VXLAN, plan, node)
  },
  annotations: (_plan, node) => flannelAnnotations('vxlan', {VNI: FLANNEL_VXLAN.vni, VtepMAC: node.vtepMAC}, node),
}

/**
 * flannel host-gw: a plain route per peer, `<podCIDR> via <nodeIP> dev eth0`.
 * Across an L3 hop the kernel refuses such a route (the gateway is not on a
 * connected subnet); the lab asks the kernel anyway and reports its answer.
 */
export const flannelHostGw: LabBackend = {
  name: 'flannel-host-gw',
  family: 'flannel',
  podMTU: (u) => u,
  nodeState(s, plan, node) {
    for (const peer of peersOf(plan, node)) {
      s.tryCmd(
        `host-gw route on ${node.name} to ${peer.name} (${peer.podCIDR} via ${peer.ip}) refused by the kernel`,
        'ip',
        'route',
        'add',
        peer.podCIDR,
        'via',
        peer.ip,
        'dev',
        'eth0',
      )
    }
  },
  annotations: (_plan, node) => flannelAnnotations('host-gw', null, node),
  warnings(plan) {
    const pairs: string[] = []
    for (const a of plan.nodes)
      for (const b of plan.nodes) if (a.name < b.name && !l2Adjacent(a, b)) pairs.push(`${a.name}-${b.name}`)
    if (pairs.length === 0) return []
    return [
      `host-gw needs every node pair L2-adjacent; on the routed topology ${pairs.length} pair(s) are not (${pairs.slice(0, 6).join(', ')}${pairs.length > 6 ? ', ...' : ''}): pods on those nodes cannot reach each other`,
    ]
  },
}

export {addToIPv4}
