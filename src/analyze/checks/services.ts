/**
 * Services: the snapshot's Services and EndpointSlices against what each node
 * programmed and remembers. kube-proxy's rules are read structurally, as a
 * packet meets them, not by their hashed names: in iptables mode the nat
 * KUBE-SERVICES rule for a ClusterIP:port and the DNAT targets reachable from
 * the chain it jumps to (KUBE-SVC-/KUBE-SVL- → KUBE-SEP-), and filter
 * KUBE-SERVICES' REJECT for a Service without endpoints; in nftables mode the
 * `service-ips` verdict map element, the `dnat to` of the endpoint- chains its
 * chain goes to, and the `no-endpoint-services` element (kubernetes
 * pkg/proxy/iptables and pkg/proxy/nftables proxier.go). Conntrack entries of
 * Service flows are compared with the endpoints, the table's fill with its
 * maximum, and an endpoint pod's bridge port with hairpin mode.
 */
import {type InventoryService, type InventoryServicePort, ZONE_LABEL} from '../../model/inventory.js'
import type {ConntrackEntry, NftChain, NftElement, NftTable} from '../../model/netfilter.js'
import type {IptablesChain, IptablesRule, IptablesTable, Link, NodeState} from '../../model/node-state.js'
import type {SnapshotNode} from '../../model/snapshot.js'
import {plural} from '../../util/text.js'
import {contains, isIPv4, stripPrefix} from '../ip.js'
import {
  availableFor,
  endpointsOf,
  type HintedEndpoint,
  hintsOf,
  isReady,
  isServingTerminating,
  type Topology,
  topologyOf,
  topologyText,
} from '../service-endpoints.js'
import type {CheckContext} from './context.js'
import {BR_NF, linkLine, someNames, sysctlLine} from './evidence.js'
import {ruleSets, tableOf} from './iptables-walk.js'
import {type Check, raise, type Raised} from './raise.js'

/** One endpoint of a Service port as kube-proxy reads the EndpointSlice (pkg/proxy/endpointslicecache.go). */
interface EndpointState extends HintedEndpoint {
  node?: string
  ready: boolean
  /** serving while terminating: kube-proxy's fallback when nothing is ready */
  servingTerminating: boolean
}

/** One port of a Service and the endpoints the EndpointSlices give it (`ip:targetPort`). */
interface ServicePort {
  svc: InventoryService
  port: InventoryServicePort
  /** `ns/name:port` (`ns/name` for an unnamed port), as kube-proxy names a service port */
  spn: string
  proto: string
  /** `clusterIP proto port`: how rules are keyed here */
  key: string
  /**
   * the endpoints the Cluster traffic policy sends to (kube-proxy's CategorizeEndpoints): the ready
   * ones, else those serving while terminating (`fallback`); none: the Service has no endpoints
   */
  endpoints: string[]
  fallback: boolean
  notReady: number
  /** internalTrafficPolicy Local: each node's rules send only to the endpoints on it */
  local: boolean
  states: Map<string, EndpointState>
}

/**
 * The endpoints the Cluster policy sends to on `node` (in `zone`): the ready ones its topology hints keep
 * there (all of them without hints), else those serving while terminating (hints no longer apply).
 */
function clusterEndpoints(
  p: ServicePort,
  node: string,
  zone: string | undefined,
): {endpoints: string[]; topology?: Topology} {
  const topology = p.fallback ? undefined : topologyOf(p.states.values(), node, zone)
  if (!topology) return {endpoints: p.endpoints}
  return {endpoints: p.endpoints.filter((e) => availableFor(p.states.get(e)!, topology)), topology}
}

/** The endpoints a Local policy sends to on `node`: its ready ones, else its serving terminating ones. */
function localEndpoints(p: ServicePort, node: string): string[] {
  const here = [...p.states].filter(([, s]) => s.node === node)
  const ready = here.filter(([, s]) => s.ready)
  return (ready.length > 0 ? ready : here.filter(([, s]) => s.servingTerminating)).map(([e]) => e).sort()
}

const keyOf = (ip: string, proto: string, port: number | string): string => `${ip} ${proto.toLowerCase()} ${port}`
const keyText = (key: string): string => {
  const [ip, proto, port] = key.split(' ')
  return `${ip} ${proto}/${port}`
}

/** What the snapshot schema leaves open (a hand-written file): a port needs a protocol name and a number, an address is a string. */
const usablePort = (p: InventoryServicePort): boolean =>
  typeof p.protocol === 'string' &&
  Number.isInteger(p.port) &&
  (p.targetPort === undefined || Number.isInteger(p.targetPort))
const addressesOf = (e: NonNullable<InventoryService['endpoints']>[number]): string[] =>
  Array.isArray(e.addresses) ? e.addresses.filter((a): a is string => typeof a === 'string') : []

function servicePorts(services: readonly InventoryService[]): ServicePort[] {
  return services
    .filter((svc) => isIPv4(svc.clusterIP) && Array.isArray(svc.ports))
    .flatMap((svc) =>
      svc.ports.filter(usablePort).map((port) => {
        const eps = endpointsOf(svc)
        const states = new Map<string, EndpointState>()
        for (const e of eps)
          for (const a of addressesOf(e)) {
            const k = `${a}:${port.targetPort ?? port.port}`
            const was = states.get(k)
            const hints = hintsOf(e)
            states.set(k, {
              ...(e.nodeName ? {node: e.nodeName} : {}),
              ready: isReady(e) || (was?.ready ?? false),
              servingTerminating: isServingTerminating(e) || (was?.servingTerminating ?? false),
              forZones: [...(was?.forZones ?? []), ...hints.forZones],
              forNodes: [...(was?.forNodes ?? []), ...hints.forNodes],
            })
          }
        const pick = (f: (s: EndpointState) => boolean): string[] =>
          [...states]
            .filter(([, st]) => f(st))
            .map(([k]) => k)
            .sort()
        const readyOnes = pick((st) => st.ready)
        const fallback = readyOnes.length === 0 ? pick((st) => st.servingTerminating) : []
        return {
          svc,
          port,
          spn: `${svc.namespace}/${svc.name}${port.name ? `:${port.name}` : ''}`,
          proto: port.protocol.toLowerCase(),
          key: keyOf(svc.clusterIP, port.protocol, port.port),
          endpoints: readyOnes.length > 0 ? readyOnes : fallback,
          fallback: fallback.length > 0,
          notReady: eps.filter((e) => !isReady(e)).length,
          local: svc.internalTrafficPolicy === 'Local',
          states,
        }
      }),
    )
}

