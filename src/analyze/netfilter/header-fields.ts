/**
 * The header fields a host firewall matches on besides addresses and ports: ICMP type and code, TCP flags,
 * TTL, total length, DSCP. The walk follows a flow's first packet (an echo request, a SYN, a datagram) and
 * its reply (an echo reply, a SYN-ACK), sent with the sender's defaults (DSCP 0); the names are those
 * iptables (libxt_icmp, libxt_tcp) and nft (its icmp, tcp_flag and dscp types) print and read.
 */

export const TCP_FLAGS: Readonly<Record<string, number>> = {
  fin: 0x01,
  syn: 0x02,
  rst: 0x04,
  psh: 0x08,
  ack: 0x10,
  urg: 0x20,
  ece: 0x40,
  cwr: 0x80,
}

/** iptables' `FIN,SYN,RST,ACK`, `ALL`, `NONE` (and nft's flag names) as a bitmask; undefined: a name not known. */
export function tcpFlagMask(list: string): number | undefined {
  let mask = 0
  for (const name of list.toLowerCase().split(/[,|]/)) {
    if (name === 'all')
      mask |= 0x3f // iptables' ALL: FIN..URG
    else if (name === 'none' || name === '') continue
    else if (TCP_FLAGS[name] === undefined) return undefined
    else mask |= TCP_FLAGS[name]!
  }
  return mask
}

/** ICMP types and type/code pairs by name, as iptables reads them (`ping`, `3/4`'s `fragmentation-needed`) and nft prints them. */
const ICMP_NAMES: Readonly<Record<string, {type: number; code?: number}>> = {
  'echo-reply': {type: 0},
  pong: {type: 0},
  'destination-unreachable': {type: 3},
  'network-unreachable': {type: 3, code: 0},
  'host-unreachable': {type: 3, code: 1},
  'protocol-unreachable': {type: 3, code: 2},
  'port-unreachable': {type: 3, code: 3},
  'fragmentation-needed': {type: 3, code: 4},
  'communication-prohibited': {type: 3, code: 13},
  'source-quench': {type: 4},
  redirect: {type: 5},
  'echo-request': {type: 8},
  ping: {type: 8},
  'router-advertisement': {type: 9},
  'router-solicitation': {type: 10},
  'time-exceeded': {type: 11},
  'ttl-exceeded': {type: 11},
  'parameter-problem': {type: 12},
  'timestamp-request': {type: 13},
  'timestamp-reply': {type: 14},
  'info-request': {type: 15},
  'info-reply': {type: 16},
  'address-mask-request': {type: 17},
  'address-mask-reply': {type: 18},
}

const ICMPV6_NAMES: Readonly<Record<string, {type: number; code?: number}>> = {
  'destination-unreachable': {type: 1},
  'no-route': {type: 1, code: 0},
  'communication-prohibited': {type: 1, code: 1},
  'address-unreachable': {type: 1, code: 3},
  'port-unreachable': {type: 1, code: 4},
  'packet-too-big': {type: 2},
  'time-exceeded': {type: 3},
  'ttl-exceeded': {type: 3},
  'parameter-problem': {type: 4},
  'echo-request': {type: 128},
  ping: {type: 128},
  'echo-reply': {type: 129},
  pong: {type: 129},
  'mld-listener-query': {type: 130},
  'mld-listener-report': {type: 131},
  'mld-listener-done': {type: 132},
  'mld-listener-reduction': {type: 132},
  'nd-router-solicit': {type: 133},
  'router-solicitation': {type: 133},
  'nd-router-advert': {type: 134},
  'router-advertisement': {type: 134},
  'nd-neighbor-solicit': {type: 135},
  'neighbour-solicitation': {type: 135},
  'neighbor-solicitation': {type: 135},
  'nd-neighbor-advert': {type: 136},
  'neighbour-advertisement': {type: 136},
  'neighbor-advertisement': {type: 136},
  'nd-redirect': {type: 137},
  redirect: {type: 137},
  'mld2-listener-report': {type: 143},
}

/** nft's names of ICMP codes (its icmp_code type: `icmp code 0` is listed as `net-unreachable`). */
const ICMP_CODE_NAMES: Readonly<Record<string, number>> = {
  'net-unreachable': 0,
  'host-unreachable': 1,
  'prot-unreachable': 2,
  'port-unreachable': 3,
  'frag-needed': 4,
  'net-prohibited': 9,
  'host-prohibited': 10,
  'admin-prohibited': 13,
  // icmpv6's codes
  'no-route': 0,
  'addr-unreachable': 3,
  'policy-fail': 5,
  'reject-route': 6,
}

/** `8`, `3/4`, `echo-request`, `any` (type undefined: every type): undefined when not a name netctl knows. */
export function icmpTypeSpec(spec: string, v6: boolean): {type?: number; code?: number} | undefined {
  const s = spec.toLowerCase()
  if (s === 'any') return {}
  const m = /^(\d+)(?:\/(\d+))?$/.exec(s)
  if (m) return {type: Number(m[1]), ...(m[2] !== undefined ? {code: Number(m[2])} : {})}
  return (v6 ? ICMPV6_NAMES : ICMP_NAMES)[s]
}

export function icmpCodeNumber(name: string): number | undefined {
  return /^\d+$/.test(name) ? Number(name) : ICMP_CODE_NAMES[name.toLowerCase()]
}

/** DSCP names (nft's dscp type, iptables' --dscp-class) and numbers. */
export function dscpNumber(name: string): number | undefined {
  const s = name.toLowerCase()
  if (/^(0x[0-9a-f]+|\d+)$/.test(s)) return Number(s)
  if (s === 'ef') return 46
  if (s === 'be') return 0
  if (s === 'le') return 1
  const cs = /^cs([0-7])$/.exec(s)
  if (cs) return Number(cs[1]) * 8
  const af = /^af([1-4])([1-3])$/.exec(s)
  if (af) return Number(af[1]) * 8 + Number(af[2]) * 2
  return undefined
}

/** The header fields of the flow's packet the walk follows: the request's first packet, or its reply. */
export interface FlowHeaderFields {
  icmp?: {type: number; code: number}
  tcpFlags?: number
}

/** An echo request and its reply (ICMP 8/0, ICMPv6 128/129), a SYN and its SYN-ACK; nothing for UDP. */
export function flowHeaderFields(protocol: string, v6: boolean, reply: boolean): FlowHeaderFields {
  if (protocol === 'icmp' || protocol === 'icmpv6' || protocol === 'ipv6-icmp')
    return {icmp: {type: v6 ? (reply ? 129 : 128) : reply ? 0 : 8, code: 0}}
  if (protocol === 'tcp') return {tcpFlags: reply ? TCP_FLAGS.syn! | TCP_FLAGS.ack! : TCP_FLAGS.syn!}
  return {}
}
