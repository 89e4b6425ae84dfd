/**
 * trace --probe's recorded inputs (fixtures/trace-probe/<lab>): the walk, and
 * the observation as src/services/probe.ts builds it from the counters read
 * before and after the ping and the ping's output: from `ip -s -j link` alone
 * (the older recordings, `<node>-{before,after}.json`), or from the raw reads
 * as the service got them (scripts/capture-trace-probe.ts, `<node>-*.out`).
 */
import {existsSync} from 'node:fs'
import path from 'node:path'

import {pointKey, type ProbeObservation, probePoints} from '../../src/analyze/probe-verdict.js'
import {parseLinkCounters} from '../../src/collect/parse/link-stats.js'
import {parseProbeReads, type ProbeRead} from '../../src/collect/probe-read.js'
import type {Trace} from '../../src/model/trace.js'
import {answeredOf, observed, splitSourceOutput} from '../../src/services/probe.js'
import {REPO} from './cli.js'
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

/** The observation the service builds from the recorded raw reads of `scenario` (node1 the source; the walk may be another scenario's). */
export function replayedObservation(dir: string, scenario: string, trace: Trace): ProbeObservation {
  const src = splitSourceOutput(fixture(dir, scenario, 'node1-source.out'))
  const before = new Map<string, ProbeRead>([['node1', src.before!]])
  const after = new Map<string, ProbeRead>([['node1', src.after!]])
  before.set('node2', parseProbeReads(fixture(dir, scenario, 'node2-before.out'))[0]!)
  after.set('node2', parseProbeReads(fixture(dir, scenario, 'node2-after.out'))[0]!)
  const smallerFile = path.join(REPO, 'fixtures', dir, scenario, 'node1-smaller.out')
  const answered = answeredOf('icmp', src.sendOut)
  return {
    command: 'ping -c 3',
    sent: 3,
    answered,
    ...observed(trace, before, after),
    ...(existsSync(smallerFile)
      ? {smaller: {size: 84, sent: 3, answered: answeredOf('icmp', fixture(dir, scenario, 'node1-smaller.out')) ?? 0}}
      : {}),
  }
}
