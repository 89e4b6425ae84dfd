import type {Address, Family, Link, Route, Rule} from '../model/node-state.js'
import {
  type Cidr,
  cidrContains,
  commonBits,
  familyBits,
  type Ip,
  maskIp,
  parseCidr,
  parseIp,
  parsePrefixUncached,
  type Prefix4,
  sameIp,
  SCOPE,
  scopeValue,
  v4,
  v6,
  zeroIp,
} from './ip.js'
import {formatRoute, formatRule, tableName} from './iproute2.js'
import {PrefixTable4, PrefixTrie} from './prefix-trie.js'

/**
 * The kernel's forwarding decision, computed from the typed model alone: what
 * `ip route get` answers on the node. Policy rules in priority order, then in
 * each table the longest prefix, then the lowest metric, skipping routes whose
 * nexthops the kernel considers dead; source address selection as
 * inet_select_addr does it; for packets received on an interface (iif) the
 * input path with its martian, forwarding and reverse-path checks.
 */

/** What the forwarding model reads. A NodeState (or PodNetnsState plus rules) fits. */
export interface FibState {
  routes: Route[]
  /** policy rules of both families; none for a family means the kernel's defaults */
  rules?: Rule[]
  addresses: Address[]
  links: Link[]
  /** sysctl values keyed as sysctl names them (net.ipv4.conf.eth0.rp_filter); when absent the model says what it assumed */
  sysctls?: Record<string, string>
}

/** The packet whose route is asked for, as `ip route get DST [from SRC] [iif DEV] [oif DEV] [mark MARK]`. */
export interface PacketQuery {
  dst: string
  src?: string
  /** received on this interface (forwarded or delivered); absent: originated on the node */
  iif?: string
  /** output interface forced (a socket bound to a device) */
  oif?: string
  fwmark?: number | string
}

/** The outcome; errors name the case behind the kernel's errno. */
export type RouteOutcome =
  | 'unicast'
  | 'local'
  | 'broadcast'
  | 'multicast'
  /** IPv6 anycast addresses of the node (the subnet-router anycast): delivered locally */
  | 'anycast'
  | 'blackhole'
  | 'unreachable'
  | 'prohibit'
  | 'no-route'
  | 'forwarding-disabled'
  | 'martian-source'
  | 'martian-destination'
  | 'rp-filter'
  | 'bad-source'
  | 'no-device'

/** The error `ip route get` prints for the outcome (RTNETLINK answers: ...). */
export type KernelErrno = 'ENETUNREACH' | 'EHOSTUNREACH' | 'EACCES' | 'EINVAL' | 'ENODEV'

export const ERRNO_MESSAGE: Record<KernelErrno, string> = {
  ENETUNREACH: 'Network is unreachable',
  EHOSTUNREACH: 'No route to host',
  EACCES: 'Permission denied',
  EINVAL: 'Invalid argument',
  ENODEV: 'No such device',
}

export interface RouteNexthop {
  gateway?: string
  dev?: string
  weight: number
  onlink: boolean
  /** the source address a packet sent over this nexthop gets */
  src?: string
  /** the device has no carrier; the kernel still uses the nexthop unless ignore_routes_with_linkdown */
  linkdown: boolean
  /** input path: the source check fails when the flow hash picks this nexthop (then EINVAL) */
  refused?: string
}

export interface RouteDecision {
  type: RouteOutcome
  family: Family
  /** 'output': originated on the node; 'input': received on `iif` */
  direction: 'output' | 'input'
  /** set when the kernel refuses the packet; `ip route get` then prints ERRNO_MESSAGE[error] */
  error?: KernelErrno
  /** the table the route came from */
  table?: string
  /** priority of the rule that decided */
  rulePriority?: number
  rule?: Rule
  /** the matched route (also for blackhole/unreachable/prohibit routes) */
  route?: Route
  /** single path: the next hop's gateway and device ('lo' for local delivery, as ip route get says) */
  gateway?: string
  dev?: string
  /** the packet's source address: given, or the one the kernel selects */
  src?: string
  /** every usable nexthop (one for a single-path route); the kernel picks one per flow hash */
  nexthops?: RouteNexthop[]
  /** the output device has no carrier (the kernel still uses the route: flag it, LINK_DOWN) */
  linkdown?: boolean
  /** the next hop is on-link by declaration, or assumed so (oif given and no route) */
  onlink?: boolean
  /** in words, why the kernel decided so */
  reason?: string
  /** lines as `ip rule` / `ip route show table all` print them, in the order they were used */
  evidence: string[]
  /** routes passed over, and what the model assumed where the snapshot was silent */
  notes: string[]
  /** routes the kernel skipped because of link state (dead or linkdown nexthops): candidates for LINK_DOWN / ROUTE_STALE */
  passedOver?: Array<{route: Route; reason: string}>
}

/* ------------------------------------------------------------------ */
/* compiled state                                                      */
/* ------------------------------------------------------------------ */

export interface AddrInfo {
  addr: Address
  ip: Ip
  prefix: Cidr
  scope: number
  /** the kernel marks an address secondary when a primary of the same subnet and length precedes it */
  secondary: boolean
}

export interface Tables {
  inet: PrefixTable4<Route>
  inet6: PrefixTrie<Route>
}

export interface CompiledFib {
  readonly state: FibState
  readonly tables: Map<string, Tables>
  readonly rules: Record<Family, Rule[]>
  readonly defaultRules: Record<Family, boolean>
  readonly synthesizedLocal: Record<Family, boolean>
  readonly links: Map<string, Link>
  /** in the kernel's device list order (ifindex), loopback first */
  readonly linkOrder: Link[]
  readonly addrsByDev: Map<string, AddrInfo[]>
  /** every address on the node (any device, any state), by text */
  readonly localAddrs: Map<string, AddrInfo>
  /** rules other than the defaults exist: the kernel then checks sources fully */
  readonly customRules: Record<Family, boolean>
  /** local-type routes that the kernel did not add */
  readonly customLocalRoutes: boolean
  /** IPv4 source per (dev, gateway, scope), filled as lookups need it */
  readonly nhSaddr: Map<string, string | undefined>
}

const DEFAULT_RULES: Record<Family, Rule[]> = {
  inet: [
    {family: 'inet', priority: 0, src: 'all', table: 'local', action: 'lookup'},
    {family: 'inet', priority: 32766, src: 'all', table: 'main', action: 'lookup'},
    {family: 'inet', priority: 32767, src: 'all', table: 'default', action: 'lookup'},
  ],
  inet6: [
    {family: 'inet6', priority: 0, src: 'all', table: 'local', action: 'lookup'},
    {family: 'inet6', priority: 32766, src: 'all', table: 'main', action: 'lookup'},
  ],
}

/** Table ids and names as one key: 255 → local, 254 → main, 253 → default. */
export function normalTable(table: string | number | undefined): string {
  if (table === undefined || table === '') return 'main'
  return tableName(table)
}

function routeFamily(r: Route): Family {
  if (r.family) return r.family
  return r.dst.includes(':') ? 'inet6' : 'inet'
}

