import type {Hop, PathResult} from '../../model/trace.js'
import {frameIn} from './bridge.js'
import {l3} from './l3.js'
import type {Place, SnapshotIndex} from './place.js'
import {type Flight, MAX_STEPS, Shared, type Step, Walk} from './walk-state.js'

/** Run one direction of the walk from where the packet is sent until it stops. */
export function runWalk(
  index: SnapshotIndex,
  shared: Shared,
  direction: 'forward' | 'return',
  start: Place,
  flight: Flight,
): Walk {
  const w = new Walk(index, shared, direction)
  let step: Step | undefined = {kind: 'l3', place: start, flight}
  let steps = 0
  while (step) {
    if (++steps > MAX_STEPS) {
      w.stop('LOOP', {
        node: step.place.node,
        netns: step.place.netns,
        action: 'drop',
        evidence: [`more than ${MAX_STEPS} steps: the path goes round in circles`],
      })
      break
    }
    step =
      step.kind === 'l3'
        ? l3(w, step.place, step.inDev, step.flight, step.oif)
        : frameIn(w, step.place, step.dev, step.mac, step.flight)
  }
  // every stop names its disposition; a walk that ended without one ran out of state to read
  if (!w.disposition) w.disposition = 'INSUFFICIENT_INFO'
  return w
}

export function pathResult(w: Walk): PathResult {
  return {disposition: w.disposition ?? 'INSUFFICIENT_INFO', hops: w.hops}
}

/** The forwarding decisions of node namespaces: node, in, out, of the packet itself (not a tunnel's). */
function forwardingSteps(index: SnapshotIndex, hops: Hop[]): Array<{node: string; in: string; out: string}> {
  return hops
    .filter(
      (h) =>
        h.action === 'route' &&
        h.in &&
        h.out &&
        (h.packet?.encap.length ?? 0) === 0 &&
        h.netns === index.hostNetns(h.node),
    )
    .map((h) => ({node: h.node, in: h.in as string, out: h.out as string}))
}

const describe = (s: Array<{node: string; in: string; out: string}>): string =>
  s.map((x) => `${x.node} ${x.in} → ${x.out}`).join(', ') || '(no forwarding node)'

/**
 * ASYMMETRIC_PATH: the reply crosses other nodes, or the same nodes by other
 * devices, than the request did (the request's path reversed).
 */
export function checkSymmetry(index: SnapshotIndex, shared: Shared, forward: Hop[], back: Hop[]): void {
  // a request routed back out of the device it came in by was translated to an address on that segment (a Service's
  // endpoint on the same bridge): its reply stays on the segment, bridged and un-DNATed there, or, when the request
  // was masqueraded to the node's address too (an endpoint reaching itself, kube-proxy's hairpin), it comes to the
  // node and is routed back out of that same device: either way it retraces the request there
  const steps = forwardingSteps(index, forward)
  const sameDevice = new Set(steps.filter((s) => s.in === s.out).map((s) => `${s.node} ${s.in}`))
  const there = steps.filter((s) => s.in !== s.out)
  const expected = [...there].reverse().map((s) => ({node: s.node, in: s.out, out: s.in}))
  const actual = forwardingSteps(index, back).filter((s) => s.in !== s.out || !sameDevice.has(`${s.node} ${s.in}`))
  const differs =
    expected.length !== actual.length ||
    expected.some((e, i) => e.node !== actual[i]?.node || e.in !== actual[i]?.in || e.out !== actual[i]?.out)
  if (!differs) return
  const at = actual.find((a, i) => a.node !== expected[i]?.node || a.in !== expected[i]?.in) ?? actual[0]
  shared.raise('ASYMMETRIC_PATH', {
    ...(at ? {node: at.node} : {}),
    subject: at ? `${at.node} ${at.in}` : 'return path',
    message: `the reply does not retrace the request: request ${describe(there)}; reply ${describe(actual)}`,
    evidence: [`request: ${describe(there)}`, `reply: ${describe(actual)}`],
    vars: {dev: at?.in ?? 'all'},
  })
}