/** What one node's kube-proxy rules (one mode, one rule set) say about each ClusterIP:port. */
interface ProxyView {
  /** the evidence prefix: `node1 iptables-save`, `node1 nft` */
  tool: string
  /** key → the endpoints its rules DNAT to, and the lines that show it */
  services: Map<string, {endpoints: Map<string, string>; lines: string[]}>
  /** key → the rule or element that rejects it (no endpoints) */
  rejects: Map<string, string>
  /** key → the rule or element that drops it (internalTrafficPolicy Local, no endpoint on this node) */
  drops: Map<string, string>
  /** the rules hold nothing netctl can compare (ipvs mode: the Services live in IPVS) */
  opaque?: string
  /**
   * key (a load-balancer IP's) → the sources its firewall lets on (loadBalancerSourceRanges: KUBE-FW- `-s` rules,
   * nft's `firewall-` chain `ip saddr != { … } drop`), with the line that shows them
   */
  firewalls: Map<string, {sources: string[]; line: string}>
}

const dnatTarget = (r: IptablesRule): string | undefined => {
  if (r.target !== 'DNAT') return undefined
  const i = r.targetArgs?.indexOf('--to-destination') ?? -1
  return i >= 0 ? r.targetArgs?.[i + 1] : undefined
}

/** A rule's ClusterIP:port key, when it matches exactly one destination address, protocol and port. */
function ruleKey(r: IptablesRule): string | undefined {
  const m = r.match
  // iptables-save prints `-p tcp -m tcp --dport N`; a rule written in another order keeps the port among the other matches
  const dport = m.dport ?? m.other?.map((o) => /^--dport (\d+)$/.exec(o)?.[1]).find((x) => x !== undefined)
  if (
    !m.destination ||
    !m.protocol ||
    !dport ||
    m.negated?.some((f) => ['destination', 'protocol', 'dport'].includes(f))
  )
    return undefined
  const ip = stripPrefix(m.destination)
  if (m.destination.includes('/') && !m.destination.endsWith('/32')) return undefined
  return /^\d+$/.test(dport) ? keyOf(ip, m.protocol, dport) : undefined
}

/** The rules a packet entering `chain` meets, jumps and gotos into user chains followed (each chain once). */
function followChain(
  chains: ReadonlyMap<string, IptablesChain>,
  chain: string,
  seen = new Set<string>(),
): IptablesRule[] {
  const c = chains.get(chain)
  if (!c || seen.has(chain) || seen.size > 64) return []
  seen.add(chain)
  return c.rules.flatMap((r) =>
    r.target !== undefined && chains.get(r.target)?.policy === undefined && chains.has(r.target)
      ? [r, ...followChain(chains, r.target, seen)]
      : [r],
  )
}

function iptablesView(
  tool: string,
  nat: IptablesTable | undefined,
  filter: IptablesTable | undefined,
): ProxyView | undefined {
  const natServices = nat?.chains.find((c) => c.name === 'KUBE-SERVICES')
  const filterServices = filter?.chains.find((c) => c.name === 'KUBE-SERVICES')
  // external and load-balancer IPs are rejected or dropped there (NodePorts too, but those match no address)
  const filterExternal = filter?.chains.find((c) => c.name === 'KUBE-EXTERNAL-SERVICES')
  if (!natServices?.rules.length && !filterServices?.rules.length) return undefined
  const view: ProxyView = {tool, services: new Map(), rejects: new Map(), drops: new Map(), firewalls: new Map()}
  if (natServices?.rules.some((r) => r.raw.includes('KUBE-CLUSTER-IP')))
    view.opaque = 'kube-proxy runs in ipvs mode: its Services are in IPVS, which the probe does not read'
  // by name: a node with thousands of Services has three times as many chains
  const chains = new Map(nat?.chains.map((c) => [c.name, c]))
  for (const r of natServices?.rules ?? []) {
    const key = ruleKey(r)
    if (!key || !r.target || !chains.has(r.target)) continue
    const entry = view.services.get(key) ?? {endpoints: new Map<string, string>(), lines: []}
    entry.lines.push(r.raw)
    // a load-balancer IP behind kube-proxy's firewall chain: the sources it sends on to the external chain
    if (r.target.startsWith('KUBE-FW-')) {
      const fw = chains.get(r.target)!.rules.filter((x) => x.target?.startsWith('KUBE-EXT-') && x.match.source)
      view.firewalls.set(key, {
        sources: fw.map((x) => stripPrefix32(x.match.source!)),
        line: fw[0]?.raw ?? `-N ${r.target} (no source let on)`,
      })
    }
    for (const x of followChain(chains, r.target)) {
      if (x.target?.startsWith('KUBE-SEP-') || x.target?.startsWith('KUBE-SVC-') || x.target?.startsWith('KUBE-SVL-'))
        entry.lines.push(x.raw)
      const to = dnatTarget(x)
      if (to) {
        entry.endpoints.set(to, x.raw)
        entry.lines.push(x.raw)
      }
    }
    view.services.set(key, entry)
  }
  for (const r of [...(filterServices?.rules ?? []), ...(filterExternal?.rules ?? [])]) {
    const key = ruleKey(r)
    if (key && r.target === 'REJECT') view.rejects.set(key, r.raw)
    else if (key && r.target === 'DROP') view.drops.set(key, r.raw)
  }
  return view
}

