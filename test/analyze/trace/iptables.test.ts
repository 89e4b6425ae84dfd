/**
 * The filter chain walk on iptables-save output as real nodes print it
 * (fixtures/iptables): jumps, gotos, RETURN, policies, conntrack state,
 * marks, negation, and rules it cannot evaluate.
 */
import {describe, expect, it} from 'vitest'

import {evaluateChain} from '../../../src/analyze/netfilter/iptables.js'
import type {FilterPacket} from '../../../src/analyze/netfilter/iptables-match.js'
import {parseIptablesSave} from '../../../src/collect/parse/iptables.js'
import {fixture} from '../../helpers/fixtures.js'

const kubeProxy = parseIptablesSave(fixture('iptables', 'flannel-kube-proxy-nft.txt'))
const calico = parseIptablesSave(fixture('iptables', 'calico-legacy.txt'))
const save = (...lines: string[]) =>
  parseIptablesSave(
    ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]', ...lines, 'COMMIT', ''].join(
      '\n',
    ),
  )

const podToPod: FilterPacket = {
  src: '172.20.1.2',
  dst: '172.20.2.2',
  protocol: 'icmp',
  in: 'cni0',
  out: 'flannel.1',
  ctstate: 'NEW',
  mark: 0,
}

describe('filter chains of a flannel + kube-proxy node (iptables-nft)', () => {
  it('accepts pod traffic at the flannel rule, after walking through KUBE-FORWARD and back', () => {
    const r = evaluateChain(kubeProxy, 'FORWARD', podToPod)!
    expect(r).toMatchObject({verdict: 'ACCEPT', chain: 'FLANNEL-FWD', uncertain: []})
    expect(r.evidence).toEqual([
      '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
      '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
      '-A FLANNEL-FWD -s 172.20.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
    ])
  })

  it('drops what no rule accepts by the FORWARD policy', () => {
    const r = evaluateChain(kubeProxy, 'FORWARD', {
      ...podToPod,
      src: '192.168.5.5',
      dst: '192.168.6.6',
      in: 'eth0',
      out: 'eth1',
    })!
    expect(r.verdict).toBe('DROP')
    expect(r.rule).toBeUndefined()
    expect(r.evidence.at(-1)).toBe('-P FORWARD DROP')
  })

  it('takes an ESTABLISHED reply by the conntrack rule, and an INVALID packet by the DROP before it', () => {
    const outside = {...podToPod, src: '192.168.5.5', dst: '192.168.6.6', in: 'eth0', out: 'eth1'}
    expect(evaluateChain(kubeProxy, 'FORWARD', {...outside, ctstate: 'ESTABLISHED'})!.rule?.raw).toBe(
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    )
    expect(evaluateChain(kubeProxy, 'FORWARD', {...outside, ctstate: 'INVALID'})!).toMatchObject({
      verdict: 'DROP',
      rule: {raw: '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP'},
    })
  })

  it('matches multiport lists and negated interfaces', () => {
    const api = {
      src: '192.168.5.5',
      dst: '192.168.6.6',
      protocol: 'tcp',
      dport: 10250,
      in: 'eth0',
      out: 'eth1',
      ctstate: 'NEW' as const,
      mark: 0,
    }
    expect(evaluateChain(kubeProxy, 'FORWARD', api)).toMatchObject({
      verdict: 'REJECT',
      rule: {raw: '-A FORWARD -p tcp -m multiport --dports 6443,10250 -j REJECT --reject-with icmp-port-unreachable'},
    })
    // `-i cni0 ! -o cni0`: out of the pods, not back into them
    const out = evaluateChain(kubeProxy, 'FORWARD', {...api, src: '10.9.9.9', in: 'cni0', out: 'eth0'})!
    expect(out.rule?.raw).toBe('-A FORWARD -i cni0 ! -o cni0 -j ACCEPT')
  })

  it('returns from a goto chain to the caller of the chain that jumped (OUTPUT -g KUBE-FIREWALL)', () => {
    const vxlan = {
      src: '172.31.0.11',
      dst: '172.31.0.12',
      protocol: 'udp',
      sport: 40000,
      dport: 8472,
      out: 'eth0',
      ctstate: 'NEW' as const,
      mark: 0,
    }
    const r = evaluateChain(kubeProxy, 'OUTPUT', vxlan)!
    expect(r).toMatchObject({verdict: 'ACCEPT', chain: 'OUTPUT'})
    expect(r.evidence).toEqual(['-A OUTPUT -o eth0 -p udp -m udp ! --sport 8472 -g KUBE-FIREWALL', '-P OUTPUT ACCEPT'])
    expect(evaluateChain(kubeProxy, 'INPUT', {...vxlan, in: 'eth0'})!.rule?.raw).toBe(
      '-A INPUT -i eth0 -p udp -m udp --dport 8472 -m comment --comment "flannel vxlan" -j ACCEPT',
    )
  })
})

