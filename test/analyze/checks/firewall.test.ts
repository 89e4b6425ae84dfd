import {describe, expect, it} from 'vitest'

import {assembleNodeState} from '../../../src/collect/node.js'
import {parseIptablesSave} from '../../../src/collect/parse/iptables.js'
import {parseNftRuleset} from '../../../src/collect/parse/nft.js'
import {buildProbe} from '../../../src/collect/probe.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {fixture, probeFixture} from '../../helpers/fixtures.js'
import {broken, codes, findings, node, only, snapshot, WITH_SERVICES} from './helpers.js'

// iptables-save -c from a flannel + kube-proxy lab node (nf_tables): FORWARD policy DROP, flannel's accepts for 172.20.0.0/16
const FLANNEL_NFT = fixture('iptables', 'flannel-kube-proxy-nft.txt')

/** Give a node of the flannel-vxlan snapshot this iptables-save output. */
function withRules(text: string, on = 'node2'): Snapshot {
  return broken('flannel-vxlan', (s) => {
    node(s, on).iptables = parseIptablesSave(text)
  })
}

/** The fixture with lines dropped and lines put first in a chain (as `iptables -I` would). */
function edited(drop: RegExp[], insertFirst: Record<string, string> = {}): string {
  const lines = FLANNEL_NFT.split('\n').filter((l) => !drop.some((d) => d.test(l)))
  for (const [chain, rule] of Object.entries(insertFirst)) {
    const at = lines.findIndex((l) => l.includes(`-A ${chain} `))
    lines.splice(at, 0, rule)
  }
  return lines.join('\n')
}

