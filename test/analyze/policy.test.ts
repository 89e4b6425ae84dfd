import {describe, expect, it} from 'vitest'
import {parseAllDocuments} from 'yaml'

import {
  cniEnforcesPolicy,
  policyDirections,
  policySelects,
  selectedPods,
  selectorMatches,
} from '../../src/analyze/policy.js'
import {podFacts} from '../../src/cluster/kube.js'
import type {KubeNetworkPolicy, KubePod} from '../../src/cluster/kube-types.js'
import type {SnapshotNetworkPolicy, SnapshotPod} from '../../src/model/snapshot.js'
import {fixture} from '../helpers/fixtures.js'

/** Every object of a fixtures/kube file, as the API server holds them. */
const objects = <T>(name: string): T[] =>
  parseAllDocuments(fixture('kube', `${name}.yaml`))
    .map((d) => d.toJSON() as T)
    .filter(Boolean)

/** A NetworkPolicy as the snapshot keeps it (src/collect snapshotOf). */
const asSnapshot = (p: KubeNetworkPolicy): SnapshotNetworkPolicy => ({
  namespace: p.metadata.namespace ?? '',
  name: p.metadata.name,
  spec: (p.spec ?? {}) as Record<string, unknown>,
})

const policies = objects<KubeNetworkPolicy>('network-policies').map(asSnapshot)
const policy = (name: string): SnapshotNetworkPolicy => policies.find((p) => p.name === name)!
/** The pods of a small real-shaped cluster (web in default, api in shop, CoreDNS in kube-system, ...), with their labels. */
const pods: SnapshotPod[] = objects<KubePod>('workloads')
  .filter((o) => o.kind === 'Pod')
  .map(podFacts)
  .map((p) => ({name: p.name, namespace: p.namespace, node: p.node, ip: p.ip, labels: p.labels}))

describe('selectorMatches: a metav1.LabelSelector as Kubernetes reads it', () => {
  const labels = {app: 'web', tier: 'frontend', 'pod-template-hash': '6d4cf56db6'}

  it('the empty selector (and an absent one) selects every pod, labelled or not', () => {
    expect(selectorMatches({}, labels)).toBe(true)
    expect(selectorMatches({}, {})).toBe(true)
    expect(selectorMatches(undefined, labels)).toBe(true)
  })

  it('matchLabels: every pair must be on the pod', () => {
    expect(selectorMatches({matchLabels: {app: 'web'}}, labels)).toBe(true)
    expect(selectorMatches({matchLabels: {app: 'web', tier: 'frontend'}}, labels)).toBe(true)
    expect(selectorMatches({matchLabels: {app: 'web', tier: 'backend'}}, labels)).toBe(false)
    expect(selectorMatches({matchLabels: {app: 'api'}}, labels)).toBe(false)
    expect(selectorMatches({matchLabels: {app: 'web'}}, {})).toBe(false)
  })

  it('matchExpressions In / NotIn / Exists / DoesNotExist', () => {
    const m = (operator: string, key: string, values?: string[]) =>
      selectorMatches({matchExpressions: [{key, operator, ...(values ? {values} : {})}]}, labels)
    expect(m('In', 'app', ['web', 'api'])).toBe(true)
    expect(m('In', 'app', ['api'])).toBe(false)
    expect(m('In', 'missing', ['web'])).toBe(false)
    expect(m('NotIn', 'app', ['api', 'db'])).toBe(true)
    expect(m('NotIn', 'app', ['web'])).toBe(false)
    // a pod without the key is in no set of values: NotIn holds
    expect(m('NotIn', 'missing', ['x'])).toBe(true)
    expect(m('Exists', 'tier')).toBe(true)
    expect(m('Exists', 'missing')).toBe(false)
    expect(m('DoesNotExist', 'missing')).toBe(true)
    expect(m('DoesNotExist', 'tier')).toBe(false)
  })

  it('matchLabels and every expression together; an operator the API would refuse selects nothing', () => {
    const both = {
      matchLabels: {app: 'web'},
      matchExpressions: [
        {key: 'tier', operator: 'In', values: ['frontend']},
        {key: 'canary', operator: 'DoesNotExist'},
      ],
    }
    expect(selectorMatches(both, labels)).toBe(true)
    expect(selectorMatches(both, {...labels, canary: 'true'})).toBe(false)
    expect(selectorMatches({matchExpressions: [{key: 'app', operator: 'Equals', values: ['web']}]}, labels)).toBe(false)
    expect(selectorMatches({matchExpressions: [{key: 'app', operator: 'In', values: []}]}, labels)).toBe(false)
  })
})

