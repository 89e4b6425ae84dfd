import type {TraceQuery, TraceResult} from '../../../src/analyze/trace/api.js'
import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import type {Trace} from '../../../src/model/trace.js'
import {describeSchemaError, validatorFor} from '../../../src/util/schema.js'

export {snapshotFixture} from '../../helpers/fixtures.js'

export function run(snap: Snapshot, src: string, dst: string, q: Partial<TraceQuery> = {}): TraceResult {
  return traceSnapshot(snap, {src, dst, protocol: 'icmp', size: 84, df: true, ...q})
}

export function trace(snap: Snapshot, src: string, dst: string, q: Partial<TraceQuery> = {}): Trace {
  return run(snap, src, dst, q).trace
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
