import type {FindingCode} from '../../model/finding.js'
import type {Iptables} from '../../model/node-state.js'
import type {Hop, NetfilterDecision} from '../../model/trace.js'
import {nftDropFix, ufwDropFix} from '../catalogue/host.js'
import {nftEncapFix, UFW_ENCAP_FIX} from '../catalogue/overlay.js'
import {reversePathLookup} from '../fib.js'
import {parseIp} from '../ip.js'
import {addrType} from '../netfilter/addr-type.js'
import {flowHeaderFields} from '../netfilter/header-fields.js'
import {chainIsEmpty, describeAlternatives, evaluateChain} from '../netfilter/iptables.js'
import type {CtState, FilterPacket} from '../netfilter/iptables-match.js'
import {describeNftAlternatives, evaluateNftChain, type VmapElement} from '../netfilter/nft.js'
import {chainOwner, iptablesNftTables, ufwManages} from '../netfilter/owned-tables.js'
import type {MatchEnv} from '../netfilter/xt-match.js'
import {intendedDrop, raiseIntendedDrop} from './kube-proxy-drop.js'
import {describeRewrite, dnatTarget, type NatDecision, natRewrite, type Rewrite, rewriteHeader} from './nat.js'
import {describeHeader, header} from './packet.js'
import type {Place} from './place.js'
import type {Flight, Untracking, Walk} from './walk-state.js'

/**
 * A firewall chain on the packet's way: filter FORWARD for a packet the node
 * forwards (also bridged frames when br_netfilter hands them to iptables),
 * INPUT for one it receives, OUTPUT for one it sends. Every ruleset the node
 * holds is walked (iptables-nft and iptables-legacy both hook into netfilter).
 */
export type Chain = 'PREROUTING' | 'FORWARD' | 'INPUT' | 'OUTPUT' | 'POSTROUTING'

export interface FilterOutcome {
  passed: boolean
  /** evidence for a filter hop; empty when every chain was empty (nothing to show) */
  evidence: string[]
  /** translations decided and alternatives met, for the hop's `netfilter` */
  nat?: NonNullable<NetfilterDecision['nat']>
  alternatives?: NonNullable<NetfilterDecision['alternatives']>
  /** the translation the nat chains applied to the packet here (DNAT/REDIRECT before routing, SNAT/MASQUERADE after) */
  rewrite?: Rewrite
  /** the line saying so, for the hop's evidence */
  rewriteLine?: string
  /**
   * OUTPUT: a DNAT changed the destination, so the kernel routes the packet again there and the hook goes on
   * with the new route: the chains that ran up to it (the rest run in the pass after the new route)
   */
  outputDone?: string[]
  /** OUTPUT: the mangle table (or an nft route chain) changed the packet's mark: the kernel routes it again by it */
  markRerouted?: boolean
}

function rulesets(place: Place): Array<{label: string; ipt: Iptables; section: string}> {
  const s = place.state
  const out: Array<{label: string; ipt: Iptables; section: string}> = []
  if (s.iptables)
    out.push({
      label: s.iptables.variant === 'legacy' ? 'iptables-legacy' : 'iptables',
      ipt: s.iptables,
      section: 'iptables',
    })
  if (s.iptablesLegacy && place.sections['iptables-legacy']?.status === 'ok')
    out.push({label: 'iptables-legacy', ipt: s.iptablesLegacy, section: 'iptables-legacy'})
  if (s.iptablesNft) out.push({label: 'iptables-nft', ipt: s.iptablesNft, section: 'iptables'})
  return out
}

/** What the extension matches read at `place` for the packet `p`. */
export function matchEnv(place: Place, p: FilterPacket): MatchEnv {
  const s = place.state
  const ipsetSection = place.sections.ipset
  const recentSection = place.sections['xt-recent']
  return {
    ...(s.ipsets && ipsetSection?.status === 'ok'
      ? {ipsets: s.ipsets}
      : {
          ipsetsMissing: `${place.node}: ipset ${ipsetSection ? (ipsetSection.status === 'absent' ? 'not collected' : ipsetSection.status) : 'not collected'}${ipsetSection?.message ? ` (${ipsetSection.message})` : ''}`,
        }),
    ...(s.xtRecent && recentSection?.status === 'ok'
      ? {recent: s.xtRecent}
      : {
          recentMissing: `${place.node}: /proc/net/xt_recent ${recentSection ? (recentSection.status === 'absent' ? 'not read' : recentSection.status) : 'not read'}${recentSection?.message ? ` (${recentSection.message})` : ''}`,
        }),
    addrType: (ip, dev) => addrType(s, ip, dev),
    rpfilter: ({loose, validmark, acceptLocal}) => {
      if (!p.in) return undefined
      if (p.in === 'lo') return true
      // a bare FIB lookup, as xt_rpfilter does it: no source selection (a cali veth has no address)
      const d = reversePathLookup(place.fib, {dst: p.src, src: p.dst, ...(validmark ? {fwmark: p.mark} : {})})
      if (!d) return false
      if (d.type === 'local') return acceptLocal
      if (d.type !== 'unicast') return false
      return loose || d.devs.includes(p.in)
    },
  }
}

