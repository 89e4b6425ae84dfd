/**
 * The trace engine's contract. The walker (src/analyze/trace/walk.ts) and the
 * `netctl trace` command meet here: the command resolves endpoints, collects the
 * nodes they live on, and calls traceSnapshot(); when the walk reaches a node the
 * snapshot has no state for, the result names it in `needNodes`, the command
 * collects it and walks again.
 */
import type {Snapshot} from '../../model/snapshot.js'
import type {Endpoint, PacketShape, Protocol, Trace} from '../../model/trace.js'

/** The question: between which ends, and what packet (size default 84: a plain ping). */
export interface TraceQuery extends PacketShape {
  /** pod name, ns/name, pod IP, node name or node IP */
  src: string
  dst: string
}

export interface TraceResult {
  trace: Trace
  /** nodes whose state the walk needed but the snapshot lacks; empty when it had all it needed */
  needNodes: string[]
}

/** An endpoint resolved against the snapshot's pods and nodes. */
export interface ResolvedEndpoint extends Endpoint {
  kind: 'pod' | 'node'
  node: string
}

export const DEFAULT_TRACE_SIZE = 84