describe('firewall', () => {
  it('a real flannel + kube-proxy rule set (FORWARD policy DROP, flannel accepts the pod network) raises nothing', () => {
    expect(codes(withRules(FLANNEL_NFT))).toEqual([])
    const calico = broken('calico-bgp', (s) => {
      node(s, 'node1').iptablesLegacy = parseIptablesSave(fixture('iptables', 'calico-legacy.txt'))
    })
    expect(codes(calico)).toEqual([])
  })

  it("ufw's chains (a ufw lab node: INPUT and FORWARD policy DROP, 8472/udp allowed) raise nothing: ufw-not-local's DROP is behind its RETURN for local addresses", () => {
    const ufw = fixture('iptables', 'ufw-node.txt')
    expect(codes(withRules(ufw))).toEqual([])
    // without the overlay's port allowed, nothing may accept the VXLAN packets: the INPUT policy drops them
    const closed = withRules(ufw.replace('-A ufw-user-input -p udp -m udp --dport 8472 -j ACCEPT\n', ''))
    const f = only(closed, 'ENCAP_PORT_BLOCKED')
    expect(f).toMatchObject({node: 'node2', subject: 'udp 8472 (INPUT, iptables-save)'})
    expect(f.message).toBe(
      "node2 drops incoming flannel.1 traffic (UDP 8472) by the INPUT chain's policy DROP: pods cannot reach other nodes' pods",
    )
    expect(f.evidence).toEqual(['*filter', '-P INPUT DROP'])
    // ufw set that policy: the port is opened through ufw, which would drop an iptables rule on its next reload
    expect(f.fix.split('\n')).toEqual([
      '# ufw drops it on node2: allow the overlay from the other nodes (and in any cloud security group between them)',
      'ufw allow proto udp from 172.31.0.11 to any port 8472',
    ])
  })

  it("ENCAP_PORT_BLOCKED in a node's own nftables table: a firewalld lab node (nft -j list ruleset) opens 8472/udp; without it, firewalld's zone rejects the overlay, and the fix is firewalld's", () => {
    const firewalld = fixture('nft', 'firewalld-node.json')
    const withNft = (text: string) =>
      broken('flannel-vxlan', (s) => {
        node(s, 'node2').nft = parseNftRuleset(text)
        node(s, 'node2').sections.nftables = {status: 'ok'}
      })
    expect(codes(withNft(firewalld))).toEqual([])
    // `nft delete rule inet firewalld filter_IN_public_allow handle 36`: the rule opening 8472/udp
    const doc = JSON.parse(firewalld) as {nftables: Array<{rule?: {handle: number}}>}
    doc.nftables = doc.nftables.filter((x) => x.rule?.handle !== 36)
    const f = only(withNft(JSON.stringify(doc)), 'ENCAP_PORT_BLOCKED')
    expect(f).toMatchObject({node: 'node2', subject: 'udp 8472 (INPUT, nft inet firewalld)'})
    expect(f.message).toBe(
      "node2 rejects incoming flannel.1 traffic (UDP 8472) in nft inet firewalld chain filter_INPUT: pods cannot reach other nodes' pods",
    )
    expect(f.evidence.at(-1)).toBe('reject with icmpx admin-prohibited')
    expect(f.fix.split('\n')).toEqual([
      "# firewalld's filter_INPUT blocks it on node2: open the overlay's port (and in any cloud security group between the nodes)",
      'firewall-cmd --permanent --add-port=8472/udp',
      'firewall-cmd --reload',
    ])
  })

  it('ENCAP_PORT_BLOCKED in a hand-written nftables table: its input policy drops the overlay; the fix inserts an accept', () => {
    const s = broken('flannel-vxlan', (x) => {
      const tables = parseNftRuleset(
        JSON.stringify({
          nftables: [
            {table: {family: 'inet', name: 'host', handle: 1}},
            {
              chain: {
                family: 'inet',
                table: 'host',
                name: 'input',
                handle: 1,
                type: 'filter',
                hook: 'input',
                prio: 0,
                policy: 'drop',
              },
            },
            {
              rule: {
                family: 'inet',
                table: 'host',
                chain: 'input',
                handle: 2,
                expr: [
                  {match: {op: 'in', left: {ct: {key: 'state'}}, right: ['established', 'related']}},
                  {accept: null},
                ],
              },
            },
            {
              rule: {
                family: 'inet',
                table: 'host',
                chain: 'input',
                handle: 3,
                expr: [
                  {match: {op: '==', left: {payload: {protocol: 'tcp', field: 'dport'}}, right: 22}},
                  {accept: null},
                ],
              },
            },
          ],
        }),
      )
      node(x, 'node2').nft = tables
      node(x, 'node2').sections.nftables = {status: 'ok'}
    })
    const f = only(s, 'ENCAP_PORT_BLOCKED')
    expect(f.subject).toBe('udp 8472 (INPUT, nft inet host)')
    expect(f.evidence).toEqual(['table inet host chain input:', 'chain input policy drop'])
    expect(f.fix).toContain('nft insert rule inet host input ip saddr 172.31.0.11 udp dport 8472 accept')
  })

  it("FORWARD_POLICY_DROP: without flannel's accepts, nothing lets new pod traffic through", () => {
    const s = withRules(edited([/FLANNEL-FWD/, /-A FORWARD -i cni0 ! -o cni0 -j ACCEPT/]))
    const f = only(s, 'FORWARD_POLICY_DROP')
    expect(f).toMatchObject({node: 'node2', subject: 'filter FORWARD (iptables-save)'})
    expect(f.evidence.slice(0, 2)).toEqual(['*filter', ':FORWARD DROP [0:0]'])
    expect(f.fix).toContain('iptables -A FORWARD -s 172.20.0.0/16 -j ACCEPT')
    expect(codes(s)).toEqual(['FORWARD_POLICY_DROP'])
  })

  it('FIREWALL_DROP: a DROP for a peer pod subnet first in FORWARD', () => {
    const rule = '[0:0] -A FORWARD -d 172.20.3.0/24 -j DROP'
    const f = only(withRules(edited([], {FORWARD: rule})), 'FIREWALL_DROP')
    expect(f).toMatchObject({
      node: 'node2',
      subject: 'filter FORWARD (iptables-save)',
      evidence: ['*filter', '-A FORWARD -d 172.20.3.0/24 -j DROP'],
    })
    expect(f.fix).toContain('# the rule: -A FORWARD -d 172.20.3.0/24 -j DROP')
    expect(f.fix).toContain('iptables -t filter -L FORWARD -n -v --line-numbers')
  })

  it('FIREWALL_DROP: not for a drop that only some ports hit, nor one after an accept that may match', () => {
    expect(
      codes(withRules(edited([], {FORWARD: '-A FORWARD -s 172.20.0.0/16 -p tcp -m tcp --dport 80 -j REJECT'}))),
    ).toEqual([])
    // appended to FORWARD: flannel's accept for the pod network comes first
    expect(codes(withRules(FLANNEL_NFT.replace('COMMIT', '-A FORWARD -d 172.20.3.0/24 -j DROP\nCOMMIT')))).toEqual([])
    // after a mark accept of another chain (Calico marks what its policy allows): not a clear case
    expect(
      codes(
        withRules(
          edited([], {
            FORWARD: '-A FORWARD -m mark --mark 0x10000/0x10000 -j ACCEPT\n-A FORWARD -d 172.20.3.0/24 -j DROP',
          }),
        ),
      ),
    ).toEqual([])
  })

  it("ENCAP_PORT_BLOCKED: udp 8472 dropped on INPUT before flannel's accept", () => {
    const s = withRules(edited([], {INPUT: '[5:420] -A INPUT -p udp -m udp --dport 8472 -j DROP'}))
    const f = only(s, 'ENCAP_PORT_BLOCKED')
    expect(f).toMatchObject({
      node: 'node2',
      subject: 'udp 8472 (INPUT, iptables-save)',
      evidence: ['*filter', '-A INPUT -p udp -m udp --dport 8472 -j DROP'],
    })
    expect(f.fix).toContain('iptables -I INPUT -p udp --dport 8472 -s 172.31.0.11 -j ACCEPT')
    const fromSubnet = only(
      withRules(edited([], {INPUT: '-A INPUT -s 172.31.0.0/24 -p udp -m multiport --dports 4789,8472 -j REJECT'})),
      'ENCAP_PORT_BLOCKED',
    )
    expect(fromSubnet.fix).toContain('-s 172.31.0.0/24 -j ACCEPT')
  })

  it('ENCAP_PORT_BLOCKED: not for another port, another source, or a drop after the accept', () => {
    expect(codes(withRules(edited([], {INPUT: '-A INPUT -p udp -m udp --dport 4789 -j DROP'})))).toEqual([])
    expect(
      codes(withRules(edited([], {INPUT: '-A INPUT -s 192.0.2.0/24 -p udp -m udp --dport 8472 -j DROP'}))),
    ).toEqual([])
    expect(
      codes(withRules(FLANNEL_NFT.replace('COMMIT', '[0:0] -A INPUT -p udp -m udp --dport 8472 -j DROP\nCOMMIT'))),
    ).toEqual([])
  })

  // Canal: Felix's cali-INPUT sends workload traffic (-i cali+) to a chain that ends in a drop, and
  // has no accept for flannel's port; a packet from a peer on the uplink never takes that goto
  it('ENCAP_PORT_BLOCKED: not for a drop behind a jump the encapsulated packet does not take (Felix on a Canal node)', () => {
    const felix = (goto: string) =>
      [
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':cali-INPUT - [0:0]',
        ':cali-wl-to-host - [0:0]',
        '-A INPUT -j cali-INPUT',
        `-A cali-INPUT ${goto} -g cali-wl-to-host`,
        '-A cali-wl-to-host -j DROP',
        'COMMIT',
        '',
      ].join('\n')
    expect(codes(withRules(felix('-i cali+')))).toEqual([])
    // the same drop behind a jump the packet does take still blocks it
    expect(only(withRules(felix('-i eth0')), 'ENCAP_PORT_BLOCKED').evidence).toEqual([
      '*filter',
      '-A cali-wl-to-host -j DROP',
    ])
  })

  it('IPTABLES_BACKEND_SPLIT: a node with rules in both iptables-nft and iptables-legacy (captured)', () => {
    const {split} = probeFixture('flannel-vxlan-bird-iptables-node1.out')
    const captured = assembleNodeState(
      'node1',
      buildProbe({pods: [], nonce: 'x'}),
      split,
      [],
      '2026-01-01T00:00:00Z',
    ).state
    const s = broken('flannel-vxlan', (s) => {
      node(s, 'node1').iptables = captured.iptables!
      node(s, 'node1').iptablesLegacy = captured.iptablesLegacy!
    })
    const f = findings(s, 'IPTABLES_BACKEND_SPLIT')
    expect(f.map((x) => [x.node, x.severity])).toEqual([['node1', 'warning']])
    const legacyRule = captured.iptablesLegacy!.tables[0]!.chains.flatMap((c) => c.rules)[0]!.raw
    expect(f[0]!.evidence).toContain(legacyRule)
    expect(f[0]!.evidence.some((e) => e.startsWith('iptables-legacy-save (legacy): '))).toBe(true)
    expect(f[0]!.evidence.some((e) => e.startsWith('iptables-save (nf_tables): '))).toBe(true)
  })

  // kube-proxy's REJECT for a Service without endpoints and its DROPs for a Local traffic policy without an
  // endpoint on the node are there by design (and come back at its next sync): no firewall finding names them
  it.each(WITH_SERVICES)(
    "kube-proxy's intended rejects and drops raise no firewall finding (%s; with an older kube-proxy's mark drop, and one for a UDP NodePort 8472)",
    (name) => {
      const FIREWALL = ['FIREWALL_DROP', 'FORWARD_POLICY_DROP', 'ENCAP_PORT_BLOCKED']
      const firewall = (s: Snapshot) => codes(s).filter((c) => FIREWALL.includes(c))
      expect(firewall(snapshot(name))).toEqual([])
      if (name !== 'flannel-vxlan-services-iptables') return
      const older = broken(name, (s) => {
        const filter = node(s, 'node3').iptables!.tables.find((t) => t.name === 'filter')!
        const add = (chain: string, line: string) =>
          filter.chains
            .find((c) => c.name === chain)!
            .rules.push(
              parseIptablesSave(`*filter\n:${chain} - [0:0]\n${line}\nCOMMIT\n`).tables[0]!.chains[0]!.rules[0]!,
            )
        add(
          'KUBE-FIREWALL',
          '-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP',
        )
        add(
          'KUBE-EXTERNAL-SERVICES',
          '-A KUBE-EXTERNAL-SERVICES -p udp -m comment --comment "default/vx:udp has no endpoints" -m addrtype --dst-type LOCAL -m udp --dport 8472 -j REJECT',
        )
        add(
          'KUBE-SERVICES',
          '-A KUBE-SERVICES -d 172.21.0.98/32 -p udp -m comment --comment "default/vx:udp has no endpoints" -m udp --dport 8472 -j REJECT',
        )
      })
      expect(firewall(older)).toEqual([])
    },
  )

  it('empty chains in the other backend (kubelet canaries) are no split', () => {
    const s = withRules(FLANNEL_NFT)
    node(s, 'node2').iptablesLegacy = parseIptablesSave('*mangle\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n', {
      variant: 'legacy',
    })
    expect(codes(s)).toEqual([])
  })
})
