/**
 * A trace: the walk of one packet over a snapshot, hop by hop, and how it
 * ended. Plain JSON and the `netctl trace --json` contract
 * (schemas/trace.schema.json): extend with new optional fields, never rename.
 */
import type {Finding} from './finding.js'

/**
 * How a walk ends: a closed set (docs/design.md "Trace semantics"). A walk that
 * cannot decide says INSUFFICIENT_INFO (and what it lacked) rather than guess.
 */
export const DISPOSITIONS = [
  'DELIVERED',
  'NO_ROUTE',
  'BLACKHOLE',
  'NEIGHBOR_UNRESOLVED',
  'FDB_MISS',
  'DECAP_REJECTED',
  'DENIED',
  'FORWARDING_DISABLED',
  'RP_FILTER_DROP',
  'MTU_EXCEEDED',
  'LOOP',
  'INSUFFICIENT_INFO',
  /** only from --probe: the walk delivers, but the real packet left one node and never reached the next */
  'UNDERLAY_DROP',
] as const

export type Disposition = (typeof DISPOSITIONS)[number]

/**
 * What a hop did with the packet. Small and closed, so a renderer can draw
 * every one of them and a consumer can switch on it.
 */
export const HOP_ACTIONS = [
  /** a FIB lookup (rules, then the longest-prefix route) chose the next hop and the output device */
  'route',
  /** layer-2 forwarding through a Linux bridge (cni0) by its FDB */
  'bridge',
  /** the packet crosses a veth pair into another network namespace */
  'veth',
  /** a tunnel device wraps the packet (vxlan, ipip); the packet's encap stack grows */
  'encap',
  /** a tunnel device on the receiver unwraps it; the encap stack shrinks */
  'decap',
  /** the outer packet crosses the underlay (the nodes' own network) to another node */
  'underlay',
  /** flannel's udp backend: flanneld reads the packet from flannel0 and sends it in UDP 8285 */
  'udp-forward',
  /** the host answers ARP for the pod's gateway (Calico's 169.254.1.1 on a cali* interface) */
  'proxy-arp',
  /** a firewall decision (iptables / nftables / NetworkPolicy chain) let the packet through */
  'filter',
  /** the host forwards the packet from one interface to another (ip_forward, rp_filter checked) */
  'forward',
  /** a local address of the destination namespace accepts the packet */
  'deliver',
  /** the packet is dropped here; the trace's disposition says why */
  'drop',
] as const

export type HopAction = (typeof HOP_ACTIONS)[number]

export type Protocol = 'icmp' | 'tcp' | 'udp'

/** One layer of encapsulation around the packet. */
/** How DST named a Service: its ClusterIP, a node's NodePort, one of its external IPs or a load balancer's IP. */
export type ServiceVia = 'clusterIP' | 'nodePort' | 'externalIP' | 'loadBalancerIP'

export interface Encapsulation {
  /** vxlan (flannel.1, vxlan.calico), ipip (Calico tunl0, IP protocol 4), udp (flannel's udp backend, port 8285) */
  type: 'vxlan' | 'ipip' | 'udp'
  /** outer source IP: the sending node's underlay address */
  outerSrc: string
  /** outer destination IP: the receiving node's underlay address */
  outerDst: string
  /** VXLAN network identifier (flannel: 1, Calico: 4096) */
  vni?: number
  /** outer UDP destination port (flannel vxlan 8472, Calico vxlan 4789, flannel udp 8285) */
  port?: number
}

/** The packet as it is at some point of the walk. */
export interface Packet {
  /** inner (pod-level) source and destination IP */
  src: string
  dst: string
  protocol: Protocol
  /** destination port for tcp / udp */
  port?: number
  /** bytes of the whole IP packet as it is on the wire here (outer headers included) */
  size: number
  /** the Don't Fragment bit: an oversized packet is dropped rather than fragmented */
  df: boolean
  /** encapsulations, innermost first: the last element is the outermost header */
  encap: Encapsulation[]
}

