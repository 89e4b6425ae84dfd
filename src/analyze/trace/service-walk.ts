/**
 * A trace to a Service: the request is walked once as the rules take it, which
 * shows where kube-proxy's rules split it among endpoints (`statistic random`,
 * `numgen random mod N`) and the DNAT of each way; then every endpoint is walked
 * on its own, its way pinned at the split, there and back. The trace is
 * DELIVERED only when every endpoint the rules send to is reached both ways;
 * otherwise its disposition is the first failing endpoint's, and its hops that
 * endpoint's walk. Pure.
 */
import type {Finding} from '../../model/finding.js'
import {type InventoryEndpoint, type InventoryService, ZONE_LABEL} from '../../model/inventory.js'
import type {Snapshot} from '../../model/snapshot.js'
import type {
  Hop,
  PathResult,
  Protocol,
  ServiceVia,
  Trace,
  TraceServiceEndpoint,
  TraceTranslation,
} from '../../model/trace.js'
import {chainOwner} from '../netfilter/owned-tables.js'
import {
  availableFor,
  type HintedEndpoint,
  hintsOf,
  isReady,
  type Topology,
  topologyOf,
  topologyText,
} from '../service-endpoints.js'
import type {ResolvedEndpoint, TraceQuery, TraceResult} from './api.js'
import {endpoint, firstPacket, placeOf, sortFindings, walkFlow} from './flow.js'
import {type Place, SnapshotIndex} from './place.js'
import {resolveEndpoint} from './resolve.js'
import {pickEndpoint, readyEndpoints, type ServiceTarget} from './service.js'
import {Shared, type Split} from './walk-state.js'

interface Walked {
  shared: Shared
  forward: PathResult
  returnPath: PathResult | null
  policies: Finding[]
  policyField: Pick<Trace, 'policy'>
}

/**
 * Why an endpoint of the EndpointSlices is not walked: not ready; on another node than the one whose
 * rules decide, under a Local traffic policy (external for a NodePort, internal for the ClusterIP);
 * the client pinned elsewhere by session affinity (`pinnedTo`); the request untracked on `where`, so that no
 * nat rule translated it; else no rule of `where` sends there.
 */
function unwalkedNote(o: {
  ready: boolean
  node: string | undefined
  where: string
  via: ServiceVia
  svc: InventoryService
  pinnedTo: string | undefined
  /** the topology hints `where`'s kube-proxy follows, and whether they keep this endpoint */
  topology: Topology | undefined
  hinted: boolean
  /** the request went untracked on `where` (raw's NOTRACK): no nat rule saw it */
  untracked: boolean
}): string {
  if (!o.ready) return 'not walked: not ready in the EndpointSlice'
  if (o.untracked)
    return `not walked: the request went untracked on ${o.where} (a notrack rule of the raw table), and kube-proxy's nat rules never see an untracked packet`
  const elsewhere = o.node !== undefined && o.node !== o.where
  if (elsewhere && o.via !== 'clusterIP' && o.svc.externalTrafficPolicy === 'Local')
    return `not walked: externalTrafficPolicy Local: ${o.where}'s kube-proxy sends what comes from outside it only to the endpoints on ${o.where} (this one is on ${o.node})`
  if (elsewhere && o.via === 'clusterIP' && o.svc.internalTrafficPolicy === 'Local')
    return `not walked: internalTrafficPolicy Local: ${o.where}'s kube-proxy sends only to the endpoints on ${o.where} (this one is on ${o.node})`
  if (o.topology && !o.hinted)
    return `not walked: topology hints${o.svc.trafficDistribution ? ` (trafficDistribution ${o.svc.trafficDistribution})` : ''}: ${o.where}'s kube-proxy sends only to the endpoints hinted for its ${topologyText(o.topology)}, and this one is not`
  if (o.pinnedTo !== undefined)
    return `not walked: session affinity sends this client to ${o.pinnedTo} (its address is in that endpoint's list on ${o.where})`
  return `not walked: no rule of ${o.where}'s kube-proxy sends to it`
}

