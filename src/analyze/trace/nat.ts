import type {Hop, Packet} from '../../model/trace.js'
import {lookupRoute} from '../fib.js'
import {parseIp} from '../ip.js'
import type {NatTarget} from '../netfilter/iptables.js'
import {describeHeader, type Header, header} from './packet.js'
import {isHost, type Place} from './place.js'
import type {Flight, Walk} from './walk-state.js'

/**
 * Address translation as conntrack applies it: the nat chains decide once per
 * connection (its first packet) and the packet is rewritten there — DNAT and
 * REDIRECT at PREROUTING/OUTPUT (routing then uses the new destination),
 * SNAT and MASQUERADE at POSTROUTING. The reply is rewritten back at the node
 * that translated: its destination at PREROUTING (un-SNAT, before routing),
 * its source at POSTROUTING or on local delivery (un-DNAT).
 */

/** What a nat decision changes in the packet. */
export interface Rewrite {
  kind: 'dnat' | 'snat'
  src?: string
  dst?: string
  port?: number
}

/** A nat decision as the chains return it: iptables' target and options, or nft's statement. */
export type NatDecision = {iptables: NatTarget} | {nft: {kind: string; stmt: Record<string, unknown>}}

/** `IP[-IP][:PORT[-PORT]]` or `[IP6]:PORT` as --to-destination/--to-source write it: the first of each range. */
function addrPort(spec: string | undefined): {addr?: string; port?: number} | undefined {
  if (!spec) return undefined
  const m = /^\[([^\]]+)\](?::(\d+))?/.exec(spec) ?? /^([^:]*)(?::(\d+))?/.exec(spec)
  if (!m) return undefined
  const addr = m[1]?.split('-')[0]
  const out: {addr?: string; port?: number} = {}
  if (addr) {
    if (!parseIp(addr)) return undefined
    out.addr = addr
  }
  if (m[2]) out.port = Number(m[2])
  return out
}

function argOf(args: string[], name: string): string | undefined {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}

/** Where a DNAT decision sends the packet (address and port), read off the rule alone; undefined for any other translation. */
export function dnatTarget(d: NatDecision): {addr?: string; port?: number} | undefined {
  if ('iptables' in d)
    return d.iptables.target === 'DNAT' ? addrPort(argOf(d.iptables.args, '--to-destination')) : undefined
  if (d.nft.kind !== 'dnat') return undefined
  const s = d.nft.stmt
  return {
    ...(typeof s.addr === 'string' && parseIp(s.addr) ? {addr: s.addr} : {}),
    ...(typeof s.port === 'number' ? {port: s.port} : {}),
  }
}

/**
 * The address MASQUERADE takes: the primary global address of the device the
 * packet leaves by (as the kernel selects it), else the route's preferred source.
 */
function masqueradeAddress(place: Place, out: string | undefined, dst: string): string | undefined {
  const family = parseIp(dst)?.family
  const own = place.state.addresses.filter((a) => a.dev === out && a.family === family)
  const pick = own.find((a) => a.scope === 'global') ?? own[0]
  if (pick) return pick.local
  return lookupRoute(place.fib, {dst}).src
}

/** REDIRECT's destination: the primary address of the device the packet came in by, loopback when sent locally. */
function redirectAddress(place: Place, inDev: string | undefined, dst: string): string | undefined {
  const family = parseIp(dst)?.family
  if (!inDev) return family === 'inet6' ? '::1' : '127.0.0.1'
  return place.state.addresses.find((a) => a.dev === inDev && a.family === family)?.local
}

/**
 * The rewrite a nat decision asks for, or a reason it cannot be told (an
 * address taken from a map, a device without an address).
 */
export function natRewrite(
  place: Place,
  d: NatDecision,
  h: Header,
  devs: {in?: string; out?: string},
): Rewrite | string | undefined {
  let kind: string
  let addr: string | undefined
  let port: number | undefined
  if ('iptables' in d) {
    kind = d.iptables.target.toLowerCase()
    const args = d.iptables.args
    const spec =
      kind === 'dnat' ? argOf(args, '--to-destination') : kind === 'snat' ? argOf(args, '--to-source') : undefined
    if (kind === 'dnat' || kind === 'snat') {
      const ap = addrPort(spec)
      if (!ap) return `${d.iptables.target} ${args.join(' ')}: no address to translate to`
      addr = ap.addr
      port = ap.port
    }
    const toPorts = argOf(args, '--to-ports')
    if (kind === 'redirect' && toPorts) port = Number(toPorts.split('-')[0])
  } else {
    kind = d.nft.kind
    const s = d.nft.stmt
    if (s.addr !== undefined) {
      if (typeof s.addr !== 'string' || !parseIp(s.addr))
        return `${kind} to an address netctl cannot read (${JSON.stringify(s.addr)})`
      addr = s.addr
    }
    if (s.port !== undefined) {
      const p =
        typeof s.port === 'number'
          ? s.port
          : Array.isArray((s.port as {range?: unknown})?.range)
            ? Number((s.port as {range: unknown[]}).range[0])
            : Number.NaN
      if (Number.isNaN(p)) return `${kind} to a port netctl cannot read (${JSON.stringify(s.port)})`
      port = p
    }
  }
  const ports = h.protocol === 'tcp' || h.protocol === 'udp' ? port : undefined
  switch (kind) {
    case 'dnat':
      return {kind: 'dnat', ...(addr ? {dst: addr} : {}), ...(ports !== undefined ? {port: ports} : {})}
    case 'redirect': {
      const a = redirectAddress(place, devs.in, h.dst)
      if (!a) return `REDIRECT on ${devs.in ?? 'lo'}: the device has no address`
      return {kind: 'dnat', dst: a, ...(ports !== undefined ? {port: ports} : {})}
    }
    case 'snat':
      return addr ? {kind: 'snat', src: addr} : undefined
    case 'masquerade': {
      const a = masqueradeAddress(place, devs.out, h.dst)
      if (!a) return `MASQUERADE out of ${devs.out ?? '?'}: the device has no address`
      return {kind: 'snat', src: a}
    }
    default:
      return undefined
  }
}