/** One end of a trace: a pod (or a node address) and where it lives. */
export interface Endpoint {
  ip: string
  /** pod name, with its Kubernetes namespace, when the end is a pod */
  pod?: string
  namespace?: string
  /** the node it runs on */
  node?: string
  /** the network namespace it lives in, as netctl entered it */
  netns?: string
}

export interface Hop {
  /** the node the hop happens on ('' never: the underlay hop names the sending node) */
  node: string
  /** network namespace: the pod's netns, or the node's (host) namespace */
  netns: string
  /** interface the packet came in on (absent at the source) */
  in?: string
  /** interface it leaves by (absent where it is delivered or dropped) */
  out?: string
  action: HopAction
  /**
   * The state behind the decision, one line each as the tools print it:
   * `10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink`,
   * `neigh 10.244.2.0 lladdr 5e:..:01 PERMANENT`, `fdb 5e:..:01 dst 172.18.0.12 self permanent`,
   * `-A FORWARD -s 10.244.0.0/16 -j ACCEPT`, `sysctl net.ipv4.ip_forward = 1`.
   */
  evidence: string[]
  /** the packet as it leaves this hop (after encap / decap) */
  packet?: Packet
  /**
   * On a route hop: the FIB question, as `ip route get DST from SRC iif DEV`
   * asks it on this node, and the answer (gateway and device) the walk took.
   */
  lookup?: RouteLookup
  /** the finding codes this hop gave rise to (the findings themselves are in Trace.findings) */
  findings?: string[]
  /** filter hops: the netfilter hook, and what its tables decided beyond accepting */
  netfilter?: NetfilterDecision
}

/** A filter hop's netfilter details: translations asked for, and the ways a statistic/numgen match split the walk. */
export interface NetfilterDecision {
  hook: 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING'
  /** DNAT / SNAT / MASQUERADE / REDIRECT (iptables) or dnat / snat / masquerade / redirect (nft) the nat chains decided */
  nat?: Array<{ruleset: string; rule: string; before?: string; after?: string}>
  /** each way through a chain split by `statistic` or `numgen`, with its probability and the rule it ended at */
  alternatives?: Array<{ruleset: string; probability: number; rule: string}>
}

/** A FIB lookup of a route hop: the question and the next hop it gave. */
export interface RouteLookup {
  dst: string
  src?: string
  /** the interface the packet came in on; absent when the namespace originates it */
  iif?: string
  /** the output device the sender bound the lookup to (a vxlan device's underlay `dev`) */
  oif?: string
  gateway?: string
  dev?: string
}

/** One direction of the walk. */
export interface PathResult {
  disposition: Disposition
  hops: Hop[]
}

/** A rule of a NetworkPolicy: its namespace/name, the direction, the index in ingress[] / egress[]. */
export interface PolicyRuleRef {
  policy: string
  direction: 'Ingress' | 'Egress'
  rule: number
}

/** What one selecting policy says of the packet: the rule that allows it, or its closest rule and why not. */
export interface PolicyRuling {
  policy: string
  allows: boolean
  /** the allowing rule, or the closest one (absent when the policy has no rule for the direction: a default deny) */
  rule?: number
  /** when it does not allow: what the closest rule did not match (the port, the namespace label, the CIDR) */
  mismatches?: string[]
}

/**
 * The NetworkPolicy verdict of one direction, decided at one pod (egress at the source, ingress at the destination):
 * NOT_APPLICABLE (that end is a node, a host-network pod or an outside address: nothing selects it),
 * NOT_ISOLATED (no policy selects the pod for this direction), ALLOWED, DENIED.
 */
