import type {TraceQuery, TraceResult} from '../../../src/analyze/trace/api.js'
import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import type {Protocol, Trace} from '../../../src/model/trace.js'
import {describeSchemaError, validatorFor} from '../../../src/util/schema.js'

export {snapshotFixture} from '../../helpers/fixtures.js'

export function run(snap: Snapshot, src: string, dst: string, q: Partial<TraceQuery> = {}): TraceResult {
  return traceSnapshot(snap, {src, dst, protocol: 'icmp', size: 84, df: true, ...q})
}

export function trace(snap: Snapshot, src: string, dst: string, q: Partial<TraceQuery> = {}): Trace {
  return run(snap, src, dst, q).trace
}

/**
 * A flow traced as a user runs it: no DF, a plain ping's 84 bytes; no protocol: a ping to a pod, a Service's
 * own protocol and port; TCP or UDP to the lab pods' listeners (8080, 53) unless `port` names another.
 */
export function flow(
  snap: Snapshot,
  src: string,
  dst: string,
  protocol?: Protocol,
  o: {port?: number; size?: number} = {},
): Trace {
  const port = o.port ?? (protocol === 'tcp' ? 8080 : protocol === 'udp' ? 53 : undefined)
  return traceSnapshot(snap, {
    src,
    dst,
    df: false,
    size: o.size ?? 84,
    ...(protocol ? {protocol} : {}),
    ...(port !== undefined ? {port} : {}),
  }).trace
}

/** The trace as `netctl trace --json` would print it must satisfy its schema. */
export function schemaErrors(t: Trace): string | undefined {
  const validate = validatorFor('trace')
  return validate(JSON.parse(JSON.stringify(t))) ? undefined : describeSchemaError(validate.errors)
}

export const actions = (t: {hops: Array<{action: string}>}): string[] => t.hops.map((h) => h.action)

export const node = (snap: Snapshot, name: string) => snap.nodes.find((n) => n.name === name)!
export const pod = (snap: Snapshot, name: string) => snap.pods.find((p) => p.name === name)!
/** The first address of a CIDR (flannel's VTEP address, Calico's tunnel address). */
export const network = (cidr: string): string => cidr.split('/')[0] as string
