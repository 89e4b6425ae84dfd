/**
 * kube-proxy's own drops, met by a walk: the packet is refused on purpose, for a reason at the
 * Kubernetes level, and the rule comes back at kube-proxy's next sync if deleted. Read from the rules
 * as kube-proxy writes them (kubernetes pkg/proxy/iptables and pkg/proxy/nftables proxier.go):
 *
 * - a Service with no endpoints: filter KUBE-SERVICES / KUBE-EXTERNAL-SERVICES
 *   `-m comment --comment "ns/name:port has no endpoints" ... -j REJECT`; nftables
 *   `no-endpoint-services` / `no-endpoint-nodeports` elements (commented `ns/name:port`) `: goto reject-chain`;
 * - a Local traffic policy with no endpoint on this node: the same rules with "has no local endpoints"
 *   and `-j DROP` (internalTrafficPolicy in KUBE-SERVICES, externalTrafficPolicy in
 *   KUBE-EXTERNAL-SERVICES), the elements `: drop`; in older kube-proxy versions a nat KUBE-SVL- (internal) or
 *   KUBE-XLB-/KUBE-EXT- (external) rule with that comment `-j KUBE-MARK-DROP`, the packet then dropped
 *   by its mark in filter KUBE-FIREWALL.
 *
 * Such a drop raises SERVICE_NO_ENDPOINTS (the Service named, so its fix is the Service's), not
 * FIREWALL_DROP, whose fix deletes the rule; where the snapshot's Services say otherwise (the Service
 * has endpoints, there or on this node) kube-proxy's rules are behind the API: SERVICE_RULES_STALE.
 * Pure.
 */
import type {FindingCode} from '../../model/finding.js'
import type {InventoryEndpoint, InventoryService, InventoryServicePort} from '../../model/inventory.js'
import {plural} from '../../util/text.js'
import {cidrContainsAddress, parseIp, sameIp} from '../ip.js'
import type {VmapElement} from '../netfilter/nft.js'
import {isReady, usableEndpoints} from '../service-endpoints.js'
import {describeHeader, type Header} from './packet.js'
import type {Place} from './place.js'
import type {Walk} from './walk-state.js'

/** The rule that decided a drop, as the filter walk knows it. */
export interface DecidingRule {
  /** whose chain (chainOwner) */
  owner: string
  /** the chain the rule is in */
  chain: string
  /** the rule as iptables-save or nft prints it */
  text: string
  /** nftables: the commented verdict map element the verdict came through */
  element?: VmapElement
}

/** What kube-proxy says of a drop it wrote. */
export interface IntendedDrop {
  /**
   * no endpoints at all (REJECT), none on this node under a Local traffic policy (DROP), or a source outside a
   * LoadBalancer's loadBalancerSourceRanges (its firewall: KUBE-PROXY-FIREWALL, nft's `firewall-` chains)
   */
  kind: 'none' | 'local' | 'source-range'
  namespace: string
  name: string
  /** the Service port's name, when the port has one */
  port?: string
  /** whose Local policy: internal (the ClusterIP) or external (a NodePort, an external or load-balancer IP); unknown for an nft `no-endpoint-services` element until the Service is known */
  policy?: 'internal' | 'external'
  /** older kube-proxy: the nat rule that marked the packet for KUBE-FIREWALL's drop (the one that names the Service) */
  marked?: string
}

/** `ns/name:port has no endpoints`, `ns/name has no local endpoints`, and kube-proxy's older `ns/name: has no local endpoints`. */
const NO_ENDPOINTS = /^([a-z0-9][-a-z0-9.]*)\/([a-z0-9][-a-z0-9.]*)(?::(\S*))? has no (local )?endpoints$/

/** A Service port as kube-proxy names it (`ns/name:port`, `ns/name` for an unnamed port) in an element's comment. */
const SERVICE_PORT = /^([a-z0-9][-a-z0-9.]*)\/([a-z0-9][-a-z0-9.]*)(?::(\S+))?$/

/** kube-proxy's KUBE-PROXY-FIREWALL comment: `ns/name:port traffic not accepted by KUBE-FW-…`. */
const NOT_ACCEPTED = /^([a-z0-9][-a-z0-9.]*)\/([a-z0-9][-a-z0-9.]*)(?::(\S*))? traffic not accepted by KUBE-FW-\S+$/

/** nftables: a Service port's firewall chain, `firewall-<hash>-ns/name/proto/port`. */
const NFT_FIREWALL_CHAIN = /^firewall-[A-Z2-7]{8}-([a-z0-9][-a-z0-9.]*)\/([a-z0-9][-a-z0-9.]*)\/[a-z]+\/(\S*)$/

