/**
 * Netfilter state beside iptables-save: the nftables ruleset as `nft -j list
 * ruleset` gives it, ipsets as `ipset save` gives them, and conntrack. Plain
 * JSON data stored in snapshots: extend with optional fields, never rename.
 */

/** One nft JSON expression (`{"match": {...}}`, `{"accept": null}`, ...), kept as nft printed it. */
export type NftExpr = Record<string, unknown>

/**
 * A value in nft JSON: a literal, `{"prefix": {...}}`, `{"range": [a, b]}`,
 * `{"concat": [...]}`, `{"set": [...]}`, a verdict (`{"goto": {"target": ...}}`), ...
 */
export type NftValue = unknown

export type NftFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev'

export interface NftRule {
  handle?: number
  comment?: string
  expr: NftExpr[]
  /** the rule as `nft list ruleset` prints it */
  text: string
  /** from a counter statement, when the rule has one */
  packets?: number
  bytes?: number
}

export interface NftChain {
  name: string
  handle?: number
  /** base chains: filter, nat or route */
  type?: string
  /** base chains: prerouting, input, forward, output, postrouting, ingress, egress */
  hook?: string
  /** base chains: the priority as a number (dstnat = -100, srcnat = 100, ...) */
  prio?: number
  policy?: 'accept' | 'drop'
  /** netdev ingress/egress: the device */
  dev?: string
  comment?: string
  rules: NftRule[]
}

/** One element of a set or map: the key (a concatenation has several parts), and for a map its value. */
export interface NftElement {
  key: NftValue
  value?: NftValue
  comment?: string
}

export interface NftSet {
  name: string
  /** a set, or a map (verdict maps included) */
  kind: 'set' | 'map'
  /** key type; a concatenation lists each part (`["ipv4_addr", "inet_proto", "inet_service"]`) */
  type: string | string[]
  /** a map's value type: `verdict`, `ipv4_addr`, ... */
  map?: string | string[]
  /** interval, constant, timeout, dynamic, ... */
  flags?: string[]
  elements: NftElement[]
  handle?: number
  comment?: string
}

export interface NftTable {
  family: NftFamily
  name: string
  handle?: number
  flags?: string[]
  comment?: string
  chains: NftChain[]
  sets: NftSet[]
}

export interface NftRuleset {
  /** nft's version from the metainfo object, when printed */
  version?: string
  tables: NftTable[]
}

/** One ipset member; `timeout`/`comment`/... options after the value are kept as written. */
export interface IpsetMember {
  /** as ipset save writes it: `10.0.0.1`, `10.0.0.0/24`, `10.96.0.10,udp:53`, a set's name for list:set */
  value: string
  options?: string[]
}

export interface Ipset {
  name: string
  /** hash:ip, hash:net, hash:ip,port, hash:net,port, bitmap:port, list:set, ... */
  type: string
  family?: 'inet' | 'inet6'
  /** the create line's other options (hashsize, maxelem, timeout, ...) */
  options: string[]
  members: IpsetMember[]
}

/**
 * The address lists of iptables' `recent` match (xt_recent), as `/proc/net/xt_recent/NAME` shows them
 * in the node's netns: kube-proxy's ClientIP session affinity (`-m recent --set` in a KUBE-SEP chain,
 * `--rcheck --seconds T --reap` in its KUBE-SVC chain). Times are the kernel's jiffies.
 */
export interface XtRecent {
  /** the kernel's jiffies when the lists were read; absent when /proc/timer_list could not be read */
  jiffies?: number
  /** jiffies a second (CONFIG_HZ), worked out from jiffies and the monotonic clock; absent when they do not tell */
  hz?: number
  tables: XtRecentTable[]
}

export interface XtRecentTable {
  /** the list's name (`--name`; kube-proxy's are its KUBE-SEP chains' names) */
  name: string
  entries: XtRecentEntry[]
}

/** `src=ADDR ttl: N last_seen: J oldest_pkt: I J1, J2, ...` */
export interface XtRecentEntry {
  address: string
  ttl: number
  lastSeen: number
  /** the packets' times kept (up to ip_pkt_list_tot), oldest first as the kernel prints them */
  stamps: number[]
}

/** One direction of a conntrack entry. */
export interface ConntrackTuple {
  src: string
  dst: string
  sport?: number
  dport?: number
  /** icmp: type, code and id */
  type?: number
  code?: number
  id?: number
}

export interface ConntrackEntry {
  family: 'inet' | 'inet6'
  protocol: string
  /** seconds left */
  timeout?: number
  /** tcp state: ESTABLISHED, TIME_WAIT, SYN_SENT, ... */
  state?: string
  /** the original direction (as the first packet was seen) */
  orig: ConntrackTuple
  /** the reply direction (the original, translated back: DNAT/SNAT show here) */
  reply: ConntrackTuple
  /** ASSURED, UNREPLIED, OFFLOAD, ... */
  flags: string[]
  mark?: number
  zone?: number
}

export interface Conntrack {
  /** nf_conntrack_count / nf_conntrack_max */
  count?: number
  max?: number
  entries: ConntrackEntry[]
  /** the probe read only the first `limit` entries: there were more */
  truncated?: boolean
  limit?: number
  /**
   * which entries the probe read: `dnat`, only those whose destination was
   * translated (Service flows: ClusterIPs, NodePorts); absent, every entry
   * (probes before the filter)
   */
  filter?: 'dnat'
}
