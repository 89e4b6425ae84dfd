/**
 * The trace engine's contract. The walker (src/analyze/trace/walk.ts) and the
 * `netctl trace` command meet here: the command resolves endpoints, collects the
 * nodes they live on, and calls traceSnapshot(); when the walk reaches a node the
 * snapshot has no state for, the result names it in `needNodes`, the command
 * collects it and walks again.
 */
import type {Endpoint, Protocol, Trace} from '../../model/trace.js'

export interface TraceQuery {
  /** pod name, ns/name, pod IP, node name or node IP */
  src: string
  dst: string
  /** absent: ICMP, or a Service DST's port protocol */
  protocol?: Protocol
  /** destination port for tcp/udp; for a Service DST also the Service port's name */
  port?: number | string
  /** a Service DST: walk only this endpoint (its IP, or its pod as NAME or NAMESPACE/NAME) */
  endpoint?: string
  /** where a bare `svc/NAME` is looked up (-n; default: default) */
  namespace?: string
  /** bytes of the IP packet the source sends (default 84: a plain ping) */
  size: number
  /** the Don't Fragment bit */
  df: boolean
}

export interface TraceResult {
  trace: Trace
  /** nodes whose state the walk needed but the snapshot lacks; empty when it had all it needed */
  needNodes: string[]
  /**
   * pods (NAMESPACE/NAME) the walk needed whose node's state lacks their namespace: a live trace
   * reads a node's pods only as the walk asks for them; absent or empty when it had all it needed
   */
  needPods?: string[]
}

/** An endpoint resolved against the snapshot's pods and nodes. */
export interface ResolvedEndpoint extends Endpoint {
  kind: 'pod' | 'node'
  node: string
}

export const DEFAULT_TRACE_SIZE = 84
