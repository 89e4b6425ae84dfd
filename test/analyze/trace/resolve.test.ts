import {describe, expect, it} from 'vitest'

import {resolveEndpoint} from '../../../src/analyze/trace/index.js'
import {UsageError} from '../../../src/errors.js'
import {node, pod, snapshotFixture} from './fixtures.js'

const snap = snapshotFixture('flannel-vxlan-lab')

function usageError(text: string, s = snap): string {
  try {
    resolveEndpoint(s, text)
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).exitCode).toBe(2)
    return (error as Error).message
  }
  throw new Error(`'${text}' resolved`)
}

describe('resolveEndpoint', () => {
  it('finds a pod by name, namespace/name and IP, with its node and netns', () => {
    const p = pod(snap, 'pod-node2-1')
    const want = {kind: 'pod', node: 'node2', ip: p.ip, pod: p.name, namespace: 'default', netns: p.netns}
    expect(resolveEndpoint(snap, p.name)).toEqual(want)
    expect(resolveEndpoint(snap, `default/${p.name}`)).toEqual(want)
    expect(resolveEndpoint(snap, ` ${p.ip} `)).toEqual(want)
  })

  it('finds a node by name and by its InternalIP', () => {
    const n = node(snap, 'node3')
    expect(resolveEndpoint(snap, 'node3')).toEqual({kind: 'node', node: 'node3', ip: n.internalIP})
    expect(resolveEndpoint(snap, n.internalIP)).toEqual({kind: 'node', node: 'node3', ip: n.internalIP})
  })

  it('refuses a name two pods share, naming both, in one line', () => {
    const twice = snapshotFixture('flannel-vxlan-lab')
    twice.pods.push({...pod(twice, 'pod-node1-1'), namespace: 'prod', ip: '172.20.1.9'})
    const msg = usageError('pod-node1-1', twice)
    expect(msg).toBe("pod 'pod-node1-1' is ambiguous: default/pod-node1-1, prod/pod-node1-1")
    expect(resolveEndpoint(twice, 'prod/pod-node1-1')).toMatchObject({namespace: 'prod', ip: '172.20.1.9'})
  })

  it('refuses a name that is both a pod and a node', () => {
    const both = snapshotFixture('flannel-vxlan-lab')
    both.pods.push({...pod(both, 'pod-node1-1'), name: 'node2', ip: '172.20.1.9'})
    expect(usageError('node2', both)).toBe("'node2' is ambiguous: pod default/node2, node node2")
  })

  it('refuses what the snapshot does not hold, suggesting a close name', () => {
    expect(usageError('pod-node1-7')).toMatch(/^no pod or node 'pod-node1-7' in the snapshot \(did you mean pod-node1-\d\?\)$/)
    expect(usageError('default/pod-nod2-1')).toBe("no pod 'default/pod-nod2-1' in the snapshot (did you mean default/pod-node2-1?)")
    expect(usageError('172.19.0.1')).toBe('no pod or node has address 172.19.0.1 in the snapshot')
    expect(usageError('')).toMatch(/^an endpoint is empty/)
  })
})