/** br_netfilter's view of a packet the walk filters: the bridge ports, or none (physdev). */
function physOf(place: Place, devs: {in?: string; out?: string; phys?: FilterPacket['phys']}): FilterPacket['phys'] {
  if (devs.phys) return devs.phys
  const inLink = devs.in ? place.links.get(devs.in) : undefined
  // routed in from a bridge with br_netfilter on: it came through one of its ports, which one is not known here
  if (inLink?.kind === 'bridge' && place.state.sysctls['net.bridge.bridge-nf-call-iptables'] === '1') return undefined
  return {}
}

/** iptables tables at each hook, with the priority the kernel registers them at. */
const IPT_TABLES: Record<Chain, Array<{table: string; prio: number}>> = {
  PREROUTING: [
    {table: 'raw', prio: -300},
    {table: 'mangle', prio: -150},
    {table: 'nat', prio: -100},
  ],
  INPUT: [
    {table: 'mangle', prio: -150},
    {table: 'filter', prio: 0},
    {table: 'nat', prio: 100},
  ],
  FORWARD: [
    {table: 'mangle', prio: -150},
    {table: 'filter', prio: 0},
  ],
  OUTPUT: [
    {table: 'raw', prio: -300},
    {table: 'mangle', prio: -150},
    {table: 'nat', prio: -100},
    {table: 'filter', prio: 0},
  ],
  POSTROUTING: [
    {table: 'mangle', prio: -150},
    {table: 'nat', prio: 100},
  ],
}
/** Which of the ways a statistic/numgen split the walk follows: deterministic, and said so. */
function whichWay(ways: Array<{probability: number}>, pin?: string): string {
  if (pin !== undefined) return `the way to endpoint ${pin} is walked`
  const equal = ways.every((x) => Math.abs(x.probability - ways[0]!.probability) < 1e-6)
  return equal
    ? 'the ways are equally likely, the first is walked'
    : 'the most likely way is walked (the first of equals)'
}

/**
 * A split walk pinned to one endpoint (a Service trace walks each): the way whose
 * DNAT sends there, else the most likely way, as without a pin.
 */
function pinned<T extends {alternatives?: T[]}>(
  r: T,
  pin: string | undefined,
  to: (a: T) => {addr?: string} | undefined,
): T {
  if (pin === undefined || !r.alternatives) return r
  // '' pins the way no DNAT takes (a rule missing from the middle of a Service's chain)
  return r.alternatives.find((a) => (to(a)?.addr ?? '') === pin) ?? r
}

/** A chain's verdict for a packet, computed once per trace (a Service trace walks the same chains once per endpoint). */
function memo<T>(cache: Map<string, unknown> | undefined, keyOf: () => string, f: () => T): T {
  if (!cache) return f()
  const key = keyOf()
  if (cache.has(key)) return cache.get(key) as T
  const v = f()
  cache.set(key, v)
  return v
}

const toOf = (t: {addr?: string; port?: number} | undefined): {to?: {addr: string; port?: number}} =>
  t?.addr ? {to: {addr: t.addr, ...(t.port !== undefined ? {port: t.port} : {})}} : {}

interface Unit {
  prio: number
  label: string
  /** iptables' mangle table and nft's route chains: a locally sent packet whose mark they change is routed again */
  reroutes?: boolean
  /** iptables filter units keep the evidence exactly as before (a header only when several speak) */
  evaluate: () => UnitResult | undefined
  empty: boolean
}