/** Every `goto`/`jump` target and `dnat` destination inside nft JSON. */
function walkNft(v: unknown, out: {targets: string[]; dnat: string[]}): void {
  if (Array.isArray(v)) {
    for (const x of v) walkNft(x, out)
    return
  }
  if (v === null || typeof v !== 'object') return
  for (const [k, x] of Object.entries(v)) {
    if (
      (k === 'goto' || k === 'jump') &&
      x &&
      typeof x === 'object' &&
      typeof (x as {target?: unknown}).target === 'string'
    )
      out.targets.push((x as {target: string}).target)
    else if (k === 'dnat' && x && typeof x === 'object') {
      const d = x as {addr?: unknown; port?: unknown}
      if (typeof d.addr === 'string') out.dnat.push(d.port === undefined ? d.addr : `${d.addr}:${String(d.port)}`)
    } else walkNft(x, out)
  }
}

/** A map element as `nft list map` prints it: `172.21.0.10 . udp . 53 : goto service-...`. */
function elementLine(set: string, e: NftElement): string {
  const part = (v: unknown): string =>
    v && typeof v === 'object' && Array.isArray((v as {concat?: unknown}).concat)
      ? (v as {concat: unknown[]}).concat.map(part).join(' . ')
      : (verdictText(v) ?? String(v))
  return `map ${set} element { ${part(e.key)}${e.value === undefined ? '' : ` : ${part(e.value)}`} }`
}

function verdictText(v: unknown): string | undefined {
  if (!v || typeof v !== 'object') return undefined
  for (const k of ['goto', 'jump']) {
    const t = (v as Record<string, {target?: unknown}>)[k]?.target
    if (typeof t === 'string') return `${k} ${t}`
  }
  return undefined
}

function elementKey(e: NftElement): string | undefined {
  const c = e.key && typeof e.key === 'object' ? (e.key as {concat?: unknown}).concat : undefined
  if (!Array.isArray(c) || c.length !== 3) return undefined
  const [ip, proto, port] = c
  return typeof ip === 'string' && typeof proto === 'string' && (typeof port === 'number' || typeof port === 'string')
    ? keyOf(ip, proto, port)
    : undefined
}

function nftView(tool: string, table: NftTable): ProxyView | undefined {
  const elements = (name: string): NftElement[] => table.sets.find((s) => s.name === name)?.elements ?? []
  const serviceIps = elements('service-ips')
  const noEndpoint = elements('no-endpoint-services')
  if (serviceIps.length === 0 && noEndpoint.length === 0 && table.chains.every((c) => c.rules.length === 0))
    return undefined
  const view: ProxyView = {tool, services: new Map(), rejects: new Map(), drops: new Map(), firewalls: new Map()}
  const byName = new Map(table.chains.map((c) => [c.name, c]))
  const chain = (name: string): NftChain | undefined => byName.get(name)
  for (const e of serviceIps) {
    const key = elementKey(e)
    const first = verdictText(e.value)?.split(' ')[1]
    if (!key || !first) continue
    const entry = {endpoints: new Map<string, string>(), lines: [elementLine('service-ips', e)]}
    // the Service's chain and whatever it goes to (endpoint- chains), each once
    const seen = new Set<string>()
    const todo = [first]
    while (todo.length > 0 && seen.size < 1000) {
      const c = chain(todo.shift()!)
      if (!c || seen.has(c.name)) continue
      seen.add(c.name)
      for (const r of c.rules) {
        const found = {targets: [] as string[], dnat: [] as string[]}
        walkNft(r.expr, found)
        if (found.dnat.length > 0 || found.targets.some((t) => t.startsWith('endpoint-')))
          entry.lines.push(`chain ${c.name}: ${r.text}`)
        for (const to of found.dnat) entry.endpoints.set(to, `chain ${c.name}: ${r.text}`)
        todo.push(...found.targets.filter((t) => t.startsWith('endpoint-') || t.startsWith('service-')))
      }
    }
    view.services.set(key, entry)
  }
  // loadBalancerSourceRanges: `firewall-ips` elements go to a chain that drops every source not in its set
  for (const e of elements('firewall-ips')) {
    const key = elementKey(e)
    const c = chain(verdictText(e.value)?.split(' ')[1] ?? '')
    const rule = c?.rules.find((r) => r.expr.some((x) => 'drop' in x))
    if (!key || !rule) continue
    view.firewalls.set(key, {sources: saddrNotIn(rule), line: `chain ${c!.name}: ${rule.text}`})
  }
  for (const e of noEndpoint) {
    const key = elementKey(e)
    if (!key) continue
    // `: drop` (internalTrafficPolicy Local, no endpoint here) or `: goto reject-chain` (no endpoints)
    const drop = e.value !== null && typeof e.value === 'object' && 'drop' in e.value
    ;(drop ? view.drops : view.rejects).set(key, elementLine('no-endpoint-services', e))
  }
  return view
}

/** `10.0.0.0/8` as is, `1.2.3.4/32` as `1.2.3.4`: how the firewall's sources are compared. */
const stripPrefix32 = (a: string): string => (a.endsWith('/32') ? a.slice(0, -3) : a)

