import type {FindingCode} from '../../model/finding.js'
import type {Iptables, NodeState} from '../../model/node-state.js'
import type {Hop} from '../../model/trace.js'
import {lookupRoute} from '../fib.js'
import {cidrContains, parseCidr, parseIp} from '../ip.js'
import {chainIsEmpty, describeAlternatives, evaluateChain} from './iptables.js'
import type {FilterPacket} from './iptables-match.js'
import type {MatchEnv} from './xt-match.js'
import {describeHeader, header} from './packet.js'
import type {Place} from './place.js'
import type {Flight, Walk} from './walk-state.js'

/**
 * A firewall chain on the packet's way: filter FORWARD for a packet the node
 * forwards (also bridged frames when br_netfilter hands them to iptables),
 * INPUT for one it receives, OUTPUT for one it sends. Every ruleset the node
 * holds is walked (iptables-nft and iptables-legacy both hook into netfilter).
 */
export type Chain = 'FORWARD' | 'INPUT' | 'OUTPUT'

export interface FilterOutcome {
  passed: boolean
  /** evidence for a filter hop; empty when every chain was empty (nothing to show) */
  evidence: string[]
}

function rulesets(place: Place): Array<{label: string; ipt: Iptables; section: string}> {
  const s = place.state
  const out: Array<{label: string; ipt: Iptables; section: string}> = []
  if (s.iptables) out.push({label: s.iptables.variant === 'legacy' ? 'iptables-legacy' : 'iptables', ipt: s.iptables, section: 'iptables'})
  if (s.iptablesLegacy && place.sections['iptables-legacy']?.status === 'ok') out.push({label: 'iptables-legacy', ipt: s.iptablesLegacy, section: 'iptables-legacy'})
  if (s.iptablesNft) out.push({label: 'iptables-nft', ipt: s.iptablesNft, section: 'iptables'})
  return out
}

const ADDR_TYPES: Record<string, string> = {local: 'LOCAL', broadcast: 'BROADCAST', anycast: 'ANYCAST', multicast: 'MULTICAST', unicast: 'UNICAST', blackhole: 'BLACKHOLE', unreachable: 'UNREACHABLE', prohibit: 'PROHIBIT', throw: 'THROW', nat: 'NAT'}

/**
 * The address type xt_addrtype gives `ip`: the route the node's local table
 * holds for it (LOCAL, BROADCAST, ...), UNICAST when none; with a device
 * (--limit-iface-in/out) only a route through that device counts.
 */
export function addrType(state: NodeState, ip: string, dev?: string): string | undefined {
  const a = parseIp(ip)
  if (!a) return undefined
  if (a.family === 'inet') {
    if (a.bytes[0]! >= 224 && a.bytes[0]! < 240) return 'MULTICAST'
    if (a.bytes.every((b) => b === 255) || a.bytes[0] === 0) return 'BROADCAST'
  } else if (a.bytes[0] === 0xff) return 'MULTICAST'
  const local = state.routes.filter((r) => r.table === 'local' && r.family === a.family)
  if (local.length === 0) {
    // no local table in the snapshot: the node's own addresses are what it holds
    if (state.sections[a.family === 'inet' ? 'routes4' : 'routes6']?.status !== 'ok' && state.sections.addresses?.status !== 'ok') return undefined
    return state.addresses.some((x) => parseIp(x.local)?.text === a.text && (dev === undefined || x.dev === dev)) ? 'LOCAL' : 'UNICAST'
  }
  let best: (typeof local)[number] | undefined
  let bestLen = -1
  for (const r of local) {
    const c = parseCidr(r.dst)
    if (c && c.len > bestLen && cidrContains(c, a)) {
      best = r
      bestLen = c.len
    }
  }
  if (!best || (dev !== undefined && best.dev !== dev)) return 'UNICAST'
  return ADDR_TYPES[best.type] ?? 'UNICAST'
}