interface UnitResult {
  accepted: boolean
  verdict: string
  ruleText?: string
  policyDrop: boolean
  /** how findings name the ruleset: `iptables filter`, `nft inet firewalld` */
  subject: string
  table: string
  chain: string
  owner: string
  evidence: string[]
  uncertain?: {rule: string; why: string}
  /** the rule of a nat chain that decided a translation */
  nat?: string
  natDecision?: NatDecision
  alternatives?: Array<{probability: number; rule: string; to?: {addr: string; port?: number}}>
  /** nftables: the commented verdict map element the verdict came through */
  element?: VmapElement
  /** a rule taken on what the node remembers of the source (`-m recent --rcheck`, a dynamic nft set) */
  remembered?: string
  /** the rule that let the packet go untracked here (raw's NOTRACK, nft notrack) */
  untrackedBy?: string
  /** nftables: the table's family and name, and the deciding rule's handle (how nft names and deletes it) */
  nft?: {family: string; table: string; handle?: number}
  mark: number
  ctmark: number
}

/** Every base chain at `hook` for this packet, iptables (both variants) and native nftables, in priority order. */
function hookUnits(
  place: Place,
  hook: Chain,
  st: {pkt: FilterPacket},
  env: MatchEnv,
  bridged: boolean,
  natDecided: boolean,
  pin: string | undefined,
  cache: Map<string, unknown> | undefined,
): Unit[] {
  const s = place.state
  const units: Unit[] = []
  const firstPacket = st.pkt.ctstate === 'NEW' && !natDecided
  for (const rs of rulesets(place)) {
    for (const {table, prio} of IPT_TABLES[hook]) {
      // nat is consulted for a connection's first packet only
      if (table === 'nat' && !firstPacket) continue
      units.push({
        prio,
        ...(table === 'mangle' ? {reroutes: true} : {}),
        label: table === 'filter' ? rs.label : `${rs.label} ${table}`,
        empty: chainIsEmpty(rs.ipt, hook, table),
        evaluate: () => {
          // a packet raw left untracked has no connection to translate: nat's hooks pass it by
          if (table === 'nat' && st.pkt.ctstate === 'UNTRACKED') return undefined
          const all = memo(
            cache,
            () => `${place.node}|${place.netns}|${rs.label}|${table}|${hook}|${JSON.stringify(st.pkt)}`,
            () => evaluateChain(rs.ipt, hook, st.pkt, table, env),
          )
          if (!all) return undefined
          const r = pinned(all, pin, (a) => (a.nat ? dnatTarget({iptables: a.nat}) : undefined))
          st.pkt = r.packet
          const split = all.alternatives
            ? [
                `statistic matches split the walk; ${whichWay(all.alternatives, r !== all ? pin : undefined)}:`,
                ...describeAlternatives(all),
              ]
            : []
          const u = r.uncertain[0]
          return {
            accepted: r.verdict === 'ACCEPT',
            verdict: r.verdict,
            ...(r.rule ? {ruleText: r.rule.raw} : {}),
            policyDrop: !r.rule,
            subject: `${rs.label} ${table}`,
            table,
            chain: r.chain,
            owner: chainOwner(r.chain),
            evidence: [...r.evidence, ...split],
            ...(r.remembered ? {remembered: r.remembered} : {}),
            ...(r.untrackedBy ? {untrackedBy: r.untrackedBy} : {}),
            ...(u ? {uncertain: {rule: u.rule.raw, why: u.unmodelled.join('; ')}} : {}),
            ...(r.nat && r.rule ? {nat: r.rule.raw, natDecision: {iptables: r.nat}} : {}),
            ...(all.alternatives
              ? {
                  alternatives: all.alternatives.map((a) => ({
                    probability: a.probability,
                    rule: a.rule?.raw ?? `-P ${a.chain} ${a.verdict}`,
                    ...toOf(a.nat ? dnatTarget({iptables: a.nat}) : undefined),
                  })),
                }
              : {}),
            mark: r.packet.mark,
            ctmark: r.packet.ctmark ?? 0,
          }
        },
      })
    }
  }
  if (s.nft && place.sections.nftables?.status === 'ok') {
    const owned = iptablesNftTables(s)
    const family = parseIp(st.pkt.dst)?.family === 'inet6' ? 'ip6' : 'ip'
    for (const t of s.nft.tables) {
      if (t.family !== family && t.family !== 'inet' && !(bridged && t.family === 'bridge')) continue
      if ((t.family === 'ip' || t.family === 'ip6') && owned.has(t.name)) continue
      for (const c of t.chains) {
        if (c.hook !== hook.toLowerCase() || c.prio === undefined) continue
        if (c.type === 'nat' && !firstPacket) continue
        units.push({
          prio: c.prio,
          ...(c.type === 'route' ? {reroutes: true} : {}),
          label: `nft ${t.family} ${t.name} ${c.name} (hook ${c.hook} priority ${c.prio})`,
          empty: c.rules.length === 0 && (c.policy ?? 'accept') === 'accept',
          evaluate: () => {
            if (c.type === 'nat' && st.pkt.ctstate === 'UNTRACKED') return undefined
            const all = memo(
              cache,
              () => `${place.node}|${place.netns}|nft ${t.family} ${t.name} ${c.name}|${JSON.stringify(st.pkt)}`,
              () => evaluateNftChain(t, c, {...st.pkt, ctstate: st.pkt.ctstate}, env),
            )
            const r = pinned(all, pin, (a) => (a.nat ? dnatTarget({nft: a.nat}) : undefined))
            st.pkt = {
              ...st.pkt,
              mark: r.packet.mark,
              ...(r.packet.ctmark !== undefined ? {ctmark: r.packet.ctmark} : {}),
              ...(r.packet.ctstate === 'UNTRACKED' ? {ctstate: 'UNTRACKED' as const} : {}),
            }
            const split = all.alternatives
              ? [
                  `numgen splits the walk; ${whichWay(all.alternatives, r !== all ? pin : undefined)}:`,
                  ...describeNftAlternatives(all),
                ]
              : []
            const u = r.uncertain[0]
            return {
              accepted: r.verdict === 'accept',
              verdict: r.verdict,
              ...(r.rule ? {ruleText: r.rule.text} : {}),
              policyDrop: !r.rule,
              subject: `nft ${t.family} ${t.name}`,
              table: `${t.family} ${t.name}`,
              chain: r.chain,
              owner: chainOwner(r.chain, t.name),
              evidence: [`table ${t.family} ${t.name} chain ${c.name}:`, ...r.evidence, ...split],
              ...(r.element ? {element: r.element} : {}),
              ...(r.remembered ? {remembered: r.remembered} : {}),
              ...(r.untrackedBy ? {untrackedBy: r.untrackedBy} : {}),
              nft: {family: t.family, table: t.name, ...(r.rule?.handle !== undefined ? {handle: r.rule.handle} : {})},
              ...(u ? {uncertain: {rule: u.rule.text, why: u.why}} : {}),
              ...(r.nat && r.rule ? {nat: r.rule.text, natDecision: {nft: r.nat}} : {}),
              ...(all.alternatives
                ? {
                    alternatives: all.alternatives.map((a) => ({
                      probability: a.probability,
                      rule: a.rule?.text ?? `chain ${a.chain} policy ${a.verdict}`,
                      ...toOf(a.nat ? dnatTarget({nft: a.nat}) : undefined),
                    })),
                  }
                : {}),
              mark: r.packet.mark,
              ctmark: r.packet.ctmark ?? 0,
            }
          },
        })
      }
    }
  }
  // the kernel runs hooks by priority; at equal priority in registration order (kept here)
  return units
    .map((u, i) => ({u, i}))
    .sort((a, b) => a.u.prio - b.u.prio || a.i - b.i)
    .map(({u}) => u)
}

