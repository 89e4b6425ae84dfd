import {existsSync} from 'node:fs'

import {mapLimit} from '../util/exec.js'
import {type LabAgentsView, labAgentsView} from './agents/index.js'
import {labBackend} from './backends/index.js'
import {execIn} from './netns-setup.js'
import {labHealth, type LabState, presentNetns} from './state.js'
import type {LabPlan, LabPod, LabRecord} from './types.js'

export interface PingResult {
  from: string
  to: string
  toIP: string
  sameNode: boolean
  ok: boolean
  rttMs?: number
}

export interface BgpSessionStatus {
  node: string
  peer: string
  peerIP?: string
  state: string
  info?: string
}

export interface LabView {
  name: string
  backend: string
  topology: string
  status: LabState
  /** why the status is not up */
  reason?: string
  /** namespaces of the lab whose name is not there (gone, or not made yet while creating) */
  missing: string[]
  /** names of the lab's namespaces that now point at a namespace it did not make */
  foreign: string[]
  createdAt: string
  inventory: string
  nodes: Array<{
    name: string
    netns: string
    ip: string
    podCIDR: string
    vtepMAC: string
    routeReflector?: boolean
    present: boolean
  }>
  pods: Array<{name: string; namespace: string; node: string; netns: string; ip: string; present: boolean}>
  warnings: string[]
  /** the agents' rule sets the nodes carry */
  agents: LabAgentsView
}

export interface LabStatus extends LabView {
  bgp?: BgpSessionStatus[]
  reachability?: {pairs: number; ok: number; failed: PingResult[]; results: PingResult[]}
}

/** Ping `to` from inside `from`'s namespace, once: the kernel decides, not netctl. */
export async function pingPod(from: LabPod, to: LabPod, timeoutSec = 1): Promise<PingResult> {
  const r = await execIn(from.netns, ['ping', '-n', '-q', '-c', '1', '-W', String(timeoutSec), to.ip], {
    timeoutMs: (timeoutSec + 3) * 1000,
  })
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(r.stdout)
  return {
    from: from.name,
    to: to.name,
    toIP: to.ip,
    sameNode: from.node === to.node,
    ok: r.code === 0,
    ...(rtt ? {rttMs: Number(rtt[1])} : {}),
  }
}

/**
 * The pod pairs to check: by default one pod per node to one pod on every other
 * node plus one same-node pair per node (enough to prove every node pair);
 * with `all`, every ordered pair of pods.
 */
export function reachabilityPairs(plan: LabPlan, all = false): Array<[LabPod, LabPod]> {
  const pairs: Array<[LabPod, LabPod]> = []
  if (all) {
    for (const a of plan.pods) for (const b of plan.pods) if (a !== b) pairs.push([a, b])
    return pairs
  }
  const first = new Map<string, LabPod[]>()
  for (const p of plan.pods) first.set(p.node, [...(first.get(p.node) ?? []), p])
  for (const [node, pods] of first) {
    for (const [other, opods] of first) if (node !== other) pairs.push([pods[0]!, opods[0]!])
    if (pods.length > 1) pairs.push([pods[0]!, pods[1]!])
  }
  return pairs
}

export async function checkReachability(plan: LabPlan, all = false): Promise<NonNullable<LabStatus['reachability']>> {
  const results = await mapLimit(reachabilityPairs(plan, all), 16, ([a, b]) => pingPod(a, b))
  return {pairs: results.length, ok: results.filter((r) => r.ok).length, failed: results.filter((r) => !r.ok), results}
}

export async function labView(record: LabRecord): Promise<LabView> {
  const health = labHealth(record, await presentNetns())
  const gone = new Set([...health.missing, ...health.foreign])
  const present = {has: (ns: string): boolean => !gone.has(ns)}
  return {
    name: record.name,
    backend: record.backend,
    topology: record.topology,
    status: health.state,
    ...(health.reason ? {reason: health.reason} : {}),
    missing: health.missing,
    foreign: health.foreign,
    createdAt: record.createdAt,
    inventory: record.inventory,
    nodes: record.nodes.map((n) => ({
      name: n.name,
      netns: n.netns,
      ip: n.ip,
      podCIDR: n.podCIDR,
      vtepMAC: n.vtepMAC,
      ...(n.routeReflector ? {routeReflector: true} : {}),
      present: present.has(n.netns),
    })),
    pods: record.pods.map((p) => ({
      name: p.name,
      namespace: p.namespace,
      node: p.node,
      netns: p.netns,
      ip: p.ip,
      present: present.has(p.netns),
    })),
    warnings: record.warnings,
    agents: labAgentsView(record),
  }
}

export async function labStatus(record: LabRecord, opts: {ping: boolean; allPairs: boolean}): Promise<LabStatus> {
  const view = await labView(record)
  const status: LabStatus = {...view}
  // a lab still being built, or one whose build failed, has no dataplane to ask
  if (view.status !== 'up' && view.status !== 'degraded') return status
  const backend = labBackend(record.backend)
  if (backend.sessions) status.bgp = await backend.sessions(record)
  if (opts.ping && existsSync(record.stateDir)) {
    // ping only from and to pods whose namespace is the one the lab made: a name
    // that points elsewhere (the machine's own namespace, say) is never entered
    const intact = new Set(view.pods.filter((p) => p.present).map((p) => p.name))
    status.reachability = await checkReachability(
      {...record, pods: record.pods.filter((p) => intact.has(p.name))},
      opts.allPairs,
    )
  }
  return status
}
