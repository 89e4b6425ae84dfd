/**
 * The trace walker: a packet walked hop by hop over a snapshot, from one
 * endpoint to the other and back, each decision with the state behind it.
 * Pure: the snapshot in, the trace out.
 */
import type {Snapshot} from '../../model/snapshot.js'
import type {Trace} from '../../model/trace.js'
import {policyOnFlow} from '../checks/policy.js'
import type {TraceQuery, TraceResult} from './api.js'
import {endpoint, firstPacket, placeOf, sortFindings, walkFlow} from './flow.js'
import {SnapshotIndex} from './place.js'
import {resolveEndpoint} from './resolve.js'
import {completeQuery} from './service.js'
import {traceService} from './service-walk.js'
import {Shared} from './walk-state.js'

export type {ResolvedEndpoint, TraceQuery, TraceResult} from './api.js'
export {DEFAULT_TRACE_SIZE} from './api.js'
export {inNamespace, resolveEndpoint} from './resolve.js'
export {completeQuery, resolveServiceTarget} from './service.js'

export function traceSnapshot(snapshot: Snapshot, query: TraceQuery): TraceResult {
  const {query: q, target} = completeQuery(snapshot, query, query.namespace)
  if (target) return traceService(snapshot, q, target)
  const index = new SnapshotIndex(snapshot)
  const src = resolveEndpoint(snapshot, q.src)
  const dst = resolveEndpoint(snapshot, q.dst)
  const shared = new Shared()
  const srcPlace = placeOf(index, shared, src)
  const dstPlace = placeOf(index, shared, dst)
  const packet = firstPacket(srcPlace, src, q, dst.ip)
  const base = {src: endpoint(index, src, packet.src, srcPlace), dst: endpoint(index, dst, dst.ip, dstPlace), packet}
  if (typeof srcPlace === 'string') {
    // the NetworkPolicies' verdict, from the API objects alone
    const flowPolicy = policyOnFlow(snapshot, base.src, base.dst, packet)
    shared.lack(srcPlace)
    if (typeof dstPlace === 'string') shared.lack(dstPlace)
    const trace: Trace = {
      ...base,
      disposition: 'INSUFFICIENT_INFO',
      hops: [],
      returnPath: null,
      findings: flowPolicy?.findings ?? [],
      missing: shared.missing,
      ...(flowPolicy ? {policy: flowPolicy.policy} : {}),
    }
    return {trace, needNodes: [...shared.needNodes], needPods: [...index.needPods]}
  }
  const flow = walkFlow(
    index,
    shared,
    srcPlace,
    packet,
    base.src,
    base.dst,
    typeof dstPlace === 'string' ? undefined : dstPlace,
  )
  const trace: Trace = {
    ...base,
    ...flow.forward,
    returnPath: flow.returnPath,
    findings: sortFindings([...shared.findings, ...flow.policies]),
    ...(shared.missing.length > 0 ? {missing: shared.missing} : {}),
    ...flow.policyField,
  }
  return {trace, needNodes: [...shared.needNodes], needPods: [...index.needPods]}
}
