import type {Address, FdbEntry, Link, Neighbour, NextHop, Route, Rule, VxlanInfo} from '../model/node-state.js'
import {parseCidr} from './ip.js'

/**
 * The model printed back the way iproute2 prints it, so that every piece of
 * evidence (a finding's, a hop's, a backend plan's) reads exactly like the line
 * a user finds in `ip route show table all`, `ip rule`, `ip neigh`, `bridge
 * fdb`, `ip -d -o link` or `ip -o addr` on the node. The one place these forms
 * are written: where two printers disagreed, the tools' own output decided.
 */

/** iproute2's order for the per-route / per-nexthop flag words. */
const FLAG_ORDER = [
  'dead',
  'onlink',
  'pervasive',
  'offload',
  'trap',
  'notify',
  'linkdown',
  'unresolved',
  'rt_offload',
  'rt_trap',
  'rt_offload_failed',
]

/** Route dst as ip prints it: 'default', a bare host address, or a prefix. */
export function formatRouteDst(route: Pick<Route, 'dst' | 'family'>): string {
  const c = parseCidr(route.dst, route.family)
  if (!c) return route.dst
  if (c.len === 0) return 'default'
  return c.len === (c.ip.family === 'inet' ? 32 : 128) ? c.ip.text : `${c.ip.text}/${c.len}`
}

function flagWords(flags: readonly string[], onlink: boolean): string[] {
  const set = new Set(flags)
  if (onlink) set.add('onlink')
  const known = FLAG_ORDER.filter((f) => set.has(f))
  const other = [...set].filter((f) => !FLAG_ORDER.includes(f))
  return [...known, ...other]
}

function formatNexthop(nh: NextHop): string {
  const words = ['nexthop']
  if (nh.gateway) words.push('via', nh.gateway)
  if (nh.dev) words.push('dev', nh.dev)
  words.push('weight', String(nh.weight ?? 1))
  words.push(...flagWords(nh.flags ?? [], nh.onlink))
  return words.join(' ')
}

/** The usual form of a model object, made once: the FIB's trail prints the same routes and rules many times. */
function memo<T extends object>(format: (x: T) => string): (x: T) => string {
  const made = new WeakMap<T, string>()
  return (x) => {
    let text = made.get(x)
    if (text === undefined) {
      text = format(x)
      made.set(x, text)
    }
    return text
  }
}

export interface RouteFormat {
  /** name a table other than main (default); false for a listing of one table */
  table?: boolean
  /** multipath next hops on the route's own line, for a one-line quote (a finding's evidence) */
  oneLine?: boolean
}

const routeAsListed = memo((route: Route) => formatRouteUncached(route, {}))

/**
 * One route as `ip route show table all` prints it (the table is named unless
 * it is main). Multipath routes span several lines, each nexthop on its own
 * tab-indented line, as ip prints them; `oneLine` keeps them on one.
 */
export function formatRoute(route: Route, opts: RouteFormat = {}): string {
  return opts.table === false || opts.oneLine ? formatRouteUncached(route, opts) : routeAsListed(route)
}

function formatRouteUncached(route: Route, opts: RouteFormat): string {
  const showTable = opts.table !== false
  const words: string[] = []
  if (route.type !== 'unicast') words.push(route.type)
  words.push(formatRouteDst(route))
  if (route.gateway) words.push('via', route.gateway)
  if (route.dev) words.push('dev', route.dev)
  if (showTable && route.table !== 'main' && route.table !== '254') words.push('table', tableName(route.table))
  if (route.protocol && route.protocol !== 'boot') words.push('proto', route.protocol)
  if (route.scope && route.scope !== 'global' && route.scope !== 'universe') words.push('scope', route.scope)
  if (route.prefsrc) words.push('src', route.prefsrc)
  if (route.metric !== undefined && (route.metric !== 0 || route.family === 'inet6'))
    words.push('metric', String(route.metric))
  words.push(...flagWords(route.flags ?? [], route.onlink))
  const head = words.join(' ')
  if (!route.nexthops || route.nexthops.length === 0) return head
  return [head, ...route.nexthops.map(formatNexthop)].join(opts.oneLine ? ' ' : '\n\t')
}

/** Table ids as ip names them. */
const TABLE_NAMES: Record<string, string> = {'255': 'local', '254': 'main', '253': 'default', '0': 'unspec'}

export function tableName(table: string | number): string {
  const t = String(table)
  return TABLE_NAMES[t] ?? t
}

function selector(value: string | undefined): string {
  if (!value || value === 'all' || value === 'default') return 'all'
  const c = parseCidr(value)
  if (!c) return value
  if (c.len === 0) return 'all'
  return c.len === (c.ip.family === 'inet' ? 32 : 128) ? c.ip.text : `${c.ip.text}/${c.len}`
}

const ruleAsListed = memo((rule: Rule) => formatRuleUncached(rule, false))

/** One policy rule as `ip rule` prints it ("32766: from all lookup main"; ip puts a tab after the colon). */
export function formatRule(rule: Rule, opts: {detached?: boolean} = {}): string {
  return opts.detached ? formatRuleUncached(rule, true) : ruleAsListed(rule)
}

