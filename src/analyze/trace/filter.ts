import type {FindingCode} from '../../model/finding.js'
import type {Iptables} from '../../model/node-state.js'
import type {Hop} from '../../model/trace.js'
import {chainIsEmpty, evaluateChain} from './iptables.js'
import type {FilterPacket} from './iptables-match.js'
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

/** What the filter table decides for the flight here; stops the walk (DENIED / INSUFFICIENT_INFO) when it does not pass. */
export function filterChain(w: Walk, place: Place, chain: Chain, flight: Flight, devs: {in?: string; out?: string}, onDrop?: (rule: string) => FindingCode | undefined): FilterOutcome {
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
    mark: 0,
  }
  const evidence: string[] = []
  const many = rulesets(place).filter((r) => !chainIsEmpty(r.ipt, chain)).length > 1
  const base = {node: place.node, netns: place.netns, ...(devs.in ? {in: devs.in} : {}), ...(devs.out ? {out: devs.out} : {})}
  for (const rs of rulesets(place)) {
    if (chainIsEmpty(rs.ipt, chain)) continue
    const r = evaluateChain(rs.ipt, chain, p)
    if (!r) continue
    const lines = many ? [`# ${rs.label}`, ...r.evidence] : r.evidence
    if (r.uncertain.length > 0) {
      const u = r.uncertain[0]!
      w.insufficient(place, `${place.node}: whether '${u.rule.raw}' matches ${describeHeader(h)} (${u.unmodelled.join('; ')}: not modelled by netctl)`, lines)
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
