import {describe, expect, it} from 'vitest'
import {parseAllDocuments} from 'yaml'

import {policyOnFlow, runChecks} from '../../../src/analyze/checks/index.js'
import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {KubeNetworkPolicy} from '../../../src/cluster/kube-types.js'
import type {Snapshot, SnapshotNetworkPolicy} from '../../../src/model/snapshot.js'
import {traceSnapshotFile} from '../../../src/services/trace.js'
import {validatorFor} from '../../../src/util/schema.js'
import {fixture} from '../../helpers/fixtures.js'
import {snapshot} from './helpers.js'

const POLICIES: SnapshotNetworkPolicy[] = parseAllDocuments(fixture('kube', 'network-policies.yaml'))
  .map((d) => d.toJSON() as KubeNetworkPolicy)
  .map((p) => ({namespace: p.metadata.namespace!, name: p.metadata.name, spec: p.spec as Record<string, unknown>}))

/** A policy that isolates one lab pod (app label as the API gives lab pods: pod-node3-2 → pod-node3) for egress only. */
const EGRESS_NODE1: SnapshotNetworkPolicy = {
  namespace: 'default',
  name: 'node1-egress-dns-only',
  spec: {
    podSelector: {matchExpressions: [{key: 'app', operator: 'In', values: ['pod-node1']}]},
    policyTypes: ['Egress'],
    egress: [{ports: [{protocol: 'UDP', port: 53}]}],
  },
}

/**
 * The recorded 3-node flannel vxlan lab as the Kubernetes API would have it:
 * pods labelled app=pod-nodeN, the NetworkPolicies of fixtures/kube, the CNI.
 */
function kubeSnapshot(
  cni: string | undefined,
  policies: SnapshotNetworkPolicy[] | null = [...POLICIES, EGRESS_NODE1],
): Snapshot {
  const s = snapshot('flannel-vxlan')
  s.cluster = {...s.cluster, source: 'kubernetes', ...(cni ? {cni} : {})}
  s.pods = s.pods.map(({netns: _n, ...p}) => ({...p, labels: {app: p.name.replace(/-\d+$/, '')}}))
  if (policies) s.networkPolicies = policies
  expect(validatorFor('snapshot')(s)).toBe(true)
  return s
}

const unenforced = (s: Snapshot) => runChecks(s).filter((f) => f.code === 'POLICY_UNENFORCED')

