/**
 * SRC and DST of `netctl trace` as a person types them, resolved against a
 * snapshot's pods and nodes: a pod by name, NAMESPACE/NAME or IP; a node by
 * name or InternalIP. Pure: everything comes from the snapshot. Anything
 * unknown or ambiguous is a one-line UsageError (exit 2) that says what to type
 * (and, being complete, without the pointer to --help).
 */
import ipaddr from 'ipaddr.js'

import {UsageError} from '../../errors.js'
import type {Family} from '../../model/node-state.js'
import type {Snapshot, SnapshotNode, SnapshotPod} from '../../model/snapshot.js'
import {closest} from '../../util/edit-distance.js'
import {parseIp} from '../ip.js'
import type {ResolvedEndpoint} from './api.js'

/** The canonical text of an IP (IPv6 spelt out in full, so two spellings of one address compare equal), or undefined. */
function canonicalIp(text: string): string | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text).toString()
  if (text.includes(':') && ipaddr.IPv6.isValid(text)) return ipaddr.IPv6.parse(text).toNormalizedString()
  return undefined
}

const sameIp = (a: string, b: string): boolean => canonicalIp(a) !== undefined && canonicalIp(a) === canonicalIp(b)

function podEndpoint(p: SnapshotPod): ResolvedEndpoint {
  return {
    kind: 'pod',
    node: p.node,
    ip: p.ip,
    pod: p.name,
    namespace: p.namespace,
    ...(p.netns === undefined ? {} : {netns: p.netns}),
  }
}

function nodeEndpoint(n: SnapshotNode): ResolvedEndpoint {
  return {kind: 'node', node: n.name, ip: n.internalIP}
}

const podKey = (p: SnapshotPod): string => `${p.namespace}/${p.name}`

/** "pod default/web, pod prod/web and node web" */
function listOf(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`
}

/** Which node's podCIDR holds an IP (a pod the snapshot does not list). */
function podCidrOwner(snapshot: Snapshot, ip: string): {node: string; cidr: string} | undefined {
  const addr = ipaddr.parse(ip)
  for (const n of snapshot.nodes) {
    for (const cidr of n.podCIDRs) {
      try {
        const [net, len] = ipaddr.parseCIDR(cidr)
        if (net.kind() === addr.kind() && addr.match([net, len])) return {node: n.name, cidr}
      } catch {
        // a malformed podCIDR is a finding elsewhere, not a reason to fail resolution
      }
    }
  }
  return undefined
}

function byIp(snapshot: Snapshot, text: string): ResolvedEndpoint {
  // A hostNetwork pod shares its node's address: the node is what the packet leaves from.
  const node = snapshot.nodes.find((n) => sameIp(n.internalIP, text))
  if (node) return nodeEndpoint(node)
  const pods = snapshot.pods.filter((p) => sameIp(p.ip, text))
  if (pods.length === 1) return podEndpoint(pods[0]!)
  if (pods.length > 1) {
    throw new UsageError(
      `${text} is ambiguous: pods ${listOf(pods.map(podKey))} all have it (a stale snapshot?); name the pod as NAMESPACE/NAME`,
      false,
    )
  }
  const owner = podCidrOwner(snapshot, text)
  if (owner) {
    throw new UsageError(
      `no pod with IP ${text} in cluster ${snapshot.cluster.name} (it is in ${owner.node}'s podCIDR ${owner.cidr}, but no pod there has it)`,
      false,
    )
  }
  throw new UsageError(`no pod or node with IP ${text} in cluster ${snapshot.cluster.name}`, false)
}

function suggestion(snapshot: Snapshot, text: string): string {
  const guess = closest(text, [
    ...snapshot.pods.map((p) => (text.includes('/') ? podKey(p) : p.name)),
    ...snapshot.nodes.map((n) => n.name),
  ])
  return guess ? ` (did you mean ${guess}?)` : ''
}