/** An iptables rule's `--comment`, quoted or not. */
export function ruleComment(rule: string): string | undefined {
  const m = /(?:^|\s)--comment\s+(?:"((?:[^"\\]|\\.)*)"|(\S+))/.exec(rule)
  if (!m) return undefined
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]
}

/** The Service port and whether its endpoints are all gone or only this node's, from a kube-proxy comment. */
export function noEndpointsComment(
  comment: string,
): {namespace: string; name: string; port?: string; local: boolean} | undefined {
  const m = NO_ENDPOINTS.exec(comment.trim())
  if (!m) return undefined
  return {namespace: m[1]!, name: m[2]!, ...(m[3] ? {port: m[3]} : {}), local: m[4] !== undefined}
}

const target = (rule: string): string | undefined => /(?:^|\s)-[jg]\s+(\S+)/.exec(rule)?.[1]

/** Whose Local policy a chain of kube-proxy's applies: the ClusterIP's chains are internal, the rest external. */
function policyOfChain(chain: string): 'internal' | 'external' {
  return chain === 'KUBE-SERVICES' || chain.startsWith('KUBE-SVL-') ? 'internal' : 'external'
}

/**
 * kube-proxy's reason for a drop, when the deciding rule is one of its intended drops; `earlier`: the
 * walk's evidence lines on this node before the drop (where an older kube-proxy's KUBE-MARK-DROP jump
 * is, for a drop by mark in KUBE-FIREWALL).
 */
export function intendedDrop(rule: DecidingRule, earlier: readonly string[]): IntendedDrop | undefined {
  if (rule.owner !== 'kube-proxy') return undefined
  const e = rule.element
  if (e && (e.map === 'no-endpoint-services' || e.map === 'no-endpoint-nodeports')) {
    const m = SERVICE_PORT.exec(e.comment.trim())
    const verdict = e.text.split(' : ').at(-1) ?? ''
    if (!m || !(verdict === 'drop' || verdict.startsWith('goto ') || verdict.startsWith('jump '))) return undefined
    return {
      kind: verdict === 'drop' ? 'local' : 'none',
      namespace: m[1]!,
      name: m[2]!,
      ...(m[3] ? {port: m[3]} : {}),
      ...(e.map === 'no-endpoint-nodeports' ? {policy: 'external' as const} : {}),
    }
  }
  // loadBalancerSourceRanges: the load balancer's firewall
  const fw =
    target(rule.text) === 'DROP' && rule.chain === 'KUBE-PROXY-FIREWALL'
      ? NOT_ACCEPTED.exec(ruleComment(rule.text) ?? '')
      : / drop$/.test(rule.text)
        ? NFT_FIREWALL_CHAIN.exec(rule.chain)
        : null
  if (fw) return {kind: 'source-range', namespace: fw[1]!, name: fw[2]!, ...(fw[3] ? {port: fw[3]} : {})}
  const t = target(rule.text)
  if (t === 'REJECT' || t === 'DROP') {
    const said = noEndpointsComment(ruleComment(rule.text) ?? '')
    // REJECT for a Service without endpoints, DROP for one without endpoints here
    if (said && said.local === (t === 'DROP')) {
      const {local, ...svc} = said
      return {kind: local ? 'local' : 'none', ...svc, ...(local ? {policy: policyOfChain(rule.chain)} : {})}
    }
  }
  // older kube-proxy versions: the nat rule marked the packet (KUBE-MARK-DROP), KUBE-FIREWALL drops it by the mark
  if (t === 'DROP' && rule.chain === 'KUBE-FIREWALL' && /(?:^|\s)-m mark --mark /.test(rule.text)) {
    for (const line of [...earlier].reverse()) {
      if (target(line) !== 'KUBE-MARK-DROP') continue
      const said = noEndpointsComment(ruleComment(line) ?? '')
      if (!said?.local) return undefined
      const {local: _local, ...svc} = said
      const chain = /^-A (\S+)/.exec(line)?.[1] ?? ''
      return {kind: 'local', ...svc, policy: policyOfChain(chain), marked: line.split('    (')[0]!}
    }
  }
  return undefined
}

function portOf(svc: InventoryService, d: IntendedDrop, pkt: Header): InventoryServicePort | undefined {
  const proto = pkt.protocol.toUpperCase()
  return (
    svc.ports.find((p) => d.port !== undefined && p.name === d.port) ??
    svc.ports.find((p) => p.protocol === proto && (p.port === pkt.dport || p.nodePort === pkt.dport)) ??
    (svc.ports.length === 1 ? svc.ports[0] : undefined)
  )
}