/** The sources of an nft `ip saddr != { a, b/n } drop` rule: the ones it lets through. */
function saddrNotIn(rule: NftChain['rules'][number]): string[] {
  for (const x of rule.expr) {
    const m = (x as {match?: {op?: unknown; left?: unknown; right?: unknown}}).match
    const field = (m?.left as {payload?: {field?: unknown}} | undefined)?.payload?.field
    const set = (m?.right as {set?: unknown} | undefined)?.set
    if (m?.op !== '!=' || field !== 'saddr' || !Array.isArray(set)) continue
    return set.flatMap((v: unknown) => {
      if (typeof v === 'string') return [stripPrefix32(v)]
      const p = (v as {prefix?: {addr?: unknown; len?: unknown}}).prefix
      return typeof p?.addr === 'string' && typeof p.len === 'number' ? [stripPrefix32(`${p.addr}/${p.len}`)] : []
    })
  }
  return []
}

/** kube-proxy's rules on a node, per mode; none when it has programmed nothing there. */
function proxyViews(node: string, state: NodeState, ok: (s: string) => boolean): ProxyView[] {
  const views: ProxyView[] = []
  for (const set of ruleSets(state)) {
    const v = iptablesView(`${node} ${set.tool}`, tableOf(set.iptables, 'nat'), tableOf(set.iptables, 'filter'))
    if (v) views.push(v)
  }
  if (state.nft && ok('nftables')) {
    for (const t of state.nft.tables.filter((x) => x.family === 'ip' && x.name === 'kube-proxy')) {
      const v = nftView(`${node} nft`, t)
      if (v) views.push(v)
    }
  }
  return views
}

function endpointsLine(p: ServicePort): string {
  const at = (e: string): string => (p.local ? `${e} on ${p.states.get(e)?.node ?? 'no node'}` : e)
  const eps =
    p.endpoints.length === 0
      ? 'no ready endpoint'
      : p.fallback
        ? `no ready endpoint; serving while terminating (kube-proxy sends to these then) ${p.endpoints.map(at).join(', ')}`
        : `ready endpoints ${p.endpoints.map(at).join(', ')}`
  return `API: endpointslices of ${p.svc.namespace}/${p.svc.name} (${keyText(p.key)}, port ${p.port.name ?? p.port.port}${p.local ? ', internalTrafficPolicy Local' : ''}): ${eps}${p.notReady > 0 ? ` (${p.notReady} not ready)` : ''}`
}

/** SERVICE_RULES_STALE for one view and one Service port (on `node`, in `zone`); undefined when the rules agree. */
function staleOne(node: string, zone: string | undefined, view: ProxyView, p: ServicePort): Raised | undefined {
  const have = view.services.get(p.key)
  const rejects = view.rejects.get(p.key)
  // internalTrafficPolicy Local: this node's own endpoints; none here while others exist: dropped
  const cluster = p.local ? undefined : clusterEndpoints(p, node, zone)
  const wanted = cluster?.endpoints ?? localEndpoints(p, node)
  const dropped = p.local && wanted.length === 0 && p.endpoints.length > 0
  const want = new Set(wanted)
  let diff: string
  let lines: string[]
  if (dropped) {
    const drops = view.drops.get(p.key)
    if (have && have.endpoints.size > 0) {
      diff = `its rules still send to ${someNames([...have.endpoints.keys()])}, though no endpoint of the Service is on ${node} (internalTrafficPolicy Local: it should drop)`
      lines = [...new Set([...have.lines.slice(0, 1), ...have.endpoints.values()])]
    } else if (drops) return undefined
    else {
      diff = rejects
        ? `it rejects the Service as having no endpoints, but the EndpointSlices list ${plural(p.endpoints.length, 'ready endpoint')} on other nodes (internalTrafficPolicy Local: it should drop)`
        : `it has no rule for ${keyText(p.key)}: a Service whose endpoints are all on other nodes is dropped by kube-proxy's rules (internalTrafficPolicy Local), and these do not`
      lines = rejects ? [rejects] : []
    }
  } else if (want.size > 0 && have) {
    const missing = wanted.filter((e) => !have.endpoints.has(e))
    const extra = [...have.endpoints.keys()].filter((e) => !want.has(e))
    if (missing.length === 0 && extra.length === 0) return undefined
    diff = [
      missing.length > 0 ? `no rule sends to ${someNames(missing)} (in the EndpointSlices)` : '',
      extra.length > 0 ? `its rules still send to ${someNames(extra)} (no endpoint any more)` : '',
    ]
      .filter(Boolean)
      .join(', and ')
    lines = [...new Set([...have.lines.slice(0, 2), ...extra.map((e) => have.endpoints.get(e)!)])]
  } else if (want.size > 0) {
    const drops = view.drops.get(p.key)
    diff = drops
      ? `it drops the Service (as for internalTrafficPolicy Local with no endpoint on the node), but the EndpointSlices list ${plural(want.size, 'ready endpoint')}${p.local ? ` on ${node}` : ''}`
      : rejects
        ? `it rejects the Service as having no endpoints, but the EndpointSlices list ${plural(want.size, 'ready endpoint')}`
        : `it has no rule for ${keyText(p.key)}: the Service is not programmed there`
    lines = drops ? [drops] : rejects ? [rejects] : []
  } else if (have && have.endpoints.size > 0) {
    diff = `its rules still send to ${someNames([...have.endpoints.keys()])}, though the Service has no ready endpoint (it should reject)`
    lines = [...new Set([...have.lines.slice(0, 1), ...have.endpoints.values()])]
  } else if (!rejects && !have) {
    diff = `it has no rule for ${keyText(p.key)}: a Service without endpoints is rejected by kube-proxy's rules, and these do not`
    lines = []
  } else return undefined
  return raise('SERVICE_RULES_STALE', {
    node,
    subject: `Service ${p.spn} (${keyText(p.key)})`,
    message: `kube-proxy's rules on ${node} disagree with the EndpointSlices of ${p.spn}: ${diff}`,
    evidence: [
      endpointsLine(p),
      ...(cluster?.topology
        ? [
            `API: topology hints: ${cluster.topology.mode === 'PreferSameZone' ? `${node} is in zone ${cluster.topology.zone} (${ZONE_LABEL}); ` : ''}kube-proxy on ${node} sends only to the endpoints hinted for its ${topologyText(cluster.topology)}: ${someNames(wanted)}`,
          ]
        : []),
      ...(lines.length > 0 ? lines.map((l) => `${view.tool}: ${l}`) : [`${view.tool}: no rule for ${keyText(p.key)}`]),
    ],
    vars: {node, namespace: p.svc.namespace, service: p.svc.name},
  })
}

