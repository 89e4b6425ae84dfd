import type {BackendType, ConfiguredBackend, Daemon} from './types.js'

/** Tunnel devices a backend may own; anything on them is the backend's. */
export const TUNNEL_DEVICES = {
  flannelVxlan: 'flannel.1',
  flannelUdp: 'flannel0',
  calicoVxlan: 'vxlan.calico',
  calicoIpip: 'tunl0',
} as const
export const TUNNEL_DEVICE_NAMES: ReadonlySet<string> = new Set(Object.values(TUNNEL_DEVICES))

export const FLANNEL_VXLAN_VNI = 1
export const FLANNEL_VXLAN_PORT = 8472
export const CALICO_VXLAN_VNI = 4096
export const CALICO_VXLAN_PORT = 4789
/** Felix marks its routes with routing protocol 80. */
export const FELIX_PROTO = '80'

export type Encapsulation = 'vxlan' | 'udp' | 'ipip' | 'none'

export interface BackendInfo {
  family: 'flannel' | 'calico'
  /** how a packet to a remote node's pods is carried (CrossSubnet: across subnets) */
  encap: Encapsulation
  /** bytes of outer headers: tunnel and pod MTU = underlay − overhead */
  overhead: number
  /** CrossSubnet: same-subnet peers are routed directly, the others through the tunnel */
  crossSubnet: boolean
  /** every node pair must share an L2 segment (the next hop is the peer itself) */
  needsL2: boolean
  /** kernel link kinds the backend creates */
  linkKinds: Array<'vxlan' | 'tun' | 'ipip'>
  daemons: Daemon[]
  /** one line for humans */
  summary: string
}

const OVERHEAD: Record<Encapsulation, number> = {vxlan: 50, udp: 28, ipip: 20, none: 0}

function info(
  family: BackendInfo['family'],
  encap: Encapsulation,
  rest: Partial<BackendInfo> & {summary: string},
): BackendInfo {
  return {
    family,
    encap,
    overhead: OVERHEAD[encap],
    crossSubnet: false,
    needsL2: encap === 'none',
    linkKinds: encap === 'vxlan' ? ['vxlan'] : encap === 'udp' ? ['tun'] : encap === 'ipip' ? ['ipip'] : [],
    daemons: family === 'calico' ? ['bird'] : encap === 'udp' ? ['flannel-udp'] : [],
    ...rest,
  }
}

export const BACKENDS: Record<ConfiguredBackend, BackendInfo> = {
  'flannel-vxlan': info('flannel', 'vxlan', {
    summary: 'flannel.1 (VNI 1, UDP 8472): per peer an onlink route, a PERMANENT neighbour and an FDB entry',
  }),
  'flannel-host-gw': info('flannel', 'none', {
    summary: 'per peer a route via the peer node over the uplink; no encapsulation',
  }),
  'flannel-udp': info('flannel', 'udp', {
    summary: 'TUN flannel0 and a userspace forwarder carrying IP packets in UDP 8285',
  }),
  'calico-bgp': info('calico', 'none', {
    summary: 'BIRD mesh; routes via the peer node over the uplink, proto bird; no encapsulation',
  }),
  'calico-rr': info('calico', 'none', {
    summary: 'BIRD with route reflectors; routes via the peer node, proto bird; no encapsulation',
  }),
  'calico-vxlan': info('calico', 'vxlan', {
    summary: 'vxlan.calico (VNI 4096, UDP 4789), routes programmed by Felix (proto 80); BIRD keeps sessions only',
  }),
  'calico-vxlan-crosssubnet': info('calico', 'vxlan', {
    crossSubnet: true,
    summary: 'vxlan.calico across subnets, direct routes within a subnet (proto 80)',
  }),
  'calico-ipip': info('calico', 'ipip', {
    summary: 'tunl0 (IP protocol 4): routes via the peer node dev tunl0 onlink, proto bird',
  }),
  'calico-ipip-crosssubnet': info('calico', 'ipip', {
    crossSubnet: true,
    summary: 'tunl0 across subnets, direct routes within a subnet (proto bird)',
  }),
  // the overlay is flanneld's (its kernel state is flannel-vxlan's); pods are Calico's cali veths and Felix polices them
  canal: info('flannel', 'vxlan', {
    summary:
      "flannel.1 (VNI 1, UDP 8472) as flannel-vxlan, pods on Calico's cali veths, NetworkPolicy by Felix; no BIRD",
  }),
}

export function backendInfo(b: ConfiguredBackend): BackendInfo {
  return BACKENDS[b]
}

/** Kernel state of calico-rr is calico-bgp's (only BIRD's peers differ); Canal's overlay is flannel-vxlan's. */
export function kernelType(b: ConfiguredBackend): BackendType {
  return b === 'calico-rr' ? 'calico-bgp' : b === 'canal' ? 'flannel-vxlan' : b
}

export function isConfiguredBackend(s: string): s is ConfiguredBackend {
  return Object.hasOwn(BACKENDS, s)
}
