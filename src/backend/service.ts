import {collectInventory} from '../collect/collect.js'
import {DEFAULT_TIMEOUT_MS, NODE_PARALLEL} from '../defaults.js'
import type {Snapshot} from '../model/snapshot.js'
import {mapLimit} from '../util/exec.js'
import {readNetConf} from './act/kubernetes.js'
import {labBackendName} from './act/lab.js'
import {probeNode} from './act/probe.js'
import {type BackendView, describeBackend} from './plan/drift.js'
import {clusterFacts} from './plan/facts.js'
import {type KubeChange, kubeChange} from './plan/kube-objects.js'
import {type BackendPlan, planSwitch} from './plan/plan.js'
import {DAEMON_TOOLS, evaluatePreflight, type Preflight} from './plan/preflight.js'
import type {NodeProbeAnswer} from './plan/preflight-probe.js'
import {backendInfo} from './plan/profiles.js'
import type {BackendType, ClusterFacts, ConfiguredBackend} from './plan/types.js'
import type {BackendTarget} from './target.js'

/**
 * The read-only half of `netctl backend`: collect the cluster, name what is
 * programmed, plan a switch and run its preflight. Nothing here changes a node.
 */

export interface CollectOpts {
  version: string
  timeoutMs?: number
  parallel?: number
}

export async function collectTarget(
  target: BackendTarget,
  opts: CollectOpts,
): Promise<{snapshot: Snapshot; facts: ClusterFacts}> {
  const snapshot = await collectInventory(target.inventory, {
    version: opts.version,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    transportFactory: (node) => target.source.transportFor(node),
    ...(opts.parallel ? {parallel: opts.parallel} : {}),
  })
  const vtepMACs = target.record ? Object.fromEntries(target.record.nodes.map((n) => [n.name, n.vtepMAC])) : undefined
  // a lab's record knows the configured backend even when its inventory was written by an older netctl
  snapshot.cluster.backend = target.configured
  return {snapshot, facts: clusterFacts(snapshot, vtepMACs ? {vtepMACs} : {})}
}

export async function backendGet(target: BackendTarget, opts: CollectOpts): Promise<BackendView> {
  const {snapshot, facts} = await collectTarget(target, opts)
  return describeBackend(snapshot, facts, target.configured)
}

export interface PlannedSwitch {
  snapshot: Snapshot
  facts: ClusterFacts
  plan: BackendPlan
  preflight: Preflight
  /** Kubernetes: the API objects the switch writes */
  kubeChange?: KubeChange
}

/** The object change for a Kubernetes target, with net-conf.json read fresh from the API. */
async function kubeChangeOf(
  kube: NonNullable<BackendTarget['kube']>,
  from: ConfiguredBackend,
  to: BackendType,
): Promise<KubeChange | string> {
  const cm = kube.detection.details.flannel?.configMap
  const netConf = backendInfo(to).family === 'flannel' && cm ? await readNetConf(kube.cluster.api, cm) : undefined
  return kubeChange(kube.detection, from, to, netConf)
}

/** Ask every collected node the preflight questions (routes to peers, link kinds, daemon programs), in parallel. */
async function askNodes(
  target: BackendTarget,
  facts: ClusterFacts,
  snapshot: Snapshot,
  to: BackendType,
  timeoutMs: number,
): Promise<Record<string, NodeProbeAnswer | string>> {
  const info = backendInfo(to)
  // in Kubernetes the CNI's own containers run the daemons: the node need not have their programs
  const tools = target.kind === 'kubernetes' ? [] : info.daemons.flatMap((d) => DAEMON_TOOLS[d])
  const answers: Record<string, NodeProbeAnswer | string> = {}
  const nodes = target.inventory.nodes.filter((n) => snapshot.nodeStates[n.name] !== undefined)
  await mapLimit(nodes, NODE_PARALLEL, async (node) => {
    const peers = facts.nodes.filter((p) => p.name !== node.name).map((p) => p.ip)
    try {
      answers[node.name] = await probeNode(target.source.transportFor(node), peers, info.linkKinds, tools, timeoutMs)
    } catch (error) {
      answers[node.name] = `${node.name}: ${(error as Error).message}`
    }
  })
  return answers
}

export async function planBackend(target: BackendTarget, to: BackendType, opts: CollectOpts): Promise<PlannedSwitch> {
  const {snapshot, facts} = await collectTarget(target, opts)
  const plan = planSwitch(snapshot, facts, target.configured, to)
  const answers = await askNodes(target, facts, snapshot, to, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS)
  // a change of CNI family is the preflight's BACKEND_FAMILY_CHANGE already
  const sameFamily = backendInfo(to).family === backendInfo(target.configured).family
  const change =
    target.kube && !plan.noop && sameFamily ? await kubeChangeOf(target.kube, target.configured, to) : undefined
  const cannotRun =
    target.record && !labBackendName(to)
      ? `the lab has no ${to} backend module: it can be planned, not applied here`
      : typeof change === 'string'
        ? change
        : undefined
  // a lab's daemons are netctl's; a Kubernetes cluster's are its CNI's, which the object change drives
  const preflight = evaluatePreflight({
    plan,
    snapshot,
    facts,
    managesDaemons: target.kind !== 'inventory',
    answers,
    ...(cannotRun ? {cannotRun} : {}),
  })
  return {snapshot, facts, plan, preflight, ...(change && typeof change !== 'string' ? {kubeChange: change} : {})}
}