/**
 * SERVICE_RULES_STALE for an external IP or a load balancer's IP of a Service port on `node`: kube-proxy
 * captures it on every node and sends it through the Service's external chain, which reaches the endpoints
 * the Cluster policy uses (under externalTrafficPolicy Local the pods' and the node's own traffic is
 * short-circuited there); what comes from outside to a node without an endpoint of its own is dropped
 * (Local), and with no endpoint at all it is rejected.
 */
function staleExternal(
  node: string,
  at: {zone: string | undefined; ip: string},
  view: ProxyView,
  p: ServicePort,
  address: ExternalAddress,
): Raised | undefined {
  const zone = at.zone
  const key = keyOf(address.ip, p.proto, p.port.port)
  const have = view.services.get(key)
  const wanted = p.endpoints.length === 0 ? [] : clusterEndpoints(p, node, zone).endpoints
  const local = p.svc.externalTrafficPolicy === 'Local'
  const mustDrop = local && wanted.length > 0 && localEndpoints(p, node).length === 0
  const problems: string[] = []
  const lines: string[] = []
  if (wanted.length > 0 && !have) problems.push(`it has no rule for ${keyText(key)} (${address.what})`)
  else if (have) {
    const missing = wanted.filter((e) => !have.endpoints.has(e))
    const extra = [...have.endpoints.keys()].filter((e) => !wanted.includes(e))
    if (missing.length > 0) problems.push(`no rule sends ${address.what} ${address.ip} to ${someNames(missing)}`)
    if (extra.length > 0)
      problems.push(
        `its rules still send ${address.what} ${address.ip} to ${someNames(extra)}${wanted.length === 0 ? ', though the Service has no ready endpoint' : ' (no endpoint any more)'}`,
      )
    if (missing.length > 0 || extra.length > 0)
      lines.push(...have.lines.slice(0, 2), ...extra.map((e) => have.endpoints.get(e)!))
  }
  if (wanted.length === 0 && !view.rejects.has(key))
    problems.push(
      `nothing rejects ${keyText(key)} (${address.what}), as kube-proxy does for a Service without endpoints`,
    )
  // loadBalancerSourceRanges: the sources the firewall lets on, as kube-proxy writes them (the load-balancer
  // IPs too when the node's own address is in a range)
  if (address.kind === 'loadBalancerIP' && wanted.length > 0) {
    const ranges = (p.svc.loadBalancerSourceRanges ?? []).map(stripPrefix32)
    const want = [...ranges, ...(ranges.some((r) => contains(r, at.ip)) ? (p.svc.loadBalancerIPs ?? []) : [])].sort()
    const fw = view.firewalls.get(key)
    const admitted = [...(fw?.sources ?? [])].sort()
    const before = problems.length
    if (ranges.length > 0 && !fw)
      problems.push(
        `nothing restricts the sources of ${keyText(key)} to its loadBalancerSourceRanges (${ranges.join(', ')})`,
      )
    else if (ranges.length === 0 && fw)
      problems.push(
        `its firewall still lets only ${admitted.join(', ') || 'no source'} reach ${keyText(key)}, though the Service has no loadBalancerSourceRanges`,
      )
    else if (fw && admitted.join(' ') !== want.join(' '))
      problems.push(
        `its firewall lets ${admitted.join(', ') || 'no source'} reach ${keyText(key)}, the Service's ranges say ${want.join(', ')}`,
      )
    if (problems.length > before) lines.push(...(have?.lines.slice(0, 1) ?? []), ...(fw ? [fw.line] : []))
  }
  if (mustDrop && !view.drops.has(key))
    problems.push(
      `nothing drops what comes from outside to ${keyText(key)} (${address.what}), though no endpoint is on ${node} (externalTrafficPolicy Local)`,
    )
  if (problems.length === 0) return undefined
  return raise('SERVICE_RULES_STALE', {
    node,
    subject: `Service ${p.spn} (${keyText(key)}, ${address.what})`,
    message: `kube-proxy's rules on ${node} disagree with the Service ${p.spn}: ${problems.join(', and ')}`,
    evidence: [
      `API: ${p.svc.namespace}/${p.svc.name} ${address.what} ${address.ip}${local ? ', externalTrafficPolicy Local' : ''}`,
      endpointsLine(p),
      ...(lines.length > 0 ? lines.map((l) => `${view.tool}: ${l}`) : [`${view.tool}: no rule for ${keyText(key)}`]),
    ],
    vars: {node, namespace: p.svc.namespace, service: p.svc.name},
  })
}

/**
 * Whether a capture outside the Service CIDR is one of kube-proxy's for an external or load-balancer IP:
 * iptables says so in its comment; an nft `service-ips` element outside the Service CIDR can be nothing else
 * (when the CIDR is known).
 */