describe('policyDirections: policyTypes, defaulted as the API server does', () => {
  it('given: as written', () => {
    expect(policyDirections(policy('default-deny-ingress').spec)).toEqual(['Ingress'])
    expect(policyDirections(policy('allow-frontend-to-backend').spec)).toEqual(['Ingress', 'Egress'])
    expect(policyDirections({podSelector: {}, policyTypes: ['Egress']})).toEqual(['Egress'])
  })

  it('absent: Ingress always, Egress only with egress rules', () => {
    const {policyTypes: _t, ...noTypes} = policy('allow-frontend-to-backend').spec
    expect(policyDirections(noTypes)).toEqual(['Ingress', 'Egress'])
    expect(policyDirections({podSelector: {}, ingress: [{}]})).toEqual(['Ingress'])
    expect(policyDirections({podSelector: {}, egress: []})).toEqual(['Ingress'])
    expect(policyDirections({podSelector: {}})).toEqual(['Ingress'])
  })
})

describe('selectedPods: the pods of its own namespace its podSelector picks', () => {
  it('default-deny-ingress ({}): every pod of default, none of shop or kube-system', () => {
    const picked = selectedPods(policy('default-deny-ingress'), pods).map((p) => `${p.namespace}/${p.name}`)
    expect(picked.length).toBeGreaterThan(0)
    expect(picked).toEqual(pods.filter((p) => p.namespace === 'default').map((p) => `${p.namespace}/${p.name}`))
  })

  it('allow-frontend-to-backend (app=backend): nobody here, until a pod of default has the label', () => {
    expect(selectedPods(policy('allow-frontend-to-backend'), pods)).toEqual([])
    const web = pods.find((p) => p.labels?.app === 'web')!
    expect(policySelects(policy('allow-frontend-to-backend'), {...web, labels: {...web.labels, app: 'backend'}})).toBe(
      true,
    )
    // the same labels in another namespace: not this policy's pod
    const api = pods.find((p) => p.namespace === 'shop')!
    expect(policySelects(policy('allow-frontend-to-backend'), {...api, labels: {app: 'backend'}})).toBe(false)
  })
})

describe('cniEnforcesPolicy', () => {
  const with_ = (cni?: string) =>
    cniEnforcesPolicy({
      cluster: {
        source: 'kubernetes',
        name: 'c',
        backend: 'flannel-vxlan',
        clusterCIDR: '10.244.0.0/16',
        ...(cni ? {cni} : {}),
      },
    })
  it('plain flannel does not; Calico, Canal (same flannel dataplane), Weave and Romana do; unknown or unsaid is not a guess', () => {
    expect(with_('flannel')).toBe(false)
    expect(with_('calico')).toBe(true)
    expect(with_('canal')).toBe(true)
    expect(with_('weave')).toBe(true)
    expect(with_('romana')).toBe(true)
    expect(with_('unknown')).toBeUndefined()
    expect(with_()).toBeUndefined()
  })
})

describe('podFacts: the container ports a policy names', () => {
  it("every container's ports, the protocol defaulted to TCP as the API server does", () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {name: 'db-0', namespace: 'shop', labels: {app: 'db'}},
      spec: {
        nodeName: 'worker-2',
        containers: [
          {name: 'postgres', ports: [{name: 'postgres', containerPort: 5432}]},
          {
            name: 'exporter',
            ports: [
              {name: 'metrics', containerPort: 9187, protocol: 'TCP'},
              {containerPort: 8125, protocol: 'UDP'},
            ],
          },
          {name: 'sidecar'},
        ],
      },
      status: {phase: 'Running', podIP: '10.244.2.9'},
    } as unknown as KubePod
    expect(podFacts(pod).ports).toEqual([
      {name: 'postgres', containerPort: 5432, protocol: 'TCP'},
      {name: 'metrics', containerPort: 9187, protocol: 'TCP'},
      {containerPort: 8125, protocol: 'UDP'},
    ])
  })
})