describe('netctl check: POLICY_UNENFORCED, one warning per policy that selects a pod', () => {
  it("under plain flannel: default-deny-ingress (all 6 pods of default) and the egress policy (node1's 2 pods); the app=backend policy selects nobody", () => {
    const s = kubeSnapshot('flannel')
    const found = unenforced(s)
    expect(found.map((f) => f.subject)).toEqual([
      'NetworkPolicy default/default-deny-ingress',
      'NetworkPolicy default/node1-egress-dns-only',
    ])
    const [deny, egress] = found as [(typeof found)[0], (typeof found)[0]]
    expect(deny).toMatchObject({
      severity: 'warning',
      message:
        'NetworkPolicy default/default-deny-ingress selects 6 pods (default/pod-node1-1, default/pod-node1-2, default/pod-node2-1 and 3 more) for Ingress, but flannel enforces no NetworkPolicy: it has no effect',
    })
    expect(deny.node).toBeUndefined()
    expect(deny.evidence).toEqual([
      'networkpolicy default/default-deny-ingress: podSelector {}',
      'policyTypes: Ingress',
      `cluster ${s.cluster.name}: CNI flannel, which enforces no NetworkPolicy`,
      'selects: default/pod-node1-1, default/pod-node1-2, default/pod-node2-1, default/pod-node2-2, default/pod-node3-1, default/pod-node3-2',
    ])
    expect(egress.message).toBe(
      'NetworkPolicy default/node1-egress-dns-only selects 2 pods (default/pod-node1-1, default/pod-node1-2) for Egress, but flannel enforces no NetworkPolicy: it has no effect',
    )
    // the fix names the policy: filled, with nothing left to fill
    expect(deny.fix).toContain('kubectl -n default describe networkpolicy default-deny-ingress')
    expect(deny.fix).not.toMatch(/<\w+>/)
  })

  it('--node keeps a policy when one of the pods it selects is on that node', () => {
    const s = kubeSnapshot('flannel')
    expect(
      runChecks(s, {nodes: ['node2']})
        .filter((f) => f.code === 'POLICY_UNENFORCED')
        .map((f) => f.subject),
    ).toEqual(['NetworkPolicy default/default-deny-ingress'])
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
    const {trace} = traceSnapshot(s, {
      src: 'default/pod-node2-1',
      dst: 'default/pod-node3-2',
      protocol: 'icmp',
      size: 84,
      df: false,
    })
    expect(trace.disposition).toBe('DELIVERED')
    const found = trace.findings.filter((f) => f.code === 'POLICY_UNENFORCED')
    expect(found.map((f) => f.message)).toEqual([
      'NetworkPolicy default/default-deny-ingress selects pod default/pod-node3-2 (the destination) for Ingress, but flannel enforces no NetworkPolicy: it does not filter this flow; enforced, this flow would be denied by default/default-deny-ingress (closest default/default-deny-ingress: no ingress rule: a default deny for the pods it selects)',
    ])
    // the same verdict is in the trace's data: what enforcement would do
    expect(trace.policy).toMatchObject({
      enforced: false,
      allowed: false,
      ingress: {verdict: 'DENIED', policies: ['default/default-deny-ingress']},
    })
    expect(found[0]!.evidence).toContain('pod default/pod-node3-2 labels {"app":"pod-node3"}')
    expect(found[0]!.fix).toContain('kubectl -n default describe networkpolicy default-deny-ingress')
  })

  it("a policy selecting the source for Egress too; an Egress policy on the destination is not this flow's", () => {
    const s = kubeSnapshot('flannel')
    const onFlow = (
      src: {pod?: string; namespace?: string; ip?: string},
      dst: {pod?: string; namespace?: string; ip?: string},
      port = 80,
    ) => policyOnFlow(s, src, dst, {protocol: 'tcp', port})!.findings
    const from1 = onFlow({pod: 'pod-node1-1', namespace: 'default'}, {pod: 'pod-node3-2', namespace: 'default'})
    expect(from1.map((f) => f.subject)).toEqual([
      'NetworkPolicy default/node1-egress-dns-only',
      'NetworkPolicy default/default-deny-ingress',
    ])
    expect(from1[0]!.message).toBe(
      'NetworkPolicy default/node1-egress-dns-only selects pod default/pod-node1-1 (the source) for Egress, but flannel enforces no NetworkPolicy: it does not filter this flow; enforced, this flow would be denied by default/node1-egress-dns-only (closest default/node1-egress-dns-only egress[0]: port 80/TCP is not in ports [53/UDP])',
    )
    const to1 = onFlow({pod: 'pod-node3-2', namespace: 'default'}, {pod: 'pod-node1-1', namespace: 'default'})
    expect(to1.map((f) => f.subject)).toEqual(['NetworkPolicy default/default-deny-ingress'])
    // a node is not a pod: no policy selects it
    expect(onFlow({pod: 'pod-node3-2', namespace: 'default'}, {ip: '172.18.0.11'})).toEqual([])
  })

  it("nothing under Calico or Canal, and the check's cluster-wide list is not repeated in a trace", () => {
    for (const cni of ['calico', 'canal']) {
      const {trace} = traceSnapshot(kubeSnapshot(cni), {
        src: 'pod-node1-1',
        dst: 'pod-node3-2',
        protocol: 'icmp',
        size: 84,
        df: false,
      })
      expect(trace.findings.filter((f) => f.code === 'POLICY_UNENFORCED')).toEqual([])
    }
    // pod-node2-1 → pod-node3-2: node1's egress policy is about none of them, though the check reports it
    const run = traceSnapshotFile(kubeSnapshot('flannel'), {
      src: 'pod-node2-1',
      dst: 'pod-node3-2',
      protocol: 'icmp',
      size: 84,
      df: false,
    })
    expect(run.trace.findings.filter((f) => f.code === 'POLICY_UNENFORCED').map((f) => f.subject)).toEqual([
      'NetworkPolicy default/default-deny-ingress',
    ])
    expect(run.exitCode).toBe(0)
  })
})