function isDefaultRuleSet(rules: Rule[], family: Family): boolean {
  const d = DEFAULT_RULES[family]
  if (rules.length !== d.length) return false
  return rules.every((r, i) => {
    const x = d[i] as Rule
    return (
      r.priority === x.priority &&
      r.action === 'lookup' &&
      normalTable(r.table) === x.table &&
      !r.not &&
      !r.iif &&
      !r.oif &&
      r.fwmark === undefined &&
      (!r.src || r.src === 'all' || parseCidr(r.src, family)?.len === 0) &&
      (!r.dst || r.dst === 'all' || parseCidr(r.dst, family)?.len === 0)
    )
  })
}

/** Local table routes the kernel adds for every address, when the snapshot has none. */
function synthesizeLocalRoutes(family: Family, addrs: AddrInfo[], links: Map<string, Link>): Route[] {
  const out: Route[] = []
  for (const a of addrs) {
    if (a.ip.family !== family) continue
    const base = {family, table: 'local', dev: a.addr.dev, protocol: 'kernel', onlink: false, flags: [] as string[]}
    if (family === 'inet') {
      out.push({...base, type: 'local', dst: `${a.ip.text}/32`, scope: 'host', prefsrc: a.ip.text})
      if (a.secondary) continue
      const loopback = links.get(a.addr.dev)?.flags.includes('LOOPBACK') ?? a.addr.dev === 'lo'
      if (loopback && a.prefix.len < 32)
        out.push({
          ...base,
          type: 'local',
          dst: `${a.prefix.ip.text}/${a.prefix.len}`,
          scope: 'host',
          prefsrc: a.ip.text,
        })
      if (a.prefix.len < 31) {
        const bcast = a.addr.broadcast ?? broadcastOf(a.prefix)
        out.push({...base, type: 'broadcast', dst: `${bcast}/32`, scope: 'link', prefsrc: a.ip.text})
      }
    } else {
      out.push({...base, type: 'local', dst: `${a.ip.text}/128`, metric: 0})
    }
  }
  return out
}

function broadcastOf(c: Cidr): string {
  const b = Uint8Array.from(c.ip.bytes)
  for (let i = c.len; i < familyBits(c.ip.family); i++) b[i >> 3] = (b[i >> 3] as number) | (0x80 >> (i & 7))
  return [...b].join('.')
}

const compiled = new WeakMap<FibState, CompiledFib>()

/**
 * Build the lookup structures once per state (lookupRoute does this and
 * caches it per state object: a state is read as it is, so change a copy).
 */
export function compileFib(state: FibState): CompiledFib {
  const cached = compiled.get(state)
  if (cached) return cached

  const links = new Map(state.links.map((l) => [l.name, l]))
  const linkOrder = [...state.links].sort(
    (a, b) => (isLoopback(b) ? 1 : 0) - (isLoopback(a) ? 1 : 0) || a.ifindex - b.ifindex,
  )

  const addrsByDev = new Map<string, AddrInfo[]>()
  const localAddrs = new Map<string, AddrInfo>()
  const allAddrs: AddrInfo[] = []
  for (const addr of state.addresses) {
    const ip = parseIp(addr.local)
    if (!ip) continue
    const prefix = maskedCidr(ip, addr.prefixlen)
    const list = addrsByDev.get(addr.dev) ?? []
    // IPv4: same subnet and length as an earlier address on the device → secondary
    const secondary =
      ip.family === 'inet' &&
      list.some(
        (p) => p.ip.family === 'inet' && !p.secondary && p.prefix.len === prefix.len && sameIp(p.prefix.ip, prefix.ip),
      )
    const info: AddrInfo = {addr, ip, prefix, scope: scopeValue(addr.scope), secondary}
    list.push(info)
    addrsByDev.set(addr.dev, list)
    allAddrs.push(info)
    if (!localAddrs.has(ip.text)) localAddrs.set(ip.text, info)
  }

  const routes = [...state.routes]
  const synthesizedLocal: Record<Family, boolean> = {inet: false, inet6: false}
  for (const family of ['inet', 'inet6'] as const) {
    const hasLocal = routes.some((r) => routeFamily(r) === family && normalTable(r.table) === 'local')
    if (!hasLocal && allAddrs.some((a) => a.ip.family === family)) {
      routes.push(...synthesizeLocalRoutes(family, allAddrs, links))
      synthesizedLocal[family] = true
    }
  }

  const tables = new Map<string, Tables>()
  let customLocalRoutes = false
  for (const route of routes) {
    const family = routeFamily(route)
    // IPv4 as numbers (a node routes each peer's subnet: thousands of prefixes, each parsed once here)
    const p4 =
      family === 'inet' ? (parsePrefixUncached(route.dst) ?? prefix4Of(parseCidr(route.dst, family))) : undefined
    const c = family === 'inet' ? undefined : parseCidr(route.dst, family)
    if (family === 'inet' ? !p4 : !c || c.ip.family !== family) continue
    const t = normalTable(route.table)
    let tb = tables.get(t)
    if (!tb) {
      tb = {inet: new PrefixTable4<Route>(), inet6: new PrefixTrie<Route>(128)}
      tables.set(t, tb)
    }
    if (p4) tb.inet.insert(p4.net, p4.len, route)
    else tb.inet6.insert(c!.ip, c!.len, route)
    if (route.type === 'local' && route.protocol !== 'kernel') customLocalRoutes = true
  }
  // Within one prefix the kernel tries routes in metric order (tos is not modelled); ties keep dump order.
  for (const tb of tables.values()) {
    for (const values of tb.inet.valueLists()) if (values.length > 1) stableSortByMetric(values)
    for (const e of tb.inet6.entries()) stableSortByMetric(e.values)
  }

  const rules: Record<Family, Rule[]> = {inet: [], inet6: []}
  const defaultRules: Record<Family, boolean> = {inet: false, inet6: false}
  const customRules: Record<Family, boolean> = {inet: false, inet6: false}
  for (const family of ['inet', 'inet6'] as const) {
    const own = (state.rules ?? []).filter((r) => (r.family ?? 'inet') === family)
    if (own.length === 0) {
      rules[family] = DEFAULT_RULES[family]
      defaultRules[family] = true
    } else {
      rules[family] = own
        .map((r, i) => ({r, i}))
        .sort((a, b) => a.r.priority - b.r.priority || a.i - b.i)
        .map((x) => x.r)
      customRules[family] = !isDefaultRuleSet(rules[family], family)
    }
  }

  const fib: CompiledFib = {
    state,
    tables,
    rules,
    defaultRules,
    synthesizedLocal,
    links,
    linkOrder,
    addrsByDev,
    localAddrs,
    customRules,
    customLocalRoutes,
    nhSaddr: new Map(),
  }
  compiled.set(state, fib)
  return fib
}

/** An IPv4 Cidr as a number prefix (undefined for IPv6 or nothing). */
function prefix4Of(c: Cidr | undefined): Prefix4 | undefined {
  if (!c || c.ip.family !== 'inet') return undefined
  const b = c.ip.bytes
  return {net: ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0, len: c.len}
}

function maskedCidr(ip: Ip, len: number): Cidr {
  return {ip: maskIp(ip, len), len}
}