function formatRuleUncached(rule: Rule, detached: boolean): string {
  const words: string[] = [`${rule.priority}:`]
  if (rule.not) words.push('not')
  words.push('from', selector(rule.src))
  if (rule.dst && selector(rule.dst) !== 'all') words.push('to', selector(rule.dst))
  if (rule.fwmark !== undefined) {
    const [mark, mask] = rule.fwmark.split('/')
    words.push('fwmark', mask === undefined || /^0xf{8}$/i.test(mask) ? (mark as string) : `${mark}/${mask}`)
  }
  if (rule.iif) words.push('iif', rule.iif, ...(detached ? ['[detached]'] : []))
  if (rule.oif) words.push('oif', rule.oif)
  switch (rule.action) {
    case 'lookup':
      words.push('lookup', tableName(rule.table ?? 'main'))
      break
    case 'goto':
      words.push('goto', rule.goto === undefined ? '?' : String(rule.goto))
      break
    default:
      words.push(rule.action)
  }
  return words.join(' ')
}

/** One neighbour entry as `ip neigh show nud all` (or `ip neigh show proxy`) prints it. */
export function formatNeighbour(n: Neighbour): string {
  const words = [n.dst, 'dev', n.dev]
  if (n.lladdr) words.push('lladdr', n.lladdr)
  if (n.router) words.push('router')
  if (n.proxy) words.push('proxy')
  words.push(...n.state)
  return words.join(' ')
}

/**
 * One FDB entry as `bridge fdb show` prints it: `5e:.. dev flannel.1 dst
 * 172.18.0.12 self permanent`. The order is the tool's: vlan, dst, port, vni,
 * then the flags (self before master BRIDGE), the state last (permanent,
 * static, or what the kernel says, e.g. stale; a dynamic entry has none).
 */
export function fdbLine(f: FdbEntry): string {
  const w = [f.mac, 'dev', f.dev]
  if (f.vlan !== undefined) w.push('vlan', String(f.vlan))
  if (f.dst) w.push('dst', f.dst)
  if (f.port !== undefined) w.push('port', String(f.port))
  if (f.vni !== undefined) w.push('vni', String(f.vni))
  if (f.self) w.push('self')
  if (f.master) w.push('master', f.master)
  if (f.permanent) w.push('permanent')
  else if (f.static) w.push('static')
  else if (f.state && f.state !== 'permanent') w.push(f.state)
  return w.join(' ')
}

/** A vxlan device's details as `ip -d link` prints them: `vxlan id 1 [group|local ...] [dev eth0] dstport 8472 [nolearning]`. */
export function vxlanWords(
  v: Pick<VxlanInfo, 'vni' | 'port' | 'learning'> & {group?: string; local?: string; dev?: string},
): string[] {
  const w = ['vxlan', 'id', String(v.vni)]
  if (v.group) w.push('group', v.group)
  if (v.local) w.push('local', v.local)
  if (v.dev) w.push('dev', v.dev)
  w.push('dstport', String(v.port))
  if (!v.learning) w.push('nolearning')
  return w
}

/**
 * A link as the printer needs it: a device netctl plans to make has no
 * ifindex yet (the kernel gives it one), and its line then starts at the name.
 */
export type PrintedLink = Omit<Link, 'ifindex' | 'adminUp'> & {ifindex?: number}

/** The index prefix of `ip -o link` / `ip -o addr` (`3: `), none for a device not made yet. */
const indexOf = (ifindex: number | undefined): string => (ifindex === undefined ? '' : `${ifindex}: `)

/** The head of a link as `ip link` prints it: `3: cni0: <BROADCAST,UP> mtu 1450 master br0 state UP`. */
export function linkHead(l: PrintedLink): string {
  return `${indexOf(l.ifindex)}${l.name}: <${l.flags.join(',')}> mtu ${l.mtu}${l.master ? ` master ${l.master}` : ''} state ${l.operstate}`
}

/** `ip -d -o link` on one line: the head, the MAC, and the vxlan / tun details. */
export function linkLine(l: PrintedLink): string {
  const w = [linkHead(l)]
  if (l.kind === 'tun' || !l.mac) w.push('link/none')
  else w.push(`link/${l.name === 'lo' ? 'loopback' : 'ether'} ${l.mac}`)
  if (l.vxlan) w.push(...vxlanWords(l.vxlan))
  else if (l.tun) w.push('tun', 'type', l.tun.type, l.tun.pi ? 'pi' : 'nopi')
  else if (l.kind) w.push(l.kind)
  return w.join(' ')
}

/** What `ip link show DEV` answers for a device that is not there. */
export function noDeviceLine(dev: string): string {
  return `Device "${dev}" does not exist.`
}

/** `ip -o -4 addr show`: `3: cni0    inet 10.244.1.1/24 brd 10.244.1.255 scope global cni0` (no index for a device not known or not made yet). */
export function addrLine(a: Address, ifindex?: number): string {
  const w = [`${indexOf(ifindex)}${a.dev}   `, a.family === 'inet' ? 'inet' : 'inet6', `${a.local}/${a.prefixlen}`]
  if (a.broadcast) w.push('brd', a.broadcast)
  w.push('scope', a.scope)
  if (a.family === 'inet') w.push(a.dev)
  return w.join(' ')
}
