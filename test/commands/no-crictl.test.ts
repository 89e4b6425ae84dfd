import {describe, expect, it} from 'vitest'

import {runChecks} from '../../src/analyze/checks/index.js'
import {traceSnapshotFile} from '../../src/services/trace.js'
import {validatorFor} from '../../src/util/schema.js'
import {netctl, netctlJson} from '../helpers/cli.js'
import {snapshotFixture, snapshotFixturePath} from '../helpers/fixtures.js'

// Collected from a 2-node flannel-vxlan lab with its pods known by name only, as the Kubernetes API
// gives them, on nodes without crictl: each pod's runtime and netns sections are `absent` (fixtures/README.md).
const FILE = snapshotFixturePath('flannel-vxlan-no-crictl')
const snapshot = () => snapshotFixture('flannel-vxlan-no-crictl')

describe('pods whose state was not read (no crictl on the node)', () => {
  it('the fixture is what collect writes without crictl', () => {
    const pod = snapshot().nodeStates.node1!.pods[0]!
    expect(pod.sections).toEqual({
      runtime: {status: 'absent', message: expect.stringMatching(/^crictl not installed/)},
      netns: {status: 'absent', message: expect.stringMatching(/^crictl not installed/)},
    })
    expect(pod.routes).toEqual([])
  })

  it('trace: INSUFFICIENT_INFO naming the pod, what is missing and why, not NO_ROUTE over an empty table', () => {
    const run = traceSnapshotFile(snapshot(), {
      src: 'pod-node1-1',
      dst: 'pod-node2-1',
      protocol: 'icmp',
      size: 84,
      df: false,
    })
    expect(run.trace.disposition).toBe('INSUFFICIENT_INFO')
    expect(run.trace.missing).toEqual([
      expect.stringContaining(
        "node1 pod default/pod-node1-1: the pod's state was not read (runtime not collected: crictl not installed",
      ),
    ])
    expect(run.trace.missing![0]).toContain(
      "install crictl on node1, or give the pod's netns (or pid) in an inventory file",
    )
    expect(run.trace.hops.at(-1)).toMatchObject({node: 'node1', action: 'drop'})
    // towards the pod too: the destination's state is as unknown as the source's
    const back = traceSnapshotFile(snapshot(), {
      src: 'node1',
      dst: 'pod-node2-1',
      protocol: 'icmp',
      size: 84,
      df: false,
    })
    expect(back.trace.disposition).not.toBe('DELIVERED')
  })

  it('check: one COLLECTION_PARTIAL per node listing the pods it could not read', () => {
    const partial = runChecks(snapshot()).filter((f) => f.code === 'COLLECTION_PARTIAL')
    expect(partial.map((f) => [f.node, f.subject, f.evidence])).toEqual([
      [
        'node1',
        'pod default/pod-node1-1',
        [
          'default/pod-node1-1: runtime absent: crictl not installed: the pod is looked up in the container runtime with crictl',
        ],
      ],
      [
        'node2',
        'pod default/pod-node2-1',
        [
          'default/pod-node2-1: runtime absent: crictl not installed: the pod is looked up in the container runtime with crictl',
        ],
      ],
    ])
    expect(partial[0]!.fix).toContain('# install crictl on node1')
    // a pod that was read raises nothing
    expect(runChecks(snapshotFixture('flannel-vxlan-lab')).filter((f) => f.code === 'COLLECTION_PARTIAL')).toEqual([])
  })

  it('as a user runs them: trace exits 1 with INSUFFICIENT_INFO, check names the pods', async () => {
    const trace = await netctl(['trace', 'pod-node1-1', 'pod-node2-1', '--snapshot', FILE])
    expect(trace.code).toBe(1)
    expect(trace.stdout).toMatch(/^INSUFFICIENT_INFO {2}pod-node1-1/)
    expect(trace.stdout).toContain('missing: node1 pod default/pod-node1-1')
    expect(trace.stdout).not.toContain('NO_ROUTE')
    const check = await netctlJson(['check', '--snapshot', FILE])
    expect(validatorFor('check')(check.json)).toBe(true)
    expect(
      (check.json as {findings: Array<{code: string; subject: string}>}).findings.map((f) => `${f.code} ${f.subject}`),
    ).toEqual(['COLLECTION_PARTIAL pod default/pod-node1-1', 'COLLECTION_PARTIAL pod default/pod-node2-1'])
  })
})