function stableSortByMetric(routes: Route[]): void {
  const keyed = routes.map((r, i) => ({r, i}))
  keyed.sort((a, b) => (a.r.metric ?? 0) - (b.r.metric ?? 0) || a.i - b.i)
  keyed.forEach((k, i) => {
    routes[i] = k.r
  })
}

function isLoopback(l: Link): boolean {
  return l.flags.includes('LOOPBACK') || l.name === 'lo'
}

/* ------------------------------------------------------------------ */
/* sysctls                                                             */
/* ------------------------------------------------------------------ */

/** A per-device sysctl value; sysctl writes a '.' in a device name as '/'. */
function sysctlDev(fib: CompiledFib, family: Family, dev: string, key: string): number | undefined {
  const s = fib.state.sysctls
  if (!s) return undefined
  const proto = family === 'inet' ? 'ipv4' : 'ipv6'
  const v = s[`net.${proto}.conf.${dev}.${key}`] ?? s[`net.${proto}.conf.${dev.replace(/\./g, '/')}.${key}`]
  if (v === undefined) return undefined
  const n = Number(v.trim())
  return Number.isFinite(n) ? n : undefined
}

/** IN_DEV_ORCONF: on when `all` or the device says so. */
function orConf(fib: CompiledFib, family: Family, dev: string, key: string): boolean | undefined {
  const all = sysctlDev(fib, family, 'all', key)
  const d = sysctlDev(fib, family, dev, key)
  if (all === undefined && d === undefined) return undefined
  return (all ?? 0) !== 0 || (d ?? 0) !== 0
}

/* ------------------------------------------------------------------ */
/* lookup context                                                      */
/* ------------------------------------------------------------------ */

interface Flow {
  family: Family
  dst: Ip
  /** undefined: no source yet (the kernel's 0.0.0.0 / ::) */
  src?: Ip
  /** the input device; 'lo' for locally originated packets, as the kernel does */
  iif: string
  oif?: string
  mark: number
  /** received on iif (input path) rather than originated */
  input?: boolean
}

/**
 * The device a route must leave by to count: the oif when one is given; for
 * IPv6 link-local, multicast and loopback destinations of a received packet,
 * the device it came in on (the kernel's strict interface match).
 */
function requiredDev(flow: Flow): string | undefined {
  if (flow.oif) return flow.oif
  if (
    flow.family === 'inet6' &&
    flow.input &&
    (v6.isLinkLocal(flow.dst) || v6.isMulticast(flow.dst) || v6.isLoopback(flow.dst))
  )
    return flow.iif
  return undefined
}

class Trail {
  readonly evidence: string[] = []
  readonly notes: string[] = []
  readonly passed: Array<{route: Route; reason: string}> = []
  /** 'quiet' lookups (reverse-path checks) add notes only */
  constructor(readonly quiet = false) {}
  line(s: string): void {
    if (!this.quiet && !this.evidence.includes(s)) this.evidence.push(s)
  }
  note(s: string): void {
    if (!this.notes.includes(s)) this.notes.push(s)
  }
  pass(route: Route, reason: string): void {
    if (!this.quiet && !this.passed.some((p) => p.route === route)) this.passed.push({route, reason})
  }
}

interface HopState {
  gateway?: string
  dev?: string
  weight: number
  onlink: boolean
  linkdown: boolean
}

type TableResult =
  | {kind: 'found'; route: Route; hops: HopState[]}
  | {kind: 'reject'; route: Route; errno: KernelErrno; outcome: RouteOutcome}
  | {kind: 'again'; throwRoute?: Route}

type FibResult =
  | {ok: true; rule: Rule; table: string; route: Route; hops: HopState[]}
  | {ok: false; errno: KernelErrno; outcome: RouteOutcome; rule?: Rule; table?: string; route?: Route; reason: string}

const REJECT: Record<Family, Partial<Record<Route['type'], {errno: KernelErrno; outcome: RouteOutcome}>>> = {
  inet: {
    blackhole: {errno: 'EINVAL', outcome: 'blackhole'},
    unreachable: {errno: 'EHOSTUNREACH', outcome: 'unreachable'},
    prohibit: {errno: 'EACCES', outcome: 'prohibit'},
    nat: {errno: 'EINVAL', outcome: 'blackhole'},
  },
  inet6: {
    blackhole: {errno: 'EINVAL', outcome: 'blackhole'},
    unreachable: {errno: 'EHOSTUNREACH', outcome: 'unreachable'},
    prohibit: {errno: 'EACCES', outcome: 'prohibit'},
    nat: {errno: 'EINVAL', outcome: 'blackhole'},
  },
}

/** Terminal rule actions and the errno fib4/fib6_rule_action returns for them. */
const RULE_REJECT: Partial<Record<Rule['action'], {errno: KernelErrno; outcome: RouteOutcome}>> = {
  blackhole: {errno: 'EINVAL', outcome: 'blackhole'},
  unreachable: {errno: 'ENETUNREACH', outcome: 'unreachable'},
  prohibit: {errno: 'EACCES', outcome: 'prohibit'},
}

function parseMark(v: number | string | undefined): number {
  if (v === undefined) return 0
  if (typeof v === 'number') return v >>> 0
  const n = Number(v.trim())
  return Number.isFinite(n) ? n >>> 0 : 0
}

function ruleMark(rule: Rule): {mark: number; mask: number} | undefined {
  if (rule.fwmark === undefined) return undefined
  const [m, k] = rule.fwmark.split('/')
  return {mark: parseMark(m), mask: k === undefined ? 0xffffffff : parseMark(k)}
}

/** A rule naming a device the node does not have never matches (ip shows it [detached]). */
function detached(fib: CompiledFib, dev: string): boolean {
  return fib.links.size > 0 && !fib.links.has(dev)
}

interface ParsedRule {
  /** the lookup table, normalised */
  table: string
  src?: Cidr
  dst?: Cidr
  mark?: {mark: number; mask: number}
}

/** Rule selectors parsed once: a trace asks the same rules many times. */
const parsedRules = new WeakMap<Rule, ParsedRule>()

function parsedRule(rule: Rule): ParsedRule {
  let p = parsedRules.get(rule)
  if (!p) {
    const sel = (v: string | undefined) => {
      if (!v || v === 'all') return undefined
      const c = parseCidr(v, rule.family)
      return c && c.len > 0 ? c : undefined
    }
    const src = sel(rule.src)
    const dst = sel(rule.dst)
    const mark = ruleMark(rule)
    p = {table: normalTable(rule.table), ...(src ? {src} : {}), ...(dst ? {dst} : {}), ...(mark ? {mark} : {})}
    parsedRules.set(rule, p)
  }
  return p
}

function ruleMatches(fib: CompiledFib, rule: Rule, flow: Flow): boolean {
  const p = parsedRule(rule)
  let ok = true
  if (rule.iif && (rule.iif !== flow.iif || detached(fib, rule.iif))) ok = false
  if (ok && rule.oif && (rule.oif !== flow.oif || detached(fib, rule.oif))) ok = false
  if (ok && p.mark && ((p.mark.mark ^ flow.mark) & p.mark.mask) >>> 0 !== 0) ok = false
  if (ok && p.src && !cidrContains(p.src, flow.src ?? zeroIp(flow.family))) ok = false
  if (ok && p.dst && !cidrContains(p.dst, flow.dst)) ok = false
  return rule.not ? !ok : ok
}

