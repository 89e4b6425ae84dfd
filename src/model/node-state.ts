/**
 * The typed model of one node's dataplane, as the probe's parsers produce it and
 * src/analyze consumes it. Plain JSON data (it is stored in snapshots): extend
 * with new optional fields, never rename.
 */

import type {Conntrack, Ipset, NftRuleset, XtRecent} from './netfilter.js'

export type Family = 'inet' | 'inet6'

export interface VxlanInfo {
  vni: number
  /** destination UDP port (dstport) */
  port: number
  local?: string
  /** underlay device the vxlan is bound to */
  dev?: string
  learning: boolean
  group?: string
}

export interface Link {
  ifindex: number
  name: string
  /** rtnl kind: vxlan, bridge, veth, tun, ipip, ... (absent for physical and loopback) */
  kind?: string
  mtu: number
  mac?: string
  /** operational state as the kernel reports it: UP, DOWN, UNKNOWN, LOWERLAYERDOWN */
  operstate: string
  /** the IFF_UP flag: administratively up */
  adminUp: boolean
  flags: string[]
  /** bridge (or bond) this link is enslaved to */
  master?: string
  /** veth: the peer's ifindex, and the netns id when the peer lives in another namespace */
  peerIfindex?: number
  linkNetnsid?: number
  vxlan?: VxlanInfo
  tun?: {type: 'tun' | 'tap'; pi: boolean}
  /** a bridge port (`ip -d link`'s info_slave_data when info_slave_kind is bridge): hairpin lets a frame leave by the port it came in */
  bridgePort?: {hairpin: boolean}
}

export interface Address {
  dev: string
  family: Family
  local: string
  prefixlen: number
  scope: string
  broadcast?: string
}

export type RouteType =
  | 'unicast'
  | 'local'
  | 'broadcast'
  | 'blackhole'
  | 'unreachable'
  | 'prohibit'
  | 'throw'
  | 'multicast'
  | 'anycast'
  | 'nat'

export interface NextHop {
  gateway?: string
  dev?: string
  weight?: number
  onlink: boolean
  /** per-nexthop flags as ip prints them: onlink, linkdown, dead, ... */
  flags?: string[]
}

export interface Route {
  family: Family
  /** 'main', 'local', 'default' or a number as a string */
  table: string
  type: RouteType
  /** always a CIDR: 'default' becomes 0.0.0.0/0 or ::/0, a host becomes /32 or /128 */
  dst: string
  gateway?: string
  dev?: string
  /** kernel, boot, static, bird, 80 (Calico's felix), ... */
  protocol?: string
  scope?: string
  prefsrc?: string
  metric?: number
  onlink: boolean
  flags: string[]
  /** multipath: every nexthop (gateway/dev above are then absent) */
  nexthops?: NextHop[]
}

export interface Rule {
  family: Family
  priority: number
  src?: string
  dst?: string
  iif?: string
  oif?: string
  fwmark?: string
  not?: boolean
  /** lookup target table, for action 'lookup' */
  table?: string
  /** target rule priority, for action 'goto' (`ip -j rule` prints it as "goto": N) */
  goto?: number
  action: 'lookup' | 'blackhole' | 'unreachable' | 'prohibit' | 'goto' | 'nop'
}

export interface Neighbour {
  dst: string
  dev: string
  lladdr?: string
  /** kernel NUD states, e.g. ['PERMANENT'], ['REACHABLE'], ['STALE'], ['FAILED'], ['NOARP'] */
  state: string[]
  router?: boolean
  proxy?: boolean
}

export interface FdbEntry {
  mac: string
  /** the device the entry is on (flannel.1, a bridge port, ...) */
  dev: string
  /** vxlan remote (underlay IP of the peer VTEP) */
  dst?: string
  vni?: number
  port?: number
  /** the bridge for `master` entries */
  master?: string
  self: boolean
  permanent: boolean
  static: boolean
  state?: string
  vlan?: number
}

export interface IptablesRule {
  /** the rule as iptables-save prints it, e.g. "-A FORWARD -s 10.244.0.0/16 -j ACCEPT" */
  raw: string
  chain: string
  packets?: number
  bytes?: number
  /** parsed common matches; `!` negation recorded per field in `negated` */
  match: {
    source?: string
    destination?: string
    inInterface?: string
    outInterface?: string
    protocol?: string
    dport?: string
    sport?: string
    /** -m state --state / -m conntrack --ctstate values */
    ctstate?: string[]
    comment?: string
    /** any match netctl does not model; a rule with these is evaluated conservatively */
    other?: string[]
    negated?: string[]
  }
  /** ACCEPT, DROP, REJECT, RETURN, a user chain, MASQUERADE, ... */
  target?: string
  targetArgs?: string[]
  /** -g (goto) instead of -j */
  goto?: boolean
}

export interface IptablesChain {
  name: string
  /** built-in chains have a policy (ACCEPT/DROP); user chains have none ('-') */
  policy?: string
  packets?: number
  bytes?: number
  rules: IptablesRule[]
}

export interface IptablesTable {
  name: string
  chains: IptablesChain[]
}

