/**
 * flannel's udp backend as it appears on the wire and in the lab's forwarder:
 * the bare IP packet is the whole UDP payload (no header of flannel's own),
 * sent from the node's IP port 8285 to the peer's IP port 8285. Pure helpers
 * only (no I/O), so the forwarder stays small and this part is tested alone.
 */
import {ipv4ToNumber, numberToIPv4} from '../analyze/ip.js'

/** flanneld's udp defaults: TUN flannel0, UDP 8285, MTU = underlay − 28 (20 IP + 8 UDP). */
export const FLANNEL_UDP = {device: 'flannel0', port: 8285, overhead: 28} as const

/** Loopback ports inside each node netns between socat (owner of flannel0) and the forwarder. */
export const TUN_SOCKET = {host: '127.0.0.1', forwarder: 18285, socat: 18286} as const

export const FORWARDER_TITLE = 'netctl-udp-forwarder'

export interface ForwarderPeer {
  name: string
  /** the peer's InternalIP: where its forwarder listens on FLANNEL_UDP.port */
  ip: string
  podCIDR: string
}

/** The forwarder's config file (JSON); rewritten and re-read on SIGHUP when peers change. */
export interface ForwarderConfig {
  node: string
  /** address the underlay socket binds (the node's InternalIP) */
  nodeIP: string
  /** UDP port on the underlay, 8285 unless the network config says otherwise */
  port: number
  /** 127.0.0.1 ports: the forwarder receives flannel0's packets on `forwarder` and hands packets to socat on `socat` */
  tunSocket: {forwarder: number; socat: number}
  peers: ForwarderPeer[]
  logFile: string
  statusFile: string
}

export interface Ipv4Prefix {
  network: number
  length: number
  mask: number
}

export function parseIPv4Prefix(cidr: string): Ipv4Prefix | undefined {
  const [addr, len, ...rest] = cidr.split('/')
  if (rest.length > 0 || addr === undefined || len === undefined || !/^\d{1,2}$/.test(len)) return undefined
  const ip = ipv4ToNumber(addr)
  const length = Number(len)
  if (ip === undefined || length > 32) return undefined
  const mask = length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0
  return {network: (ip & mask) >>> 0, length, mask}
}

/**
 * The forwarder's routing table: each peer's podCIDR → that peer. Lookup is a
 * longest-prefix match over the podCIDRs (flanneld takes the first containing
 * subnet; with non-overlapping leases the answer is the same).
 */
export class PeerTable {
  private readonly entries: Array<{prefix: Ipv4Prefix; peer: ForwarderPeer}>

  constructor(peers: readonly ForwarderPeer[]) {
    this.entries = peers
      .map((peer) => ({prefix: parseIPv4Prefix(peer.podCIDR)!, peer}))
      .sort((a, b) => b.prefix.length - a.prefix.length)
  }

  lookup(dst: number): ForwarderPeer | undefined {
    for (const e of this.entries) if ((dst & e.prefix.mask) >>> 0 === e.prefix.network) return e.peer
    return undefined
  }

  /** The peer whose underlay address is `ip` (for packets arriving on the port). */
  byAddress(ip: string): ForwarderPeer | undefined {
    return this.entries.find((e) => e.peer.ip === ip)?.peer
  }
}

/** Why a packet read from flannel0 or the port is not carried on. */
export type DropReason = 'notIPv4' | 'malformed' | 'noPeer' | 'ttlExpired' | 'unknownSource'

/**
 * Check that `pkt` is an IPv4 packet whose header and total length fit in
 * what was read. flannel0 also carries the kernel's own IPv6 (router
 * solicitations from its link-local address); those are `notIPv4`.
 */
export function checkIPv4(pkt: Uint8Array): DropReason | undefined {
  if (pkt.length < 1 || pkt[0]! >> 4 !== 4) return 'notIPv4'
  const ihl = (pkt[0]! & 0x0f) * 4
  if (ihl < 20 || pkt.length < ihl) return 'malformed'
  const total = (pkt[2]! << 8) | pkt[3]!
  if (total < ihl || total > pkt.length) return 'malformed'
  return undefined
}

/** Destination address of an IPv4 packet (checked with checkIPv4 first). */
export function ipv4Destination(pkt: Uint8Array): number {
  return ((pkt[16]! << 24) | (pkt[17]! << 16) | (pkt[18]! << 8) | pkt[19]!) >>> 0
}

export function ipv4Source(pkt: Uint8Array): number {
  return ((pkt[12]! << 24) | (pkt[13]! << 16) | (pkt[14]! << 8) | pkt[15]!) >>> 0
}