function noCarrier(link: Link): boolean {
  if (!link.adminUp) return false
  if (link.flags.includes('NO-CARRIER')) return true
  if (link.flags.length > 0 && link.flags.includes('UP') && !link.flags.includes('LOWER_UP')) return true
  return link.operstate === 'DOWN' || link.operstate === 'LOWERLAYERDOWN'
}

function routeScope(route: Route): number {
  const fallback = route.type === 'local' ? SCOPE.host : route.type === 'broadcast' ? SCOPE.link : SCOPE.global
  return scopeValue(route.scope, fallback)
}

/**
 * The nexthops of a route the kernel would use for this flow. It marks a
 * nexthop dead when its device is administratively down (and then removes
 * single-path routes altogether, so a snapshot normally no longer holds them);
 * it marks it linkdown when the device has no carrier, and still uses it
 * unless ignore_routes_with_linkdown is set. Host-scope (local) routes never die.
 */
function usableHops(fib: CompiledFib, route: Route, flow: Flow, trail: Trail): HopState[] {
  const multipath = !!route.nexthops && route.nexthops.length > 0
  const hops: Array<HopState & {flags: string[]}> = multipath
    ? (route.nexthops ?? []).map((nh) => ({
        gateway: nh.gateway,
        dev: nh.dev,
        weight: nh.weight ?? 1,
        onlink: nh.onlink,
        linkdown: false,
        flags: nh.flags ?? [],
      }))
    : [{gateway: route.gateway, dev: route.dev, weight: 1, onlink: route.onlink, linkdown: false, flags: route.flags}]
  const hostScope = routeScope(route) >= SCOPE.host
  const usable: HopState[] = []
  const why: string[] = []
  /** reasons of link state, as opposed to a device the flow does not allow */
  const stateWhy: string[] = []
  for (const hop of hops) {
    const link = hop.dev ? fib.links.get(hop.dev) : undefined
    if (!hostScope) {
      if (hop.dev && fib.links.size > 0 && !link) {
        stateWhy.push(`dev ${hop.dev} does not exist`)
        continue
      }
      if (link && !link.adminUp) {
        stateWhy.push(`dev ${hop.dev} is down (the kernel marks the nexthop dead)`)
        continue
      }
      if (hop.flags.includes('dead')) {
        stateWhy.push('the kernel marks it dead')
        continue
      }
    }
    // host-scope routes (local addresses) carry no link state at all
    hop.linkdown = !hostScope && ((!!link && noCarrier(link)) || hop.flags.includes('linkdown'))
    if (hop.linkdown && hop.dev && orConf(fib, flow.family, hop.dev, 'ignore_routes_with_linkdown')) {
      stateWhy.push(`dev ${hop.dev} has no carrier and ignore_routes_with_linkdown is set`)
      continue
    }
    const must = requiredDev(flow)
    if (must && hop.dev !== must) {
      why.push(`not via ${flow.oif ? 'oif' : 'iif'} ${must}`)
      continue
    }
    const {flags: _flags, ...state} = hop
    usable.push(state)
  }
  if (usable.length === 0 && why.length + stateWhy.length > 0) {
    trail.note(`passed over: ${formatRoute(route).split('\n')[0]}: ${[...new Set([...stateWhy, ...why])].join('; ')}`)
    if (stateWhy.length > 0) trail.pass(route, [...new Set(stateWhy)].join('; '))
  }
  return usable
}

function tableLookup(fib: CompiledFib, table: string, flow: Flow, trail: Trail): TableResult {
  const trie = fib.tables.get(table)?.[flow.family]
  if (!trie || trie.size === 0) return {kind: 'again'}
  for (const m of trie.matches(flow.dst)) {
    for (const route of m.values) {
      // IPv6 reject routes sit on lo and, like every IPv6 route, must match a required device
      const must = flow.family === 'inet6' ? requiredDev(flow) : undefined
      if (must && REJECT.inet6[route.type] !== undefined && route.dev !== must) continue
      if (route.type === 'throw') {
        if (must && route.dev !== must) continue
        return {kind: 'again', throwRoute: route}
      }
      const reject = REJECT[flow.family][route.type]
      if (reject) return {kind: 'reject', route, ...reject}
      const hops = usableHops(fib, route, flow, trail)
      if (hops.length > 0) {
        if (
          m.len === 0 &&
          route.type === 'unicast' &&
          m.values.some((r) => r !== route && r.type === 'unicast' && (r.metric ?? 0) === (route.metric ?? 0))
        ) {
          trail.note(
            'several default routes share this metric: the kernel takes the first, and moves to another one when its gateway stops answering ARP (fib_select_default)',
          )
        }
        return {kind: 'found', route, hops}
      }
    }
  }
  return {kind: 'again'}
}

/** fib_lookup: the policy rules in priority order, each pointing at a table (or deciding by itself). */
function fibLookup(fib: CompiledFib, flow: Flow, trail: Trail): FibResult {
  const rules = fib.rules[flow.family]
  if (fib.defaultRules[flow.family])
    trail.line(
      `no ${flow.family === 'inet' ? 'ip' : 'ip -6'} rule in the snapshot: the kernel's default rules are assumed`,
    )
  let i = 0
  let hops = 0
  while (i < rules.length) {
    const rule = rules[i] as Rule
    if (!ruleMatches(fib, rule, flow)) {
      i++
      continue
    }
    if (rule.action === 'nop') {
      i++
      continue
    }
    if (rule.action === 'goto') {
      const j = rule.goto === undefined ? -1 : rules.findIndex((r) => r.priority === rule.goto)
      if (j < 0 || j <= i || ++hops > rules.length) {
        trail.note(`${formatRule(rule)}: the goto target does not exist (the kernel skips the rule)`)
        i++
        continue
      }
      trail.line(formatRule(rule))
      i = j
      continue
    }
    const terminal = RULE_REJECT[rule.action]
    if (terminal) {
      trail.line(formatRule(rule))
      return {ok: false, ...terminal, rule, reason: `rule ${rule.priority} says ${rule.action}`}
    }
    const table = parsedRule(rule).table
    const r = tableLookup(fib, table, flow, trail)
    if (r.kind === 'found') {
      trail.line(formatRule(rule))
      trail.line(formatRoute(r.route))
      return {ok: true, rule, table, route: r.route, hops: r.hops}
    }
    if (r.kind === 'reject') {
      trail.line(formatRule(rule))
      trail.line(formatRoute(r.route))
      return {
        ok: false,
        errno: r.errno,
        outcome: r.outcome,
        rule,
        table,
        route: r.route,
        reason: `${r.route.type} route in table ${table}`,
      }
    }
    if (r.throwRoute) {
      trail.line(formatRule(rule))
      trail.line(formatRoute(r.throwRoute))
    }
    i++
  }
  return {ok: false, errno: 'ENETUNREACH', outcome: 'no-route', reason: `no route to ${flow.dst.text}`}
}

/* ------------------------------------------------------------------ */
/* source address selection                                            */
/* ------------------------------------------------------------------ */

