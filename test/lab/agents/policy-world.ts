/**
 * The NetworkPolicy conformance world in a lab, shared by the lab oracles
 * (policy-oracle.test.ts on Calico, canal.test.ts on Canal): namespaces x, y,
 * z and pods a, b, c of the shared table (test/analyze/policy-cases.ts) mapped
 * onto a 3-node lab with 3 pods per node, the rows the lab cannot send for
 * real, each row's packet for real, and netctl's verdict for it.
 */
import {readFileSync} from 'node:fs'

import {parseInventory} from '../../../src/cluster/inventory.js'
import {snapshotOf} from '../../../src/collect/collect.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {traceSnapshotFile} from '../../../src/services/trace.js'
import {
  type Case,
  POLICY_NAMESPACES,
  POLICY_PODS,
  POLICY_PORTS,
  type PolicyWorld,
  type Row,
} from '../../analyze/policy-cases.js'
import {type LabUp, nsExec} from '../../helpers/lab.js'
import type {ResponderPort} from '../../helpers/responders.js'

const NAMESPACES = POLICY_NAMESPACES.map((n) => n.name)

/** pod-nodeN-K is pod a/b/c (by node N) of namespace x/y/z (by K): the a pods share node1, the b pods node2, the c pods node3 */
export const labPod = (key: string): string => {
  const [ns, name] = key.split('/')
  return `pod-node${POLICY_PODS.indexOf(name as 'a') + 1}-${NAMESPACES.indexOf(ns!) + 1}`
}

/** `lab up` flags for the world (with --nodes 3 --pods-per-node 3): namespaces, labels, named ports. */
export const policyLabFlags = [
  ...NAMESPACES.flatMap((ns, k) => [1, 2, 3].map((n) => ['--pod-namespace', `pod-node${n}-${k + 1}:${ns}`])).flat(),
  ...POLICY_PODS.flatMap((name, n) =>
    NAMESPACES.map((_, k) => ['--pod-labels', `pod-node${n + 1}-${k + 1}:pod=${name}`]),
  ).flat(),
  ...POLICY_NAMESPACES.flatMap((ns) => [
    '--namespace-labels',
    `${ns.name}:${Object.entries(ns.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',')}`,
  ]),
  '--pod-ports',
  `*:${POLICY_PORTS.map((p) => `${p.name}=${p.containerPort}/${p.protocol}`).join(',')}`,
]

/** Why a row cannot be a real packet in the lab; undefined when it can. */
export function inexpressible(row: Row): string | undefined {
  const ends = [row.from, row.to]
  if (ends.some((e) => e === 'node1' || e === 'node2'))
    return "a node's own traffic: lab nodes have no kubelet or host endpoint for Felix to allow or police, and a trace between a lab node and a pod is not netctl's (pod or Service ends only)"
  if (ends.some((e) => e.endsWith('/hostnet'))) return 'a host-network pod: lab pods each have a namespace of their own'
  if (ends.some((e) => !e.includes('/')))
    return 'an address outside the cluster: the lab has no host outside it whose packets reach the pods'
  if (row.protocol === 'SCTP')
    return "SCTP: this machine's kernel has no sctp module (no /proc/sys/net/sctp), and the lab loads no modules"
  return undefined
}

export const protocolOf = (row: Row): 'TCP' | 'UDP' | 'ICMP' => (row.protocol ?? 'TCP') as 'TCP' | 'UDP' | 'ICMP'
export const portOf = (row: Row): number => row.port ?? 80

/** A case's policies as one `kind: List` document, as `lab policy apply -f` reads it. */
export function policyList(c: Case): {apiVersion: string; kind: string; items: unknown[]} {
  return {
    apiVersion: 'v1',
    kind: 'List',
    items: c.policies.map((p) => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {name: p.name, namespace: p.namespace},
      spec: p.spec,
    })),
  }
}

