/**
 * Netfilter in the walk, over a recorded calico-vxlan lab snapshot with the
 * agents' rules put on its nodes (as a real node holds them).
 */
import {describe, expect, it} from 'vitest'

import {parseIpsetSave} from '../../../src/collect/parse/ipset.js'
import {parseIptablesSave} from '../../../src/collect/parse/iptables.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {fixture} from '../../helpers/fixtures.js'
import {schemaErrors, snapshotFixture, trace} from './fixtures.js'

/** Felix's VXLAN pair in cali-INPUT on every node, and its ipset with every node's address. */
function withFelixInput(members: string[]): Snapshot {
  const snap = snapshotFixture('calico-vxlan-lab')
  for (const state of Object.values(snap.nodeStates)) {
    state.iptables = parseIptablesSave(fixture('iptables', 'calico-felix-kube-proxy-nft.txt'))
    state.ipsets = parseIpsetSave(['create cali40all-vxlan-net hash:net family inet hashsize 1024 maxelem 1048576', ...members.map((m) => `add cali40all-vxlan-net ${m}`), ''].join('\n'))
    state.sections.ipset = {status: 'ok'}
  }
  return snap
}

describe("Felix's VXLAN allow/deny pair in cali-INPUT", () => {
  it('every node in the set: a cross-node trace is DELIVERED, not INSUFFICIENT_INFO', () => {
    const t = trace(withFelixInput(['172.31.0.11', '172.31.0.12', '172.31.0.13']), 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('DELIVERED')
    expect(t.returnPath?.disposition).toBe('DELIVERED')
    const input = t.hops.find((h) => h.node === 'node2' && h.action === 'filter' && h.evidence[0] === 'filter INPUT:')!
    expect(input.evidence.join('\n')).toContain('--match-set cali40all-vxlan-net src -m addrtype --dst-type LOCAL -j ACCEPT')
    expect(schemaErrors(t)).toBeUndefined()
  })

  it("the sender missing from the set: DENIED at the receiving node, by Felix's drop rule", () => {
    const t = trace(withFelixInput(['172.31.0.12', '172.31.0.13']), 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('DENIED')
    const drop = t.hops.at(-1)!
    expect(drop).toMatchObject({node: 'node2', action: 'drop'})
    expect(drop.evidence.join('\n')).toContain('Drop IPv4 VXLAN packets from non-allowed hosts')
    expect(t.findings.map((f) => f.code)).toContain('ENCAP_PORT_BLOCKED')
  })
})