const externalRule = (line: string, cidrKnown: boolean): boolean =>
  / external IP"? | loadbalancer IP"? /.test(line) || (cidrKnown && line.startsWith('map service-ips element'))

/** An external IP or a load balancer's IP of a Service port: which, and how findings name it. */
interface ExternalAddress {
  ip: string
  kind: 'externalIP' | 'loadBalancerIP'
  what: string
}

/** A Service port's external IPs and load balancer's IPs. */
const externalAddresses = (p: ServicePort): ExternalAddress[] => [
  ...(p.svc.externalIPs ?? []).map((ip) => ({ip, kind: 'externalIP' as const, what: 'external IP'})),
  ...(p.svc.loadBalancerIPs ?? []).map((ip) => ({ip, kind: 'loadBalancerIP' as const, what: 'load-balancer IP'})),
]

interface Raise {
  SERVICE_NO_ENDPOINTS: Raised[]
  SERVICE_RULES_STALE: Raised[]
  CONNTRACK_STALE: Raised[]
  CONNTRACK_TABLE_FULL: Raised[]
  HAIRPIN_OFF: Raised[]
  KUBE_PROXY_MISSING: Raised[]
}

/** Every Service finding, worked out in one pass over the nodes and shared by the six checks. */
function serviceFindings(ctx: CheckContext): Raise {
  return ctx.memo('services', () => {
    const out: Raise = {
      SERVICE_NO_ENDPOINTS: [],
      SERVICE_RULES_STALE: [],
      CONNTRACK_STALE: [],
      CONNTRACK_TABLE_FULL: [],
      HAIRPIN_OFF: [],
      KUBE_PROXY_MISSING: [],
    }
    // a node's conntrack fill needs no Service; the rest is a comparison with the source's Services, when it gave them
    if (ctx.snapshot.services === undefined) {
      for (const {node, state} of ctx.examined()) out.CONNTRACK_TABLE_FULL.push(...conntrackFull(ctx, node, state))
      return out
    }
    const ports = servicePorts(ctx.snapshot.services ?? [])
    const byKey = new Map(ports.map((p) => [p.key, p]))
    const externalKeys = new Set(
      ports.flatMap((p) => externalAddresses(p).map((a) => keyOf(a.ip, p.proto, p.port.port))),
    )
    const serviceCIDR = ctx.snapshot.cluster.serviceCIDR
    // the rejects seen per Service port, on every collected node (evidence for SERVICE_NO_ENDPOINTS)
    const rejectsSeen = new Map<string, Array<{node: string; line: string}>>()
    const viewsOf = new Map<string, ProxyView[]>()
    for (const {node, state} of ctx.collected()) {
      const views = proxyViews(node.name, state, (s) => ctx.ok(state, s))
      viewsOf.set(node.name, views)
      for (const v of views)
        for (const [key, line] of v.rejects)
          rejectsSeen.set(key, [...(rejectsSeen.get(key) ?? []), {node: node.name, line: `${v.tool}: ${line}`}])
    }
    for (const {node, state} of ctx.examined()) {
      const views = viewsOf.get(node.name) ?? []
      if (ports.length > 0 && views.length === 0) out.KUBE_PROXY_MISSING.push(...missingOn(ctx, node, state, ports))
      for (const view of views) {
        if (view.opaque) continue
        for (const p of ports) {
          const zone = node.labels[ZONE_LABEL]
          const r = staleOne(node.name, zone, view, p)
          if (r) out.SERVICE_RULES_STALE.push(r)
          // the external addresses reach the same Service chains: their own finding only where those agree
          for (const address of r ? [] : externalAddresses(p)) {
            const x = staleExternal(node.name, {zone, ip: node.internalIP}, view, p, address)
            if (x) out.SERVICE_RULES_STALE.push(x)
          }
        }
        // rules for a ClusterIP:port no Service has (inside the Service CIDR, where only Services live), and
        // captures of an address outside it that is no Service's external or load-balancer IP any more: traffic
        // to that address is still taken to the endpoints (kube-proxy missed the change)
        for (const [key, have] of view.services) {
          if (byKey.has(key) || externalKeys.has(key) || have.endpoints.size === 0) continue
          const inside = serviceCIDR !== undefined && contains(serviceCIDR, key.split(' ')[0]!)
          if (!inside && !externalRule(have.lines[0] ?? '', serviceCIDR !== undefined)) continue
          out.SERVICE_RULES_STALE.push(
            raise('SERVICE_RULES_STALE', {
              node: node.name,
              subject: `${inside ? 'ClusterIP' : 'external address'} ${keyText(key)}`,
              message: inside
                ? `kube-proxy's rules on ${node.name} still send ${keyText(key)} to ${someNames([...have.endpoints.keys()])}, but no Service has that ClusterIP and port: a deleted Service's rules`
                : `kube-proxy's rules on ${node.name} still capture ${keyText(key)} and send it to ${someNames([...have.endpoints.keys()])}, but no Service has that external or load-balancer IP and port: traffic meant for that address never leaves the node`,
              evidence: [
                inside
                  ? `API: no Service with ClusterIP ${keyText(key)} (${plural(ctx.snapshot.services?.length ?? 0, 'Service')})`
                  : `API: no Service with external or load-balancer IP ${keyText(key)} (${plural(ctx.snapshot.services?.length ?? 0, 'Service')})`,
                ...have.lines.slice(0, 4).map((l) => `${view.tool}: ${l}`),
              ],
              vars: {node: node.name},
            }),
          )
        }
      }
      out.CONNTRACK_STALE.push(...conntrackStale(ctx, node, state, ports))
      out.CONNTRACK_TABLE_FULL.push(...conntrackFull(ctx, node, state))
      out.HAIRPIN_OFF.push(...hairpinOff(ctx, node, state, ports))
    }
    for (const [svcKey, group] of groupBy(
      ports.filter((p) => p.endpoints.length === 0),
      (p) => `${p.svc.namespace}/${p.svc.name}`,
    )) {
      const svc = group[0]!.svc
      const seen = group.flatMap((p) => rejectsSeen.get(p.key) ?? [])
      const holders = [...new Set(seen.map((s) => s.node))]
      out.SERVICE_NO_ENDPOINTS.push(
        raise('SERVICE_NO_ENDPOINTS', {
          subject: `Service ${svcKey}`,
          message: `Service ${svcKey} (${svc.clusterIP}, ${group.map((p) => `${p.proto}/${p.port.port}`).join(', ')}) selects no ready pod: ${holders.length > 0 ? `kube-proxy rejects its traffic on ${someNames(holders)}` : 'kube-proxy rejects its traffic'}`,
          evidence: [
            ...group.map(endpointsLine),
            ...seen.slice(0, 4).map((s) => s.line),
            ...(seen.length > 4 ? [`... the same on ${plural(holders.length, 'node')} in all`] : []),
          ],
          vars: {namespace: svc.namespace, service: svc.name},
          // about the Service, no node: a trace between pods does not carry it (a trace to the Service does)
        }),
      )
    }
    return out
  })
}

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>()
  for (const x of xs) m.set(key(x), [...(m.get(key(x)) ?? []), x])
  return m
}