export interface PolicyDirectionVerdict {
  direction: 'Ingress' | 'Egress'
  verdict: 'NOT_APPLICABLE' | 'NOT_ISOLATED' | 'ALLOWED' | 'DENIED'
  /** namespace/name of the pod */
  pod?: string
  /** namespace/name of every policy that selects the pod for this direction */
  policies: string[]
  allowedBy?: PolicyRuleRef
  /** why it passes without a rule (the pod's own node) */
  reason?: string
  /** when denied: the closest rule (rule absent: a policy without rules) and what it did not match */
  closest?: Omit<PolicyRuleRef, 'rule'> & {rule?: number; mismatches: string[]}
  /** each selecting policy's ruling */
  rulings?: PolicyRuling[]
}

/** The NetworkPolicies' answer for the traced packet. */
export interface TracePolicy {
  /** whether the cluster's CNI enforces policies; null when the snapshot does not say which CNI runs */
  enforced: boolean | null
  /** what the policies decide, enforced or not */
  allowed: boolean
  egress: PolicyDirectionVerdict
  ingress: PolicyDirectionVerdict
}

export interface Trace extends PathResult {
  src: Endpoint
  dst: Endpoint
  /** the packet as the source sends it */
  packet: Packet
  /**
   * The reply's walk from dst back to src (a reply can take another path).
   * null when the forward walk did not deliver, so there is no reply to walk.
   */
  returnPath: PathResult | null
  /** every finding raised along either path */
  findings: Finding[]
  /**
   * The checks run beside the walk: the nodes they looked at (those the path crosses, either way)
   * and the finding codes they can raise there. Absent when none ran (no node on the path was collected).
   */
  checks?: {nodes: string[]; codes: string[]}
  /** with INSUFFICIENT_INFO: what the snapshot lacked ("node2: iptables not collected") */
  missing?: string[]
  /** the NetworkPolicies' verdict for the packet, when the snapshot holds policies */
  policy?: TracePolicy
  /** with --probe: the real packet sent after the walk, and where the counters saw it */
  probe?: ProbeResult
  /** DST is a Service: which, by which port, and how many of its endpoints the request reaches */
  service?: TraceService
  /** DST is a Service: the translation of the walk shown in `hops` (ClusterIP:port → endpoint:targetPort); null when nothing translated it */
  translation?: TraceTranslation | null
  /** DST is a Service: every endpoint, with the probability kube-proxy's rules give it and its own walk */
  endpoints?: TraceServiceEndpoint[]
}

/** The Service a trace's DST named. */
export interface TraceService {
  namespace: string
  name: string
  clusterIP: string
  /** the Service port the request is for */
  port: {name?: string; protocol: 'TCP' | 'UDP' | 'SCTP'; port: number; targetPort?: number; nodePort?: number}
  /** reached through its ClusterIP, or a node's NodePort */
  via: ServiceVia
  /** the node whose NodePort DST named */
  node?: string
  /** internalTrafficPolicy Local: a node sends ClusterIP traffic only to its own endpoints */
  internalTrafficPolicy?: 'Local'
  /** externalTrafficPolicy Local: a node sends NodePort traffic from outside it only to its own endpoints */
  externalTrafficPolicy?: 'Local'
  /** ClientIP session affinity, as the Service asks for it (kube-proxy's rules decide what the walk does) */
  sessionAffinity?: {clientIP: {timeoutSeconds: number}}
  /** the Service's spec.trafficDistribution: its endpoints' topology hints keep each node's traffic near it */
  trafficDistribution?: string
  /** endpoints whose walk is DELIVERED both ways, of the endpoints kube-proxy's rules send to (`walked` of them walked) */
  reached: number
  total: number
}

/** A translation of the request at one hop: where, by which rule of which agent, and the packet before and after. */
export interface TraceTranslation {
  node: string
  netns: string
  hook: string
  ruleset: string
  rule: string
  /** whose chain holds the rule: kube-proxy, the host, ... */
  agent: string
  before: string
  after: string
}