function byNamespacedName(snapshot: Snapshot, text: string): ResolvedEndpoint {
  const slash = text.indexOf('/')
  const namespace = text.slice(0, slash)
  const name = text.slice(slash + 1)
  if (namespace === '' || name === '' || name.includes('/'))
    throw new UsageError(`'${text}' is not a pod name: use NAME, NAMESPACE/NAME, a pod IP, a node name or a node IP`)
  const pod = snapshot.pods.find((p) => p.namespace === namespace && p.name === name)
  if (pod) return podEndpoint(pod)
  // the right name in another namespace is the likeliest slip
  const elsewhere = snapshot.pods.filter((p) => p.name === name).map((p) => p.namespace)
  const hint = elsewhere.length > 0 ? ` (${name} is in namespace ${listOf(elsewhere)})` : suggestion(snapshot, text)
  throw new UsageError(`no pod ${text} in cluster ${snapshot.cluster.name}${hint}`, false)
}

function byName(snapshot: Snapshot, text: string): ResolvedEndpoint {
  const pods = snapshot.pods.filter((p) => p.name === text)
  const nodes = snapshot.nodes.filter((n) => n.name === text)
  if (pods.length + nodes.length === 1) return pods[0] ? podEndpoint(pods[0]) : nodeEndpoint(nodes[0]!)
  if (pods.length + nodes.length > 1) {
    const candidates = [...pods.map((p) => `pod ${podKey(p)}`), ...nodes.map((n) => `node ${n.name}`)]
    const how =
      pods.length > 1 ? 'name the pod as NAMESPACE/NAME' : 'name the pod as NAMESPACE/NAME, or the node by its IP'
    throw new UsageError(`'${text}' is ambiguous: ${listOf(candidates)}; ${how}`, false)
  }
  throw new UsageError(
    `no pod or node named '${text}' in cluster ${snapshot.cluster.name}${suggestion(snapshot, text)}`,
    false,
  )
}

/** Resolve one end of a trace: a pod (name, NAMESPACE/NAME, IP) or a node (name, InternalIP). */
export function resolveEndpoint(snapshot: Snapshot, text: string): ResolvedEndpoint {
  const t = text.trim()
  if (t === '')
    throw new UsageError('an empty endpoint: give a pod (NAME, NAMESPACE/NAME or IP) or a node (name or IP)')
  if (canonicalIp(t) !== undefined) return byIp(snapshot, t)
  if (t.includes('/')) return byNamespacedName(snapshot, t)
  return byName(snapshot, t)
}

/**
 * A bare NAME as kubectl reads it, for a Kubernetes cluster: the pod of that
 * name in `namespace` (-n, else the context's), written NAMESPACE/NAME. A name
 * that is a node's and no pod's of the namespace stays a node; an IP or a
 * NAMESPACE/NAME is left as it is. A pod that is not there then fails to
 * resolve with a message that says where a pod of that name is.
 */
export function inNamespace(snapshot: Snapshot, text: string, namespace: string): string {
  const t = text.trim()
  if (t === '' || t.includes('/') || canonicalIp(t) !== undefined) return text
  if (snapshot.pods.some((p) => p.namespace === namespace && p.name === t)) return `${namespace}/${t}`
  if (snapshot.nodes.some((n) => n.name === t)) return t
  return `${namespace}/${t}`
}

/**
 * A packet is IPv4 or IPv6, never both: SRC and DST of one trace must be of
 * one family. Said as a usage error (exit 2) before any node is read.
 */
export function checkSameFamily(query: {src: string; dst: string}, src: ResolvedEndpoint, dst: ResolvedEndpoint): void {
  const a = parseIp(src.ip)?.family
  const b = parseIp(dst.ip)?.family
  if (a === undefined || b === undefined || a === b) return
  const word = (f: Family): string => (f === 'inet' ? 'IPv4' : 'IPv6')
  throw new UsageError(
    `${query.src.trim()} (${src.ip}) is ${word(a)} and ${query.dst.trim()} (${dst.ip}) is ${word(b)}: a packet is one or the other; trace between two IPv4 or two IPv6 endpoints`,
    false,
  )
}