function missingOn(ctx: CheckContext, node: SnapshotNode, state: NodeState, ports: ServicePort[]): Raised[] {
  // a tool the probe could not run hides rules: only nodes whose iptables and nftables were both read
  if (!ctx.ok(state, 'iptables', 'nftables')) return []
  const services = [...new Set(ports.map((p) => `${p.svc.namespace}/${p.svc.name} ${p.svc.clusterIP}`))]
  const nat = state.iptables ? tableOf(state.iptables, 'nat') : undefined
  const chain = nat?.chains.find((c) => c.name === 'KUBE-SERVICES')
  const nft = state.nft?.tables.find((t) => t.family === 'ip' && t.name === 'kube-proxy')
  return [
    raise('KUBE_PROXY_MISSING', {
      node: node.name,
      subject: `kube-proxy on ${node.name}`,
      message: `${node.name} holds no kube-proxy rules (neither iptables nor nftables), while the cluster has ${plural(services.length, 'Service')}: nothing there translates a ClusterIP or NodePort`,
      evidence: [
        `API: ${plural(services.length, 'Service')}: ${someNames(services)}`,
        `${node.name} iptables-save -t nat: ${chain ? ':KUBE-SERVICES - [0:0] and no rule in it (flushed)' : 'no KUBE-SERVICES chain'}`,
        `${node.name} nft list tables: ${nft ? 'table ip kube-proxy, with no Service in it' : 'no table ip kube-proxy'}`,
      ],
      vars: {node: node.name},
    }),
  ]
}

function tupleText(e: ConntrackEntry): string {
  const t = (x: ConntrackEntry['orig']): string =>
    `src=${x.src} dst=${x.dst}${x.sport === undefined ? '' : ` sport=${x.sport}`}${x.dport === undefined ? '' : ` dport=${x.dport}`}`
  return `${e.protocol} ${e.timeout ?? ''} ${e.state ? `${e.state} ` : ''}${t(e.orig)} ${t(e.reply)}${e.flags.map((f) => ` [${f}]`).join('')}`.replace(
    / {2,}/g,
    ' ',
  )
}

function conntrackStale(ctx: CheckContext, node: SnapshotNode, state: NodeState, ports: ServicePort[]): Raised[] {
  const ct = state.conntrack
  if (!ct || ports.length === 0 || !ctx.ok(state, 'conntrack')) return []
  // flows to a ClusterIP, and to an external or load-balancer IP (translated by the same rules)
  const byKey = new Map(
    ports.flatMap((p) => [
      [p.key, p] as const,
      ...externalAddresses(p).map((a) => [keyOf(a.ip, p.proto, p.port.port), p] as const),
    ]),
  )
  // NodePorts answer on the node's own addresses
  const local = new Set([
    ...state.addresses.filter((a) => a.family === 'inet').map((a) => a.local),
    ...ctx.addressesOf(node),
  ])
  const byNodePort = new Map(ports.filter((p) => p.port.nodePort).map((p) => [`${p.proto} ${p.port.nodePort}`, p]))
  const groups = new Map<string, {p: ServicePort; to: string; entries: ConntrackEntry[]}>()
  for (const e of ct.entries) {
    if (e.family !== 'inet' || e.orig.dport === undefined || e.reply.sport === undefined) continue
    const p =
      byKey.get(keyOf(e.orig.dst, e.protocol, e.orig.dport)) ??
      (local.has(e.orig.dst) ? byNodePort.get(`${e.protocol} ${e.orig.dport}`) : undefined)
    // not translated: not a Service flow kube-proxy handled
    if (!p || (e.reply.src === e.orig.dst && e.reply.sport === e.orig.dport)) continue
    const to = `${e.reply.src}:${e.reply.sport}`
    if (p.endpoints.includes(to)) continue
    const k = `${p.key} ${to}`
    const g = groups.get(k) ?? {p, to, entries: []}
    g.entries.push(e)
    groups.set(k, g)
  }
  const cut = ct.truncated
    ? [
        `the probe read the first ${ct.limit ?? ct.entries.length} Service-flow entries of ${node.name}'s conntrack table; the rest were not read`,
      ]
    : []
  return [...groups.values()].map(({p, to, entries}) => {
    const e = entries[0]!
    const endpointIP = to.split(':')[0]!
    const udp = e.protocol === 'udp'
    const vars = {
      srcIP: e.orig.src,
      dstIP: e.orig.dst,
      l4proto: e.protocol,
      sport: e.orig.sport ?? '',
      dport: e.orig.dport ?? '',
      endpointIP,
      namespace: p.svc.namespace,
      service: p.svc.name,
    }
    return raise('CONNTRACK_STALE', {
      node: node.name,
      subject: `${p.spn} → ${to}`,
      message: `${plural(entries.length, 'conntrack entry', 'conntrack entries')} on ${node.name} still ${entries.length === 1 ? 'translates' : 'translate'} ${p.spn} (${e.orig.dst}:${e.orig.dport}) to ${to}, which is no endpoint of it${udp ? ': every query that reuses the flow goes there' : ''}`,
      evidence: [
        endpointsLine(p),
        ...entries.slice(0, 5).map((x) => `${node.name} conntrack -L: ${tupleText(x)}`),
        ...(entries.length > 5 ? [`... and ${entries.length - 5} more entries to ${to}`] : []),
        ...cut,
      ],
      vars,
      severity: udp ? 'error' : 'warning',
      // several entries: one line deletes every flow of this Service port still sent there
      ...(entries.length > 1
        ? {
            fixTemplate: `# delete the ${entries.length} entries that still send ${p.spn} to <endpointIP>: their next packets are translated afresh\nconntrack -D -p <l4proto> --orig-dst <dstIP> --dport <dport> --reply-src <endpointIP>`,
          }
        : {}),
    })
  })
}