/**
 * What netfilter decides for the flight at `chain`'s hook here: every table
 * and native nftables base chain registered there, in priority order; stops
 * the walk (DENIED / INSUFFICIENT_INFO) when it does not pass. The packet
 * mark set at one hook is read at the next on the same node.
 */
export function filterChain(
  w: Walk,
  place: Place,
  chain: Chain,
  flight: Flight,
  devs: {in?: string; out?: string; phys?: FilterPacket['phys']},
  onDrop?: (rule: string, whose: string, by: DropBy) => FindingCode | undefined,
): FilterOutcome {
  const purpose =
    chain === 'PREROUTING' || chain === 'POSTROUTING' ? `netfilter's ${chain} hook` : `the filter ${chain} chain`
  if (!w.section(place, 'iptables', purpose)) return {passed: false, evidence: []}
  const nftSection = place.sections.nftables
  if (
    nftSection &&
    (nftSection.status === 'error' || nftSection.status === 'truncated') &&
    !w.section(place, 'nftables', `the nftables chains at ${chain}`)
  )
    return {passed: false, evidence: []}
  const h = header(flight)
  const key = `${place.node}|${place.netns}`
  // the mark lives with the packet inside one namespace: a new one (or a new packet) starts at 0
  // OUTPUT after the reroute its DNAT asked for goes on with the marks the chains before it set
  const resumed = chain === 'OUTPUT' && flight.outputResume !== undefined
  const held =
    chain === 'PREROUTING' || (chain === 'OUTPUT' && !resumed) || flight.marks?.at !== key
      ? {mark: 0, ctmark: 0}
      : flight.marks
  // raw left this packet untracked earlier in this namespace; or it is the reply to a request that went
  // untracked here, which conntrack never saw: a UDP reply starts a connection of its own, while an echo
  // reply or a SYN-ACK can start none (conntrack's icmp and tcp trackers call it INVALID)
  const untracked = flight.untracked === key
  const tunnelUntracked = flight.untrackedTunnel?.at === key && flight.untrackedTunnel.depth === flight.pkt.encap.length
  const replyUnseen = w.direction === 'return' && w.shared.untracked.has(key)
  const p: FilterPacket = {
    src: h.src,
    dst: h.dst,
    protocol: h.protocol,
    ...(h.sport !== undefined ? {sport: h.sport} : {}),
    ...(h.dport !== undefined ? {dport: h.dport} : {}),
    ...(devs.in ? {in: devs.in} : {}),
    ...(devs.out ? {out: devs.out} : {}),
    // an encapsulated packet is the tunnel's own flow: conntrack sees it as NEW only the first time, and no rule here
    // tells; unless raw left it untracked in this namespace (Felix's NOTRACK of its VXLAN port)
    ctstate:
      flight.pkt.encap.length > 0
        ? tunnelUntracked
          ? 'UNTRACKED'
          : 'NEW'
        : untracked
          ? 'UNTRACKED'
          : replyUnseen
            ? unseenReplyState(h.protocol)
            : flight.ct,
    ctdir: flight.pkt.encap.length > 0 || w.direction === 'forward' || replyUnseen ? 'ORIGINAL' : 'REPLY',
    mark: held.mark,
    ctmark: held.ctmark,
    ...(flight.ctnat?.at === key && flight.pkt.encap.length === 0
      ? {ctnat: {...(flight.ctnat.dnat ? {dnat: true} : {}), ...(flight.ctnat.snat ? {snat: true} : {})}}
      : {}),
    length: flight.pkt.size,
    // the flow's own packet (an encapsulation's outer header is the tunnel's: its TTL and TOS are the device's)
    ...(flight.pkt.encap.length === 0
      ? {
          ...flowHeaderFields(h.protocol, parseIp(h.dst)?.family === 'inet6', w.direction === 'return'),
          ttl: flight.ttl,
          tos: 0,
        }
      : {}),
  }
  const phys = physOf(place, devs)
  if (phys) p.phys = phys
  const env = matchEnv(place, p)
  const evidence: string[] = []
  const nat: NonNullable<FilterOutcome['nat']> = []
  const alternatives: NonNullable<FilterOutcome['alternatives']> = []
  const st = {pkt: p}
  // a Service trace walks each endpoint in turn: the request's translation is pinned to it
  const pin = w.direction === 'forward' && flight.pkt.encap.length === 0 ? w.shared.pin : undefined
  const units = hookUnits(place, chain, st, env, devs.phys?.bridged === true, resumed, pin, w.shared.chains)
  let rewrite: Rewrite | undefined
  let rewriteLine: string | undefined
  let outputDone: string[] | undefined
  let markRerouted = false
  const done = resumed ? new Set(flight.outputResume!.done) : undefined
  const ran: string[] = []
  const many = units.filter((u) => !u.empty && !done?.has(u.label)).length > 1
  const base = {
    node: place.node,
    netns: place.netns,
    ...(devs.in ? {in: devs.in} : {}),
    ...(devs.out ? {out: devs.out} : {}),
  }
  for (const unit of units) {
    if (done?.has(unit.label)) continue
    ran.push(unit.label)
    if (unit.empty) continue
    const markBefore = flight.marks?.at === key ? flight.marks.mark : held.mark
    const r = unit.evaluate()
    if (!r) continue
    flight.marks = {at: key, mark: r.mark, ctmark: r.ctmark}
    const lines = many ? [`# ${unit.label}`, ...r.evidence] : r.evidence
    if (r.uncertain) {
      w.insufficient(
        place,
        `${place.node}: whether '${r.uncertain.rule}' matches ${describeHeader(h)} (${r.uncertain.why})`,
        lines,
      )
      return {passed: false, evidence: lines}
    }
    if (!r.accepted) {
      const ruleText =
        r.ruleText ??
        (unit.label.startsWith('nft ') ? `chain ${r.chain} policy ${r.verdict}` : `-P ${chain} ${r.verdict}`)
      const whose = r.owner === 'the host' ? '' : ` (${r.owner}'s chain ${r.chain})`
      // ufw's own chains, or the policy ufw set on a chain it manages: the change is made through ufw
      const ufw =
        !r.nft &&
        (r.owner === 'ufw' ||
          (r.policyDrop &&
            ufwManages(
              place.state.iptables?.tables.find((t) => t.name === 'filter'),
              chain,
            )))
      const custom = onDrop?.(ruleText, whose, {
        ...(r.nft ? {nft: {family: r.nft.family, table: r.nft.table, chain: r.chain}} : {}),
        ufw,
      })
      // kube-proxy's own drop of a Service without (local) endpoints: the cause and its fix are the Service's
      const intended =
        custom === undefined && r.ruleText !== undefined && flight.pkt.encap.length === 0
          ? intendedDrop(
              {owner: r.owner, chain: r.chain, text: r.ruleText, ...(r.element ? {element: r.element} : {})},
              [...evidenceHere(w, place), ...evidence, ...lines],
            )
          : undefined
      // the reply to a request that went untracked here: conntrack calls it INVALID (or NEW), which the
      // rule drops; the cause, and what to change, is the rule that untracked the request
      const unseen = replyUnseen ? w.shared.untracked.get(key) : undefined
      const ports = h.protocol === 'tcp' || h.protocol === 'udp'
      const ufwFix = ufw
        ? {
            fixTemplate: ufwDropFix({
              hook: chain,
              userRule: /^ufw6?-user-/.test(r.chain),
              ...(r.ruleText !== undefined && /^ufw6?-(before|after)-(input|output|forward)$/.test(r.chain)
                ? {
                    file: `${r.chain.includes('-before-') ? 'before' : 'after'}${r.chain.startsWith('ufw6') ? '6' : ''}.rules`,
                  }
                : {}),
              ports,
              port: ports && h.dport !== undefined,
            }),
            vars: {
              chain: r.chain,
              rule: ruleText,
              proto: h.protocol,
              src: h.src,
              dst: h.dst,
              ...(h.dport !== undefined ? {dport: h.dport} : {}),
            },
          }
        : undefined
      const code =
        custom ??
        (unseen ? raiseUnseenReply(w, place, unseen, {ruleText, whose, chain: r.chain}, h, lines) : undefined) ??
        (intended ? raiseIntendedDrop(w, place, intended, h, lines) : undefined) ??
        (!r.policyDrop || chain !== 'FORWARD'
          ? w.raise('FIREWALL_DROP', {
              node: place.node,
              subject: `${r.subject} ${r.chain}`,
              message: `${ruleText}${whose} drops ${describeHeader(h)} on ${place.node}`,
              evidence: lines,
              vars: {
                rule: ruleText,
                table: r.table,
                chain: r.chain,
                ...(r.nft ? {family: r.nft.family, nftTable: r.nft.table} : {}),
                ...(ufwFix?.vars ?? {}),
              },
              // native nftables: nft's own commands, not iptables'
              ...(r.nft ? {fixTemplate: nftDropFix(r.nft.handle)} : {}),
              ...(ufwFix ? {fixTemplate: ufwFix.fixTemplate} : {}),
            })
          : w.raise('FORWARD_POLICY_DROP', {
              node: place.node,
              subject: `${r.subject} ${r.chain}`,
              message: `no rule accepts ${describeHeader(h)} and the FORWARD policy is ${r.verdict} on ${place.node}`,
              evidence: lines,
              vars: {network: w.index.snapshot.cluster.clusterCIDR, ...(ufwFix?.vars ?? {})},
              ...(ufwFix ? {fixTemplate: ufwFix.fixTemplate} : {}),
            }))
      w.stop('DENIED', {...base, action: 'drop', evidence: lines, findings: [code]})
      return {passed: false, evidence: lines}
    }
    evidence.push(...lines)
    if (r.remembered && w.direction === 'forward') w.shared.remembered.push({node: place.node, rule: r.remembered})
    if (r.untrackedBy && flight.pkt.encap.length > 0 && !tunnelUntracked)
      flight.untrackedTunnel = {at: key, depth: flight.pkt.encap.length}
    if (r.untrackedBy && flight.pkt.encap.length === 0 && !untracked) {
      flight.untracked = key
      if (w.direction === 'forward')
        w.shared.untracked.set(key, {rule: r.untrackedBy, table: r.table, nft: r.nft !== undefined})
    }
    for (const a of r.alternatives ?? [])
      alternatives.push({ruleset: unit.label, probability: a.probability, rule: a.rule})
    // the ways kube-proxy's rules choose among, with where each sends the request: a Service trace walks every one
    if (w.direction === 'forward' && r.alternatives?.some((a) => a.to) && flight.pkt.encap.length === 0) {
      w.shared.splits.push({
        node: place.node,
        netns: place.netns,
        hook: chain,
        ruleset: unit.label,
        owner: r.owner,
        ways: r.alternatives,
      })
    }
    // the packet itself is translated (not a tunnel's outer header): later chains, routing and the wire see the new addresses
    const applies = r.natDecision && flight.pkt.encap.length === 0 && chain !== 'FORWARD'
    if (r.nat && r.natDecision && applies) {
      const before: typeof h = {
        ...h,
        src: st.pkt.src,
        dst: st.pkt.dst,
        ...(st.pkt.dport !== undefined ? {dport: st.pkt.dport} : {}),
      }
      const rw = natRewrite(place, r.natDecision, before, devs)
      if (typeof rw === 'string') {
        w.insufficient(place, `${place.node}: the translation '${r.nat}' asks for (${rw})`, lines)
        return {passed: false, evidence: lines}
      }
      if (rw) {
        const after = rewriteHeader(before, rw)
        st.pkt = {
          ...st.pkt,
          src: after.src,
          dst: after.dst,
          ...(after.dport !== undefined ? {dport: after.dport} : {}),
          ctnat: {...st.pkt.ctnat, [rw.kind]: true},
        }
        rewrite = rewrite ? {...rewrite, ...rw, kind: rw.kind} : rw
        rewriteLine = describeRewrite(rw, before, after)
        evidence.push(rewriteLine)
        nat.push({ruleset: unit.label, rule: r.nat, before: describeHeader(before), after: describeHeader(after)})
        // a locally sent packet given a new destination is routed again before the chains after this one see it
        if (chain === 'OUTPUT' && rw.kind === 'dnat' && after.dst !== before.dst) {
          outputDone = ran
          break
        }
        continue
      }
    }
    if (r.nat) nat.push({ruleset: unit.label, rule: r.nat})
    // ip_route_me_harder: a locally sent packet whose mark mangle changed is routed again (`ip rule fwmark`)
    if (chain === 'OUTPUT' && unit.reroutes && r.mark !== markBefore && flight.pkt.encap.length === 0) {
      outputDone = ran
      markRerouted = true
      evidence.push(`mark 0x${r.mark.toString(16)} set in OUTPUT: the kernel routes the packet again with it`)
      break
    }
  }
  return {
    passed: true,
    evidence,
    ...(nat.length > 0 ? {nat} : {}),
    ...(alternatives.length > 0 ? {alternatives} : {}),
    ...(rewrite ? {rewrite} : {}),
    ...(rewriteLine ? {rewriteLine} : {}),
    ...(outputDone ? {outputDone} : {}),
    ...(markRerouted ? {markRerouted} : {}),
  }
}

