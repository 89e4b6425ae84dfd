import {UsageError} from '../../errors.js'
import type {Snapshot, SnapshotNode, SnapshotPod} from '../../model/snapshot.js'
import {closest} from '../../util/edit-distance.js'
import {parseIp} from '../ip.js'
import type {ResolvedEndpoint} from './api.js'

/**
 * Endpoints as a user names them: a pod (`name` or `namespace/name`), a pod
 * IP, a node name or a node address. Anything unknown or ambiguous is a
 * usage error of one line that says what would have matched.
 */

const podKey = (p: SnapshotPod): string => `${p.namespace}/${p.name}`

function fromPod(p: SnapshotPod): ResolvedEndpoint {
  return {kind: 'pod', node: p.node, ip: p.ip, pod: p.name, namespace: p.namespace, ...(p.netns ? {netns: p.netns} : {})}
}

function fromNode(n: SnapshotNode, ip = n.internalIP): ResolvedEndpoint {
  return {kind: 'node', node: n.name, ip}
}

function nodeAddresses(n: SnapshotNode): string[] {
  return [n.internalIP, ...(n.externalIP ? [n.externalIP] : [])]
}

export function resolveEndpoint(snapshot: Snapshot, text: string): ResolvedEndpoint {
  const t = text.trim()
  if (t === '') throw new UsageError('an endpoint is empty: name a pod (name or namespace/name), a pod IP, a node or a node IP')
  const ip = parseIp(t)
  if (ip) {
    const nodes = snapshot.nodes.filter((n) => nodeAddresses(n).some((a) => parseIp(a)?.text === ip.text))
    // a host-network pod shares its node's address: the node is the endpoint
    if (nodes.length === 1) return fromNode(nodes[0]!, ip.text)
    if (nodes.length > 1) throw new UsageError(`address ${t} is ambiguous: nodes ${nodes.map((n) => n.name).join(', ')}`)
    const pods = snapshot.pods.filter((p) => parseIp(p.ip)?.text === ip.text)
    if (pods.length === 1) return fromPod(pods[0]!)
    if (pods.length > 1) throw new UsageError(`address ${t} is ambiguous: pods ${pods.map(podKey).join(', ')}`)
    throw new UsageError(`no pod or node has address ${t} in the snapshot`)
  }
  if (t.includes('/')) {
    const [ns, name] = t.split('/', 2) as [string, string]
    const pod = snapshot.pods.find((p) => p.namespace === ns && p.name === name)
    if (pod) return fromPod(pod)
    const hint = closest(t, snapshot.pods.map(podKey))
    throw new UsageError(`no pod '${t}' in the snapshot${hint ? ` (did you mean ${hint}?)` : ''}`)
  }
  const pods = snapshot.pods.filter((p) => p.name === t)
  const node = snapshot.nodes.find((n) => n.name === t)
  const matches = [...pods.map((p) => `pod ${podKey(p)}`), ...(node ? [`node ${node.name}`] : [])]
  if (matches.length > 1) {
    const what = node ? matches.join(', ') : pods.map(podKey).join(', ')
    throw new UsageError(`${node ? `'${t}'` : `pod '${t}'`} is ambiguous: ${what}`)
  }
  if (pods.length === 1) return fromPod(pods[0]!)
  if (node) return fromNode(node)
  const hint = closest(t, [...new Set([...snapshot.pods.map((p) => p.name), ...snapshot.nodes.map((n) => n.name)])])
  throw new UsageError(`no pod or node '${t}' in the snapshot${hint ? ` (did you mean ${hint}?)` : ''}`)
}