/** The lab's pods by table key (x/a, ...). */
export function policyPods(lab: LabUp): {
  podOf: (key: string) => LabUp['pods'][number]
  world: (clusterCIDR: string) => PolicyWorld
} {
  const byKey = new Map(lab.pods.map((p) => [`${p.namespace}/${p.name}`, p]))
  const podOf = (key: string) => byKey.get(`${key.split('/')[0]}/${labPod(key)}`)!
  return {
    podOf,
    world: (clusterCIDR) => ({
      ip: (key) => podOf(key).ip,
      podCIDROf: (key) => lab.nodes.find((n) => n.name === podOf(key).node)!.podCIDR,
      clusterCIDR,
      nodeIP: (node) => lab.nodes.find((n) => n.name === node)!.ip,
      nodeCIDR: lab.nodes[0]!.subnet,
    }),
  }
}

/** The lab's snapshot with the policies the lab has recorded now (its inventory, as collect reads it), over a collected base. */
export function snapshotWithLabPolicies(lab: LabUp, base: Snapshot): Snapshot {
  const inv = parseInventory(readFileSync(lab.inventory, 'utf8'), lab.inventory)
  return {
    ...snapshotOf(inv, [], {startedAt: base.startedAt, finishedAt: base.finishedAt, version: base.generator.version}),
    nodeStates: base.nodeStates,
  }
}

/**
 * The listeners the rows' packets need: for each destination pod, the TCP and UDP ports rows probe
 * on it (ICMP and the rows the lab cannot send need none), each to be answered by one responder of
 * the lab's own in the pod (test/helpers/responders.ts) with the pod's name.
 */
export function rowListeners<P>(
  rows: readonly Row[],
  podOf: (key: string) => P,
): Array<{pod: P; ports: ResponderPort[]}> {
  const wanted = new Map<P, ResponderPort[]>()
  for (const row of rows) {
    const proto = protocolOf(row)
    if (inexpressible(row) || proto === 'ICMP') continue
    const pod = podOf(row.to)
    const port: ResponderPort = {port: portOf(row), protocol: proto === 'UDP' ? 'udp' : 'tcp'}
    const ports = wanted.get(pod) ?? []
    if (!ports.some((p) => p.port === port.port && p.protocol === port.protocol)) wanted.set(pod, [...ports, port])
  }
  return [...wanted].map(([pod, ports]) => ({pod, ports}))
}

/**
 * The row's packet for real: true when it got through, and for TCP and UDP when the destination's
 * responder (rowListeners) answered with the pod's name: a TCP connect that sends nothing, or a UDP
 * datagram; ping for ICMP.
 */
export async function realPacket(
  row: Row,
  podOf: (key: string) => {netns: string; ip: string; name: string},
): Promise<boolean> {
  const src = podOf(row.from).netns
  const {ip: dst, name} = podOf(row.to)
  const once = async (): Promise<boolean> => {
    const proto = protocolOf(row)
    if (proto === 'ICMP') return (await nsExec(src, ['ping', '-n', '-q', '-c', '1', '-W', '2', dst], 10_000)).code === 0
    const r =
      proto === 'TCP'
        ? await nsExec(src, ['sh', '-c', `nc -w 1 ${dst} ${portOf(row)} </dev/null`], 10_000)
        : await nsExec(src, ['sh', '-c', `echo q | socat -T 1 - UDP4:${dst}:${portOf(row)}`], 10_000)
    return r.stdout.trim() === name
  }
  // a loaded machine can lose a first try of a packet the table lets through (a second try guards
  // against a false drop only: a packet the policies drop never gets through, however often sent)
  return (await once()) || (row.allowed && (await once()))
}

/** netctl's policy verdict for a row, from the trace over a snapshot (no policy in it: no verdict, nothing isolated). */
export function policyVerdict(snapshot: Snapshot, row: Row): {allowed: boolean; disposition: string} {
  const protocol = protocolOf(row)
  const t = traceSnapshotFile(snapshot, {
    src: `${row.from.split('/')[0]}/${labPod(row.from)}`,
    dst: `${row.to.split('/')[0]}/${labPod(row.to)}`,
    protocol: protocol.toLowerCase() as 'tcp',
    ...(protocol === 'ICMP' ? {} : {port: portOf(row)}),
    size: 64,
    df: false,
  }).trace
  return {allowed: t.policy?.allowed ?? true, disposition: t.disposition}
}
