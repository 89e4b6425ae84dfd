import type {Address, Family, FdbEntry, Link, Neighbour, NextHop, Route, RouteType, Rule, VxlanInfo} from '../../model/node-state.js'
import {jsonArray, num, ParseError, str, strList} from './errors.js'

/**
 * Parsers for `ip -j` and `bridge -j` output. They accept what iproute2 has
 * printed over the years: `dst: "default"`, host routes without a prefix
 * length, missing `flags`, `table` or `type`, multipath `nexthops`, `via`
 * objects for gateways of another family, and fields that are simply absent.
 */

type Obj = Record<string, unknown>

const obj = (v: unknown): Obj | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined)

function required<T>(section: string, index: number, field: string, value: T | undefined): T {
  if (value === undefined) throw new ParseError(section, `entry ${index} has no ${field}`)
  return value
}

const hostLen = (family: Family): number => (family === 'inet' ? 32 : 128)

/** 'default' → 0.0.0.0/0 or ::/0; a bare address → /32 or /128; anything else as given. */
export function normalizeDst(dst: string | undefined, family: Family): string {
  if (dst === undefined || dst === 'default' || dst === 'all') return family === 'inet' ? '0.0.0.0/0' : '::/0'
  return dst.includes('/') ? dst : `${dst}/${hostLen(family)}`
}

export function parseLinks(text: string, section = 'links'): Link[] {
  const entries = jsonArray(section, text)
  const nameByIndex = new Map<number, string>()
  for (const e of entries) {
    const i = num(e.ifindex)
    const n = str(e.ifname)
    if (i !== undefined && n !== undefined) nameByIndex.set(i, n)
  }
  return entries.map((e, idx) => {
    const ifindex = required(section, idx, 'ifindex', num(e.ifindex))
    const name = required(section, idx, 'ifname', str(e.ifname))
    const flags = strList(e.flags)
    const info = obj(e.linkinfo)
    const kind = str(info?.info_kind)
    const data = obj(info?.info_data)
    const link: Link = {
      ifindex,
      name,
      mtu: num(e.mtu) ?? 0,
      operstate: str(e.operstate) ?? 'UNKNOWN',
      adminUp: flags.includes('UP'),
      flags,
    }
    if (kind !== undefined) link.kind = kind
    const mac = str(e.address)
    if (mac !== undefined && /^[0-9a-f]{2}(:[0-9a-f]{2})+$/i.test(mac)) link.mac = mac.toLowerCase()
    const master = str(e.master)
    if (master !== undefined) link.master = master
    if (kind === 'veth') {
      // newer iproute2: link_index; older: "link": "if7"
      const peer = num(e.link_index) ?? num(/^if(\d+)$/.exec(str(e.link) ?? '')?.[1])
      if (peer !== undefined) link.peerIfindex = peer
      const nsid = num(e.link_netnsid)
      if (nsid !== undefined) link.linkNetnsid = nsid
    }
    if (kind === 'vxlan' && data) link.vxlan = vxlanInfo(data, nameByIndex)
    if (kind === 'tun') {
      const type = str(data?.type)
      link.tun = {type: type === 'tap' ? 'tap' : 'tun', pi: data?.pi === true}
    }
    return link
  })
}

function vxlanInfo(d: Obj, nameByIndex: Map<number, string>): VxlanInfo {
  const v: VxlanInfo = {
    vni: num(d.id) ?? 0,
    // iproute2 names it port; some builds printed dstport
    port: num(d.port) ?? num(d.dstport) ?? 0,
    // learning is on unless the kernel says otherwise
    learning: d.learning !== false && d.nolearning === undefined,
  }
  const local = str(d.local) ?? str(d.local6)
  if (local !== undefined) v.local = local
  const dev = typeof d.link === 'number' ? nameByIndex.get(d.link) : str(d.link)
  if (dev !== undefined) v.dev = dev
  const group = str(d.group) ?? str(d.group6) ?? str(d.remote) ?? str(d.remote6)
  if (group !== undefined) v.group = group
  return v
}

export function parseAddresses(text: string, section = 'addresses'): Address[] {
  const out: Address[] = []
  jsonArray(section, text).forEach((e, idx) => {
    const dev = required(section, idx, 'ifname', str(e.ifname))
    const infos = Array.isArray(e.addr_info) ? e.addr_info : []
    for (const raw of infos) {
      const a = obj(raw)
      if (!a) continue
      const family = str(a.family)
      const local = str(a.local)
      // addr_info also carries lifetime-only fragments on some versions: skip what has no address
      if ((family !== 'inet' && family !== 'inet6') || local === undefined) continue
      const addr: Address = {dev, family, local, prefixlen: num(a.prefixlen) ?? (family === 'inet' ? 32 : 128), scope: str(a.scope) ?? 'global'}
      const brd = str(a.broadcast)
      if (brd !== undefined) addr.broadcast = brd
      out.push(addr)
    }
  })
  return out
}

