import {expect} from 'vitest'

import {runChecks, runChecksByNode} from '../../../src/analyze/checks/index.js'
import type {Finding, FindingCode} from '../../../src/model/finding.js'
import type {NodeState} from '../../../src/model/node-state.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {snapshotFixture} from '../../helpers/fixtures.js'

/** The healthy snapshots `netctl collect` wrote from labs (fixtures/README.md). */
export const HEALTHY = [
  'flannel-vxlan',
  'flannel-vxlan-routed',
  'flannel-host-gw',
  'flannel-udp',
  'calico-bgp',
  'calico-rr',
  'calico-vxlan',
] as const
/** kube-proxy's rules and Services, in iptables and in nftables mode (their Service without endpoints is by design) */
export const WITH_SERVICES = ['flannel-vxlan-services-iptables', 'flannel-vxlan-services-nftables'] as const
/** host-gw across a router: recorded from a lab that is broken by design */
export type Recorded = (typeof HEALTHY)[number] | (typeof WITH_SERVICES)[number] | 'flannel-host-gw-routed'
export type Healthy = Recorded

/** A fresh copy of a recorded snapshot (validated as `--snapshot` would). */
export function snapshot(name: Healthy): Snapshot {
  return snapshotFixture(`${name}-lab`)
}

/** A copy of a recorded snapshot, changed by `fn` the way a fault would change the node. */
export function broken(name: Healthy, fn: (s: Snapshot) => void): Snapshot {
  const s = snapshot(name)
  fn(s)
  return s
}

export function node(s: Snapshot, name: string): NodeState {
  const st = s.nodeStates[name]
  if (!st) throw new Error(`no state for ${name}`)
  return st
}

/**
 * The findings of the checks over the whole snapshot, and the proof that `check --snapshot`'s run
 * node by node (runChecksStreamed: cluster facts, one node's state at a time) finds the very same,
 * in the same order, for every fault the tests make.
 */
export function checked(s: Snapshot, nodes?: string[]): Finding[] {
  const all = runChecks(s, nodes ? {nodes} : {})
  expect(runChecksByNode(s, nodes ? {nodes} : {}).raised.map((r) => r.finding)).toEqual(all)
  return all
}

export function findings(s: Snapshot, code?: FindingCode, nodes?: string[]): Finding[] {
  const all = checked(s, nodes)
  return code ? all.filter((f) => f.code === code) : all
}

/** The one finding of a code, failing loudly (with all findings) when there is not exactly one. */
export function only(s: Snapshot, code: FindingCode): Finding {
  const all = checked(s)
  const hits = all.filter((f) => f.code === code)
  if (hits.length !== 1)
    throw new Error(
      `expected one ${code}, got ${hits.length}:\n${all.map((f) => `${f.severity} ${f.code} ${f.node ?? '-'} ${f.subject}: ${f.message}`).join('\n')}`,
    )
  return hits[0]!
}

/** The codes raised, sorted, for asserting that a fault raised nothing unrelated. */
export function codes(s: Snapshot): string[] {
  return [...new Set(checked(s).map((f) => f.code))].sort()
}
