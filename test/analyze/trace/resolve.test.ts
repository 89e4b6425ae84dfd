import {describe, expect, it} from 'vitest'

import {inNamespace, resolveEndpoint} from '../../../src/analyze/trace/resolve.js'
import {UsageError} from '../../../src/errors.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {snapshotFixture} from '../../helpers/fixtures.js'

// A 3-node flannel vxlan lab as `netctl collect` wrote it: pod-nodeN-M on nodeN, podCIDR 172.20.N.0/24.
const lab = (): Snapshot => snapshotFixture('flannel-vxlan-lab')

function usageError(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError)
    const message = (error as Error).message
    expect(message).not.toContain('\n')
    return message
  }
  throw new Error('expected a UsageError')
}

describe('resolveEndpoint', () => {
  it('a pod by name, NAMESPACE/NAME and IP: the same pod, with its node and netns', () => {
    const s = lab()
    const pod = s.pods.find((p) => p.name === 'pod-node3-2')!
    const want = {kind: 'pod', node: pod.node, ip: pod.ip, pod: pod.name, namespace: pod.namespace, netns: pod.netns}
    expect(resolveEndpoint(s, 'pod-node3-2')).toEqual(want)
    expect(resolveEndpoint(s, `${pod.namespace}/pod-node3-2`)).toEqual(want)
    expect(resolveEndpoint(s, pod.ip)).toEqual(want)
    expect(resolveEndpoint(s, ` ${pod.ip} `)).toEqual(want)
  })

  it('a node by name and by InternalIP', () => {
    const s = lab()
    const node = s.nodes.find((n) => n.name === 'node2')!
    expect(resolveEndpoint(s, 'node2')).toEqual({kind: 'node', node: 'node2', ip: node.internalIP})
    expect(resolveEndpoint(s, node.internalIP)).toEqual({kind: 'node', node: 'node2', ip: node.internalIP})
  })

  it('a hostNetwork pod sharing the node IP resolves to the node', () => {
    const s = lab()
    const node = s.nodes[0]!
    s.pods.push({name: 'kube-proxy-x', namespace: 'kube-system', node: node.name, ip: node.internalIP})
    expect(resolveEndpoint(s, node.internalIP)).toMatchObject({kind: 'node', node: node.name})
  })

  it('IPv6 spellings of one address match', () => {
    const s = lab()
    s.pods.push({name: 'v6', namespace: 'default', node: 'node1', ip: 'fd00:10:244:1::5'})
    expect(resolveEndpoint(s, 'fd00:10:244:1:0:0:0:5')).toMatchObject({pod: 'v6'})
  })

  it('unknown names say so in one line, with a suggestion for a typo', () => {
    const s = lab()
    expect(usageError(() => resolveEndpoint(s, 'pod-node3-22'))).toBe(
      "no pod or node named 'pod-node3-22' in cluster col-fx (did you mean pod-node3-2?)",
    )
    expect(usageError(() => resolveEndpoint(s, 'kube-system/pod-node3-2'))).toBe(
      'no pod kube-system/pod-node3-2 in cluster col-fx (pod-node3-2 is in namespace default)',
    )
    expect(usageError(() => resolveEndpoint(s, 'default/pod-nod3-2'))).toBe(
      'no pod default/pod-nod3-2 in cluster col-fx (did you mean default/pod-node3-2?)',
    )
    expect(usageError(() => resolveEndpoint(s, 'zzzzzzzzzzzzzzzz'))).toBe(
      "no pod or node named 'zzzzzzzzzzzzzzzz' in cluster col-fx",
    )
    expect(usageError(() => resolveEndpoint(s, '/x'))).toMatch(/^'\/x' is not a pod name/)
    expect(usageError(() => resolveEndpoint(s, ''))).toMatch(/^an empty endpoint/)
  })

  it('an unknown IP names the podCIDR it falls in, when it does', () => {
    const s = lab()
    const node3 = s.nodes.find((n) => n.name === 'node3')!
    const cidr = node3.podCIDRs[0]!
    const free = cidr.replace(/\.0\/24$/, '.200')
    expect(usageError(() => resolveEndpoint(s, free))).toBe(
      `no pod with IP ${free} in cluster col-fx (it is in node3's podCIDR ${cidr}, but no pod there has it)`,
    )
    expect(usageError(() => resolveEndpoint(s, '198.51.100.7'))).toBe(
      'no pod or node with IP 198.51.100.7 in cluster col-fx',
    )
  })

  it('ambiguous names list the candidates and say how to pick one', () => {
    const s = lab()
    const pod = s.pods[0]!
    s.pods.push({...pod, namespace: 'prod'})
    expect(usageError(() => resolveEndpoint(s, pod.name))).toBe(
      `'${pod.name}' is ambiguous: pod default/${pod.name} and pod prod/${pod.name}; name the pod as NAMESPACE/NAME`,
    )
    expect(resolveEndpoint(s, `prod/${pod.name}`)).toMatchObject({namespace: 'prod'})
    expect(usageError(() => resolveEndpoint(s, pod.ip))).toMatch(
      new RegExp(`^${pod.ip.replace(/\./g, '\\.')} is ambiguous: pods default/${pod.name} and prod/${pod.name}`),
    )
    s.pods.push({name: 'node2', namespace: 'default', node: 'node2', ip: '172.20.2.77'})
    expect(usageError(() => resolveEndpoint(s, 'node2'))).toBe(
      "'node2' is ambiguous: pod default/node2 and node node2; name the pod as NAMESPACE/NAME, or the node by its IP",
    )
  })
})

describe("inNamespace: a bare NAME as kubectl reads it (Kubernetes source, -n or the context's namespace)", () => {
  it('a pod of the namespace becomes NAMESPACE/NAME, even where another namespace has one of that name', () => {
    const s = lab()
    const pod = s.pods.find((p) => p.name === 'pod-node3-2')!
    s.pods.push({...pod, namespace: 'prod', ip: '172.20.3.77'})
    expect(inNamespace(s, 'pod-node3-2', 'prod')).toBe('prod/pod-node3-2')
    expect(resolveEndpoint(s, inNamespace(s, 'pod-node3-2', 'prod'))).toMatchObject({
      namespace: 'prod',
      ip: '172.20.3.77',
    })
    expect(resolveEndpoint(s, inNamespace(s, 'pod-node3-2', 'default'))).toMatchObject({
      namespace: 'default',
      ip: pod.ip,
    })
  })

  it('NAMESPACE/NAME, IPs and node names are left alone', () => {
    const s = lab()
    expect(inNamespace(s, 'default/pod-node1-1', 'prod')).toBe('default/pod-node1-1')
    expect(inNamespace(s, '172.20.1.2', 'prod')).toBe('172.20.1.2')
    expect(inNamespace(s, 'node2', 'prod')).toBe('node2')
  })

  it('a pod not in the namespace fails to resolve, saying where a pod of that name is', () => {
    const s = lab()
    expect(usageError(() => resolveEndpoint(s, inNamespace(s, 'pod-node1-1', 'shop')))).toBe(
      'no pod shop/pod-node1-1 in cluster col-fx (pod-node1-1 is in namespace default)',
    )
    expect(usageError(() => resolveEndpoint(s, inNamespace(s, 'pod-node1-9', 'default')))).toMatch(
      /^no pod default\/pod-node1-9 in cluster col-fx \(did you mean default\/pod-node1-\d\?\)$/,
    )
  })
})