/** The first translation of the request that changed its destination, as a hop shows it. */
export function translationOf(hops: Hop[]): TraceTranslation | null {
  for (const h of hops) {
    for (const n of h.netfilter?.nat ?? []) {
      if (!n.before || !n.after || n.ruleset === 'conntrack') continue
      const dst = (x: string): string => x.split(' → ')[1] ?? ''
      if (dst(n.before) === dst(n.after)) continue
      const chain = /^-A (\S+)/.exec(n.rule)?.[1] ?? ''
      const table = /^nft \S+ (\S+)/.exec(n.ruleset)?.[1]
      return {
        node: h.node,
        netns: h.netns,
        hook: h.netfilter!.hook,
        ruleset: n.ruleset,
        rule: n.rule,
        agent: chainOwner(chain, table),
        before: n.before,
        after: n.after,
      }
    }
  }
  return null
}

/** `tcp a → 10.0.0.5:8080` → the address and port the request was sent on to. */
function afterOf(t: TraceTranslation): {addr: string; port?: number} {
  const m = /→ (\[[^\]]+\]|[^\s:]+|[0-9a-f:]+?)(?::(\d+))?$/.exec(t.after)
  return {addr: (m?.[1] ?? '').replace(/^\[(.*)\]$/, '$1'), ...(m?.[2] ? {port: Number(m[2])} : {})}
}

const delivered = (w: {forward: PathResult; returnPath: PathResult | null}): boolean =>
  w.forward.disposition === 'DELIVERED' && w.returnPath?.disposition === 'DELIVERED'

/** The ways of the split that chose the endpoint, grouped by endpoint address: its share and the rule. */
function waysOf(split: Split): Map<string, {probability: number; rule: string; port?: number}> {
  const out = new Map<string, {probability: number; rule: string; port?: number}>()
  for (const w of split.ways) {
    // '': a way no DNAT takes (the request goes on to the ClusterIP itself)
    const key = w.to?.addr ?? ''
    const had = out.get(key)
    if (had) had.probability += w.probability
    else
      out.set(key, {probability: w.probability, rule: w.rule, ...(w.to?.port !== undefined ? {port: w.to.port} : {})})
  }
  return out
}

