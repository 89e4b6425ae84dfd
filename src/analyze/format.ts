import type {Neighbour, NextHop, Route, Rule} from '../model/node-state.js'
import {parseCidr} from './ip.js'

/**
 * The model printed back the way iproute2 prints it, so that every piece of
 * evidence reads exactly like the line a user finds in `ip route show table
 * all`, `ip rule` or `ip neigh` on the node.
 */

/** iproute2's order for the per-route / per-nexthop flag words. */
const FLAG_ORDER = ['dead', 'onlink', 'pervasive', 'offload', 'trap', 'notify', 'linkdown', 'unresolved', 'rt_offload', 'rt_trap', 'rt_offload_failed']

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
  if (route.metric !== undefined && (route.metric !== 0 || route.family === 'inet6')) words.push('metric', String(route.metric))
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
