import type {Link, Neighbour} from '../model/node-state.js'
import {type CompiledFib, compileFib, type FibState, lookupRoute, type RouteDecision} from './fib.js'
import {cidrContains, type Ip, isCanonicalIPv4, numberToIPv4, parseIp, parsePrefixUncached, sameIp} from './ip.js'
import {formatNeighbour} from './iproute2.js'

/**
 * The last step before a packet leaves a device: the link-layer address of
 * the next hop, as the kernel's neighbour table (ARP / NDP) holds it.
 */

export interface NeighbourView {
  neighbours: Neighbour[]
  links: Link[]
}

/** resolved: an lladdr to send to; noarp: the device needs none; unresolved: the packet waits and is dropped. */
export type NeighbourStatus = 'resolved' | 'noarp' | 'unresolved'

export interface NeighbourResolution {
  /** the address resolved: the gateway, or the destination itself when it is on-link */
  address: string
  dev: string
  status: NeighbourStatus
  /** the entry's NUD state (PERMANENT, REACHABLE, STALE, ...), or MISSING when there is no entry */
  state: string
  lladdr?: string
  entry?: Neighbour
  /** STALE / DELAY / PROBE: the kernel sends with the cached lladdr and re-validates it meanwhile */
  revalidating: boolean
  /** what a trace ends in when the packet cannot leave here */
  disposition?: 'NEIGHBOR_UNRESOLVED'
  reason: string
  /** lines as `ip neigh show nud all` prints them */
  evidence: string[]
  notes: string[]
}

/** NUD states in which the kernel transmits with the cached link-layer address. */
const USABLE = ['PERMANENT', 'NOARP', 'REACHABLE', 'STALE', 'DELAY', 'PROBE']
const REVALIDATING = ['STALE', 'DELAY', 'PROBE']

/**
 * Devices that never resolve neighbours: the kernel gives every entry on them
 * the NOARP state (IFF_NOARP, point-to-point and loopback devices; TUN and
 * IP-in-IP tunnels are such devices).
 */
export function needsNoNeighbour(link: Link | undefined): boolean {
  if (!link) return false
  if (link.flags.some((f) => f === 'NOARP' || f === 'POINTOPOINT' || f === 'LOOPBACK')) return true
  // the flags say it already; the kind covers snapshots without flags (a TAP device does ARP)
  if (link.kind === 'tun') return link.tun?.type !== 'tap'
  return ['ipip', 'gre', 'sit', 'ip6tnl', 'wireguard'].includes(link.kind ?? '')
}

/**
 * per neighbour table read (keyed by the array), its entries by device and then by address as
 * parsed (canonical text), in table order: a node holds one per peer, and a trace resolves a few
 * next hops on it, so the table is parsed once rather than once per next hop
 */
const byAddress = new WeakMap<Neighbour[], Map<string, Map<string, Neighbour[]>>>()

function entriesFor(neighbours: Neighbour[], dev: string, ip: Ip): Neighbour[] {
  // sameIp: the same family and text (the text says the family)
  return addressIndex(neighbours).get(dev)?.get(ip.text) ?? []
}

export type NeighbourIndex = Map<string, Map<string, Neighbour[]>>

/**
 * The table's entries by device and address (canonical text, as parseIp writes it), in table order.
 * KEEP: remembered for the next question about the same table (the walk's). Without it (the checks'
 * index of a node a streamed check visits), the walk's index is used when there is one, and one
 * made here is left to its caller: a long-lived map holding it would keep the whole state alive
 * into V8's old generation (test/analyze/checks/young-states.test.ts).
 */
export function addressIndex(neighbours: Neighbour[], keep = true): NeighbourIndex {
  let ix = byAddress.get(neighbours)
  if (!ix) {
    ix = new Map()
    for (const n of neighbours) {
      // the canonical text: most entries are written so already (no parse, no new string); another plain dotted quad's straight from its number
      let key: string | undefined = n.dst
      if (!isCanonicalIPv4(key)) {
        const plain = n.dst.includes('/') ? undefined : parsePrefixUncached(n.dst)
        key = plain?.len === 32 ? numberToIPv4(plain.net) : parseIp(n.dst)?.text
      }
      if (key === undefined) continue
      let on = ix.get(n.dev)
      if (!on) ix.set(n.dev, (on = new Map()))
      const list = on.get(key)
      if (list) list.push(n)
      else on.set(key, [n])
    }
    if (keep) byAddress.set(neighbours, ix)
  }
  return ix
}

