import {describe, expect, it} from 'vitest'

import {felixIptables} from '../../../src/lab/agents/felix.js'
import {felixPolicyChain, lengthLimitedId} from '../../../src/lab/agents/felix-policy.js'
import {planLab} from '../../../src/lab/topology.js'
import type {LabOptions} from '../../../src/lab/types.js'

const base: LabOptions = {name: 'demo', nodes: 2, podsPerNode: 2, backend: 'calico-vxlan', topology: 'flat', routeReflectors: 1, ssh: false, proxyMode: 'iptables'}
const np = (name: string, spec: Record<string, unknown>) => ({apiVersion: 'networking.k8s.io/v1' as const, kind: 'NetworkPolicy' as const, metadata: {name, namespace: 'default'}, spec})

describe('Felix policy chains', () => {
  it('names a policy chain as libcalico-go GetLengthLimitedID does: as is when it fits, else _ and a sha256 cut to 28', () => {
    expect(lengthLimitedId('cali-pi-', 'knp/a/b')).toBe('cali-pi-knp/a/b')
    const long = felixPolicyChain('Ingress', 'default', 'allow-from-client')
    expect(long).toMatch(/^cali-pi-_[A-Za-z0-9_-]{19}$/)
    expect(long).toHaveLength(28)
    // the hash is of the policy id only: ingress and egress chains share it
    expect(felixPolicyChain('Egress', 'default', 'allow-from-client')).toBe(long.replace('cali-pi-', 'cali-po-'))
  })

  it('jumps from a selected pod’s cali-tw- chain to its policy, returns on the accept mark, drops at the end of the tier', () => {
    const plan = planLab(base, '/tmp/x')
    const [dst, other] = plan.pods.filter((p) => p.node === 'node1')
    const src = plan.pods.find((p) => p.node === 'node2')!
    plan.networkPolicies = [
      np('deny', {podSelector: {matchLabels: {app: dst!.name}}}),
      np('allow', {podSelector: {matchLabels: {app: dst!.name}}, ingress: [{from: [{podSelector: {matchLabels: {app: src.name}}}], ports: [{port: 8080}]}]}),
    ]
    const rules = felixIptables(plan, plan.nodes[0]!).toString().split('\n')
    const deny = felixPolicyChain('Ingress', 'default', 'deny')
    const allow = felixPolicyChain('Ingress', 'default', 'allow')
    const tw = rules.filter((l) => l.startsWith(`-A cali-tw-${dst!.hostVeth} `))
    const i = (s: string): number => tw.findIndex((l) => l.includes(s))
    expect(i('--jump MARK --set-mark 0/0x30000')).toBeGreaterThan(-1)
    expect(i(`-m mark --mark 0/0x20000 --jump ${deny}`)).toBeGreaterThan(i('Start of tier default'))
    expect(i(`--jump ${allow}`)).toBeGreaterThan(i(`--jump ${deny}`))
    expect(tw[i(`--jump ${allow}`) + 1]).toContain('"Return if policy accepted" -m mark --mark 0x10000/0x10000 --jump RETURN')
    expect(tw[i('Drop if no policies passed packet')]).toContain('-m mark --mark 0/0x20000 --jump DROP')
    expect(i('Drop if no policies passed packet')).toBeLessThan(i('cali-pri-kns.default'))
    // the default deny's chain is declared and empty; the allow matches the source pod and the port
    expect(rules).toContain(`:${deny} - [0:0]`)
    expect(rules.filter((l) => l.startsWith(`-A ${deny} `))).toEqual([])
    const a = rules.filter((l) => l.startsWith(`-A ${allow} `))
    expect(a[0]).toContain(`--source ${src.ip}/32 -p tcp -m multiport --destination-ports 8080 --jump MARK --set-mark 0x10000/0x10000`)
    expect(a[1]).toContain('-m mark --mark 0x10000/0x10000 --jump RETURN')
    // a pod no policy selects keeps the profile only, and node2 (no selected pod) has no policy chain
    expect(rules.filter((l) => l.startsWith(`-A cali-tw-${other!.hostVeth} `)).join('\n')).not.toContain('tier')
    expect(felixIptables(plan, plan.nodes[1]!).toString()).not.toContain('cali-pi-')
  })

  it('programs an ipBlock with except through the scratch mark, and egress policies into cali-fw-', () => {
    const plan = planLab(base, '/tmp/x')
    const pod = plan.pods[0]!
    plan.networkPolicies = [np('out', {podSelector: {}, policyTypes: ['Egress'], egress: [{to: [{ipBlock: {cidr: '10.0.0.0/8', except: ['10.1.0.0/16']}}]}]})]
    const text = felixIptables(plan, plan.nodes[0]!).toString()
    const po = felixPolicyChain('Egress', 'default', 'out')
    expect(text).toContain(`-A cali-fw-${pod.hostVeth} `)
    expect(text).toMatch(new RegExp(`-A cali-fw-${pod.hostVeth} .*--jump ${po.replace(/[-/]/g, '\\$&')}`))
    expect(text).toContain(`--destination 10.1.0.0/16 --jump MARK --set-mark 0x40000/0x40000`)
    expect(text).toContain(`--destination 10.0.0.0/8 -m mark --mark 0/0x40000 --jump MARK --set-mark 0x10000/0x10000`)
    expect(text).not.toContain('cali-pi-')
  })
})