/** Where endpoints are: `172.20.1.2 on node1, 172.20.2.2 on node2`. */
const listed = (eps: readonly InventoryEndpoint[]): string =>
  eps.map((e) => `${e.addresses.join(' ')}${e.nodeName ? ` on ${e.nodeName}` : ''}`).join(', ')

const NO_LOCAL_FIX = {
  internal: [
    "# kube-proxy on <node> sends the ClusterIP's traffic only to the Service's endpoints on <node> (internalTrafficPolicy Local) and drops it where there is none; it writes that drop again at every sync, so deleting the rule does not help",
    "# run a ready endpoint of the Service on <node> (see where its endpoints are), or send the ClusterIP's traffic to every endpoint again (policy Cluster):",
    'kubectl -n <namespace> get endpointslices -l kubernetes.io/service-name=<service> -o wide',
    `kubectl -n <namespace> patch service <service> --type merge -p '{"spec":{"internalTrafficPolicy":"Cluster"}}'`,
  ],
  external: [
    "# kube-proxy on <node> sends what comes from outside the node to the Service's endpoints on <node> only (externalTrafficPolicy Local, which keeps the client's address) and drops it where there is none; it writes that drop again at every sync, so deleting the rule does not help",
    "# run a ready endpoint on every node that clients (or the load balancer, which asks the Service's healthCheckNodePort) send to, or let every node forward to any endpoint (policy Cluster: clients' addresses are then masqueraded):",
    'kubectl -n <namespace> get endpointslices -l kubernetes.io/service-name=<service> -o wide',
    `kubectl -n <namespace> patch service <service> --type merge -p '{"spec":{"externalTrafficPolicy":"Cluster"}}'`,
  ],
}

/**
 * The finding for one of kube-proxy's intended drops, raised on the walk: SERVICE_NO_ENDPOINTS (the
 * Service's own finding, about the Service and not this node when it has no endpoints at all, so that
 * `check`'s finding of the same Service is this one; about this node under a Local policy), or
 * SERVICE_RULES_STALE when the snapshot's Services say kube-proxy should not drop here.
 */
export function raiseIntendedDrop(w: Walk, place: Place, d: IntendedDrop, pkt: Header, lines: string[]): FindingCode {
  const node = place.node
  const what = describeHeader(pkt)
  const vars = {namespace: d.namespace, service: d.name}
  if (d.kind === 'source-range') return raiseSourceRange(w, place, d, pkt, lines)
  // a Service the snapshot does not hold: the rule's word is all there is
  const svc = w.index.snapshot.services?.find((s) => s.namespace === d.namespace && s.name === d.name)
  const port = svc ? portOf(svc, d, pkt) : undefined
  const spn = `${d.namespace}/${d.name}${(port?.name ?? d.port) ? `:${port?.name ?? d.port}` : ''}`
  const eps = svc ? usableEndpoints(svc.endpoints ?? []) : []
  const policy = d.policy ?? (svc && !sameIp(parseIp(pkt.dst), parseIp(svc.clusterIP)) ? 'external' : 'internal')
  const policyName = policy === 'internal' ? 'internalTrafficPolicy' : 'externalTrafficPolicy'
  const evidence = [
    ...(svc ? [apiLine(svc, eps)] : []),
    ...(d.marked ? [`${d.marked}    (nat, earlier: the mark this drop is for)`] : []),
    ...lines,
  ]
  const stale = svc ? staleRule(svc, d, policy, eps, node) : undefined
  if (svc && stale !== undefined)
    return w.raise('SERVICE_RULES_STALE', {
      node,
      // as `check` names it, so that the trace's finding and the path check's are one
      subject: port
        ? `Service ${spn} (${svc.clusterIP} ${port.protocol.toLowerCase()}/${port.port})`
        : `Service ${spn}`,
      message: `kube-proxy's rules on ${node} disagree with the EndpointSlices of ${spn}: ${stale}; it ${d.kind === 'none' ? 'rejects' : 'drops'} ${what}`,
      evidence,
      vars: {node, ...vars},
    })
  if (d.kind === 'none')
    return w.raise('SERVICE_NO_ENDPOINTS', {
      // about the Service, as `check` raises it: one finding, whichever node rejects
      subject: `Service ${d.namespace}/${d.name}`,
      message: `Service ${spn} has no ready endpoint: kube-proxy on ${node} rejects ${what} by design (its rule for a Service without endpoints, written again at every sync if deleted)`,
      evidence,
      vars,
    })
  const elsewhere = eps.length > 0 ? `; its endpoints: ${listed(eps)}` : ''
  return w.raise('SERVICE_NO_ENDPOINTS', {
    node,
    subject: `Service ${d.namespace}/${d.name}`,
    message: `Service ${spn} has no endpoint on ${node} (${policyName} Local): kube-proxy there drops ${what}${policy === 'external' ? ', which comes from outside the node,' : ''} by design${elsewhere}`,
    evidence,
    vars: {node, ...vars},
    fixTemplate: NO_LOCAL_FIX[policy].join('\n'),
  })
}