describe('marks, and rules netctl does not model', () => {
  it("drops a Calico workload's packet unmarked, accepts it once a rule marks it", () => {
    const fromPod = {...podToPod, in: 'cali1234', out: 'eth0'}
    expect(evaluateChain(calico, 'FORWARD', fromPod)).toMatchObject({
      verdict: 'DROP',
      rule: {raw: '-A CALI-FORWARD -i cali+ -m comment --comment "cali:from-wl" -j DROP'},
    })
    const marking = parseIptablesSave(
      fixture('iptables', 'calico-legacy.txt').replace(
        '[6:504] -A FORWARD',
        '[0:0] -A FORWARD -j MARK --set-xmark 0x10000/0x10000\n[6:504] -A FORWARD',
      ),
    )
    expect(evaluateChain(marking, 'FORWARD', fromPod)).toMatchObject({
      verdict: 'ACCEPT',
      rule: {
        raw: '-A CALI-FORWARD -m comment --comment "cali:vjrMJCRpqwy5oRoX" -m mark --mark 0x10000/0x10000 -j ACCEPT',
      },
    })
  })

  it('passes over an unmodelled rule that could not change the verdict, and flags one that could', () => {
    const harmless = evaluateChain(
      save('-A FORWARD -m addrtype --dst-type LOCAL -j ACCEPT', '-A FORWARD -s 172.20.0.0/16 -j ACCEPT'),
      'FORWARD',
      podToPod,
    )!
    expect(harmless).toMatchObject({verdict: 'ACCEPT', uncertain: []})
    expect(harmless.evidence[0]).toBe(
      "-A FORWARD -m addrtype --dst-type LOCAL -j ACCEPT    (cannot tell: addrtype --dst-type LOCAL: the node's local table is not known here; taken as not matching)",
    )
    const risky = evaluateChain(
      save('-A FORWARD -m addrtype --dst-type LOCAL -j DROP', '-A FORWARD -s 172.20.0.0/16 -j ACCEPT'),
      'FORWARD',
      podToPod,
    )!
    expect(risky).toMatchObject({
      verdict: 'ACCEPT',
      uncertain: [
        {
          rule: {raw: '-A FORWARD -m addrtype --dst-type LOCAL -j DROP'},
          unmodelled: ["addrtype --dst-type LOCAL: the node's local table is not known here"],
        },
      ],
    })
    // a jump whose chain would decide otherwise counts too
    const viaChain = evaluateChain(
      save(':X - [0:0]', '-A FORWARD -m physdev --physdev-is-bridged -j X', '-A X -j ACCEPT'),
      'FORWARD',
      podToPod,
    )!
    expect(viaChain).toMatchObject({
      verdict: 'DROP',
      uncertain: [{rule: {raw: '-A FORWARD -m physdev --physdev-is-bridged -j X'}}],
    })
  })

  it('says nothing filters where there is no such table or chain', () => {
    expect(evaluateChain({variant: 'nft', tables: []}, 'FORWARD', podToPod)).toBeUndefined()
  })
})