export interface Iptables {
  /** which iptables wrote this: nf_tables or legacy */
  variant: 'nft' | 'legacy' | 'unknown'
  tables: IptablesTable[]
}

export interface BgpSession {
  /** BIRD protocol name, e.g. Mesh_172_31_0_12 */
  name: string
  /** BIRD's protocol state: up, start, down */
  state: string
  /** BGP FSM state: Established, Active, Connect, OpenSent, Idle, ... */
  bgpState: string
  since?: string
  neighborAddress?: string
  neighborAs?: number
  localAs?: number
  lastError?: string
  routes?: {imported: number; exported: number; filtered?: number; preferred?: number}
  info?: string
  /** the peer's BGP router ID */
  neighborId?: string
  /** BIRD's session flags, e.g. "internal multihop route-reflector AS4" (route-reflector: this side reflects for the peer) */
  session?: string
  sourceAddress?: string
}

export interface BgpRoute {
  prefix: string
  gateway?: string
  dev?: string
  /** BIRD protocol that supplied it (static1, Mesh_..., kernel1) */
  protocol: string
  /** the best route ('*') */
  primary: boolean
  type?: string
  asPath?: string
  from?: string
  /** multipath: every next hop (gateway/dev above are then absent) */
  nexthops?: Array<{gateway?: string; dev?: string; weight?: number}>
}

export interface Process {
  pid: number
  name: string
  args: string
}

export type SectionStatus = 'ok' | 'absent' | 'error' | 'truncated'

/**
 * Why a section failed (error or truncated), so that the fix can name what to
 * do: the probe was cut short, a command timed out (birdc on a hung BIRD), the
 * pod's network namespace is gone, the container runtime did not find the pod,
 * the probe lacked root, a tool is missing or too old for the output netctl
 * reads, or a command failed otherwise.
 */
export const SECTION_CAUSES = [
  'truncated',
  'timeout',
  'netns-gone',
  'runtime',
  'permission',
  'missing-tool',
  'tool-too-old',
  'failed',
] as const
export type SectionCause = (typeof SECTION_CAUSES)[number]

/** One section's outcome; `cause` only on a failed one. */
export interface SectionResult {
  status: SectionStatus
  message?: string
  cause?: SectionCause
}

/** One pod network namespace as seen from its node. */
export interface PodNetnsState {
  namespace: string
  name: string
  /** named netns or /proc/PID/ns/net it was entered through */
  netns: string
  links: Link[]
  addresses: Address[]
  routes: Route[]
  neighbours: Neighbour[]
  sections?: Record<string, SectionResult>
}

export interface NodeState {
  node: string
  collectedAt: string
  kernel?: string
  links: Link[]
  addresses: Address[]
  routes: Route[]
  rules: Rule[]
  neighbours: Neighbour[]
  fdb: FdbEntry[]
  /** keys as sysctl names them, e.g. net.ipv4.ip_forward, net.ipv4.conf.eth0.rp_filter */
  sysctls: Record<string, string>
  iptables?: Iptables
  /** when both iptables-legacy and iptables-nft hold rules */
  iptablesLegacy?: Iptables
  /** iptables-nft-save, when iptables itself is the legacy variant and iptables-nft is installed too */
  iptablesNft?: Iptables
  /** `nft -j list ruleset` as the tool printed it */
  nftables?: unknown
  /** the same ruleset, parsed: tables, chains, rules (with their `nft list` text), sets and maps */
  nft?: NftRuleset
  /** `ipset save`: every set with its members */
  ipsets?: Ipset[]
  /** the `recent` match's address lists (/proc/net/xt_recent) and the kernel's clock: ClientIP session affinity */
  xtRecent?: XtRecent
  /** conntrack's counters and (up to the probe's limit) its entries */
  conntrack?: Conntrack
  bird?: {sessions: BgpSession[]; routes: BgpRoute[]}
  flannelSubnetEnv?: Record<string, string>
  cni?: {confDir: string; files: Array<{name: string; content: string}>; binDir: string; plugins: string[]}
  /** `ethtool -k` of tunnel devices: device → feature → on */
  offloads?: Record<string, Record<string, boolean>>
  processes: Process[]
  pods: PodNetnsState[]
  /** what each probe section returned; `absent` when the tool is missing */
  sections: Record<string, SectionResult>
}

/**
 * Why a pod's own state is missing, when it is: its namespace was not found
 * (`runtime`: crictl absent or failing) or not entered (`netns`). Such a pod's
 * empty links and routes mean "not read", never "none". Snapshots from before
 * pods carried sections have none: their pods count as read.
 */
export function podNotRead(pod: PodNetnsState): {section: string; status: SectionStatus; message?: string} | undefined {
  for (const section of ['runtime', 'netns']) {
    const s = pod.sections?.[section]
    if (s && s.status !== 'ok') return {section, status: s.status, ...(s.message ? {message: s.message} : {})}
  }
  return undefined
}

/** What to do about a pod whose state was not read. */
export function podNotReadFix(node: string, why: {section: string; message?: string}): string {
  return /crictl/.test(why.message ?? '')
    ? `install crictl on ${node}, or give the pod's netns (or pid) in an inventory file`
    : `give the pod's netns (or pid) in an inventory file, or look at why ${node} could not enter it`
}