/** The Service's endpoints as the API gives them, for the evidence. */
function apiLine(svc: InventoryService, eps: readonly InventoryEndpoint[]): string {
  const policies = [
    ...(svc.internalTrafficPolicy === 'Local' ? ['internalTrafficPolicy Local'] : []),
    ...(svc.externalTrafficPolicy === 'Local' ? ['externalTrafficPolicy Local'] : []),
  ]
  const have =
    eps.length === 0
      ? 'no ready endpoint'
      : `${eps.some(isReady) ? 'ready endpoints' : 'no ready endpoint; serving while terminating'} ${listed(eps)}`
  return `API: endpointslices of ${svc.namespace}/${svc.name}${policies.map((p) => `, ${p}`).join('')}: ${have}`
}

/** Why kube-proxy should not drop here, by the API: its rules are behind (undefined: the drop is the API's). */
function staleRule(
  svc: InventoryService,
  d: IntendedDrop,
  policy: 'internal' | 'external',
  eps: readonly InventoryEndpoint[],
  node: string,
): string | undefined {
  if (d.kind === 'none')
    return eps.length > 0
      ? `it rejects the Service as having no endpoints, but the EndpointSlices list ${plural(eps.length, 'ready endpoint')}`
      : undefined
  const name = policy === 'internal' ? 'internalTrafficPolicy' : 'externalTrafficPolicy'
  if ((policy === 'internal' ? svc.internalTrafficPolicy : svc.externalTrafficPolicy) !== 'Local')
    return `it drops the Service as having no endpoint on ${node}, but its ${name} is Cluster`
  const here = eps.filter((e) => e.nodeName === node)
  return here.length > 0
    ? `it drops the Service as having no endpoint on ${node}, but the EndpointSlices list ${listed(here)}`
    : undefined
}

/**
 * A LoadBalancer's firewall dropped the packet: its source is in none of the Service's
 * loadBalancerSourceRanges. Still FIREWALL_DROP (a firewall rule drops it), with the Service's fix: the ranges
 * are the API's, kube-proxy writes the rule again at every sync. A pod or a node of the cluster reaches the
 * Service by its ClusterIP, which no source range guards.
 */
function raiseSourceRange(w: Walk, place: Place, d: IntendedDrop, pkt: Header, lines: string[]): FindingCode {
  const svc = w.index.snapshot.services?.find((s) => s.namespace === d.namespace && s.name === d.name)
  const spn = `${d.namespace}/${d.name}${d.port ? `:${d.port}` : ''}`
  const ranges = svc?.loadBalancerSourceRanges ?? []
  const inside = cidrContainsAddress(w.index.snapshot.cluster.clusterCIDR, pkt.src)
  const fix = [
    `# kube-proxy on <node> lets into <service>'s load-balancer IP only the sources in its loadBalancerSourceRanges${ranges.length > 0 ? ` (${ranges.join(', ')})` : ''}, and writes this drop again at every sync: deleting it does not help`,
    ...(inside
      ? [
          '# a pod reaches the Service by its ClusterIP (or its DNS name), which no source range guards:',
          'kubectl -n <namespace> get service <service> -o wide',
        ]
      : []),
    '# or let the source in, adding its range to the Service:',
    `kubectl -n <namespace> patch service <service> --type json -p <patch>`,
  ]
  return w.raise('FIREWALL_DROP', {
    node: place.node,
    subject: `kube-proxy's load-balancer firewall for Service ${d.namespace}/${d.name}`,
    message: `kube-proxy on ${place.node} drops ${describeHeader(pkt)}: ${pkt.src} is in none of ${spn}'s loadBalancerSourceRanges${ranges.length > 0 ? ` (${ranges.join(', ')})` : ''}${inside ? ' (a pod: inside the cluster the ClusterIP reaches the Service)' : ''}`,
    evidence: [
      ...(svc ? [`API: ${d.namespace}/${d.name} loadBalancerSourceRanges ${ranges.join(', ') || '(none)'}`] : []),
      ...lines,
    ],
    vars: {
      node: place.node,
      namespace: d.namespace,
      service: d.name,
      patch: JSON.stringify([{op: 'add', path: '/spec/loadBalancerSourceRanges/-', value: `${pkt.src}/32`}]),
    },
    fixTemplate: fix.join('\n'),
  })
}