/**
 * inet_select_addr(dev, dst, scope): the first primary address on the device
 * whose scope fits, preferring one whose subnet holds `dst` (the gateway);
 * failing that, the first fitting non-link-scope address of any device in
 * device order, loopback first.
 */
function selectAddrV4(
  fib: CompiledFib,
  dev: string | undefined,
  dst: Ip | undefined,
  scope: number,
): string | undefined {
  const localnet = dev && orConf(fib, 'inet', dev, 'route_localnet') ? SCOPE.link : SCOPE.host
  let addr: string | undefined
  for (const a of (dev && fib.addrsByDev.get(dev)) || []) {
    if (a.ip.family !== 'inet' || a.secondary) continue
    if (Math.min(a.scope, localnet) > scope) continue
    if (!dst || v4.isZero(dst) || cidrContains(a.prefix, dst)) return a.ip.text
    addr ??= a.ip.text
  }
  if (addr) return addr
  // in_dev_select_addr: here route_localnet does not widen a host-scope address (kube-proxy sets
  // conf/all/route_localnet=1, and 127.0.0.1 must still not become the source)
  for (const link of fib.linkOrder) {
    for (const a of fib.addrsByDev.get(link.name) ?? []) {
      if (a.ip.family !== 'inet' || a.secondary) continue
      if (a.scope !== SCOPE.link && a.scope <= scope) return a.ip.text
    }
  }
  return undefined
}

/** RFC 6724 source selection, the rules that matter without address flags: scope, outgoing interface, longest prefix. */
function selectAddrV6(fib: CompiledFib, dev: string | undefined, dst: Ip): string | undefined {
  const dstScope = v6.isLinkLocal(dst) || v6.isLoopback(dst) ? SCOPE.link : SCOPE.global
  const cands: AddrInfo[] = []
  for (const list of fib.addrsByDev.values())
    for (const a of list)
      if (a.ip.family === 'inet6' && !(a.addr as Address & {tentative?: boolean}).tentative) cands.push(a)
  const ok = cands.filter((a) => (dstScope === SCOPE.link ? a.addr.dev === dev : true))
  if (ok.length === 0) return undefined
  const scopeOf = (a: AddrInfo) => (v6.isLinkLocal(a.ip) ? SCOPE.link : v6.isLoopback(a.ip) ? SCOPE.host : SCOPE.global)
  const score = (a: AddrInfo): number[] => {
    const sc = scopeOf(a)
    return [
      sameIp(a.ip, dst) ? 1 : 0,
      // rule 2: the smallest scope that still reaches the destination
      sc >= dstScope ? -sc : -1000 + sc,
      a.addr.dev === dev ? 1 : 0,
      commonBits(a.ip.bytes, dst.bytes, Math.min(a.prefix.len, 128)),
    ]
  }
  ok.sort((a, b) => {
    const x = score(a)
    const y = score(b)
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return (y[i] as number) - (x[i] as number)
    return 0
  })
  return ok[0]?.ip.text
}

function hopSource(fib: CompiledFib, route: Route, hop: HopState, flow: Flow): string | undefined {
  if (route.prefsrc) return route.prefsrc
  if (flow.family === 'inet6') return selectAddrV6(fib, hop.dev, flow.dst)
  // IPv4: the answer depends on the route and nexthop only (the kernel caches it as nh_saddr)
  const key = `${hop.dev}|${hop.gateway ?? ''}|${routeScope(route)}`
  if (fib.nhSaddr.has(key)) return fib.nhSaddr.get(key)
  const gw = hop.gateway ? parseIp(hop.gateway) : undefined
  const s = selectAddrV4(fib, hop.dev, gw, routeScope(route))
  fib.nhSaddr.set(key, s)
  return s
}

/* ------------------------------------------------------------------ */
/* reverse path (fib_validate_source)                                  */
/* ------------------------------------------------------------------ */

interface SourceCheck {
  ok: boolean
  rpFilter?: boolean
  reason?: string
}

/**
 * fib_validate_source for a packet from `src` to `dst` received on `inDev`
 * and leaving by `oifDev` (undefined for local delivery). Without rp_filter
 * the kernel only refuses a source that is one of its own addresses; with it,
 * it looks the source up as a destination and wants the answer to lead back
 * out of `inDev` (strict, 1) or anywhere (loose, 2).
 */
function validateSource(
  fib: CompiledFib,
  src: Ip,
  dst: Ip,
  inDev: string,
  oifDev: string | undefined,
  mark: number,
  trail: Trail,
): SourceCheck {
  const all = sysctlDev(fib, 'inet', 'all', 'rp_filter')
  const dev = sysctlDev(fib, 'inet', inDev, 'rp_filter')
  if (all === undefined && dev === undefined)
    trail.note(`rp_filter of ${inDev} is not in the snapshot: assumed off (0)`)
  const rpf = Math.max(all ?? 0, dev ?? 0)
  const redirects = orConf(fib, 'inet', inDev, 'send_redirects') ?? true
  const acceptLocal = orConf(fib, 'inet', inDev, 'accept_local') ?? false
  if (!rpf && (inDev !== oifDev || !redirects)) {
    if (acceptLocal) return {ok: true}
    if (!(fib.customLocalRoutes || fib.customRules.inet)) {
      if (fib.localAddrs.has(src.text) && fib.localAddrs.get(src.text)?.ip.family === 'inet')
        return {ok: false, reason: `source ${src.text} is one of this node's own addresses`}
      return {ok: true}
    }
  }
  const quiet = new Trail(true)
  const srcValidMark = orConf(fib, 'inet', inDev, 'src_valid_mark') ?? false
  const reverse: Flow = {family: 'inet', dst: src, src: dst, iif: oifDev ?? 'lo', mark: srcValidMark ? mark : 0}
  const res = fibLookup(fib, reverse, quiet)
  const lastResort = (): SourceCheck =>
    rpf ? {ok: false, rpFilter: true, reason: `rp_filter=${rpf} on ${inDev}: no route back to ${src.text}`} : {ok: true}
  if (!res.ok) return lastResort()
  const type = res.route.type
  if (type !== 'unicast' && !(type === 'local' && acceptLocal))
    return {ok: false, reason: `source ${src.text} routes as ${type} (${formatRoute(res.route).split('\n')[0]})`}
  const devs =
    res.route.nexthops && res.route.nexthops.length > 0 ? res.route.nexthops.map((n) => n.dev) : [res.route.dev]
  if (devs.includes(inDev) || (type === 'local' && inDev === 'lo')) return {ok: true}
  const noAddr = !(fib.addrsByDev.get(inDev) ?? []).some((a) => a.ip.family === 'inet')
  if (noAddr) return lastResort()
  if (rpf === 1)
    return {
      ok: false,
      rpFilter: true,
      reason: `rp_filter=1 (strict) on ${inDev}: the route back to ${src.text} leaves by ${devs.join(',')} (${formatRoute(res.route).split('\n')[0]})`,
    }
  return {ok: true}
}

/* ------------------------------------------------------------------ */
/* the two paths                                                       */
/* ------------------------------------------------------------------ */