function conntrackFull(ctx: CheckContext, node: SnapshotNode, state: NodeState): Raised[] {
  const {count, max} = state.conntrack ?? {}
  if (count === undefined || max === undefined || max <= 0 || !ctx.ok(state, 'conntrack-counters') || count < 0.9 * max)
    return []
  const full = count >= max
  return [
    raise('CONNTRACK_TABLE_FULL', {
      node: node.name,
      subject: `conntrack ${count}/${max}`,
      message: full
        ? `${node.name}'s conntrack table is full (${count} of ${max} entries): the kernel drops the first packet of every new flow`
        : `${node.name}'s conntrack table is ${Math.floor((count / max) * 100)}% full (${count} of ${max} entries): at the maximum the kernel drops new flows`,
      evidence: [
        sysctlLine('net.netfilter.nf_conntrack_count', String(count)),
        sysctlLine('net.netfilter.nf_conntrack_max', String(max)),
      ],
      vars: {},
      severity: full ? 'error' : 'warning',
    }),
  ]
}

function hairpinOff(ctx: CheckContext, node: SnapshotNode, state: NodeState, ports: ServicePort[]): Raised[] {
  if (ports.length === 0 || !ctx.ok(state, 'links')) return []
  // only br_netfilter bridges a pod's packet to itself back out of its own port (its bridged DNAT); without it
  // the packet is routed out of the bridge device, which any port takes, hairpin or not
  if (state.sysctls[BR_NF] !== '1') return []
  // the Services each local pod is an endpoint of, by the pod's IP
  const servicesOf = new Map<string, Set<string>>()
  for (const p of ports)
    for (const ep of p.endpoints) {
      const ip = ep.slice(0, ep.lastIndexOf(':'))
      servicesOf.set(ip, (servicesOf.get(ip) ?? new Set()).add(`${p.svc.namespace}/${p.svc.name}`))
    }
  const out: Raised[] = []
  const byIndex = new Map(state.links.map((l) => [l.ifindex, l]))
  for (const pod of ctx.snapshot.pods.filter((x) => x.node === node.name && !x.hostNetwork && servicesOf.has(x.ip))) {
    const ps = state.pods.find((x) => x.namespace === pod.namespace && x.name === pod.name)
    const addr = ps?.addresses.find((a) => a.local === pod.ip)
    const eth = ps && (ps.links.find((l) => l.name === addr?.dev) ?? ps.links.find((l) => l.name === 'eth0'))
    if (eth?.peerIfindex === undefined) continue
    const port: Link | undefined = byIndex.get(eth.peerIfindex)
    if (!port?.master || port.bridgePort?.hairpin !== false) continue
    const services = [...servicesOf.get(pod.ip)!].sort()
    out.push(
      raise('HAIRPIN_OFF', {
        node: node.name,
        subject: `pod ${pod.namespace}/${pod.name} (${port.name} on ${port.master})`,
        message: `pod ${pod.namespace}/${pod.name} (${pod.ip}) is an endpoint of ${someNames(services)}, but its port ${port.name} on ${port.master} has hairpin off: when it connects to ${services.length === 1 ? 'that Service' : 'one of them'} and kube-proxy picks the pod itself, ${port.master} drops the packet`,
        evidence: [
          `${node.name} ip -d link: ${linkLine(port)} bridge_slave hairpin off`,
          ...services.map((s) => `API: ${s} has endpoint ${pod.ip} (pod ${pod.namespace}/${pod.name})`),
        ],
        vars: {node: node.name, dev: port.name},
      }),
    )
  }
  return out
}

export const serviceNoEndpoints: Check = (ctx) => serviceFindings(ctx).SERVICE_NO_ENDPOINTS
export const serviceRulesStale: Check = (ctx) => serviceFindings(ctx).SERVICE_RULES_STALE
export const conntrackStaleCheck: Check = (ctx) => serviceFindings(ctx).CONNTRACK_STALE
export const conntrackTableFull: Check = (ctx) => serviceFindings(ctx).CONNTRACK_TABLE_FULL
export const hairpinOffCheck: Check = (ctx) => serviceFindings(ctx).HAIRPIN_OFF
export const kubeProxyMissing: Check = (ctx) => serviceFindings(ctx).KUBE_PROXY_MISSING
