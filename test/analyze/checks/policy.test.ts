import {describe, expect, it} from 'vitest'
import {parseAllDocuments} from 'yaml'

import {runChecks, unenforcedPoliciesOnFlow} from '../../../src/analyze/checks/index.js'
import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {KubeNetworkPolicy} from '../../../src/cluster/kube-types.js'
import type {Snapshot, SnapshotNetworkPolicy} from '../../../src/model/snapshot.js'
import {traceSnapshotFile} from '../../../src/trace/run.js'
import {validatorFor} from '../../../src/util/schema.js'
import {fixture} from '../../helpers/fixtures.js'
import {snapshot} from './helpers.js'

const POLICIES: SnapshotNetworkPolicy[] = parseAllDocuments(fixture('kube', 'network-policies.yaml'))
  .map((d) => d.toJSON() as KubeNetworkPolicy)
  .map((p) => ({namespace: p.metadata.namespace!, name: p.metadata.name, spec: p.spec as Record<string, unknown>}))

/** A policy that isolates one lab pod (app label as the API gives lab pods: pod-node3-2 → pod-node3) for egress only. */
const EGRESS_NODE1: SnapshotNetworkPolicy = {namespace: 'default', name: 'node1-egress-dns-only', spec: {podSelector: {matchExpressions: [{key: 'app', operator: 'In', values: ['pod-node1']}]}, policyTypes: ['Egress'], egress: [{ports: [{protocol: 'UDP', port: 53}]}]}}

/**
 * The recorded 3-node flannel vxlan lab as the Kubernetes API would have it:
 * pods labelled app=pod-nodeN, the NetworkPolicies of fixtures/kube, the CNI.
 */
function kubeSnapshot(cni: string | undefined, policies: SnapshotNetworkPolicy[] | null = [...POLICIES, EGRESS_NODE1]): Snapshot {
  const s = snapshot('flannel-vxlan')
  s.cluster = {...s.cluster, source: 'kubernetes', ...(cni ? {cni} : {})}
  s.pods = s.pods.map(({netns: _n, ...p}) => ({...p, labels: {app: p.name.replace(/-\d+$/, '')}}))
  if (policies) s.networkPolicies = policies
  expect(validatorFor('snapshot')(s)).toBe(true)
  return s
}

const unenforced = (s: Snapshot) => runChecks(s).filter((f) => f.code === 'POLICY_UNENFORCED')

describe('netctl check: POLICY_UNENFORCED, one warning per policy that selects a pod', () => {
  it('under plain flannel: default-deny-ingress (all 6 pods of default) and the egress policy (node1\'s 2 pods); the app=backend policy selects nobody', () => {
    const s = kubeSnapshot('flannel')
    const found = unenforced(s)
    expect(found.map((f) => f.subject)).toEqual(['NetworkPolicy default/default-deny-ingress', 'NetworkPolicy default/node1-egress-dns-only'])
    const [deny, egress] = found as [(typeof found)[0], (typeof found)[0]]
    expect(deny).toMatchObject({severity: 'warning', message: 'NetworkPolicy default/default-deny-ingress selects 6 pods (default/pod-node1-1, default/pod-node1-2, default/pod-node2-1 and 3 more) for Ingress, but flannel enforces no NetworkPolicy: it has no effect'})
    expect(deny.node).toBeUndefined()
    expect(deny.evidence).toEqual([
      'networkpolicy default/default-deny-ingress: podSelector {}',
      'policyTypes: Ingress',
      `cluster ${s.cluster.name}: CNI flannel, which enforces no NetworkPolicy`,
      'selects: default/pod-node1-1, default/pod-node1-2, default/pod-node2-1, default/pod-node2-2, default/pod-node3-1, default/pod-node3-2',
    ])
    expect(egress.message).toBe('NetworkPolicy default/node1-egress-dns-only selects 2 pods (default/pod-node1-1, default/pod-node1-2) for Egress, but flannel enforces no NetworkPolicy: it has no effect')
    // the fix names the policy: filled, with nothing left to fill
    expect(deny.fix).toContain('kubectl -n default describe networkpolicy default-deny-ingress')
    expect(deny.fix).not.toMatch(/<\w+>/)
  })

  it('--node keeps a policy when one of the pods it selects is on that node', () => {
    const s = kubeSnapshot('flannel')
    expect(runChecks(s, {nodes: ['node2']}).filter((f) => f.code === 'POLICY_UNENFORCED').map((f) => f.subject)).toEqual(['NetworkPolicy default/default-deny-ingress'])
  })

  it('nothing when the CNI enforces (Calico, Canal), when it is not known, or when there are no policies (a lab, an inventory)', () => {
    expect(unenforced(kubeSnapshot('calico'))).toEqual([])
    expect(unenforced(kubeSnapshot('canal'))).toEqual([])
    expect(unenforced(kubeSnapshot(undefined))).toEqual([])
    expect(unenforced(kubeSnapshot('flannel', null))).toEqual([])
    expect(unenforced(kubeSnapshot('flannel', []))).toEqual([])
    expect(unenforced(snapshot('flannel-vxlan'))).toEqual([])
  })
})