export function traceService(
  snapshot: Snapshot,
  query: TraceQuery & {protocol: Protocol},
  target: ServiceTarget,
): TraceResult {
  const index = new SnapshotIndex(snapshot)
  const src = resolveEndpoint(snapshot, query.src)
  const setup = new Shared()
  const srcPlace = placeOf(index, setup, src)
  const packet = firstPacket(srcPlace, src, query, target.ip)
  const svc = target.service
  const dst = {ip: target.ip, ...(target.node ? {node: target.node, netns: index.hostNetns(target.node)} : {})}
  const base = {src: endpoint(index, src, packet.src, srcPlace), dst, packet}
  const slice = svc.endpoints ?? []
  const service: NonNullable<Trace['service']> = {
    namespace: svc.namespace,
    name: svc.name,
    clusterIP: svc.clusterIP,
    port: {
      ...(target.port.name ? {name: target.port.name} : {}),
      protocol: target.port.protocol,
      port: target.port.port,
      ...(target.port.targetPort !== undefined ? {targetPort: target.port.targetPort} : {}),
      ...(target.port.nodePort !== undefined ? {nodePort: target.port.nodePort} : {}),
    },
    via: target.via,
    ...(target.node ? {node: target.node} : {}),
    ...(svc.internalTrafficPolicy === 'Local' ? {internalTrafficPolicy: 'Local' as const} : {}),
    ...(svc.externalTrafficPolicy === 'Local' ? {externalTrafficPolicy: 'Local' as const} : {}),
    ...(svc.sessionAffinity ? {sessionAffinity: svc.sessionAffinity} : {}),
    ...(svc.trafficDistribution ? {trafficDistribution: svc.trafficDistribution} : {}),
    reached: 0,
    total: 0,
  }
  const describe = (ip: string, extra: Partial<TraceServiceEndpoint>): TraceServiceEndpoint => {
    const inSlice = slice.find((e) => e.addresses.includes(ip))
    const pod = snapshot.pods.find((p) => p.ip === ip)
    const ref = inSlice?.targetRef
    return {
      ip,
      ...(pod
        ? {pod: pod.name, namespace: pod.namespace}
        : ref
          ? {pod: ref.name, ...(ref.namespace ? {namespace: ref.namespace} : {})}
          : {}),
      ...(pod?.node ? {node: pod.node} : inSlice?.nodeName ? {node: inSlice.nodeName} : {}),
      inEndpointSlice: inSlice !== undefined,
      ready: inSlice !== undefined && isReady(inSlice),
      probability: 0,
      ...extra,
    }
  }
  if (typeof srcPlace === 'string') {
    setup.lack(srcPlace)
    const endpoints = readyEndpoints(svc)
      .flatMap((e) => e.addresses)
      .map((ip) =>
        describe(ip, {
          ...(target.port.targetPort !== undefined ? {port: target.port.targetPort} : {}),
          note: 'not walked: the source node was not collected',
        }),
      )
    const trace: Trace = {
      ...base,
      disposition: 'INSUFFICIENT_INFO',
      hops: [],
      returnPath: null,
      findings: [],
      missing: setup.missing,
      service,
      translation: null,
      endpoints,
    }
    return {trace, needNodes: [...setup.needNodes], needPods: [...index.needPods]}
  }

  // the endpoint pod a walk ends at, for the NetworkPolicies that select it
  const podEndpoint = (ip: string): ResolvedEndpoint | undefined => {
    const p = snapshot.pods.find((x) => x.ip === ip)
    return p ? {kind: 'pod', node: p.node, ip: p.ip, pod: p.name, namespace: p.namespace} : undefined
  }
  const cache = new Map<string, unknown>()
  const walk = (pin?: string, port?: number): Walked => {
    const shared = new Shared(pin, cache)
    const ep = pin ? podEndpoint(pin) : undefined
    const policyDst = ep ? endpoint(index, ep, ep.ip, ep.netns ?? '') : {ip: pin || target.ip}
    const policyPacket = pin
      ? {...packet, dst: pin, ...(port !== undefined && packet.port !== undefined ? {port} : {})}
      : packet
    const f = walkFlow(index, shared, srcPlace as Place, packet, base.src, policyDst, undefined, policyPacket)
    return {shared, forward: f.forward, returnPath: f.returnPath, policies: f.policies, policyField: f.policyField}
  }

  // as the rules take it: where (and whether) kube-proxy chooses among endpoints
  const first = walk()
  const split = first.shared.splits[0]
  const firstTranslation = translationOf(first.forward.hops)
  let ways = split ? waysOf(split) : new Map<string, {probability: number; rule: string; port?: number}>()
  if (ways.size === 0 && firstTranslation) {
    const to = afterOf(firstTranslation)
    ways = new Map([
      [to.addr, {probability: 1, rule: firstTranslation.rule, ...(to.port !== undefined ? {port: to.port} : {})}],
    ])
  }
  const pinned =
    query.endpoint !== undefined
      ? pickEndpoint(
          snapshot,
          svc,
          [...new Set([...ways.keys(), ...slice.flatMap((e) => e.addresses)])],
          query.endpoint,
        )
      : undefined

  const walks: Walked[] = [first]
  const endpoints: TraceServiceEndpoint[] = []
  let failing: Walked | undefined
  let shown: Walked | undefined
  for (const [ip, way] of ways) {
    const port = way.port ?? target.port.targetPort
    const common = {probability: way.probability, rule: way.rule, ...(port !== undefined ? {port} : {})}
    // (a way without DNAT has no endpoint; --endpoint never names it)
    if (pinned !== undefined && ip !== pinned) {
      endpoints.push(describe(ip, {...common, note: `not walked: --endpoint ${query.endpoint}`}))
      continue
    }
    const w = ways.size === 1 && pinned === undefined ? first : walk(ip, ip === '' ? undefined : port)
    if (w !== first) walks.push(w)
    if (!delivered(w)) failing ??= w
    if (pinned !== undefined || (shown === undefined && w === first)) shown = w
    const codes = [...new Set([...w.shared.findings, ...w.policies].map((f) => f.code))]
    endpoints.push(
      describe(ip === '' ? target.ip : ip, {
        ...common,
        ...(ip === ''
          ? {
              port: target.dport,
              note: `not translated: this way through ${split?.node ?? ''}'s rules sends the request on to ${target.ip} itself`,
            }
          : {}),
        disposition: w.forward.disposition,
        returnDisposition: w.returnPath?.disposition ?? null,
        hops: w.forward.hops,
        returnPath: w.returnPath,
        translation: translationOf(w.forward.hops),
        ...(codes.length > 0 ? {findings: codes} : {}),
      }),
    )
  }
  // EndpointSlice endpoints no rule sends to: real traffic never reaches them from here
  // a NodePort's rules are the addressed node's, translated or not
  const where =
    split?.node ?? firstTranslation?.node ?? (target.via === 'nodePort' ? target.node : undefined) ?? src.node
  // ClientIP session affinity: the client is in an endpoint's list (iptables' recent match, nft's
  // affinity set), so kube-proxy's rules sent it back there before any random pick (the evaluators say so)
  const translatedOn = split === undefined ? firstTranslation?.node : undefined
  const affinity = translatedOn !== undefined ? first.shared.remembered.find((r) => r.node === translatedOn) : undefined
  // topology hints: the Cluster policy of `where` keeps to the endpoints hinted for it or its zone
  const hinted = (e: InventoryEndpoint): HintedEndpoint => ({ready: isReady(e), ...hintsOf(e)})
  const cluster =
    target.via === 'clusterIP' ? svc.internalTrafficPolicy !== 'Local' : svc.externalTrafficPolicy !== 'Local'
  const topology = cluster
    ? topologyOf(slice.map(hinted), where, snapshot.nodes.find((n) => n.name === where)?.labels[ZONE_LABEL])
    : undefined
  for (const e of slice) {
    for (const ip of e.addresses) {
      if (ways.has(ip) || endpoints.some((x) => x.ip === ip)) continue
      const ready = isReady(e)
      endpoints.push(
        describe(ip, {
          ...(target.port.targetPort !== undefined ? {port: target.port.targetPort} : {}),
          note: unwalkedNote({
            ready,
            node: e.nodeName,
            where,
            via: target.via,
            svc,
            pinnedTo: affinity !== undefined ? [...ways.keys()][0] : undefined,
            topology,
            hinted: availableFor(hinted(e), topology),
            untracked: ways.size === 0 && [...first.shared.untracked.keys()].some((at) => at.startsWith(`${where}|`)),
          }),
        }),
      )
    }
  }
  const walked = endpoints.filter((e) => e.disposition !== undefined)
  // --endpoint naming one no rule sends to: one asked for, none reached
  service.total = pinned !== undefined ? Math.max(1, walked.length) : ways.size
  service.reached = walked.filter((e) => e.disposition === 'DELIVERED' && e.returnDisposition === 'DELIVERED').length
  // the walk shown: the failing endpoint's when one fails, else the rules' own first way (the pinned one with --endpoint)
  const main = ways.size === 0 ? first : (failing ?? shown ?? first)

  const findings: Finding[] = []
  const seen = new Set<string>()
  for (const w of walks) {
    for (const f of [...w.shared.findings, ...w.policies]) {
      const key = `${f.code} ${f.node ?? ''} ${f.subject}`
      if (seen.has(key)) continue
      seen.add(key)
      findings.push(f)
    }
  }
  const missing = [...new Set(walks.flatMap((w) => w.shared.missing))]
  const needNodes = [...new Set([...setup.needNodes, ...walks.flatMap((w) => [...w.shared.needNodes])])]
  const trace: Trace = {
    ...base,
    disposition: main.forward.disposition,
    hops: main.forward.hops,
    returnPath: main.returnPath,
    findings: sortFindings(findings),
    ...(missing.length > 0 ? {missing} : {}),
    ...main.policyField,
    service,
    translation: translationOf(main.forward.hops),
    endpoints: endpoints.sort(
      (a, b) =>
        b.probability - a.probability || Number(b.disposition !== undefined) - Number(a.disposition !== undefined),
    ),
  }
  return {trace, needNodes, needPods: [...index.needPods]}
}