/** Resolve one next hop on one device. */
export function resolveNeighbour(view: NeighbourView, nexthop: {address: string; dev: string}): NeighbourResolution {
  const ip = parseIp(nexthop.address)
  const link = view.links.find((l) => l.name === nexthop.dev)
  const base = {address: nexthop.address, dev: nexthop.dev, evidence: [] as string[], notes: [] as string[]}
  const same = (n: Neighbour) => n.dev === nexthop.dev && (ip ? sameIp(parseIp(n.dst), ip) : n.dst === nexthop.address)
  // an address that parses is looked up; one that does not is compared as written
  const candidates = ip ? entriesFor(view.neighbours, nexthop.dev, ip) : view.neighbours.filter(same)
  const proxies = candidates.filter((n) => n.proxy)
  for (const p of proxies)
    base.notes.push(
      `${formatNeighbour(p)}: a proxy entry answers others' requests, it does not resolve this node's own next hop`,
    )
  const entry = candidates.find((n) => !n.proxy)

  if (needsNoNeighbour(link)) {
    if (entry) base.evidence.push(formatNeighbour(entry))
    const flags = link?.flags.filter((f) => ['NOARP', 'POINTOPOINT', 'LOOPBACK'].includes(f)) ?? []
    return {
      ...base,
      status: 'noarp',
      state: entry?.state.join(' ') || 'NOARP',
      ...(entry?.lladdr ? {lladdr: entry.lladdr} : {}),
      ...(entry ? {entry} : {}),
      revalidating: false,
      reason: `${nexthop.dev} needs no neighbour resolution (${flags.length > 0 ? flags.join(',') : link?.kind})`,
    }
  }
  if (!entry) {
    return {
      ...base,
      status: 'unresolved',
      state: 'MISSING',
      revalidating: false,
      disposition: 'NEIGHBOR_UNRESOLVED',
      reason: `no neighbour entry for ${nexthop.address} on ${nexthop.dev}: the kernel would have to resolve it first`,
    }
  }
  base.evidence.push(formatNeighbour(entry))
  const states = entry.state.map((s) => s.toUpperCase())
  const usable = states.find((s) => USABLE.includes(s))
  if (usable && entry.lladdr) {
    const revalidating = REVALIDATING.includes(usable)
    return {
      ...base,
      status: usable === 'NOARP' ? 'noarp' : 'resolved',
      state: usable,
      lladdr: entry.lladdr,
      entry,
      revalidating,
      reason: revalidating
        ? `${nexthop.address} is ${entry.lladdr} (${usable}: the kernel sends and re-validates the entry)`
        : `${nexthop.address} is ${entry.lladdr} (${usable})`,
    }
  }
  const state = states.join(' ') || 'NONE'
  return {
    ...base,
    status: 'unresolved',
    state,
    entry,
    revalidating: false,
    disposition: 'NEIGHBOR_UNRESOLVED',
    reason: `${nexthop.address} on ${nexthop.dev} is ${state}: ${states.includes('FAILED') ? 'nobody answered the last resolution' : states.includes('INCOMPLETE') ? 'resolution is under way and unanswered' : 'no link-layer address'}`,
  }
}

/** The addresses the kernel resolves for a decision: each nexthop's gateway, or the destination when on-link. */
export function nextHopAddresses(decision: RouteDecision, dst: string): Array<{address: string; dev: string}> {
  if (decision.error || decision.type === 'local' || (decision.type === 'broadcast' && decision.direction === 'input'))
    return []
  const hops =
    decision.nexthops && decision.nexthops.length > 0
      ? decision.nexthops
      : decision.dev
        ? [{dev: decision.dev, gateway: decision.gateway}]
        : []
  return hops.filter((h) => h.dev).map((h) => ({address: h.gateway ?? dst, dev: h.dev as string}))
}

