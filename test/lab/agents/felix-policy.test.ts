import {describe, expect, it} from 'vitest'

import {felixIptables, felixWorkloadChains} from '../../../src/lab/agents/felix.js'
import {
  felixPolicyChain,
  felixPolicyIpsetRestore,
  isPolicyIpset,
  lengthLimitedId,
} from '../../../src/lab/agents/felix-policy.js'
import {RestoreFile} from '../../../src/lab/agents/restore.js'
import {planLab} from '../../../src/lab/topology.js'
import type {LabOptions} from '../../../src/lab/types.js'

const base: LabOptions = {
  name: 'demo',
  nodes: 2,
  podsPerNode: 2,
  backend: 'calico-vxlan',
  topology: 'flat',
  routeReflectors: 1,
  ssh: false,
  proxyMode: 'iptables',
}
const np = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'networking.k8s.io/v1' as const,
  kind: 'NetworkPolicy' as const,
  metadata: {name, namespace: 'default'},
  spec,
})

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
      np('allow', {
        podSelector: {matchLabels: {app: dst!.name}},
        ingress: [{from: [{podSelector: {matchLabels: {app: src.name}}}], ports: [{port: 8080}]}],
      }),
    ]
    const rules = felixIptables(plan, plan.nodes[0]!).toString().split('\n')
    const deny = felixPolicyChain('Ingress', 'default', 'deny')
    const allow = felixPolicyChain('Ingress', 'default', 'allow')
    const tw = rules.filter((l) => l.startsWith(`-A cali-tw-${dst!.hostVeth} `))
    const i = (s: string): number => tw.findIndex((l) => l.includes(s))
    expect(i('--jump MARK --set-mark 0/0x30000')).toBeGreaterThan(-1)
    expect(i(`-m mark --mark 0/0x20000 --jump ${deny}`)).toBeGreaterThan(i('Start of tier default'))
    expect(i(`--jump ${allow}`)).toBeGreaterThan(i(`--jump ${deny}`))
    expect(tw[i(`--jump ${allow}`) + 1]).toContain(
      '"Return if policy accepted" -m mark --mark 0x10000/0x10000 --jump RETURN',
    )
    expect(tw[i('Drop if no policies passed packet')]).toContain('-m mark --mark 0/0x20000 --jump DROP')
    expect(i('Drop if no policies passed packet')).toBeLessThan(i('cali-pri-kns.default'))
    // the default deny's chain is declared and empty; the allow matches the source pod and the port
    expect(rules).toContain(`:${deny} - [0:0]`)
    expect(rules.filter((l) => l.startsWith(`-A ${deny} `))).toEqual([])
    const a = rules.filter((l) => l.startsWith(`-A ${allow} `))
    // the source pods by Felix's selector ipset, named cali40s: + the selector's hash, cut to 31
    expect(a[0]).toMatch(
      /-m set --match-set cali40s:[A-Za-z0-9_-]{23} src -p tcp -m multiport --destination-ports 8080 --jump MARK --set-mark 0x10000\/0x10000/,
    )
    const set = /--match-set (\S+) src/.exec(a[0]!)![1]!
    expect(set).toHaveLength(31)
    expect(felixWorkloadChains(new RestoreFile(), plan, plan.nodes[0]!).ipsets).toEqual([
      {name: set, type: 'hash:net', members: [`${src.ip}/32`]},
    ])
    expect(a[1]).toContain('-m mark --mark 0x10000/0x10000 --jump RETURN')
    // a pod no policy selects keeps the profile only, and node2 (no selected pod) has no policy chain
    expect(rules.filter((l) => l.startsWith(`-A cali-tw-${other!.hostVeth} `)).join('\n')).not.toContain('tier')
    expect(felixIptables(plan, plan.nodes[1]!).toString()).not.toContain('cali-pi-')
  })

  it('programs an ipBlock with except through the scratch mark, and egress policies into cali-fw-', () => {
    const plan = planLab(base, '/tmp/x')
    const pod = plan.pods[0]!
    plan.networkPolicies = [
      np('out', {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [{to: [{ipBlock: {cidr: '10.0.0.0/8', except: ['10.1.0.0/16']}}]}],
      }),
    ]
    const text = felixIptables(plan, plan.nodes[0]!).toString()
    const po = felixPolicyChain('Egress', 'default', 'out')
    expect(text).toContain(`-A cali-fw-${pod.hostVeth} `)
    expect(text).toMatch(new RegExp(`-A cali-fw-${pod.hostVeth} .*--jump ${po.replace(/[-/]/g, '\\$&')}`))
    expect(text).toContain(`--destination 10.1.0.0/16 --jump MARK --set-mark 0x40000/0x40000`)
    expect(text).toContain(`--destination 10.0.0.0/8 -m mark --mark 0/0x40000 --jump MARK --set-mark 0x10000/0x10000`)
    expect(text).not.toContain('cali-pi-')
  })

  it("programs a named port as a hash:ip,port set of the selected pods that have it, and a namespaceSelector as a set of every matching namespace's pods", () => {
    const plan = planLab(
      {
        ...base,
        podNamespaces: {'pod-node2-2': 'other'},
        podPorts: {'*': [{name: 'http', containerPort: 8080, protocol: 'TCP'}], 'pod-node1-2': []},
      },
      '/tmp/x',
    )
    plan.networkPolicies = [
      np('named', {
        podSelector: {},
        ingress: [
          {
            from: [{namespaceSelector: {matchLabels: {'kubernetes.io/metadata.name': 'other'}}}],
            ports: [{port: 'http'}],
          },
        ],
      }),
    ]
    const {ipsets} = felixWorkloadChains(new RestoreFile(), plan, plan.nodes[0]!)
    const byType = Object.fromEntries(ipsets.map((x) => [x.type, x]))
    // node1's selected pods: pod-node1-1 has http, pod-node1-2 has no port of that name
    expect(byType['hash:ip,port']!.members).toEqual([`${plan.pods[0]!.ip},tcp:8080`])
    expect(byType['hash:ip,port']!.name).toMatch(/^cali40n:/)
    expect(byType['hash:net']!.members).toEqual([`${plan.pods.find((p) => p.name === 'pod-node2-2')!.ip}/32`])
    const text = felixIptables(plan, plan.nodes[0]!).toString()
    expect(text).toContain(
      `-m set --match-set ${byType['hash:net']!.name} src -p tcp -m set --match-set ${byType['hash:ip,port']!.name} dst,dst --jump MARK --set-mark 0x10000/0x10000`,
    )
    const restore = felixPolicyIpsetRestore(ipsets).split('\n')
    expect(restore).toContain(
      `create ${byType['hash:ip,port']!.name} hash:ip,port family inet hashsize 1024 maxelem 1048576`,
    )
    expect(restore).toContain(`flush ${byType['hash:net']!.name}`)
    expect(ipsets.every((x) => isPolicyIpset(x.name) && x.name.length <= 31)).toBe(true)
    expect(isPolicyIpset('cali40all-hosts-net')).toBe(false)
  })

  it("resolves an egress rule's named port against the destination pods (any pod with it), not the pods the policy selects", () => {
    const plan = planLab(
      {...base, podPorts: {'pod-node2-1': [{name: 'dns', containerPort: 53, protocol: 'UDP'}]}},
      '/tmp/x',
    )
    plan.networkPolicies = [
      np('out', {
        podSelector: {matchLabels: {app: 'pod-node1-1'}},
        policyTypes: ['Egress'],
        egress: [{ports: [{port: 'dns', protocol: 'UDP'}]}],
      }),
    ]
    const {ipsets} = felixWorkloadChains(new RestoreFile(), plan, plan.nodes[0]!)
    expect(ipsets).toEqual([
      {
        name: expect.stringMatching(/^cali40n:/),
        type: 'hash:ip,port',
        members: [`${plan.pods.find((p) => p.name === 'pod-node2-1')!.ip},udp:53`],
      },
    ])
    expect(felixIptables(plan, plan.nodes[0]!).toString()).toContain(
      `-p udp -m set --match-set ${ipsets[0]!.name} dst,dst --jump MARK --set-mark 0x10000/0x10000`,
    )
  })
})