/** What the extension matches read at `place` for the packet `p`. */
export function matchEnv(place: Place, p: FilterPacket): MatchEnv {
  const s = place.state
  const ipsetSection = place.sections.ipset
  return {
    ...(s.ipsets && ipsetSection?.status === 'ok'
      ? {ipsets: s.ipsets}
      : {ipsetsMissing: `${place.node}: ipset ${ipsetSection ? (ipsetSection.status === 'absent' ? 'not collected' : ipsetSection.status) : 'not collected'}${ipsetSection?.message ? ` (${ipsetSection.message})` : ''}`}),
    addrType: (ip, dev) => addrType(s, ip, dev),
    rpfilter: ({loose, validmark, acceptLocal}) => {
      if (!p.in) return undefined
      if (p.in === 'lo') return true
      const d = lookupRoute(place.fib, {dst: p.src, ...(validmark ? {fwmark: p.mark} : {})})
      if (d.type === 'local') return acceptLocal
      if (d.type !== 'unicast') return false
      return loose || d.dev === p.in || (d.nexthops ?? []).some((n) => n.dev === p.in)
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

/** What the filter table decides for the flight here; stops the walk (DENIED / INSUFFICIENT_INFO) when it does not pass. */
export function filterChain(w: Walk, place: Place, chain: Chain, flight: Flight, devs: {in?: string; out?: string; phys?: FilterPacket['phys']}, onDrop?: (rule: string) => FindingCode | undefined): FilterOutcome {
  if (!w.section(place, 'iptables', `the filter ${chain} chain`)) return {passed: false, evidence: []}
  const h = header(flight)
  const p: FilterPacket = {
    src: h.src,
    dst: h.dst,
    protocol: h.protocol,
    ...(h.sport !== undefined ? {sport: h.sport} : {}),
    ...(h.dport !== undefined ? {dport: h.dport} : {}),
    ...(devs.in ? {in: devs.in} : {}),
    ...(devs.out ? {out: devs.out} : {}),
    // an encapsulated packet is the tunnel's own flow: conntrack sees it as NEW only the first time, and no rule here tells
    ctstate: flight.pkt.encap.length > 0 ? 'NEW' : flight.ct,
    ctdir: flight.pkt.encap.length > 0 || w.direction === 'forward' ? 'ORIGINAL' : 'REPLY',
    mark: 0,
    ctmark: 0,
  }
  const phys = physOf(place, devs)
  if (phys) p.phys = phys
  const env = matchEnv(place, p)
  const evidence: string[] = []
  const many = rulesets(place).filter((r) => !chainIsEmpty(r.ipt, chain)).length > 1
  const base = {node: place.node, netns: place.netns, ...(devs.in ? {in: devs.in} : {}), ...(devs.out ? {out: devs.out} : {})}
  for (const rs of rulesets(place)) {
    if (chainIsEmpty(rs.ipt, chain)) continue
    const r = evaluateChain(rs.ipt, chain, p, 'filter', env)
    if (!r) continue
    const split = r.alternatives ? [`statistic matches split the walk; the most likely way is shown:`, ...describeAlternatives(r)] : []
    const lines = many ? [`# ${rs.label}`, ...r.evidence, ...split] : [...r.evidence, ...split]
    if (r.uncertain.length > 0) {
      const u = r.uncertain[0]!
      w.insufficient(place, `${place.node}: whether '${u.rule.raw}' matches ${describeHeader(h)} (${u.unmodelled.join('; ')})`, lines)
      return {passed: false, evidence: lines}
    }
    if (r.verdict !== 'ACCEPT') {
      const ruleText = r.rule?.raw ?? `-P ${chain} ${r.verdict}`
      const custom = onDrop?.(ruleText)
      const code =
        custom ??
        (r.rule || chain !== 'FORWARD'
          ? w.raise('FIREWALL_DROP', {
              node: place.node,
              subject: `${rs.label} filter ${r.chain}`,
              message: `${ruleText} drops ${describeHeader(h)} on ${place.node}`,
              evidence: lines,
              vars: {rule: ruleText, table: 'filter', chain: r.chain},
            })
          : w.raise('FORWARD_POLICY_DROP', {
              node: place.node,
              subject: `${rs.label} filter FORWARD`,
              message: `no rule accepts ${describeHeader(h)} and the FORWARD policy is ${r.verdict} on ${place.node}`,
              evidence: lines,
              vars: {network: w.index.snapshot.cluster.clusterCIDR},
            }))
      w.stop('DENIED', {...base, action: 'drop', evidence: lines, findings: [code]})
      return {passed: false, evidence: lines}
    }
    evidence.push(...lines)
  }
  return {passed: true, evidence}
}

/** A filter hop when the chains had something to say. */
export function filterHop(place: Place, chain: Chain, devs: {in?: string; out?: string}, evidence: string[], flight: Flight): Hop | undefined {
  if (evidence.length === 0) return undefined
  return {node: place.node, netns: place.netns, ...(devs.in ? {in: devs.in} : {}), ...(devs.out ? {out: devs.out} : {}), action: 'filter', evidence: [`filter ${chain}:`, ...evidence], packet: flight.pkt}
}

/** A firewall that drops a tunnel's own packets: ENCAP_PORT_BLOCKED names the overlay port. */
export function encapBlocked(w: Walk, place: Place, f: Flight): ((rule: string) => FindingCode | undefined) | undefined {
  const e = f.pkt.encap.at(-1)
  if (!e) return undefined
  return (rule: string) =>
    w.raise('ENCAP_PORT_BLOCKED', {
      node: place.node,
      subject: e.type === 'ipip' ? 'IPIP (IP protocol 4)' : `UDP ${e.port}`,
      message: `${rule} drops the ${e.type} packets between ${e.outerSrc} and ${e.outerDst} on ${place.node}`,
      evidence: [rule],
      vars: {node: place.node, port: e.port ?? 4, peerIP: w.index.nodeOwning(e.outerSrc)?.name === place.node ? e.outerDst : e.outerSrc},
    })
}
