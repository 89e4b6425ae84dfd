import {readFileSync} from 'node:fs'

import {describe, expect, it} from 'vitest'

import {felixPolicyChain} from '../../../src/analyze/checks/policy-dataplane.js'
import {parseIptablesSave} from '../../../src/collect/parse/iptables.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {broken, findings, node} from './helpers.js'

// a Calico node's filter table as iptables-nft-save prints it: allow-web programmed (cali-pi-_l7X9…,
// jumped to from a workload's cali-tw-) and old-policy (cali-pi-_yDNu…, jumped to from the other), each
// programmed; a test with old-policy gone from the API makes its chain the stale one
const SAVE = readFileSync(new URL('../../../fixtures/iptables/calico-policy-node1.save', import.meta.url), 'utf8')
const np = (name: string) => ({namespace: 'default', name, spec: {podSelector: {}, policyTypes: ['Ingress']}})

function withFelix(policies: ReturnType<typeof np>[], edit: (save: string) => string = (s) => s): Snapshot {
  return broken('calico-vxlan', (s) => {
    s.networkPolicies = policies as Snapshot['networkPolicies']
    node(s, 'node1').iptables = parseIptablesSave(edit(SAVE), {section: 'iptables'})
  })
}

describe('POLICY_NOT_PROGRAMMED / POLICY_STALE_RULES', () => {
  it('names the chains as Felix does (the fixture holds the names a node would)', () => {
    expect(felixPolicyChain('Ingress', 'default', 'allow-web')).toBe('cali-pi-_l7X9Omtz7dibbh9L3Lp')
    expect(felixPolicyChain('Ingress', 'default', 'old-policy')).toBe('cali-pi-_yDNuc75qHE_rs_iBbTE')
    expect(felixPolicyChain('Egress', 'ns', 'a')).toBe('cali-po-knp/ns/a')
  })

  it('says nothing when the API and the programmed chains agree', () => {
    const s = withFelix([np('allow-web'), np('old-policy')])
    expect(findings(s, 'POLICY_NOT_PROGRAMMED')).toEqual([])
    expect(findings(s, 'POLICY_STALE_RULES')).toEqual([])
  })

  it('a policy in the API that node1 has not programmed, though it selects pods there: both sides as evidence', () => {
    const s = withFelix([np('allow-web'), np('old-policy'), np('deny-db')])
    const f = findings(s, 'POLICY_NOT_PROGRAMMED')
    expect(f).toHaveLength(1)
    expect(f[0]!.node).toBe('node1')
    expect(f[0]!.message).toContain('default/deny-db')
    expect(f[0]!.evidence.join('\n')).toContain('API: networkpolicy default/deny-db')
    expect(f[0]!.evidence.join('\n')).toContain(
      `node1 iptables-save: no chain ${felixPolicyChain('Ingress', 'default', 'deny-db')} in the filter table`,
    )
    // node2 runs no Felix rules in this snapshot: nothing is said about it
    expect(f.some((x) => x.node === 'node2')).toBe(false)
  })

  it('a chain whose jump from the workload chains was deleted is not programmed either', () => {
    const s = withFelix([np('allow-web'), np('old-policy')], (t) =>
      t
        .split('\n')
        .filter((l) => !l.includes('-j cali-pi-_l7X9Omtz7dibbh9L3Lp'))
        .join('\n'),
    )
    const f = findings(s, 'POLICY_NOT_PROGRAMMED')
    expect(f.map((x) => x.message)).toEqual([
      expect.stringContaining('no cali-tw-<iface> chain jumps to cali-pi-_l7X9Omtz7dibbh9L3Lp'),
    ])
  })

  it('a chain left after its policy was deleted is stale, its rules as evidence', () => {
    const s = withFelix([np('allow-web')])
    const f = findings(s, 'POLICY_STALE_RULES')
    expect(f).toHaveLength(1)
    expect(f[0]!.subject).toBe('chain cali-pi-_yDNuc75qHE_rs_iBbTE')
    expect(f[0]!.evidence.join('\n')).toContain(
      '-A cali-pi-_yDNuc75qHE_rs_iBbTE -m comment --comment "cali:Qm1zX9vKb2c3Lq8N" -j MARK --set-xmark 0x10000/0x10000',
    )
    expect(f[0]!.evidence.at(-1)).toContain(
      'API: NetworkPolicies default/allow-web, none named by cali-pi-_yDNuc75qHE_rs_iBbTE',
    )
  })
})