/** What conntrack makes of a reply whose request it never saw: UDP starts a connection, an echo reply or a SYN-ACK none. */
const unseenReplyState = (protocol: string): CtState => (protocol === 'udp' ? 'NEW' : 'INVALID')

/**
 * FIREWALL_DROP for a reply conntrack never saw the request of: the request went untracked here (raw's
 * NOTRACK), so the reply is INVALID to conntrack (an echo reply, a SYN-ACK) or a NEW connection (UDP), and a
 * rule that lets only known connections back (kube-proxy's `--ctstate INVALID -j DROP`, a policy's ESTABLISHED
 * accept) drops it. The fix is the untracking rule's: delete it, or untrack the replies as well.
 */
function raiseUnseenReply(
  w: Walk,
  place: Place,
  unseen: Untracking,
  drop: {ruleText: string; whose: string; chain: string},
  h: ReturnType<typeof header>,
  lines: string[],
): FindingCode {
  const state = unseenReplyState(h.protocol) === 'NEW' ? 'a NEW connection' : 'INVALID'
  const where = unseen.nft ? `nft table ${unseen.table}` : `iptables ${unseen.table}`
  return w.raise('FIREWALL_DROP', {
    node: place.node,
    subject: `${where}: the request untracked`,
    message: `${drop.ruleText}${drop.whose} drops the reply ${describeHeader(h)} on ${place.node}: the request went untracked there (${unseen.rule}), so conntrack has no connection for the reply and takes it for ${state}`,
    evidence: [...lines, `${where}, on the request's way: ${unseen.rule}`],
    vars: {node: place.node, rule: unseen.rule, table: unseen.table, chain: drop.chain},
    fixTemplate: [
      `# the request was untracked on <node> by: <rule>`,
      `# so its reply is ${state} to conntrack there, and ${drop.ruleText} drops it`,
      unseen.nft ? `nft -a list table ${unseen.table}` : `iptables -t raw -S`,
      unseen.nft
        ? `# delete the notrack rule by its handle (nft delete rule ${unseen.table} CHAIN handle HANDLE), or untrack the replies too (the same rule, source and destination swapped)`
        : `# delete the NOTRACK rule (iptables -t raw -D followed by the rule as -S prints it), or untrack the replies too (the same rule, source and destination swapped)`,
    ].join('\n'),
  })
}