describe('netctl trace on an enforcing CNI: POLICY_DENY where the dataplane would deliver', () => {
  /** pod-node3-2 may be reached only from app=pod-node1 on TCP 8080; pod-node2-* may send nothing but DNS */
  const ALLOW_NODE1: SnapshotNetworkPolicy = {
    namespace: 'default',
    name: 'allow-node1-8080',
    spec: {
      podSelector: {matchLabels: {app: 'pod-node3'}},
      ingress: [{from: [{podSelector: {matchLabels: {app: 'pod-node1'}}}], ports: [{port: 8080}]}],
    },
  }
  const EGRESS_NODE2: SnapshotNetworkPolicy = {
    namespace: 'default',
    name: 'node2-dns-only',
    spec: {
      podSelector: {matchLabels: {app: 'pod-node2'}},
      policyTypes: ['Egress'],
      egress: [{ports: [{port: 53, protocol: 'UDP'}]}],
    },
  }
  const enforced = (cni = 'calico') =>
    kubeSnapshot(cni, [POLICIES.find((p) => p.name === 'default-deny-ingress')!, ALLOW_NODE1, EGRESS_NODE2])
  const tcp = (s: Snapshot, src: string, dst: string, port: number) =>
    traceSnapshotFile(s, {src, dst, protocol: 'tcp', port, size: 60, df: true})

  it("ingress denied: DENIED at the destination node, POLICY_DENY naming every selecting policy and the closest rule's port", () => {
    for (const cni of ['calico', 'canal']) {
      const run = tcp(enforced(cni), 'pod-node1-1', 'pod-node3-2', 80)
      const t = run.trace
      expect(t.disposition).toBe('DENIED')
      expect(t.returnPath).toBeNull()
      expect(run.exitCode).toBe(1)
      const deny = t.findings.filter((f) => f.code === 'POLICY_DENY')
      expect(deny).toHaveLength(1)
      expect(deny[0]).toMatchObject({severity: 'error', node: 'node3', subject: 'pod default/pod-node3-2 (Ingress)'})
      expect(deny[0]!.message).toContain(
        'NetworkPolicy default/default-deny-ingress, default/allow-node1-8080 select pod default/pod-node3-2 for Ingress',
      )
      expect(deny[0]!.message).toContain(
        'closest default/allow-node1-8080 ingress[0]: port 80/TCP is not in ports [8080/TCP]',
      )
      expect(deny[0]!.fix).toContain('kubectl -n default edit networkpolicy allow-node1-8080')
      // the walk stops at node3's FORWARD hop with a drop hop naming the policy, not in the pod
      const last = t.hops.at(-1)!
      expect(last).toMatchObject({
        node: 'node3',
        in: t.hops.at(-2)!.in,
        out: t.hops.at(-2)!.out,
        action: 'drop',
        findings: ['POLICY_DENY'],
      })
      expect(t.hops.some((h) => h.action === 'deliver')).toBe(false)
      expect(t.policy).toMatchObject({
        enforced: true,
        allowed: false,
        egress: {verdict: 'NOT_ISOLATED'},
        ingress: {verdict: 'DENIED', closest: {policy: 'default/allow-node1-8080', rule: 0}},
      })
      expect(validatorFor('trace')(JSON.parse(JSON.stringify(t)))).toBe(true)
    }
  })

  it('allowed: DELIVERED, the allowing policy and rule in the trace data', () => {
    const t = tcp(enforced(), 'pod-node1-1', 'pod-node3-2', 8080).trace
    expect(t.disposition).toBe('DELIVERED')
    expect(t.findings.filter((f) => f.code === 'POLICY_DENY')).toEqual([])
    expect(t.policy!.ingress).toMatchObject({
      verdict: 'ALLOWED',
      allowedBy: {policy: 'default/allow-node1-8080', direction: 'Ingress', rule: 0},
    })
    expect(t.policy!.ingress.rulings).toEqual([
      {
        policy: 'default/default-deny-ingress',
        allows: false,
        mismatches: ['no ingress rule: a default deny for the pods it selects'],
      },
      {policy: 'default/allow-node1-8080', allows: true, rule: 0},
    ])
    expect(validatorFor('trace')(JSON.parse(JSON.stringify(t)))).toBe(true)
  })

  it('egress denied: DENIED on the source node before the packet leaves it', () => {
    const t = tcp(enforced(), 'pod-node2-1', 'pod-node1-1', 80).trace
    expect(t.disposition).toBe('DENIED')
    expect(t.hops.every((h) => h.node === 'node2')).toBe(true)
    expect(t.hops.at(-1)).toMatchObject({action: 'drop', node: 'node2'})
    const deny = t.findings.find((f) => f.code === 'POLICY_DENY')!
    expect(deny.subject).toBe('pod default/pod-node2-1 (Egress)')
    expect(deny.message).toContain('port 80/TCP is not in ports [53/UDP]')
  })

  it('a node is not selected, and a pod always hears its own node', () => {
    const s = enforced()
    // node3 → pod-node3-2: its own node passes the default deny; node1 → pod-node3-2 does not
    expect(tcp(s, 'node3', 'pod-node3-2', 80).trace.disposition).toBe('DELIVERED')
    const t = tcp(s, 'node1', 'pod-node3-2', 80).trace
    expect(t.disposition).toBe('DENIED')
    expect(t.findings.find((f) => f.code === 'POLICY_DENY')!.message).toMatch(
      /\(node node1\) is matched only by an ipBlock/,
    )
  })

  it("unknown CNI: the verdict is in the data, the walk and findings are the dataplane's", () => {
    const t = tcp(
      kubeSnapshot(undefined, [POLICIES.find((p) => p.name === 'default-deny-ingress')!]),
      'pod-node1-1',
      'pod-node3-2',
      80,
    ).trace
    expect(t.disposition).toBe('DELIVERED')
    expect(t.policy).toMatchObject({enforced: null, allowed: false})
    expect(t.findings.filter((f) => f.code.startsWith('POLICY_'))).toEqual([])
  })
})

