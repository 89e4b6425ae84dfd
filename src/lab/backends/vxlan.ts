import type {NsScript} from '../script.js'
import type {LabNode, LabPlan} from '../types.js'

/** A vxlan backend's device: its name, VNI, UDP port and what the encapsulation takes from the MTU. */
export interface VxlanSpec {
  device: string
  vni: number
  port: number
  overhead: number
}

/** Every other node of the lab. */
export const peersOf = (plan: LabPlan, node: LabNode): LabNode[] => plan.nodes.filter((n) => n.name !== node.name)

/**
 * The node's vxlan device as flanneld and Felix make theirs: its own VTEP MAC,
 * bound to the uplink, learning off (the agent writes every FDB entry itself),
 * the underlay's MTU less the encapsulation, `address` as its /32, up.
 */
export function addVxlanDevice(s: NsScript, spec: VxlanSpec, plan: LabPlan, node: LabNode, address: string): void {
  s.ip(
    'link',
    'add',
    spec.device,
    'address',
    node.vtepMAC,
    'type',
    'vxlan',
    'id',
    spec.vni,
    'local',
    node.ip,
    'dev',
    'eth0',
    'dstport',
    spec.port,
    'nolearning',
  )
  s.ip('link', 'set', spec.device, 'mtu', plan.underlayMTU - spec.overhead)
  s.ip('addr', 'add', `${address}/32`, 'dev', spec.device)
  s.ip('link', 'set', spec.device, 'up')
}

/** Each peer's VTEP MAC reached at its node IP: `bridge fdb add <MAC> dev <device> dst <IP> self permanent`. */
export function addVxlanPeerFdb(s: NsScript, spec: VxlanSpec, plan: LabPlan, node: LabNode): void {
  for (const peer of peersOf(plan, node))
    s.bridge('fdb', 'add', peer.vtepMAC, 'dev', spec.device, 'dst', peer.ip, 'self', 'permanent')
}