const ROUTE_TYPES: ReadonlySet<string> = new Set<RouteType>(['unicast', 'local', 'broadcast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'multicast', 'anycast', 'nat'])

function gatewayOf(e: Obj): string | undefined {
  // a gateway of the other family (RFC 5549) comes as via: {family, host}
  return str(e.gateway) ?? str(obj(e.via)?.host)
}

export function parseRoutes(text: string, family: Family, section = family === 'inet' ? 'routes4' : 'routes6'): Route[] {
  return jsonArray(section, text).map((e) => {
    const flags = strList(e.flags)
    const rawType = str(e.type) ?? 'unicast'
    const type = (ROUTE_TYPES.has(rawType) ? rawType : 'unicast') as RouteType
    if (!ROUTE_TYPES.has(rawType)) flags.push(`type:${rawType}`)
    const route: Route = {
      family,
      table: str(e.table) ?? 'main',
      type,
      dst: normalizeDst(str(e.dst), family),
      onlink: flags.includes('onlink'),
      flags,
    }
    const gateway = gatewayOf(e)
    if (gateway !== undefined) route.gateway = gateway
    const dev = str(e.dev)
    if (dev !== undefined) route.dev = dev
    const protocol = str(e.protocol)
    if (protocol !== undefined) route.protocol = protocol
    const scope = str(e.scope)
    if (scope !== undefined) route.scope = scope
    const prefsrc = str(e.prefsrc)
    if (prefsrc !== undefined) route.prefsrc = prefsrc
    const metric = num(e.metric)
    if (metric !== undefined) route.metric = metric
    if (Array.isArray(e.nexthops)) {
      route.nexthops = e.nexthops.map((raw): NextHop => {
        const nh = obj(raw) ?? {}
        const hop: NextHop = {onlink: strList(nh.flags).includes('onlink')}
        const gw = gatewayOf(nh)
        if (gw !== undefined) hop.gateway = gw
        const d = str(nh.dev)
        if (d !== undefined) hop.dev = d
        const w = num(nh.weight)
        if (w !== undefined) hop.weight = w
        return hop
      })
    }
    return route
  })
}

const RULE_ACTIONS = new Set(['blackhole', 'unreachable', 'prohibit'])

function rulePrefix(addr: string | undefined, len: number | undefined, family: Family): string | undefined {
  if (addr === undefined || addr === 'all') return undefined
  if (addr.includes('/')) return addr
  return `${addr}/${len ?? hostLen(family)}`
}

export function parseRules(text: string, family: Family, section = family === 'inet' ? 'rules4' : 'rules6'): Rule[] {
  return jsonArray(section, text).map((e) => {
    const rule: Rule = {family, priority: num(e.priority) ?? 0, action: 'lookup'}
    const src = rulePrefix(str(e.src), num(e.srclen), family)
    if (src !== undefined) rule.src = src
    const dst = rulePrefix(str(e.dst), num(e.dstlen), family)
    if (dst !== undefined) rule.dst = dst
    const iif = str(e.iif)
    if (iif !== undefined) rule.iif = iif
    const oif = str(e.oif)
    if (oif !== undefined) rule.oif = oif
    const mark = str(e.fwmark)
    if (mark !== undefined) rule.fwmark = str(e.fwmask) !== undefined ? `${mark}/${str(e.fwmask)}` : mark
    if ('not' in e) rule.not = true
    const action = str(e.action)
    if (action !== undefined && RULE_ACTIONS.has(action)) rule.action = action as Rule['action']
    else if (e.goto !== undefined) rule.action = 'goto'
    else if ('nop' in e || action === 'nop') rule.action = 'nop'
    else {
      const table = str(e.table)
      if (table !== undefined) rule.table = table
    }
    return rule
  })
}

export function parseNeighbours(text: string, section = 'neighbours'): Neighbour[] {
  return jsonArray(section, text).map((e, idx) => {
    const n: Neighbour = {
      dst: required(section, idx, 'dst', str(e.dst)),
      dev: required(section, idx, 'dev', str(e.dev)),
      state: strList(e.state),
    }
    const ll = str(e.lladdr)
    if (ll !== undefined) n.lladdr = ll.toLowerCase()
    // iproute2 prints these flags as JSON null: present means set
    if ('router' in e) n.router = true
    if ('proxy' in e) n.proxy = true
    return n
  })
}

export function parseFdb(text: string, section = 'fdb'): FdbEntry[] {
  return jsonArray(section, text).map((e, idx) => {
    const flags = strList(e.flags)
    const state = str(e.state) ?? ''
    const entry: FdbEntry = {
      mac: required(section, idx, 'mac', str(e.mac)).toLowerCase(),
      dev: required(section, idx, 'ifname', str(e.ifname) ?? str(e.dev)),
      self: flags.includes('self'),
      permanent: state === 'permanent',
      static: state === 'static',
    }
    const dst = str(e.dst)
    if (dst !== undefined) entry.dst = dst
    const vni = num(e.vni)
    if (vni !== undefined) entry.vni = vni
    const port = num(e.port) ?? num(e.dst_port)
    if (port !== undefined) entry.port = port
    const master = str(e.master)
    if (master !== undefined) entry.master = master
    if (state !== '') entry.state = state
    const vlan = num(e.vlan)
    if (vlan !== undefined) entry.vlan = vlan
    return entry
  })
}
