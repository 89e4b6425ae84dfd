/**
 * The trace walker: a packet walked hop by hop over a snapshot, from one
 * endpoint to the other and back, each decision with the state behind it.
 * Pure: the snapshot in, the trace out.
 */
import {severityRank} from '../../model/finding.js'
import type {Snapshot} from '../../model/snapshot.js'
import type {Endpoint, Packet, Trace} from '../../model/trace.js'
import {hopsToPolicyDrop, policyOnFlow} from '../checks/policy.js'
import {lookupRoute} from '../fib.js'
import {parseIp} from '../ip.js'
import {DEFAULT_TRACE_SIZE, type ResolvedEndpoint, type TraceQuery, type TraceResult} from './api.js'
import {type Place, SnapshotIndex} from './place.js'
import {resolveEndpoint} from './resolve.js'
import {checkSymmetry, pathResult, runWalk} from './walk.js'
import {Shared, TTL} from './walk-state.js'

export {DEFAULT_TRACE_SIZE} from './api.js'
export type {ResolvedEndpoint, TraceQuery, TraceResult} from './api.js'
export {inNamespace, resolveEndpoint} from './resolve.js'

/** Where an endpoint sends from and receives in, or what the snapshot lacks to say. */
function placeOf(index: SnapshotIndex, shared: Shared, ep: ResolvedEndpoint): Place | string {
  if (!index.state(ep.node)) {
    shared.needNodes.add(ep.node)
    const err = index.collectionError(ep.node)
    return `${ep.node}: node state not collected${err ? ` (${err})` : ''}`
  }
  if (ep.kind === 'node') return index.host(ep.node) as Place
  const place = index.pod(ep.node, ep.namespace as string, ep.pod as string)
  return place ?? `${ep.node}: pod ${ep.namespace}/${ep.pod}'s network namespace not collected`
}

function endpoint(index: SnapshotIndex, ep: ResolvedEndpoint, ip: string, place: Place | string): Endpoint {
  const netns = typeof place === 'string' ? ep.netns : place.netns
  return {ip, ...(ep.pod ? {pod: ep.pod, namespace: ep.namespace} : {}), node: ep.node, ...(netns ? {netns} : ep.kind === 'node' ? {netns: index.hostNetns(ep.node)} : {})}
}

export function traceSnapshot(snapshot: Snapshot, query: TraceQuery): TraceResult {
  const index = new SnapshotIndex(snapshot)
  const src = resolveEndpoint(snapshot, query.src)
  const dst = resolveEndpoint(snapshot, query.dst)
  const shared = new Shared()
  const srcPlace = placeOf(index, shared, src)
  const dstPlace = placeOf(index, shared, dst)
  const packet: Packet = {
    src: src.ip,
    dst: dst.ip,
    protocol: query.protocol,
    ...(query.protocol !== 'icmp' && query.port !== undefined ? {port: query.port} : {}),
    size: query.size ?? DEFAULT_TRACE_SIZE,
    df: query.df,
    encap: [],
  }
  // a node named by name sends from whatever address the kernel selects for the destination
  if (typeof srcPlace !== 'string' && src.kind === 'node' && !parseIp(query.src)) {
    const chosen = lookupRoute(srcPlace.fib, {dst: dst.ip}).src
    if (chosen) packet.src = chosen
  }
  const base = {src: endpoint(index, src, packet.src, srcPlace), dst: endpoint(index, dst, dst.ip, dstPlace), packet}
  // the NetworkPolicies' verdict, from the API objects alone: POLICY_DENY when enforced, POLICY_UNENFORCED when the CNI ignores them
  const flowPolicy = policyOnFlow(snapshot, base.src, base.dst, packet)
  const policies = flowPolicy?.findings ?? []
  const policyField = flowPolicy ? {policy: flowPolicy.policy} : {}
  if (typeof srcPlace === 'string') {
    shared.lack(srcPlace)
    if (typeof dstPlace === 'string') shared.lack(dstPlace)
    const trace: Trace = {...base, disposition: 'INSUFFICIENT_INFO', hops: [], returnPath: null, findings: policies, missing: shared.missing, ...policyField}
    return {trace, needNodes: [...shared.needNodes]}
  }

  const forward = runWalk(index, shared, 'forward', srcPlace, {pkt: packet, ttl: TTL, ct: 'NEW'})
  let forwardPath = pathResult(forward)
  // a packet the dataplane would deliver but an enforced policy denies stops where Felix drops it
  if (forwardPath.disposition === 'DELIVERED' && flowPolicy?.denied) {
    forwardPath = {disposition: 'DENIED', hops: hopsToPolicyDrop(forwardPath.hops, flowPolicy.denied, policies[0]!, base.src, base.dst)}
  }
  let returnPath: Trace['returnPath'] = null
  if (forwardPath.disposition === 'DELIVERED' && typeof dstPlace !== 'string') {
    // the reply leaves where the request arrived, to the source it arrived from (both as translated on the way)
    const at = forward.delivered?.flight.pkt ?? packet
    const from = forward.delivered?.place ?? dstPlace
    const reply: Packet = {src: at.dst, dst: at.src, protocol: packet.protocol, size: packet.size, df: packet.df, encap: []}
    const back = runWalk(index, shared, 'return', from, {pkt: reply, ttl: TTL, ct: 'ESTABLISHED', ...(at.port !== undefined ? {sport: at.port} : {})})
    returnPath = pathResult(back)
    if (back.disposition === 'DELIVERED') checkSymmetry(index, shared, forward.hops, back.hops)
  }
  const findings = [...shared.findings, ...policies].map((f, i) => ({f, i})).sort((a, b) => severityRank(a.f.severity) - severityRank(b.f.severity) || a.i - b.i).map((x) => x.f)
  const trace: Trace = {...base, ...forwardPath, returnPath, findings, ...(shared.missing.length > 0 ? {missing: shared.missing} : {}), ...policyField}
  return {trace, needNodes: [...shared.needNodes]}
}