/** One endpoint of a Service DST. */
export interface TraceServiceEndpoint {
  ip: string
  /** the port the request arrives on (the targetPort), when the rule or the Service says */
  port?: number
  pod?: string
  namespace?: string
  node?: string
  /** listed in the Service's EndpointSlices, and ready there */
  inEndpointSlice: boolean
  ready: boolean
  /** the share of new connections kube-proxy's rules (at `translation.node`) send here; 0 when no rule does */
  probability: number
  /** the rule of the split that chose this endpoint */
  rule?: string
  /** this endpoint's walk: absent when it was not walked (no rule sends there, or --endpoint chose another) */
  disposition?: Disposition
  returnDisposition?: Disposition | null
  hops?: Hop[]
  returnPath?: PathResult | null
  translation?: TraceTranslation | null
  /** the codes of the findings this endpoint's walk raised (the findings are in Trace.findings) */
  findings?: string[]
  /** why it was not walked */
  note?: string
}

/** Where a probe's counters saw the packet: a node's interface, in the host namespace. */
export interface ProbePoint {
  node: string
  interface: string
  /** rx: the packet came in on it; tx: it left by it */
  direction: 'rx' | 'tx'
}

/** One counter read around the probe: how many packets the interface counted (and dropped) while it was sent. */
export interface ProbeCounter extends ProbePoint {
  /** which path the walk put it on */
  path: 'forward' | 'return'
  /** the packets it counted, less those the kernel counted as IPv6 multicast received on it (never the probe's) */
  packets: number
  dropped: number
  /** rx: the IPv6 multicast packets it received meanwhile (neighbour discovery, MLD), left out of `packets` */
  ipv6Multicast?: number
}

/**
 * A netfilter rule whose counter the probe read before and after the send: one the walk
 * used (its evidence names it), or a drop rule (DROP / REJECT, nft drop / reject) of a
 * chain the walk crossed. Only rules with counters: every iptables rule, an nft rule with
 * a `counter` statement.
 */
export interface ProbeRuleCounter {
  node: string
  path: 'forward' | 'return'
  /** index of the hop in its path that crossed the chain */
  hop: number
  ruleset: 'iptables' | 'nft'
  /** iptables: the table (filter, nat, …); nft: `family name` of the table */
  table: string
  chain: string
  /** as the walk prints it: iptables-save's line, or nft's rule without its counter values */
  rule: string
  /** the walk's evidence names it */
  used: boolean
  /** its verdict drops the packet */
  drops: boolean
  packets: number
  bytes: number
}

/** The flow's conntrack entries on one node, after the send (`conntrack -L` filtered by the flow, bounded). */
export interface ProbeConntrack {
  node: string
  /** each as `conntrack -L` prints it */
  entries: string[]
  /** more entries matched than were read */
  truncated?: boolean
}

/**
 * `trace --probe`: the walk's packet sent for real from the source pod, and the counters along the walk's hops.
 * verdict: confirmed (walk and packet agree), underlay-drop (left a node's uplink, never reached the next node),
 * model-disagrees (they part elsewhere), not-sent (the node could not send; the note says why).
 */
export interface ProbeResult {
  verdict: 'confirmed' | 'underlay-drop' | 'model-disagrees' | 'not-sent'
  /** what was run inside the source pod's network namespace */
  command: string
  sent: number
  /** replies that came back; null for UDP, which has no reply to count (the counters decide) */
  answered: number | null
  /** the last point on the walk's path whose counters saw every packet sent */
  lastSeen: ProbePoint | null
  /** the first point on the path whose counters did not */
  firstMissing: ProbePoint | null
  /** the counter deltas in path order (forward, then return) */
  counters: ProbeCounter[]
  /** the netfilter rules read around the probe (those the walk used, and the drop rules of the chains it crossed) with their deltas */
  rules?: ProbeRuleCounter[]
  /** the flow's conntrack entries on each node the walk crosses, read after the send */
  conntrack?: ProbeConntrack[]
  /** a big DF ping that was lost, sent again small: answered, the size is what the path does not carry (an MTU) */
  smaller?: {size: number; sent: number; answered: number}
  /** one line for the reader: what the probe showed, a node that could not send */
  note?: string
}