/** What every decision carries before its outcome is known. */
type DecisionBase = Omit<RouteDecision, 'evidence' | 'notes' | 'type'>

function refuse(
  base: DecisionBase,
  trail: Trail,
  type: RouteOutcome,
  error: KernelErrno,
  reason: string,
): RouteDecision {
  return {...base, type, error, reason, evidence: trail.evidence, notes: trail.notes}
}

/**
 * An IPv4 broadcast's or multicast's source as the kernel checks it (against a
 * zero destination; a zeronet source is not checked): the refusal, or undefined
 * when it passes.
 */
function refusedSource(
  fib: CompiledFib,
  s: Ip,
  iif: string,
  mark: number,
  base: DecisionBase,
  trail: Trail,
): RouteDecision | undefined {
  if (v4.isZeronet(s)) return undefined
  const chk = validateSource(fib, s, zeroIp('inet'), iif, undefined, mark, trail)
  if (chk.ok) return undefined
  return refuse(base, trail, chk.rpFilter ? 'rp-filter' : 'martian-source', 'EINVAL', chk.reason ?? 'source refused')
}

/** A failed fib lookup as a decision (errno may be overridden: forwarding off answers EHOSTUNREACH). */
function fromFailure(
  base: DecisionBase,
  res: Extract<FibResult, {ok: false}>,
  trail: Trail,
  errno: KernelErrno = res.errno,
): RouteDecision {
  return {
    ...base,
    type: res.outcome,
    error: errno,
    ...(res.table ? {table: res.table} : {}),
    ...(res.rule ? {rule: res.rule, rulePriority: res.rule.priority} : {}),
    ...(res.route ? {route: res.route} : {}),
    reason: res.reason,
    evidence: trail.evidence,
    notes: trail.notes,
  }
}

function decisionFromFib(
  fib: CompiledFib,
  res: Extract<FibResult, {ok: true}>,
  flow: Flow,
  base: DecisionBase,
  trail: Trail,
  srcGiven: boolean,
): RouteDecision {
  const srcOf = (h: HopState): {src?: string} => {
    const s = srcGiven ? flow.src?.text : hopSource(fib, res.route, h, flow)
    return s ? {src: s} : {}
  }
  const nexthops: RouteNexthop[] = res.hops.map((h) => ({
    ...(h.gateway ? {gateway: h.gateway} : {}),
    ...(h.dev ? {dev: h.dev} : {}),
    weight: h.weight,
    onlink: h.onlink,
    linkdown: h.linkdown,
    ...srcOf(h),
  }))
  const single = nexthops.length === 1 ? nexthops[0] : undefined
  const srcs = [...new Set(nexthops.map((n) => n.src))]
  const linkdown = nexthops.some((n) => n.linkdown)
  for (const n of nexthops)
    if (n.linkdown) trail.note(`dev ${n.dev} has no carrier (linkdown): the kernel still uses the route`)
  if (nexthops.length > 1) trail.note(`multipath: the kernel picks one of ${nexthops.length} nexthops per flow hash`)
  return {
    ...base,
    type:
      res.route.type === 'local' || res.route.type === 'broadcast' || res.route.type === 'multicast'
        ? res.route.type
        : 'unicast',
    table: res.table,
    rulePriority: res.rule.priority,
    rule: res.rule,
    route: res.route,
    ...(single?.gateway ? {gateway: single.gateway} : {}),
    ...(single?.dev ? {dev: single.dev} : {}),
    ...(srcs.length === 1 && srcs[0] ? {src: srcs[0]} : {}),
    nexthops,
    ...(linkdown ? {linkdown} : {}),
    ...(single?.onlink ? {onlink: true} : {}),
    evidence: trail.evidence,
    notes: trail.notes,
  }
}

function outputPath(fib: CompiledFib, q: PacketQuery, dst: Ip, srcIn: Ip | undefined, trail: Trail): RouteDecision {
  const family = dst.family
  const mark = parseMark(q.fwmark)
  const base = {family, direction: 'output' as const}
  // IPv4 wants a source it owns (IPv6's route lookup does not check)
  if (srcIn && family === 'inet') {
    const src = srcIn
    if (v4.isMulticast(src) || v4.isLimitedBroadcast(src) || v4.isZeronet(src)) {
      return refuse(base, trail, 'bad-source', 'EINVAL', `${src.text} cannot be a source address`)
    }
    const mine = fib.localAddrs.get(src.text)
    const localRoute = fib.tables
      .get('local')
      ?.inet.matches(src)
      .some((m) => m.values.some((r) => r.type === 'local'))
    if (!mine && !localRoute)
      return refuse(base, trail, 'bad-source', 'ENETUNREACH', `${src.text} is not an address of this node`)
    if (!q.oif && (v4.isMulticast(dst) || v4.isLimitedBroadcast(dst)) && mine) {
      // the kernel sends multicast and limited broadcast out of the device that owns the source, without a lookup
      const dev = mine.addr.dev
      return {
        ...base,
        type: v4.isLimitedBroadcast(dst) ? 'broadcast' : 'multicast',
        dev,
        src: src.text,
        nexthops: [{dev, weight: 1, onlink: true, linkdown: false, src: src.text}],
        reason: `sent out of ${dev}, the device that owns ${src.text}`,
        evidence: trail.evidence,
        notes: trail.notes,
      }
    }
  }
  let oifLink: Link | undefined
  let src = srcIn
  if (q.oif) {
    oifLink = fib.links.get(q.oif)
    if (!oifLink && fib.links.size > 0) return refuse(base, trail, 'no-device', 'ENODEV', `no device ${q.oif}`)
    if (oifLink && !oifLink.adminUp) return refuse(base, trail, 'no-route', 'ENETUNREACH', `oif ${q.oif} is down`)
    if (family === 'inet' && (v4.isLocalMulticast(dst) || v4.isLimitedBroadcast(dst))) {
      const s = src?.text ?? selectAddrV4(fib, q.oif, undefined, SCOPE.link)
      return {
        ...base,
        type: v4.isLimitedBroadcast(dst) ? 'broadcast' : 'multicast',
        dev: q.oif,
        ...(s ? {src: s} : {}),
        reason: `sent out of oif ${q.oif} without a route lookup`,
        evidence: trail.evidence,
        notes: trail.notes,
      }
    }
    // multicast out of a named device takes its source from that device before the lookup
    if (family === 'inet' && !src && v4.isMulticast(dst))
      src = parseIp(selectAddrV4(fib, q.oif, undefined, SCOPE.global) ?? '')
  }
  if (family === 'inet' && v4.isZero(dst)) {
    // the kernel sends a packet to 0.0.0.0 to itself
    const s = src?.text ?? (q.oif ? selectAddrV4(fib, q.oif, undefined, SCOPE.host) : undefined) ?? '127.0.0.1'
    return {
      ...base,
      type: 'local',
      dev: 'lo',
      src: s,
      reason: 'destination 0.0.0.0 is this node',
      evidence: trail.evidence,
      notes: trail.notes,
    }
  }
  const flow: Flow = {family, dst, ...(src ? {src} : {}), iif: 'lo', ...(q.oif ? {oif: q.oif} : {}), mark}
  const res = fibLookup(fib, flow, trail)
  if (!res.ok) {
    if (q.oif && family === 'inet') {
      // fib lookup failed but a device was named: the kernel assumes the destination is on-link there
      const s = src?.text ?? selectAddrV4(fib, q.oif, undefined, SCOPE.link)
      trail.note(`no usable route (${res.reason}); with oif ${q.oif} the kernel assumes ${dst.text} is on-link there`)
      return {
        ...base,
        type: v4.isMulticast(dst) ? 'multicast' : 'unicast',
        dev: q.oif,
        ...(s ? {src: s} : {}),
        onlink: true,
        nexthops: [
          {dev: q.oif, weight: 1, onlink: true, linkdown: !!oifLink && noCarrier(oifLink), ...(s ? {src: s} : {})},
        ],
        reason: `sent out of oif ${q.oif} as on-link`,
        evidence: trail.evidence,
        notes: trail.notes,
      }
    }
    return fromFailure(base, res, trail)
  }
  if (res.route.type === 'local' || res.route.type === 'anycast') {
    // an anycast address is never a source: the kernel selects one as for any IPv6 destination
    const s =
      src?.text ??
      res.route.prefsrc ??
      (res.route.type === 'anycast' ? selectAddrV6(fib, res.route.dev, dst) : undefined) ??
      dst.text
    return {
      ...base,
      type: res.route.type,
      table: res.table,
      rulePriority: res.rule.priority,
      rule: res.rule,
      route: res.route,
      dev: 'lo',
      src: s,
      nexthops: [{dev: 'lo', weight: 1, onlink: false, linkdown: false, src: s}],
      reason: `${dst.text} is an address of this node`,
      evidence: trail.evidence,
      notes: trail.notes,
    }
  }
  const d = decisionFromFib(fib, res, flow, base, trail, !!src)
  if (src && !srcIn) trail.note(`source ${src.text} selected on oif ${q.oif} before the lookup`)
  if (family === 'inet') {
    const loopSrc = (d.nexthops ?? []).find(
      (n) =>
        n.src &&
        v4.isLoopback(parseIp(n.src) as Ip) &&
        !(n.dev && fib.links.get(n.dev) && isLoopback(fib.links.get(n.dev) as Link)),
    )
    if (loopSrc)
      return refuse(
        base,
        trail,
        'bad-source',
        'EINVAL',
        `loopback source ${loopSrc.src} cannot leave by ${loopSrc.dev}`,
      )
    if (v4.isLimitedBroadcast(dst)) {
      // broadcast never goes to a gateway
      dropGateways(d)
      d.type = 'broadcast'
    } else if (v4.isMulticast(dst)) {
      // multicast over a (near-)default route leaves without its gateway
      if ((parseCidr(res.route.dst, 'inet')?.len ?? 0) < 4) dropGateways(d)
      d.type = 'multicast'
    } else if (v4.isZeronet(dst))
      return refuse(base, trail, 'martian-destination', 'EINVAL', `${dst.text} is not a valid destination`)
  }
  d.reason =
    d.type === 'broadcast'
      ? `${dst.text} is a broadcast address`
      : d.gateway
        ? `via ${d.gateway} dev ${d.dev}`
        : d.dev
          ? `directly on dev ${d.dev}`
          : `multipath over ${d.nexthops?.length} nexthops`
  return d
}