describe('netctl trace: POLICY_UNENFORCED for the policies that would filter the flow', () => {
  it('a policy selecting the destination for Ingress: named with the pod, the trace still DELIVERED (nothing filters it)', () => {
    const s = kubeSnapshot('flannel')
    const {trace} = traceSnapshot(s, {src: 'default/pod-node2-1', dst: 'default/pod-node3-2', protocol: 'icmp', size: 84, df: false})
    expect(trace.disposition).toBe('DELIVERED')
    const found = trace.findings.filter((f) => f.code === 'POLICY_UNENFORCED')
    expect(found.map((f) => f.message)).toEqual(['NetworkPolicy default/default-deny-ingress selects pod default/pod-node3-2 (the destination) for Ingress, but flannel enforces no NetworkPolicy: it does not filter this flow'])
    expect(found[0]!.evidence).toContain('pod default/pod-node3-2 labels {"app":"pod-node3"}')
    expect(found[0]!.fix).toContain('kubectl -n default describe networkpolicy default-deny-ingress')
  })

  it("a policy selecting the source for Egress too; an Egress policy on the destination is not this flow's", () => {
    const s = kubeSnapshot('flannel')
    const from1 = unenforcedPoliciesOnFlow(s, {pod: 'pod-node1-1', namespace: 'default'}, {pod: 'pod-node3-2', namespace: 'default'})
    expect(from1.map((f) => f.subject)).toEqual(['NetworkPolicy default/node1-egress-dns-only', 'NetworkPolicy default/default-deny-ingress'])
    expect(from1[0]!.message).toBe('NetworkPolicy default/node1-egress-dns-only selects pod default/pod-node1-1 (the source) for Egress, but flannel enforces no NetworkPolicy: it does not filter this flow')
    const to1 = unenforcedPoliciesOnFlow(s, {pod: 'pod-node3-2', namespace: 'default'}, {pod: 'pod-node1-1', namespace: 'default'})
    expect(to1.map((f) => f.subject)).toEqual(['NetworkPolicy default/default-deny-ingress'])
    // a node is not a pod: no policy selects it
    expect(unenforcedPoliciesOnFlow(s, {pod: 'pod-node3-2', namespace: 'default'}, {})).toEqual([])
  })

  it('nothing under Calico or Canal, and the check\'s cluster-wide list is not repeated in a trace', () => {
    for (const cni of ['calico', 'canal']) {
      const {trace} = traceSnapshot(kubeSnapshot(cni), {src: 'pod-node1-1', dst: 'pod-node3-2', protocol: 'icmp', size: 84, df: false})
      expect(trace.findings.filter((f) => f.code === 'POLICY_UNENFORCED')).toEqual([])
    }
    // pod-node2-1 → pod-node3-2: node1's egress policy is about none of them, though the check reports it
    const run = traceSnapshotFile(kubeSnapshot('flannel'), {src: 'pod-node2-1', dst: 'pod-node3-2', protocol: 'icmp', size: 84, df: false})
    expect(run.trace.findings.filter((f) => f.code === 'POLICY_UNENFORCED').map((f) => f.subject)).toEqual(['NetworkPolicy default/default-deny-ingress'])
    expect(run.exitCode).toBe(0)
  })
})
