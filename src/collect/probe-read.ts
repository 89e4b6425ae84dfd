/**
 * `trace --probe`'s counter read on one node, before and after the send: interface
 * counters (`ip -s -j link show`) with the IPv6 multicast packets each interface
 * received (`Ip6InMcastPkts` of /proc/net/dev_snmp6/IF: neighbour discovery and MLD,
 * never the probe's), the counters of the netfilter rules the walk used
 * (`iptables-save -c`, `nft -j list ruleset`: only when the walk crossed rules of that
 * kind there), and after the send the flow's conntrack entries (`conntrack -L` filtered
 * by the flow, the freshest PROBE_CONNTRACK_LIMIT: most time left first). One POSIX sh fragment per read, so the
 * source node's before-read, send and after-read go in one exec; it only reads.
 */
import ipaddr from 'ipaddr.js'

import type {RulesetRead} from '../analyze/probe-rules.js'
import {PROBE_CONNTRACK_LIMIT} from '../defaults.js'
import type {ProbeConntrack} from '../model/trace.js'
import {shq} from '../util/shell.js'
import {parseConntrackEntries} from './parse/conntrack.js'
import {parseIptablesSave} from './parse/iptables.js'
import {type LinkCounters, parseLinkCounters} from './parse/link-stats.js'
import {parseNftRuleset} from './parse/nft.js'

const MARK = '--- netctl-probe-read'

/** The flow conntrack is asked about: the packet as the source sends it. */
export interface ProbeFlow {
  src: string
  dst: string
  protocol: 'icmp' | 'tcp' | 'udp'
  port?: number
}

export interface ProbeReadOptions {
  /**
   * before: the interface counters read first, then the IPv6 multicast ones; after: the
   * other way round. So multicast counted between the two reads was counted by the
   * interfaces too, and leaving it out never takes away one of the probe's packets.
   */
  after?: boolean
  iptables: boolean
  nft: boolean
  /** after the send: the flow whose conntrack entries are read */
  conntrack?: ProbeFlow
}

/** `conntrack -L` for the flow (its original direction), with a `limit N` head as the collect's conntrack section has. */
export function conntrackCommand(flow: ProbeFlow): string {
  for (const ip of [flow.src, flow.dst]) if (!ipaddr.isValid(ip)) throw new Error(`not an IP address: ${ip}`)
  const v6 = ipaddr.parse(flow.dst).kind() === 'ipv6'
  const port = flow.protocol === 'icmp' || flow.port === undefined ? '' : ` --dport ${Number(flow.port)}`
  const proto = flow.protocol === 'icmp' && v6 ? 'icmpv6' : flow.protocol
  return [
    `echo 'limit ${PROBE_CONNTRACK_LIMIT}'`,
    `conntrack -L${v6 ? ' -f ipv6' : ''} -p ${proto} -s ${shq(flow.src)} -d ${shq(flow.dst)}${port} -o extended 2>/dev/null | sort -rn -k5,5 | head -n ${PROBE_CONNTRACK_LIMIT + 1}`,
  ].join('; ')
}

/**
 * One line per interface, `/proc/net/dev_snmp6/IF:Ip6InMcastPkts N`; nothing where the kernel has no IPv6,
 * and still exit 0 then (a read whose exec fails is not used).
 */
const IPV6_MULTICAST = "grep -H '^Ip6InMcastPkts' /proc/net/dev_snmp6/* 2>/dev/null || true"

/** The sh fragment of one read; each part after a marker line, a part whose tool is missing left out. */
export function probeReadScript(opts: ProbeReadOptions): string {
  const part = (name: string, tool: string, cmd: string) =>
    `if command -v ${tool} >/dev/null 2>&1; then echo; echo '${MARK} ${name}'; ${cmd}; fi`
  return [
    // the parts print in the same order either way; after the send the multicast is read (into $m) before the links
    ...(opts.after
      ? [
          `m=$(${IPV6_MULTICAST})`,
          `echo; echo '${MARK} links'; ip -s -j link show`,
          `echo; echo '${MARK} ipv6-multicast'; printf '%s\\n' "$m"`,
        ]
      : [`echo; echo '${MARK} links'; ip -s -j link show`, `echo; echo '${MARK} ipv6-multicast'; ${IPV6_MULTICAST}`]),
    ...(opts.iptables ? [part('iptables', 'iptables-save', 'iptables-save -c 2>/dev/null')] : []),
    ...(opts.nft ? [part('nft', 'nft', 'nft -j list ruleset 2>/dev/null')] : []),
    ...(opts.conntrack ? [part('conntrack', 'conntrack', conntrackCommand(opts.conntrack))] : []),
  ].join('\n')
}

/** One read, parsed; a part that could not be parsed is left out (its counters are then not compared). */
export interface ProbeRead {
  links: LinkCounters
  /** interface name → IPv6 multicast packets it received (Ip6InMcastPkts); empty when not read */
  ipv6Multicast: Map<string, number>
  rulesets: RulesetRead
  conntrack?: Omit<ProbeConntrack, 'node'>
}

/** The output of one or more reads in a row: the reads in order. */
export function parseProbeReads(text: string): ProbeRead[] {
  const reads: ProbeRead[] = []
  for (const chunk of text.split(`${MARK} `).slice(1)) {
    const nl = chunk.indexOf('\n')
    const name = chunk.slice(0, nl < 0 ? undefined : nl).trim()
    const body = nl < 0 ? '' : chunk.slice(nl + 1)
    if (name === 'links') {
      // the link counters are the first part of every read
      reads.push({links: parseLinkCounters(body.trim()), ipv6Multicast: new Map(), rulesets: {}})
      continue
    }
    const read = reads.at(-1)
    if (!read) continue
    try {
      if (name === 'ipv6-multicast') read.ipv6Multicast = parseIpv6Multicast(body)
      else if (name === 'iptables') read.rulesets.iptables = [parseIptablesSave(body)]
      else if (name === 'nft' && body.trim() !== '') read.rulesets.nft = parseNftRuleset(body)
      else if (name === 'conntrack') read.conntrack = parseFlowConntrack(body)
    } catch {
      // a ruleset that does not parse is not compared; the walk's own collect says why
    }
  }
  return reads
}

/** `grep -H` of Ip6InMcastPkts over /proc/net/dev_snmp6/*: interface name → packets. */
export function parseIpv6Multicast(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    // an interface name holds no '/', ':' or blank (the kernel refuses them)
    const m = /^\/proc\/net\/dev_snmp6\/([^/:\s]+):Ip6InMcastPkts\s+(\d+)\s*$/.exec(line)
    if (m) out.set(m[1]!, Number(m[2]))
  }
  return out
}

/** The conntrack part: the entries as printed (each checked to be one), and whether there were more. */
export function parseFlowConntrack(text: string): Omit<ProbeConntrack, 'node'> {
  const lines = text.split('\n').filter((l) => l.trim() !== '')
  const parsed = parseConntrackEntries(lines.join('\n'), 'probe conntrack')
  const entries = lines.slice(1, 1 + parsed.entries.length).map((l) => l.trim().replace(/\s+/g, ' '))
  return {entries, ...(parsed.truncated ? {truncated: true} : {})}
}