function dropGateways(d: RouteDecision): void {
  delete d.gateway
  d.nexthops = d.nexthops?.map(({gateway: _gateway, ...rest}) => rest)
}

function forwardingOn(fib: CompiledFib, family: Family, iif: string, trail: Trail): boolean {
  if (family === 'inet6') {
    const v = sysctlDev(fib, 'inet6', iif, 'forwarding') ?? sysctlDev(fib, 'inet6', 'all', 'forwarding')
    if (v === undefined) trail.note('IPv6 forwarding is not in the snapshot: assumed on')
    return v === undefined ? true : v !== 0
  }
  const s = fib.state.sysctls ?? {}
  const v =
    sysctlDev(fib, 'inet', iif, 'forwarding') ??
    sysctlDev(fib, 'inet', 'all', 'forwarding') ??
    (s['net.ipv4.ip_forward'] !== undefined ? Number(s['net.ipv4.ip_forward']) : undefined)
  if (v === undefined) trail.note(`forwarding on ${iif} is not in the snapshot: assumed on`)
  return v === undefined ? true : v !== 0
}

function inputPath(fib: CompiledFib, q: PacketQuery, dst: Ip, src: Ip | undefined, trail: Trail): RouteDecision {
  const family = dst.family
  const iif = q.iif as string
  const mark = parseMark(q.fwmark)
  const base = {family, direction: 'input' as const}
  if (fib.links.size > 0 && !fib.links.has(iif)) return refuse(base, trail, 'no-device', 'ENODEV', `no device ${iif}`)
  const s = src ?? zeroIp(family)
  const deliver = (type: 'local' | 'broadcast', reason: string, extra: Partial<RouteDecision> = {}): RouteDecision => ({
    ...base,
    type,
    dev: 'lo',
    src: s.text,
    reason,
    ...extra,
    evidence: trail.evidence,
    notes: trail.notes,
  })

  if (family === 'inet6') return inputPathV6(fib, q, dst, s, trail)

  if (v4.isMulticast(dst)) return multicastIn(fib, iif, dst, s, mark, base, trail)
  if (v4.isMulticast(s) || v4.isLimitedBroadcast(s))
    return refuse(base, trail, 'martian-source', 'EINVAL', `martian source ${s.text}`)
  const broadcastIn = (reason: string): RouteDecision =>
    refusedSource(fib, s, iif, mark, base, trail) ?? deliver('broadcast', reason)
  if (v4.isLimitedBroadcast(dst) || (v4.isZero(s) && v4.isZero(dst))) return broadcastIn('limited broadcast')
  if (v4.isZeronet(s)) return refuse(base, trail, 'martian-source', 'EINVAL', `martian source ${s.text}`)
  if (v4.isZeronet(dst)) return refuse(base, trail, 'martian-destination', 'EINVAL', `martian destination ${dst.text}`)
  const localnet = orConf(fib, 'inet', iif, 'route_localnet') ?? false
  if (v4.isLoopback(dst) && !localnet)
    return refuse(
      base,
      trail,
      'martian-destination',
      'EINVAL',
      `martian destination ${dst.text} (loopback arriving on ${iif})`,
    )
  if (!v4.isLoopback(dst) && v4.isLoopback(s) && !localnet)
    return refuse(base, trail, 'martian-source', 'EINVAL', `martian source ${s.text} (loopback arriving on ${iif})`)

  const flow: Flow = {family, dst, src: s, iif, mark, input: true}
  const res = fibLookup(fib, flow, trail)
  const fwd = forwardingOn(fib, 'inet', iif, trail)
  if (!res.ok) {
    const errno = fwd ? res.errno : 'EHOSTUNREACH'
    if (!fwd) trail.note(`forwarding is off on ${iif}: the kernel answers EHOSTUNREACH`)
    return fromFailure(base, res, trail, errno)
  }
  const found = {table: res.table, rule: res.rule, rulePriority: res.rule.priority, route: res.route}
  if (res.route.type === 'broadcast') return {...broadcastIn(`${dst.text} is a broadcast address here`), ...found}
  if (res.route.type === 'local') {
    const chk = validateSource(fib, s, dst, iif, undefined, mark, trail)
    if (!chk.ok)
      return refuse(
        base,
        trail,
        chk.rpFilter ? 'rp-filter' : 'martian-source',
        'EINVAL',
        chk.reason ?? 'source refused',
      )
    return deliver('local', `${dst.text} is an address of this node`, found)
  }
  if (!fwd)
    return refuse({...base, ...found}, trail, 'forwarding-disabled', 'EHOSTUNREACH', `forwarding is off on ${iif}`)
  if (res.route.type !== 'unicast')
    return refuse({...base, ...found}, trail, 'martian-destination', 'EINVAL', `${res.route.type} route: not forwarded`)
  const d = decisionFromFib(fib, res, flow, base, trail, true)
  // the kernel validates the source against the nexthop the flow hash picked; every nexthop is checked here
  const checks = (d.nexthops ?? []).map((n) => validateSource(fib, s, dst, iif, n.dev, mark, trail))
  const failed = checks.find((c) => !c.ok)
  if (failed && checks.every((c) => !c.ok))
    return refuse(
      {...base, ...found},
      trail,
      failed.rpFilter ? 'rp-filter' : 'martian-source',
      'EINVAL',
      failed.reason ?? 'source refused',
    )
  if (failed) {
    checks.forEach((c, i) => {
      const n = d.nexthops?.[i]
      if (!c.ok && n) n.refused = c.reason ?? 'source refused'
    })
    trail.note(`the source check fails for some nexthops (the flow hash decides): ${failed.reason}`)
  }
  d.reason = d.gateway
    ? `forwarded via ${d.gateway} dev ${d.dev}`
    : d.dev
      ? `forwarded directly on dev ${d.dev}`
      : `forwarded over ${d.nexthops?.length} nexthops`
  return d
}