/** The evidence of the walk's latest hops, while they are at this place (the hooks the packet passed here so far). */
function evidenceHere(w: Walk, place: Place): string[] {
  let i = w.hops.length
  while (i > 0 && w.hops[i - 1]!.node === place.node && w.hops[i - 1]!.netns === place.netns) i--
  return w.hops.slice(i).flatMap((x) => x.evidence)
}

/** A filter hop when the chains had something to say. */
export function filterHop(
  place: Place,
  chain: Chain,
  devs: {in?: string; out?: string},
  evidence: string[],
  flight: Flight,
  outcome?: FilterOutcome,
): Hop | undefined {
  if (evidence.length === 0) return undefined
  const netfilter: NetfilterDecision | undefined =
    outcome?.nat || outcome?.alternatives
      ? {
          hook: chain,
          ...(outcome.nat ? {nat: outcome.nat} : {}),
          ...(outcome.alternatives ? {alternatives: outcome.alternatives} : {}),
        }
      : undefined
  return {
    node: place.node,
    netns: place.netns,
    ...(devs.in ? {in: devs.in} : {}),
    ...(devs.out ? {out: devs.out} : {}),
    action: 'filter',
    evidence: [`filter ${chain}:`, ...evidence],
    packet: flight.pkt,
    ...(netfilter ? {netfilter} : {}),
  }
}

