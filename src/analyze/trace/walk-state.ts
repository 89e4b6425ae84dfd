import type {Finding, FindingCode} from '../../model/finding.js'
import {podNotRead, podNotReadFix} from '../../model/node-state.js'
import type {Disposition, Hop, Packet} from '../../model/trace.js'
import {type FindingInput, makeFinding} from '../catalogue/index.js'
import {raise} from '../checks/raise.js'
import type {CtState} from '../netfilter/iptables-match.js'
import type {CtEntry} from './nat.js'
import {type Place, type SnapshotIndex} from './place.js'

/** The packet in flight and what the kernel tracks with it. */
export interface Flight {
  pkt: Packet
  /** the inner packet's TTL: every forwarding node takes one */
  ttl: number
  /** conntrack's view: the request is NEW, its reply ESTABLISHED */
  ct: CtState
  /** the source port, on the reply of a tcp/udp request (its destination port then) */
  sport?: number
  /** where the outermost encapsulation was put on, for the receiver's checks */
  tunnel?: TunnelEntry
  /** the packet's mark and its connection's mark as netfilter left them, in the namespace `at` (node|netns) */
  marks?: {at: string; mark: number; ctmark: number}
  /** the interface the packet was first sent from, and its MTU (what the sender believes the path takes) */
  origin?: {node: string; netns: string; dev: string; mtu: number}
  /**
   * rerouted after OUTPUT's DNAT (the nat chains have decided for this packet), the rest of the hook still to
   * run: the chains (unit labels) that ran before the reroute, and the device
   * the packet was first routed to, which the chains after it still see as the output device (the kernel hands
   * the hook its device once, when the packet enters it)
   */
  outputResume?: {done: string[]; out: string}
  /** the connection's translations at the namespace `at` (node|netns), for `--ctstate DNAT` and `ct status dnat` */
  ctnat?: {at: string; dnat?: boolean; snat?: boolean}
  /** the namespace (node|netns) whose raw table let this packet go untracked (NOTRACK, nft notrack): there it stays so */
  untracked?: string
  /**
   * the same for the tunnel's outer packet (Felix's NOTRACK of its VXLAN port): the namespace, and how many
   * encapsulations the packet had then (the outer header it concerns; a decapsulation leaves it behind)
   */
  untrackedTunnel?: {at: string; depth: number}
  /** the bridge port the packet came in by, where it went up to IP on its bridge (node|netns) */
  bridgedIn?: {at: string; port: string}
  /**
   * translated by br_netfilter's PREROUTING to an address behind the same bridge: the kernel bridges it back from
   * the port it came in by (br_netfilter's bridged DNAT), so leaving by that port again takes the port's hairpin
   */
  bridgedDnat?: {at: string; port: string}
}

/** The rule that let a request go untracked in a namespace, and where it is (iptables' raw table, or an nft table). */
export interface Untracking {
  rule: string
  /** `raw` (iptables), or `FAMILY TABLE` (nftables) */
  table: string
  nft: boolean
}

/** The sending side of a tunnel, as the receiver's decap checks need it. */
export interface TunnelEntry {
  node: string
  dev: string
  /** the next hop the route gave (flannel: the peer's VTEP address) */
  nexthop: string
  /** the inner destination MAC (vxlan) */
  mac?: string
  /** the tunnel's outer overhead in bytes */
  overhead: number
  /** the tunnel below this one, when tunnels nest */
  outer?: TunnelEntry
}

/** One step of the walk, run by the driver until the walk stops. */
export type Step =
  /** an IP packet at a namespace: received on inDev, or originated there */
  | {kind: 'l3'; place: Place; inDev?: string; flight: Flight; oif?: string}
  /** a frame arriving on a device; mac: its destination MAC (absent on devices without link-layer addresses) */
  | {kind: 'frame'; place: Place; dev: string; mac?: string; flight: Flight}

/** Where a statistic/numgen split chose among ways that translate the request: kube-proxy picking an endpoint. */
export interface Split {
  node: string
  netns: string
  hook: string
  ruleset: string
  /** the agent whose chain decided (kube-proxy) */
  owner: string
  ways: Array<{probability: number; rule: string; to?: {addr: string; port?: number}}>
}