/**
 * flanneld's proxy is a router hop: it decrements the TTL on the way out and
 * again on the way in. In place, with the header checksum patched
 * incrementally (RFC 1624: HC' = ~(~HC + ~m + m')). Returns false when the TTL
 * reaches zero (the packet is dropped, as flanneld does).
 */
export function decrementTTL(pkt: Uint8Array): boolean {
  const ttl = pkt[8]!
  if (ttl <= 1) return false
  // the 16-bit word at offset 8 is TTL<<8 | protocol
  const oldWord = (ttl << 8) | pkt[9]!
  const newWord = ((ttl - 1) << 8) | pkt[9]!
  let sum = (~((pkt[10]! << 8) | pkt[11]!) & 0xffff) + (~oldWord & 0xffff) + newWord
  sum = (sum & 0xffff) + (sum >>> 16)
  sum = (sum & 0xffff) + (sum >>> 16)
  const check = ~sum & 0xffff
  pkt[8] = ttl - 1
  pkt[10] = check >>> 8
  pkt[11] = check & 0xff
  return true
}

/** The IPv4 header checksum computed from scratch (for tests and sanity checks). */
export function ipv4HeaderChecksum(pkt: Uint8Array): number {
  const ihl = (pkt[0]! & 0x0f) * 4
  let sum = 0
  for (let i = 0; i < ihl; i += 2) if (i !== 10) sum += (pkt[i]! << 8) | pkt[i + 1]!
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return ~sum & 0xffff
}

const PROTOCOLS: Record<number, string> = {1: 'icmp', 6: 'tcp', 17: 'udp'}

/** "172.20.1.2 > 172.20.2.2 icmp 84" for log lines. */
export function describePacket(pkt: Uint8Array): string {
  if (checkIPv4(pkt) !== undefined) return `${pkt.length} bytes, not IPv4`
  return `${numberToIPv4(ipv4Source(pkt))} > ${numberToIPv4(ipv4Destination(pkt))} ${PROTOCOLS[pkt[9]!] ?? `proto ${pkt[9]}`} ${pkt.length}`
}

function fail(why: string): never {
  throw new Error(`invalid forwarder config: ${why}`)
}

function isPort(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 65536
}

/** Parse and check the config file's text; one-line errors. */
export function parseForwarderConfig(text: string): ForwarderConfig {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (error) {
    fail(`not JSON (${(error as Error).message})`)
  }
  if (typeof raw !== 'object' || raw === null) fail('not an object')
  const c = raw as Record<string, unknown>
  for (const k of ['node', 'nodeIP', 'logFile', 'statusFile'] as const)
    if (typeof c[k] !== 'string' || c[k] === '') fail(`${k} must be a non-empty string`)
  if (ipv4ToNumber(c.nodeIP as string) === undefined) fail(`nodeIP '${String(c.nodeIP)}' is not an IPv4 address`)
  if (!isPort(c.port)) fail('port must be 1..65535')
  const ts = c.tunSocket as Record<string, unknown> | undefined
  if (typeof ts !== 'object' || ts === null || !isPort(ts.forwarder) || !isPort(ts.socat))
    fail('tunSocket needs ports forwarder and socat')
  if (!Array.isArray(c.peers)) fail('peers must be a list')
  const peers: ForwarderPeer[] = []
  for (const [i, p] of (c.peers as unknown[]).entries()) {
    const peer = p as Record<string, unknown>
    if (
      typeof peer !== 'object' ||
      peer === null ||
      typeof peer.name !== 'string' ||
      typeof peer.ip !== 'string' ||
      typeof peer.podCIDR !== 'string'
    ) {
      fail(`peers[${i}] needs name, ip and podCIDR`)
    }
    if (ipv4ToNumber(peer.ip) === undefined) fail(`peer ${peer.name}: ip '${peer.ip}' is not an IPv4 address`)
    if (!parseIPv4Prefix(peer.podCIDR)) fail(`peer ${peer.name}: podCIDR '${peer.podCIDR}' is not an IPv4 prefix`)
    peers.push({name: peer.name, ip: peer.ip, podCIDR: peer.podCIDR})
  }
  return {
    node: c.node as string,
    nodeIP: c.nodeIP as string,
    port: c.port as number,
    tunSocket: {forwarder: ts.forwarder as number, socat: ts.socat as number},
    peers,
    logFile: c.logFile as string,
    statusFile: c.statusFile as string,
  }
}