describe('netctl check on an enforcing CNI: POLICY_DENY for pods a default deny isolates from every pod', () => {
  const deny = POLICIES.find((p) => p.name === 'default-deny-ingress')!
  const isolated = (s: Snapshot) => runChecks(s).filter((f) => f.code === 'POLICY_DENY')

  it('one warning per default-deny policy, naming only the pods no other policy opens', () => {
    const open3: SnapshotNetworkPolicy = {
      namespace: 'default',
      name: 'open-node3',
      spec: {
        podSelector: {matchLabels: {app: 'pod-node3'}},
        ingress: [{from: [{podSelector: {}}], ports: [{port: 80}]}],
      },
    }
    const found = isolated(kubeSnapshot('calico', [deny, open3]))
    expect(found).toHaveLength(1)
    expect(found[0]).toMatchObject({severity: 'warning', subject: 'NetworkPolicy default/default-deny-ingress'})
    expect(found[0]!.message).toBe(
      'NetworkPolicy default/default-deny-ingress isolates 4 pods (default/pod-node1-1, default/pod-node1-2, default/pod-node2-1 and 1 more) for Ingress and no policy allows them ingress from any pod: every connection other pods make to them is denied',
    )
    expect(found[0]!.evidence).toContain(
      'isolated: default/pod-node1-1, default/pod-node1-2, default/pod-node2-1, default/pod-node2-2',
    )
    expect(found[0]!.fix).toContain('kubectl -n default describe networkpolicy default-deny-ingress')
    expect(found[0]!.fix).not.toMatch(/<\w+>/)
  })

  it('an ipBlock outside the pod network opens nothing to pods; one over it does; unenforced or unknown CNIs say nothing here', () => {
    const lb = (cidr: string): SnapshotNetworkPolicy => ({
      namespace: 'default',
      name: 'from-lb',
      spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr}}]}]},
    })
    expect(isolated(kubeSnapshot('calico', [deny, lb('192.0.2.0/24')]))).toHaveLength(1)
    expect(isolated(kubeSnapshot('calico', [deny, lb('172.16.0.0/12')]))).toEqual([])
    expect(isolated(kubeSnapshot('calico', [deny, lb('172.20.3.0/24')]))).toEqual([])
    expect(isolated(kubeSnapshot('flannel', [deny]))).toEqual([])
    expect(isolated(kubeSnapshot(undefined, [deny]))).toEqual([])
  })

  it('linear: 2,000 policies over 2,000 pods in 40 namespaces, each reported once', () => {
    const s = kubeSnapshot('calico', [])
    const base = s.pods[0]!
    s.pods = Array.from({length: 2000}, (_, i) => ({
      ...base,
      name: `p${i}`,
      namespace: `ns${i % 40}`,
      ip: `10.244.${Math.floor(i / 250)}.${i % 250}`,
      labels: {app: `a${i}`},
    }))
    s.networkPolicies = Array.from({length: 2000}, (_, i) => ({
      namespace: `ns${i % 40}`,
      name: `deny-${i}`,
      spec: {podSelector: {matchLabels: {app: `a${i}`}}, policyTypes: ['Ingress']},
    }))
    const t0 = performance.now()
    const found = isolated(s)
    expect(found).toHaveLength(2000)
    expect(found[7]!.message).toContain('isolates 1 pod (ns7/p7)')
    expect(performance.now() - t0).toBeLessThan(2000)
  })
})
