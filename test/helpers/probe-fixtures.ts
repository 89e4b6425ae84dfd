/**
 * trace --probe's recorded inputs (fixtures/trace-probe/<lab>): the walk, and
 * the observation as src/services/probe.ts builds it from the counters read
 * before and after the ping and the ping's output.
 */
import {pointKey, type ProbeObservation, probePoints} from '../../src/analyze/probe-verdict.js'
import {parseLinkCounters} from '../../src/collect/parse/link-stats.js'
import type {Trace} from '../../src/model/trace.js'
import {answeredOf} from '../../src/services/probe.js'
import {fixture} from './fixtures.js'

export const recordedWalk = (dir: string, file = 'walk.json'): Trace =>
  JSON.parse(fixture(dir, ...file.split('/'))) as Trace

/** The recorded counters' deltas at the walk's points, and the ping's replies. */
export function recordedObservation(trace: Trace, dir: string, scenario: string): ProbeObservation {
  const read = (n: string, when: string) => parseLinkCounters(fixture(dir, scenario, `${n}-${when}.json`))
  const deltas: ProbeObservation['deltas'] = {}
  for (const p of probePoints(trace)) {
    const a = read(p.node, 'before').get(p.interface)?.[p.direction]
    const b = read(p.node, 'after').get(p.interface)?.[p.direction]
    if (a && b) deltas[pointKey(p)] = {packets: b.packets - a.packets, dropped: b.dropped - a.dropped}
  }
  return {command: 'ping -c 3', sent: 3, answered: answeredOf('icmp', fixture(dir, scenario, 'ping.txt')), deltas}
}