/** A firewall that drops a tunnel's own packets: ENCAP_PORT_BLOCKED names the overlay port. */
export function encapBlocked(
  w: Walk,
  place: Place,
  f: Flight,
): ((rule: string, whose: string, by: DropBy) => FindingCode | undefined) | undefined {
  const e = f.pkt.encap.at(-1)
  if (!e) return undefined
  return (rule, whose, by) => {
    const peerIP = w.index.nodeOwning(e.outerSrc)?.name === place.node ? e.outerDst : e.outerSrc
    // the tool that owns the dropping table says how to open the port: firewalld, nft, ufw; else iptables
    const fix: {fixTemplate?: string; vars: Record<string, string>} =
      by.nft && e.type !== 'ipip'
        ? {
            fixTemplate: nftEncapFix(by.nft.family, by.nft.table),
            vars: {family: by.nft.family, nftTable: by.nft.table, chain: by.nft.chain},
          }
        : by.ufw && e.type !== 'ipip'
          ? {fixTemplate: UFW_ENCAP_FIX, vars: {}}
          : {vars: {}}
    return w.raise('ENCAP_PORT_BLOCKED', {
      node: place.node,
      subject: e.type === 'ipip' ? 'IPIP (IP protocol 4)' : `UDP ${e.port}`,
      message: `${rule}${whose} drops the ${e.type} packets between ${e.outerSrc} and ${e.outerDst} on ${place.node}`,
      evidence: [rule],
      vars: {node: place.node, port: e.port ?? 4, peerIP, ...fix.vars},
      ...(fix.fixTemplate ? {fixTemplate: fix.fixTemplate} : {}),
    })
  }
}

/** Who dropped a packet, for a drop's own finding: a native nftables table's chain, or ufw. */
export interface DropBy {
  nft?: {family: string; table: string; chain: string}
  ufw: boolean
}
