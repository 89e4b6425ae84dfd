/**
 * PLACEHOLDER until the walker (src/analyze/trace/walk.ts) is merged: the two
 * exports of the engine's contract (api.ts), so `netctl trace` builds and its
 * tests can run. resolveEndpoint is the real one (resolve.ts); traceSnapshot
 * only says it cannot walk yet. The merge replaces this file and drops
 * WALKER_PLACEHOLDER, which is how the end-to-end test knows a real walker is here.
 */
import type {Snapshot} from '../../model/snapshot.js'
import type {TraceQuery, TraceResult} from './api.js'
import {resolveEndpoint} from './resolve.js'

export type {ResolvedEndpoint, TraceQuery, TraceResult} from './api.js'
export {DEFAULT_TRACE_SIZE} from './api.js'
export {resolveEndpoint} from './resolve.js'

export const WALKER_PLACEHOLDER = true

/** No walk: an INSUFFICIENT_INFO trace with one hop at the source, and nothing more to collect. */
export function traceSnapshot(snapshot: Snapshot, query: TraceQuery): TraceResult {
  const src = resolveEndpoint(snapshot, query.src)
  const dst = resolveEndpoint(snapshot, query.dst)
  const packet = {
    src: src.ip,
    dst: dst.ip,
    protocol: query.protocol,
    ...(query.port === undefined ? {} : {port: query.port}),
    size: query.size,
    df: query.df,
    encap: [],
  }
  const {kind: _s, ...srcEnd} = src
  const {kind: _d, ...dstEnd} = dst
  return {
    trace: {
      disposition: 'INSUFFICIENT_INFO',
      src: srcEnd,
      dst: dstEnd,
      packet,
      hops: [{node: src.node, netns: src.netns ?? src.node, action: 'drop', evidence: ['walker not merged']}],
      returnPath: null,
      findings: [],
      missing: ['walker not merged'],
    },
    needNodes: [],
  }
}