/** Findings and nodes wanted, shared by the forward and the return walk. */
export class Shared {
  readonly findings: Finding[] = []
  readonly needNodes = new Set<string>()
  readonly missing: string[] = []
  /** the request's translations, node by node: the reply is translated back where they were made */
  readonly conntrack: CtEntry[] = []
  /** the ways a statistic/numgen split sent the request, where some translate it (a Service's endpoints) */
  readonly splits: Split[] = []
  /** rules that sent the request on by what the node remembers of its source (ClientIP affinity), node by node */
  readonly remembered: Array<{node: string; rule: string}> = []
  /** the namespaces (node|netns) where the request went untracked, and the rule: conntrack there has no connection for the reply */
  readonly untracked = new Map<string, Untracking>()

  /**
   * pin: a Service trace's endpoint address, whose way the request takes at a split (each endpoint is walked in turn);
   * chains: what a chain decided for a packet, kept across the walks of one Service trace (they cross the same chains)
   */
  constructor(
    readonly pin?: string,
    readonly chains?: Map<string, unknown>,
  ) {}

  raise(code: FindingCode, input: FindingInput & {fixTemplate?: string}): FindingCode {
    const f = input.fixTemplate === undefined ? makeFinding(code, input) : raise(code, input).finding
    if (!this.findings.some((x) => x.code === f.code && x.node === f.node && x.subject === f.subject))
      this.findings.push(f)
    return code
  }

  lack(what: string): void {
    if (!this.missing.includes(what)) this.missing.push(what)
  }
}

export const TTL = 64
/** More steps than any real path takes: the walk is going round in circles. */
export const MAX_STEPS = 256

export class Walk {
  readonly hops: Hop[] = []
  disposition?: Disposition
  /** (node, netns, destination, encapsulation depth) of every routing decision taken */
  readonly seen = new Set<string>()
  /** where the packet was delivered, as it arrived (translated): the reply starts there */
  delivered?: {place: Place; flight: Flight}

  constructor(
    readonly index: SnapshotIndex,
    readonly shared: Shared,
    readonly direction: 'forward' | 'return',
  ) {}

  hop(h: Hop): Hop {
    this.hops.push(h)
    return h
  }

  raise(code: FindingCode, input: FindingInput & {fixTemplate?: string}): FindingCode {
    return this.shared.raise(code, input)
  }

  /** End the walk; the last hop (when given) is where and why. Returns undefined: no next step. */
  stop(disposition: Disposition, hop?: Hop): undefined {
    if (hop) this.hop(hop)
    this.disposition ??= disposition
    return undefined
  }

  /** The snapshot lacks what a decision needs: say what, and stop. */
  insufficient(place: {node: string; netns: string} | undefined, what: string, evidence: string[] = []): undefined {
    this.shared.lack(what)
    return this.stop(
      'INSUFFICIENT_INFO',
      place
        ? {
            node: place.node,
            netns: place.netns,
            action: 'drop',
            evidence: [`not in the snapshot: ${what}`, ...evidence],
          }
        : undefined,
    )
  }

  /** A node's own namespace, or INSUFFICIENT_INFO with the node in needNodes. */
  host(node: string, from?: {node: string; netns: string}): Place | undefined {
    const place = this.index.host(node)
    if (place) return place
    this.shared.needNodes.add(node)
    const err = this.index.collectionError(node)
    this.insufficient(from, `${node}: node state not collected${err ? ` (${err})` : ''}`)
    return undefined
  }

  /** True when the place's probe section is usable; otherwise INSUFFICIENT_INFO naming it. */
  section(place: Place, section: string, purpose: string): boolean {
    const where = place.pod ? `${place.node} pod ${place.pod.namespace}/${place.pod.name}` : place.node
    // a pod whose namespace was never found or entered: its empty tables were not read, they are not empty
    const unread = place.pod && podNotRead(place.pod)
    if (unread) {
      const why = `${unread.section} ${unread.status === 'absent' ? 'not collected' : unread.status}${unread.message ? `: ${unread.message}` : ''}`
      this.insufficient(
        place,
        `${where}: the pod's state was not read (${why}), needed for ${purpose}; ${podNotReadFix(place.node, unread)}`,
      )
      return false
    }
    const s = place.sections[section]
    if (!s || s.status === 'ok') return true
    this.insufficient(
      place,
      `${where}: ${section} ${s.status === 'absent' ? 'not collected' : s.status}${s.message ? ` (${s.message})` : ''}, needed for ${purpose}`,
    )
    return false
  }
}