/** The packet's header after a rewrite (ports only for tcp/udp). */
export function rewriteHeader(h: Header, r: Rewrite): Header {
  return {
    ...h,
    ...(r.src ? {src: r.src} : {}),
    ...(r.dst ? {dst: r.dst} : {}),
    ...(r.port !== undefined && h.dport !== undefined ? {dport: r.port} : {}),
  }
}

/** The flight with its (inner, unencapsulated) packet rewritten. */
export function rewriteFlight(f: Flight, r: {src?: string; dst?: string; port?: number; sport?: number}): Flight {
  const pkt: Packet = {
    ...f.pkt,
    ...(r.src ? {src: r.src} : {}),
    ...(r.dst ? {dst: r.dst} : {}),
    ...(r.port !== undefined && f.pkt.port !== undefined ? {port: r.port} : {}),
  }
  return {...f, pkt, ...(r.sport !== undefined && f.sport !== undefined ? {sport: r.sport} : {})}
}

/** `DNAT: tcp a → b:80 becomes tcp a → c:8080` */
export function describeRewrite(r: Rewrite, before: Header, after: Header): string {
  return `${r.kind === 'dnat' ? 'DNAT' : 'SNAT'}: ${describeHeader(before)} becomes ${describeHeader(after)}`
}

/** A connection's translations at one node: the tuple as it arrived and as it left. */
export interface CtEntry {
  node: string
  netns: string
  orig: {src: string; dst: string; dport?: number}
  trans: {src: string; dst: string; dport?: number}
}

/** Record (or extend) the connection's entry at `place`: the request went in as `before`, leaves as `after`. */
export function recordTranslation(w: Walk, place: Place, before: Header, after: Header): void {
  const table = w.shared.conntrack
  const e = table.find((x) => x.node === place.node && x.netns === place.netns)
  const t = {src: after.src, dst: after.dst, ...(after.dport !== undefined ? {dport: after.dport} : {})}
  if (e) e.trans = t
  else
    table.push({
      node: place.node,
      netns: place.netns,
      orig: {src: before.src, dst: before.dst, ...(before.dport !== undefined ? {dport: before.dport} : {})},
      trans: t,
    })
}

/** The entry at `place` this reply belongs to: from the translated destination back to the translated source. */
function replyEntry(w: Walk, place: Place, f: Flight): CtEntry | undefined {
  if (w.direction !== 'return' || f.pkt.encap.length > 0 || !isHost(place)) return undefined
  // after un-SNAT the destination is already the original source again
  return w.shared.conntrack.find(
    (e) =>
      e.node === place.node &&
      e.netns === place.netns &&
      e.trans.dst === f.pkt.src &&
      (e.trans.src === f.pkt.dst || e.orig.src === f.pkt.dst),
  )
}

/**
 * The reply's reverse translations at this node, as conntrack does them:
 * `stage` 'dst' before routing (un-SNAT: back to the original source), 'src'
 * on the way out or on local delivery (un-DNAT: from the original destination).
 * Returns the rewritten flight and a hop, or undefined when nothing changes.
 */
export function unTranslate(
  w: Walk,
  place: Place,
  f: Flight,
  stage: 'dst' | 'src',
  hook: NonNullable<Hop['netfilter']>['hook'],
  devs: {in?: string; out?: string},
): {flight: Flight; hop: Hop} | undefined {
  const e = replyEntry(w, place, f)
  if (!e) return undefined
  const before = header(f)
  let next: Flight
  let what: string
  if (stage === 'dst') {
    if (e.orig.src === e.trans.src) return undefined
    next = rewriteFlight(f, {dst: e.orig.src})
    what = 'un-SNAT'
  } else {
    if (e.orig.dst === e.trans.dst && e.orig.dport === e.trans.dport) return undefined
    next = rewriteFlight(f, {src: e.orig.dst, ...(e.orig.dport !== undefined ? {sport: e.orig.dport} : {})})
    what = 'un-DNAT'
  }
  const after = header(next)
  const conn = `${e.orig.src} → ${e.orig.dst}${e.orig.dport !== undefined ? `:${e.orig.dport}` : ''}`
  const line = `conntrack ${what}: ${describeHeader(before)} becomes ${describeHeader(after)} (the reply of ${conn}, translated here)`
  const hop: Hop = {
    node: place.node,
    netns: place.netns,
    ...(devs.in ? {in: devs.in} : {}),
    ...(devs.out ? {out: devs.out} : {}),
    action: 'filter',
    evidence: [`filter ${hook}:`, line],
    packet: next.pkt,
    netfilter: {
      hook,
      nat: [{ruleset: 'conntrack', rule: line, before: describeHeader(before), after: describeHeader(after)}],
    },
  }
  return {flight: next, hop}
}

/** The request translated at `place`: the flight rewritten, conntrack's entry recorded, its status bits set here. */
export function applyRewrite(w: Walk, place: Place, f: Flight, r: Rewrite): Flight {
  const before = header(f)
  const next = rewriteFlight(f, r)
  recordTranslation(w, place, before, header(next))
  const at = `${place.node}|${place.netns}`
  const held = f.ctnat?.at === at ? f.ctnat : {at}
  return {...next, ctnat: {...held, [r.kind]: true}}
}