/**
 * A received multicast packet is delivered when the node is a member of the
 * group on that device (never forwarded: no multicast routing is modelled).
 * Group membership is not in the snapshot; every IPv4 device is in 224.0.0.1.
 */
function multicastIn(
  fib: CompiledFib,
  iif: string,
  dst: Ip,
  s: Ip,
  mark: number,
  base: DecisionBase,
  trail: Trail,
): RouteDecision {
  const link = fib.links.get(iif)
  if (dst.text !== '224.0.0.1' || (link && !link.adminUp)) {
    trail.note(`group memberships are not in the snapshot: ${dst.text} is assumed not joined on ${iif}`)
    return refuse(
      base,
      trail,
      'martian-destination',
      'EINVAL',
      `multicast ${dst.text}: no member on ${iif} and no multicast routing`,
    )
  }
  if (v4.isMulticast(s) || v4.isLimitedBroadcast(s))
    return refuse(base, trail, 'martian-source', 'EINVAL', `martian source ${s.text}`)
  if (v4.isLoopback(s) && !(orConf(fib, 'inet', iif, 'route_localnet') ?? false))
    return refuse(base, trail, 'martian-source', 'EINVAL', `martian source ${s.text}`)
  const refused = refusedSource(fib, s, iif, mark, base, trail)
  if (refused) return refused
  return {
    ...base,
    type: 'multicast',
    dev: 'lo',
    src: s.text,
    reason: `${dst.text}: every host is a member`,
    evidence: trail.evidence,
    notes: trail.notes,
  }
}

function inputPathV6(fib: CompiledFib, q: PacketQuery, dst: Ip, s: Ip, trail: Trail): RouteDecision {
  const iif = q.iif as string
  const base = {family: 'inet6' as const, direction: 'input' as const}
  const flow: Flow = {family: 'inet6', dst, src: s, iif, mark: parseMark(q.fwmark), input: true}
  const res = fibLookup(fib, flow, trail)
  if (!res.ok) return fromFailure(base, res, trail)
  const found = {table: res.table, rule: res.rule, rulePriority: res.rule.priority, route: res.route}
  if (res.route.type === 'local' || res.route.type === 'anycast')
    return {
      ...base,
      ...found,
      type: res.route.type,
      dev: 'lo',
      src: s.text,
      reason: `${dst.text} is an address of this node`,
      evidence: trail.evidence,
      notes: trail.notes,
    }
  if (!forwardingOn(fib, 'inet6', iif, trail))
    trail.note(`IPv6 forwarding is off on ${iif}: ip6_forward drops the packet`)
  const d = decisionFromFib(fib, res, flow, base, trail, true)
  d.reason = d.gateway ? `forwarded via ${d.gateway} dev ${d.dev}` : `forwarded on dev ${d.dev}`
  return d
}

/**
 * The route the kernel picks for this packet, with the lines behind it.
 * Mirrors `ip route get`: without iif the packet is originated on the node
 * (ip_route_output), with iif it was received there (ip_route_input).
 */
export function lookupRoute(state: FibState | CompiledFib, q: PacketQuery): RouteDecision {
  const fib = 'tables' in state ? state : compileFib(state)
  const trail = new Trail()
  const dst = parseIp(q.dst)
  if (!dst) throw new Error(`not an IP address: '${q.dst}'`)
  const src = q.src ? parseIp(q.src) : undefined
  if (q.src && !src) throw new Error(`not an IP address: '${q.src}'`)
  if (src && src.family !== dst.family)
    throw new Error(`source ${q.src} and destination ${q.dst} are of different families`)
  if (fib.synthesizedLocal[dst.family])
    trail.note(
      `no ${dst.family === 'inet' ? '' : 'IPv6 '}local table in the snapshot: its routes were derived from the addresses`,
    )
  const srcEff = src && !(dst.family === 'inet' ? v4.isZero(src) : v6.isZero(src)) ? src : q.iif ? src : undefined
  const d = q.iif ? inputPath(fib, q, dst, srcEff, trail) : outputPath(fib, q, dst, srcEff, trail)
  if (trail.passed.length > 0) d.passedOver = trail.passed
  return d
}

/**
 * The reverse-path lookup xt_rpfilter makes: the route back to `dst` (the
 * packet's source) from `src` (its destination), as a bare FIB lookup with no
 * source address selection (a device without an address is no error here).
 * The devices the route leaves by, its type, or undefined when none matches.
 */
export function reversePathLookup(
  fib: CompiledFib,
  q: {dst: string; src?: string; fwmark?: number},
): {type: Route['type']; devs: string[]} | undefined {
  const dst = parseIp(q.dst)
  if (!dst) return undefined
  const src = q.src ? parseIp(q.src) : undefined
  const flow: Flow = {
    family: dst.family,
    dst,
    ...(src && src.family === dst.family ? {src} : {}),
    iif: 'lo',
    mark: q.fwmark ?? 0,
  }
  const res = fibLookup(fib, flow, new Trail(true))
  if (!res.ok) return res.route ? {type: res.route.type ?? 'unicast', devs: []} : undefined
  return {type: res.route.type ?? 'unicast', devs: res.hops.map((h) => h.dev).filter((d): d is string => !!d)}
}
