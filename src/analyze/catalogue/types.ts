/**
 * The shape of the findings catalogue: what `netctl explain CODE` prints and
 * what makeFinding() fills. Pure data, no I/O.
 */
import type {FindingCode, Severity} from '../../model/finding.js'
import type {Disposition} from '../../model/trace.js'

/** Areas as JSON-friendly slugs; AREA_TITLES gives docs/design.md's names for them. */
export const AREAS = [
  'overlay',
  'mtu',
  'host',
  'routing',
  'bgp',
  'addressing',
  'cni-policy',
  'services',
  'probe',
  'collection',
  'backend',
] as const
export type Area = (typeof AREAS)[number]

export const AREA_TITLES: Record<Area, string> = {
  overlay: 'overlay',
  mtu: 'MTU',
  host: 'host',
  routing: 'routing',
  bgp: 'BGP',
  addressing: 'addressing',
  'cni-policy': 'CNI / policy',
  services: 'Services',
  probe: 'probe',
  collection: 'collection',
  backend: 'backend switch',
}

export interface CatalogueEntry {
  code: FindingCode
  area: Area
  /** the severity a finding gets unless the check knows better */
  severity: Severity
  /** a few words, shown in lists */
  title: string
  /** what is wrong, in 2-3 sentences */
  meaning: string
  /** what a user sees when it happens */
  symptoms: string
  /** commands (on the node unless they say kubectl / calicoctl) that show it; <placeholders> as in fix */
  confirm: string[]
  /**
   * The repair as a template: one line each; lines starting with `#` explain,
   * every other line is a command. <name> placeholders (PLACEHOLDERS) are
   * filled by makeFinding(): shell-quoted on command lines, as-is in `#` lines.
   * A placeholder never sits inside quotes on a command line.
   */
  fix: string
  /**
   * In a lab, where netctl itself stands in for the agent the fix restarts
   * (kube-proxy): the command that does what the restart does, run on this
   * machine (not in the node's namespace). <lab> and <node> are filled.
   */
  labFix?: string
  /** trace dispositions this fault ends a walk in */
  dispositions?: Disposition[]
  /** other codes worth reading with this one */
  related?: FindingCode[]
}

export interface DispositionGuide {
  disposition: Disposition
  /** one line */
  summary: string
  /** a short paragraph: where the walk stopped and what to look at */
  explanation: string
  /** finding codes that usually come with this disposition */
  findings: FindingCode[]
}

/** Every placeholder a fix or confirm template may use, and what fills it. */
export const PLACEHOLDERS: Record<string, string> = {
  node: 'the node the finding is about (Kubernetes node name)',
  nodeIP: "that node's underlay (InternalIP) address",
  peer: 'the remote node involved',
  peerIP: "the remote node's underlay address",
  podCIDR: "the pod subnet concerned (usually the remote node's podCIDR)",
  vtepIP:
    "the remote node's VTEP address on flannel.1: the network address of its podCIDR (10.244.2.0 for 10.244.2.0/24)",
  vtepMAC: "the remote node's VTEP MAC, from its flannel.alpha.coreos.com/backend-data annotation",
  staleMAC: 'a MAC an entry holds now but should not (an old VTEP MAC)',
  staleIP: 'an underlay address an entry points at now but should not',
  dev: 'a network interface on the node (flannel.1, vxlan.calico, tunl0, cni0, eth0, ...)',
  mtu: 'the MTU the device should have',
  port: 'a UDP port (8472 flannel vxlan, 4789 Calico vxlan, 8285 flannel udp)',
  vni: 'a VXLAN network identifier (1 flannel, 4096 Calico)',
  nexthop: 'the next hop the route should use',
  network: 'the cluster pod network (flannel Network, Calico IP pool)',
  bridgeAddr: "cni0's expected address: the first address of the node's podCIDR with its prefix (10.244.1.1/24)",
  srcIP: 'the source address of the traced packet',
  dstIP: 'the destination address of the traced packet',
  chain: 'an iptables chain (FORWARD, INPUT, a CNI chain)',
  table: 'an iptables table (filter, nat, raw, mangle)',
  rule: 'the firewall rule as iptables-save prints it',
  peerAS: 'the AS number the remote BGP speaker uses',
  localAS: 'the AS number this node uses',
  protocol: 'the BGP protocol name in BIRD (Mesh_172_18_0_12, Node_..., ...)',
  clusterID: 'a route reflector cluster ID',
  pod: 'a pod name',
  namespace: 'a Kubernetes namespace',
  policy: 'a NetworkPolicy name',
  file: 'a file on the node',
  plugin: 'a CNI plugin binary name',
  backend: 'a backend type as netctl names it (flannel-vxlan, flannel-host-gw, calico-bgp, ...)',
  family: 'the CNI family the cluster runs now (flannel, calico)',
  newFamily: 'the CNI family a switch asked for',
  module: 'a kernel module that makes a link type (vxlan, ipip, tun)',
  program: 'a program a backend daemon needs on every node (bird, birdc, socat)',
  service: 'a Service name',
  l4proto: 'a transport protocol as conntrack names it (tcp, udp, sctp)',
  sport: "the original direction's source port of a conntrack entry",
  dport: "the original direction's destination port of a conntrack entry (the Service port or NodePort)",
  encap:
    'the encapsulation as the underlay carries it between two nodes (UDP 8472, IP protocol 4, or plain pod traffic)',
  capture: 'a tcpdump filter for that traffic (udp port 8472, ip proto 4, net 10.244.2.0/24)',
  endpointIP: 'the address a conntrack entry translates to (a pod IP that is, or was, a Service endpoint)',
}

/** `<name>` placeholders in a template, in order, each once. */
export function placeholdersIn(template: string): string[] {
  return [...new Set([...template.matchAll(/<([A-Za-z][A-Za-z0-9]*)>/g)].map((m) => m[1]!))]
}
