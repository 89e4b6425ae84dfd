/**
 * One flow walked there and back over the snapshot, and what the walks share:
 * where an endpoint sends from, the packet it sends, the findings in order.
 * Pure, used by the pod/node trace and by the Service trace (once per endpoint).
 */
import {type Finding, severityRank} from '../../model/finding.js'
import type {Endpoint, Hop, Packet, Trace} from '../../model/trace.js'
import {hopsToPolicyDrop, policyOnFlow} from '../checks/policy.js'
import {lookupRoute} from '../fib.js'
import {parseIp} from '../ip.js'
import {DEFAULT_TRACE_SIZE, type ResolvedEndpoint, type TraceQuery} from './api.js'
import type {Place, SnapshotIndex} from './place.js'
import {checkSymmetry, pathResult, runWalk} from './walk.js'
import {type Flight, type Shared, TTL} from './walk-state.js'

/** Where an endpoint sends from and receives in, or what the snapshot lacks to say. */
export function placeOf(index: SnapshotIndex, shared: Shared, ep: ResolvedEndpoint): Place | string {
  if (!index.state(ep.node)) {
    shared.needNodes.add(ep.node)
    const err = index.collectionError(ep.node)
    return `${ep.node}: node state not collected${err ? ` (${err})` : ''}`
  }
  if (ep.kind === 'node') return index.host(ep.node) as Place
  const place = index.pod(ep.node, ep.namespace as string, ep.pod as string)
  return place ?? `${ep.node}: pod ${ep.namespace}/${ep.pod}'s network namespace not collected`
}

export function endpoint(index: SnapshotIndex, ep: ResolvedEndpoint, ip: string, place: Place | string): Endpoint {
  const netns = typeof place === 'string' ? ep.netns : place.netns
  return {
    ip,
    ...(ep.pod ? {pod: ep.pod, namespace: ep.namespace} : {}),
    node: ep.node,
    ...(netns ? {netns} : ep.kind === 'node' ? {netns: index.hostNetns(ep.node)} : {}),
  }
}

/** The packet the source sends: from its address (a node named by name: the one the kernel selects for DST), to `dstIp`. */
export function firstPacket(
  srcPlace: Place | string,
  src: ResolvedEndpoint,
  query: TraceQuery & {protocol: Packet['protocol']},
  dstIp: string,
): Packet {
  const packet: Packet = {
    src: src.ip,
    dst: dstIp,
    protocol: query.protocol,
    ...(query.protocol !== 'icmp' && typeof query.port === 'number' ? {port: query.port} : {}),
    size: query.size ?? DEFAULT_TRACE_SIZE,
    df: query.df,
    encap: [],
  }
  if (typeof srcPlace !== 'string' && src.kind === 'node' && !parseIp(query.src)) {
    const chosen = lookupRoute(srcPlace.fib, {dst: dstIp}).src
    if (chosen) packet.src = chosen
  }
  return packet
}

export const sortFindings = (findings: Finding[]): Finding[] =>
  findings
    .map((f, i) => ({f, i}))
    .sort((a, b) => severityRank(a.f.severity) - severityRank(b.f.severity) || a.i - b.i)
    .map((x) => x.f)

/**
 * The reply arrived, but not from where the source sent its request (a translation conntrack did not undo:
 * a reply bridged past a node whose br_netfilter is off): no socket of the source's has that peer, so its
 * stack refuses it (a TCP reset, a UDP datagram dropped). The drop hop, with the findings that say why.
 */
function refusedReply(request: Packet, arrived: Flight | undefined, hops: readonly Hop[]): Hop | undefined {
  // ping matches its echo replies by identifier, from whatever address: only a connection's peer is checked
  if (!arrived || request.protocol === 'icmp') return undefined
  const from = arrived.pkt.src
  const port = request.port !== undefined ? arrived.sport : undefined
  if (from === request.dst && port === request.port) return undefined
  const last = hops.at(-1)
  // the bridge that carried the reply past conntrack says why
  const findings = [...new Set(hops.filter((h) => h.action === 'bridge').flatMap((h) => h.findings ?? []))]
  const peer = (ip: string, p: number | undefined) => `${ip}${p !== undefined ? `:${p}` : ''}`
  return {
    ...(last ? {node: last.node, netns: last.netns, ...(last.in ? {in: last.in} : {})} : {node: '', netns: ''}),
    action: 'drop',
    evidence: [
      `the reply comes from ${peer(from, port)}, but the request went to ${peer(request.dst, request.port)}: ${request.protocol === 'tcp' ? 'no socket here has that peer, so TCP answers it with a reset' : 'no connected socket here has that peer (a resolver, nc and socat connect theirs), so the datagram is dropped'}`,
    ],
    packet: arrived.pkt,
    ...(findings.length > 0 ? {findings} : {}),
  }
}

/** One flow walked there and back; `policyDst` is whom the NetworkPolicies judge (a Service's endpoint pod). */
export function walkFlow(
  index: SnapshotIndex,
  shared: Shared,
  srcPlace: Place,
  packet: Packet,
  policySrc: Endpoint,
  policyDst: Endpoint,
  dstPlace?: Place,
  policyPacket: Packet = packet,
) {
  // the NetworkPolicies' verdict, from the API objects alone: POLICY_DENY when enforced, POLICY_UNENFORCED when the CNI ignores them
  const flowPolicy = policyOnFlow(index.snapshot, policySrc, policyDst, policyPacket)
  const policies = flowPolicy?.findings ?? []
  const policyField = flowPolicy ? {policy: flowPolicy.policy} : {}
  const forward = runWalk(index, shared, 'forward', srcPlace, {pkt: packet, ttl: TTL, ct: 'NEW'})
  let forwardPath = pathResult(forward)
  // a packet the dataplane would deliver but an enforced policy denies stops where Felix drops it
  if (forwardPath.disposition === 'DELIVERED' && flowPolicy?.denied) {
    forwardPath = {
      disposition: 'DENIED',
      hops: hopsToPolicyDrop(forwardPath.hops, flowPolicy.denied, policies[0]!, policySrc, policyDst),
    }
  }
  let returnPath: Trace['returnPath'] = null
  const from = forward.delivered?.place ?? dstPlace
  if (forwardPath.disposition === 'DELIVERED' && from) {
    // the reply leaves where the request arrived, to the source it arrived from (both as translated on the way)
    const at = forward.delivered?.flight.pkt ?? packet
    const reply: Packet = {
      src: at.dst,
      dst: at.src,
      protocol: packet.protocol,
      size: packet.size,
      df: packet.df,
      encap: [],
    }
    const back = runWalk(index, shared, 'return', from, {
      pkt: reply,
      ttl: TTL,
      ct: 'ESTABLISHED',
      ...(at.port !== undefined ? {sport: at.port} : {}),
    })
    returnPath = pathResult(back)
    const refused =
      back.disposition === 'DELIVERED' ? refusedReply(packet, back.delivered?.flight, returnPath.hops) : undefined
    if (refused) returnPath = {disposition: 'DENIED', hops: [...returnPath.hops, refused]}
    else if (back.disposition === 'DELIVERED') checkSymmetry(index, shared, forward.hops, back.hops)
  }
  return {forward: forwardPath, returnPath, policies, policyField, delivered: forward.delivered}
}