/** Resolve every nexthop of a decision. */
export function resolveNextHops(view: NeighbourView, decision: RouteDecision, dst: string): NeighbourResolution[] {
  return nextHopAddresses(decision, dst).map((nh) => resolveNeighbour(view, nh))
}

export interface ArpAnswer {
  answers: boolean
  /** local: the target is the node's own address; proxy-entry: `ip neigh add proxy`; proxy_arp: the sysctl and a route elsewhere */
  how?: 'local' | 'proxy-entry' | 'proxy_arp'
  reason: string
  evidence: string[]
}

function sysctlOn(fib: CompiledFib, dev: string, key: string): number | undefined {
  const s = fib.state.sysctls
  if (!s) return undefined
  const vals = ['all', dev]
    .map((d) => s[`net.ipv4.conf.${d}.${key}`] ?? s[`net.ipv4.conf.${d.replace(/\./g, '/')}.${key}`])
    .filter((v) => v !== undefined)
  if (vals.length === 0) return undefined
  return Math.max(...vals.map(Number))
}

/**
 * Would this node answer an ARP request for `target` from `sender` arriving
 * on `dev`? As arp_process decides: its own address (arp_ignore permitting),
 * or, when it forwards, a unicast route for the target that leaves by another
 * device together with proxy_arp on `dev` or a proxy entry for the target.
 */
export function answersArp(
  state: FibState & NeighbourView,
  q: {target: string; sender: string; dev: string},
): ArpAnswer {
  const fib = compileFib(state)
  const route = lookupRoute(fib, {dst: q.target, src: q.sender, iif: q.dev})
  const evidence = [...route.evidence]
  if (!route.error && route.type === 'local') {
    const ignore = sysctlOn(fib, q.dev, 'arp_ignore') ?? 0
    const onDev = (fib.addrsByDev.get(q.dev) ?? []).find((a) => a.ip.text === parseIp(q.target)?.text)
    if (ignore >= 1 && !onDev)
      return {
        answers: false,
        reason: `arp_ignore=${ignore} on ${q.dev}: ${q.target} is not configured on ${q.dev}`,
        evidence,
      }
    const sender = parseIp(q.sender)
    if (ignore >= 2 && onDev && !(sender && cidrContains(onDev.prefix, sender))) {
      return {answers: false, reason: `arp_ignore=2 on ${q.dev}: ${q.sender} is not in ${q.target}'s subnet`, evidence}
    }
    return {answers: true, how: 'local', reason: `${q.target} is this node's address`, evidence}
  }
  if (route.error || route.type !== 'unicast')
    return {
      answers: false,
      reason: `no unicast route to ${q.target} for a request on ${q.dev} (${route.reason})`,
      evidence,
    }
  const outDevs = (route.nexthops ?? []).map((n) => n.dev)
  if (outDevs.every((d) => d === q.dev))
    return {answers: false, reason: `the route to ${q.target} leaves by ${q.dev} itself`, evidence}
  const proxyArp = sysctlOn(fib, q.dev, 'proxy_arp') ?? 0
  if (proxyArp > 0)
    return {
      answers: true,
      how: 'proxy_arp',
      reason: `proxy_arp on ${q.dev} and ${q.target} is routed out of ${outDevs.join(',')}`,
      evidence: [...evidence, `net.ipv4.conf.${q.dev}.proxy_arp = ${proxyArp}`],
    }
  const entry = state.neighbours.find((n) => n.proxy && n.dev === q.dev && sameIp(parseIp(n.dst), parseIp(q.target)))
  if (entry)
    return {
      answers: true,
      how: 'proxy-entry',
      reason: `proxy entry for ${q.target} on ${q.dev}`,
      evidence: [...evidence, formatNeighbour(entry)],
    }
  return {
    answers: false,
    reason: `${q.target} is not this node's and ${q.dev} has neither proxy_arp nor a proxy entry for it`,
    evidence,
  }
}
