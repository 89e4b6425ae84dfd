/**
 * NetworkPolicy verdicts, table-driven: the cases of policy-cases.ts (shaped after
 * the Kubernetes network-policy conformance suite; the lab oracle checks the same
 * table against real traffic) in this test's world of addresses.
 */
import {describe, expect, it} from 'vitest'

import {type PolicyFlow, PolicyIndex, policyVerdict, ruleText} from '../../src/analyze/policy-verdict.js'
import type {SnapshotNamespace, SnapshotNetworkPolicy, SnapshotPod} from '../../src/model/snapshot.js'
import {type Case, POLICY_NAMESPACES, POLICY_PORTS, policyCases, type PolicyWorld} from './policy-cases.js'

const NODES: Record<string, string> = {node1: '172.18.0.11', node2: '172.18.0.12'}

/** x/a 10.244.1.11, x/b 10.244.2.12, ...: a on node1, b on node2, c on node1 */
const pods: SnapshotPod[] = ['x', 'y', 'z'].flatMap((ns, n) =>
  ['a', 'b', 'c'].map((name, i) => ({
    name,
    namespace: ns,
    node: i === 1 ? 'node2' : 'node1',
    ip: `10.244.${i === 1 ? 2 : 1}.${(n + 1) * 10 + i + 1}`,
    labels: {pod: name},
    ports: POLICY_PORTS,
  })),
)
/** a host-network pod: its address is node2's */
pods.push({
  name: 'hostnet',
  namespace: 'x',
  node: 'node2',
  ip: NODES.node2!,
  hostNetwork: true,
  labels: {pod: 'hostnet'},
})
const namespaces: SnapshotNamespace[] = POLICY_NAMESPACES

const ip = (key: string): string => pods.find((p) => `${p.namespace}/${p.name}` === key)?.ip ?? NODES[key] ?? key

/** an end by pod key (x/a), node name, or bare address */
function end(key: string): PolicyFlow['src'] {
  const pod = pods.find((p) => `${p.namespace}/${p.name}` === key)
  if (pod) return {ip: pod.ip, pod, node: pod.node}
  if (NODES[key]) return {ip: NODES[key]!, node: key}
  return {ip: key}
}

/** this test's world: pod a and c on node1 (10.244.1.0/24), b on node2 */
const world: PolicyWorld = {
  ip,
  podCIDROf: (key) => `10.244.${pods.find((p) => `${p.namespace}/${p.name}` === key)!.node === 'node2' ? 2 : 1}.0/24`,
  clusterCIDR: '10.244.0.0/16',
  nodeIP: (node) => NODES[node]!,
  nodeCIDR: '172.18.0.0/24',
}
const CASES = policyCases(world)
const np = (namespace: string, name: string, spec: Record<string, unknown>): SnapshotNetworkPolicy => ({
  namespace,
  name,
  spec,
})
const podSel = (pod: string) => ({matchLabels: {pod}})
const nsSel = (ns: string) => ({matchLabels: {'kubernetes.io/metadata.name': ns}})
const denyIngressX = np('x', 'deny-ingress', {podSelector: {}, policyTypes: ['Ingress']})

const index = (c: Case) => new PolicyIndex(c.policies, namespaces)

describe('policyVerdict: NetworkPolicy semantics, conformance-shaped cases', () => {
  it(`has at least 40 cases (${CASES.length}) and 100 packets`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40)
    expect(CASES.reduce((n, c) => n + c.rows.length, 0)).toBeGreaterThanOrEqual(100)
  })

  for (const c of CASES) {
    it(c.name, () => {
      const idx = index(c)
      for (const row of c.rows) {
        const protocol = row.protocol ?? 'TCP'
        const flow: PolicyFlow = {
          src: end(row.from),
          dst: end(row.to),
          protocol,
          ...(protocol === 'ICMP' ? {} : {port: row.port ?? 80}),
        }
        const v = policyVerdict(idx, flow)
        const label = `${row.from} -> ${row.to} ${protocol}/${row.port ?? 80}`
        expect(v.allowed, label).toBe(row.allowed)
        if (row.by) {
          const by = [v.egress.allowedBy, v.ingress.allowedBy].filter((r) => r !== undefined).map(ruleText)
          expect(by, label).toContain(row.by)
        }
        if (!row.allowed) {
          const denied = v.egress.verdict === 'DENIED' ? v.egress : v.ingress
          expect(denied.verdict, label).toBe('DENIED')
          // every policy that selects the pod is named, and the closest rule says what failed
          expect(denied.policies.length, label).toBeGreaterThan(0)
          expect(denied.closest?.mismatches.length, label).toBeGreaterThan(0)
          if (row.why)
            expect(
              denied.closest!.mismatches.some((m) => row.why!.test(m)),
              `${label}: ${JSON.stringify(denied.closest)}`,
            ).toBe(true)
        }
      }
    })
  }
})

describe('policyVerdict: what the verdict names', () => {
  it('a denied packet names every selecting policy, and the pods each direction was decided at', () => {
    const idx = new PolicyIndex(
      [
        denyIngressX,
        np('x', 'allow-b', {podSelector: podSel('a'), ingress: [{from: [{podSelector: podSel('b')}]}]}),
        np('x', 'other', {podSelector: podSel('c')}),
      ],
      namespaces,
    )
    const v = policyVerdict(idx, {src: end('y/a'), dst: end('x/a'), protocol: 'TCP', port: 80})
    expect(v.egress).toEqual({direction: 'Egress', verdict: 'NOT_ISOLATED', pod: 'y/a', policies: []})
    expect(v.ingress.verdict).toBe('DENIED')
    expect(v.ingress.policies).toEqual(['x/deny-ingress', 'x/allow-b'])
    // the rule is closer than the policy without rules
    expect(v.ingress.closest).toMatchObject({policy: 'x/allow-b', direction: 'Ingress', rule: 0})
  })

  it('a namespace without labels in the snapshot still has the name label', () => {
    const idx = new PolicyIndex(
      [np('x', 'from-w', {podSelector: {}, ingress: [{from: [{namespaceSelector: nsSel('w')}]}]})],
      [],
    )
    const w: SnapshotPod = {name: 'p', namespace: 'w', node: 'node1', ip: '10.244.1.99', labels: {}}
    expect(
      policyVerdict(idx, {src: {ip: w.ip, pod: w, node: 'node1'}, dst: end('x/a'), protocol: 'TCP', port: 80}).allowed,
    ).toBe(true)
  })
})
