import type {
  Address,
  Family,
  FdbEntry,
  Link,
  Neighbour,
  NextHop,
  Route,
  RouteType,
  Rule,
  VxlanInfo,
} from '../../model/node-state.js'
import {jsonArray, num, ParseError, str, strList} from './errors.js'

/**
 * Parsers for `ip -j` and `bridge -j` output. They accept what iproute2 has
 * printed over the years: `dst: "default"`, host routes without a prefix
 * length, missing `flags`, `table` or `type`, multipath `nexthops`, `via`
 * objects for gateways of another family, and fields that are simply absent.
 */

type Obj = Record<string, unknown>

/**
 * The fields that have a value, to spread into a model object: a field the
 * JSON did not carry stays absent rather than present as `undefined`.
 */
function defined<T extends object>(fields: T): {[K in keyof T]?: Exclude<T[K], undefined>} {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>
  }
}

const obj = (v: unknown): Obj | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined

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
    const mac = str(e.address)?.toLowerCase()
    const link: Link = {
      ifindex,
      name,
      mtu: num(e.mtu) ?? 0,
      operstate: str(e.operstate) ?? 'UNKNOWN',
      adminUp: flags.includes('UP'),
      flags,
      ...defined({kind, mac: mac && /^[0-9a-f]{2}(:[0-9a-f]{2})+$/.test(mac) ? mac : undefined, master: str(e.master)}),
    }
    if (kind === 'veth') {
      // newer iproute2: link_index; older: "link": "if7"
      Object.assign(
        link,
        defined({
          peerIfindex: num(e.link_index) ?? num(/^if(\d+)$/.exec(str(e.link) ?? '')?.[1]),
          linkNetnsid: num(e.link_netnsid),
        }),
      )
    }
    const slave = obj(info?.info_slave_data)
    if (str(info?.info_slave_kind) === 'bridge' && slave && typeof slave.hairpin === 'boolean')
      link.bridgePort = {hairpin: slave.hairpin}
    if (kind === 'vxlan' && data) link.vxlan = vxlanInfo(data, nameByIndex)
    if (kind === 'tun') {
      const type = str(data?.type)
      link.tun = {type: type === 'tap' ? 'tap' : 'tun', pi: data?.pi === true}
    }
    return link
  })
}

function vxlanInfo(d: Obj, nameByIndex: Map<number, string>): VxlanInfo {
  return {
    vni: num(d.id) ?? 0,
    // iproute2 names it port; some builds printed dstport
    port: num(d.port) ?? num(d.dstport) ?? 0,
    // learning is on unless the kernel says otherwise
    learning: d.learning !== false && d.nolearning === undefined,
    ...defined({
      local: str(d.local) ?? str(d.local6),
      dev: typeof d.link === 'number' ? nameByIndex.get(d.link) : str(d.link),
      group: str(d.group) ?? str(d.group6) ?? str(d.remote) ?? str(d.remote6),
    }),
  }
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
      out.push({
        dev,
        family,
        local,
        prefixlen: num(a.prefixlen) ?? (family === 'inet' ? 32 : 128),
        scope: str(a.scope) ?? 'global',
        ...defined({broadcast: str(a.broadcast)}),
      })
    }
  })
  return out
}

const ROUTE_TYPES: ReadonlySet<string> = new Set<RouteType>([
  'unicast',
  'local',
  'broadcast',
  'blackhole',
  'unreachable',
  'prohibit',
  'throw',
  'multicast',
  'anycast',
  'nat',
])

function gatewayOf(e: Obj): string | undefined {
  // a gateway of the other family (RFC 5549) comes as via: {family, host}
  return str(e.gateway) ?? str(obj(e.via)?.host)
}

export function parseRoutes(
  text: string,
  family: Family,
  section = family === 'inet' ? 'routes4' : 'routes6',
): Route[] {
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
      ...defined({
        gateway: gatewayOf(e),
        dev: str(e.dev),
        protocol: str(e.protocol),
        scope: str(e.scope),
        prefsrc: str(e.prefsrc),
        metric: num(e.metric),
      }),
    }
    if (Array.isArray(e.nexthops)) {
      route.nexthops = e.nexthops.map((raw): NextHop => {
        const nh = obj(raw) ?? {}
        return {
          onlink: strList(nh.flags).includes('onlink'),
          ...defined({gateway: gatewayOf(nh), dev: str(nh.dev), weight: num(nh.weight)}),
        }
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
    const mark = str(e.fwmark)
    const rule: Rule = {
      family,
      priority: num(e.priority) ?? 0,
      action: 'lookup',
      ...defined({
        src: rulePrefix(str(e.src), num(e.srclen), family),
        dst: rulePrefix(str(e.dst), num(e.dstlen), family),
        iif: str(e.iif),
        oif: str(e.oif),
        fwmark: mark !== undefined && str(e.fwmask) !== undefined ? `${mark}/${str(e.fwmask)}` : mark,
      }),
    }
    if ('not' in e) rule.not = true
    const action = str(e.action)
    if (action !== undefined && RULE_ACTIONS.has(action)) rule.action = action as Rule['action']
    else if (e.goto !== undefined) rule.action = 'goto'
    else if ('nop' in e || action === 'nop') rule.action = 'nop'
    else Object.assign(rule, defined({table: str(e.table)}))
    return rule
  })
}

export function parseNeighbours(text: string, section = 'neighbours'): Neighbour[] {
  return jsonArray(section, text).map((e, idx) => {
    const n: Neighbour = {
      dst: required(section, idx, 'dst', str(e.dst)),
      dev: required(section, idx, 'dev', str(e.dev)),
      state: strList(e.state),
      ...defined({lladdr: str(e.lladdr)?.toLowerCase()}),
    }
    // iproute2 prints these flags as JSON null: present means set
    if ('router' in e) n.router = true
    if ('proxy' in e) n.proxy = true
    return n
  })
}

export function parseFdb(text: string, section = 'fdb'): FdbEntry[] {
  return jsonArray(section, text).map((e, idx): FdbEntry => {
    const flags = strList(e.flags)
    const state = str(e.state) ?? ''
    return {
      mac: required(section, idx, 'mac', str(e.mac)).toLowerCase(),
      dev: required(section, idx, 'ifname', str(e.ifname) ?? str(e.dev)),
      self: flags.includes('self'),
      permanent: state === 'permanent',
      static: state === 'static',
      ...defined({
        dst: str(e.dst),
        vni: num(e.vni),
        port: num(e.port) ?? num(e.dst_port),
        master: str(e.master),
        state: state === '' ? undefined : state,
        vlan: num(e.vlan),
      }),
    }
  })
}
