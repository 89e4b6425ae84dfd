/**
 * The iptables extension matches the agents write, evaluated from what the
 * node holds: rules captured from a calico-vxlan lab node carrying Felix- and
 * kube-proxy-shaped rules (fixtures/iptables/calico-felix-kube-proxy-nft.txt),
 * its ipsets (fixtures/ipset/lab-node1.txt) and the node's recorded state.
 */
import {describe, expect, it} from 'vitest'

import {addrType} from '../../../src/analyze/netfilter/addr-type.js'
import {evaluateChain} from '../../../src/analyze/netfilter/iptables.js'
import type {FilterPacket} from '../../../src/analyze/netfilter/iptables-match.js'
import {type MatchEnv, matchExtension, type XtPacket} from '../../../src/analyze/netfilter/xt-match.js'
import {matchEnv} from '../../../src/analyze/trace/filter.js'
import {SnapshotIndex} from '../../../src/analyze/trace/place.js'
import {parseIpsetSave} from '../../../src/collect/parse/ipset.js'
import {parseIptablesSave} from '../../../src/collect/parse/iptables.js'
import {parseXtRecent} from '../../../src/collect/parse/xt-recent.js'
import {fixture} from '../../helpers/fixtures.js'
import {snapshotFixture} from './fixtures.js'

const ipt = parseIptablesSave(fixture('iptables', 'calico-felix-kube-proxy-nft.txt'))
const ipsets = parseIpsetSave(fixture('ipset', 'lab-node1.txt'))
const snap = snapshotFixture('calico-vxlan-lab')
const node1 = snap.nodeStates.node1!
const place = new SnapshotIndex(snap).host('node1')!
const env = (p: FilterPacket): MatchEnv => ({...matchEnv(place, p), ipsets})
const save = (table: string, ...lines: string[]) => parseIptablesSave([`*${table}`, ...lines, 'COMMIT', ''].join('\n'))

const vxlanIn: FilterPacket = {
  src: '172.31.0.12',
  dst: '172.31.0.11',
  protocol: 'udp',
  sport: 35054,
  dport: 4789,
  in: 'eth0',
  ctstate: 'NEW',
  mark: 0,
  phys: {},
}

describe('set (from the collected ipsets)', () => {
  it("Felix's VXLAN pair in cali-INPUT: a member of cali40all-vxlan-net to a local address is accepted, anyone else dropped", () => {
    const ok = evaluateChain(ipt, 'INPUT', vxlanIn, 'filter', env(vxlanIn))!
    expect(ok).toMatchObject({verdict: 'ACCEPT', uncertain: []})
    expect(ok.rule!.raw).toContain('--match-set cali40all-vxlan-net src -m addrtype --dst-type LOCAL -j ACCEPT')
    const stranger = {...vxlanIn, src: '172.31.0.99'}
    const no = evaluateChain(ipt, 'INPUT', stranger, 'filter', env(stranger))!
    expect(no.verdict).toBe('DROP')
    expect(no.rule!.raw).toContain('Drop IPv4 VXLAN packets from non-allowed hosts')
  })

  it('hash:ip,port with dst,dst; hash:net,port; list:set; negation', () => {
    const svc = {...vxlanIn, src: '172.20.1.2', dst: '10.96.0.10', dport: 53}
    expect(matchExtension('set --match-set KUBE-CLUSTER-IP dst,dst', svc, env(svc)).result).toBe('yes')
    expect(matchExtension('set --match-set KUBE-CLUSTER-IP dst,dst', {...svc, protocol: 'tcp'}, env(svc)).result).toBe(
      'no',
    )
    expect(matchExtension('set ! --match-set KUBE-CLUSTER-IP dst,dst', svc, env(svc)).result).toBe('no')
    const web = {...svc, dst: '172.20.2.3', protocol: 'tcp', dport: 8080}
    expect(matchExtension('set --match-set cali40s:abcd dst,dst', web, env(web)).result).toBe('yes')
    expect(matchExtension('set --match-set cali40s:abcd dst,dst', {...web, dport: 8081}, env(web)).result).toBe('no')
    expect(matchExtension('set --match-set cali40all-hosts-list src', vxlanIn, env(vxlanIn)).result).toBe('yes')
    expect(matchExtension('set --match-set KUBE-NODE-PORT-TCP dst', {...web, dport: 30080}, env(web)).result).toBe(
      'yes',
    )
  })

  it('a set that is not there, or ipsets not collected: cannot tell, and says why', () => {
    expect(matchExtension('set --match-set nosuch src', vxlanIn, env(vxlanIn))).toMatchObject({
      result: 'unknown',
      why: expect.stringMatching(/no ipset nosuch in the snapshot/),
    })
    expect(matchExtension('set --match-set cali40all-vxlan-net src', vxlanIn, matchEnv(place, vxlanIn))).toMatchObject({
      result: 'unknown',
      why: expect.stringMatching(/node1: ipset not collected/),
    })
  })
})

describe('addrtype (from the local table)', () => {
  it('LOCAL, BROADCAST, MULTICAST, UNICAST; --limit-iface-in', () => {
    expect(addrType(node1, '172.31.0.11')).toBe('LOCAL')
    expect(addrType(node1, '127.0.0.5')).toBe('LOCAL')
    expect(addrType(node1, '172.31.0.255')).toBe('BROADCAST')
    expect(addrType(node1, '224.0.0.5')).toBe('MULTICAST')
    expect(addrType(node1, '172.31.0.12')).toBe('UNICAST')
    expect(addrType(node1, '172.31.0.11', 'eth0')).toBe('LOCAL')
    expect(addrType(node1, '172.31.0.11', 'vxlan.calico')).toBe('UNICAST')
    const p = {...vxlanIn}
    expect(matchExtension('addrtype --dst-type LOCAL --limit-iface-in', p, env(p)).result).toBe('yes')
    expect(matchExtension('addrtype ! --dst-type LOCAL', p, env(p)).result).toBe('no')
    expect(matchExtension('addrtype --src-type LOCAL', p, env(p)).result).toBe('no')
    expect(matchExtension('addrtype --dst-type LOCAL --limit-iface-out', p, env(p)).result).toBe('unknown')
  })

  it("kube-proxy's NodePort rule: only for the node's own addresses", () => {
    const nodePort = {...vxlanIn, src: '172.31.0.12', protocol: 'tcp', dport: 30080}
    const r = evaluateChain(ipt, 'KUBE-SERVICES', nodePort, 'nat', env(nodePort))!
    expect(r.evidence).toContain(
      '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    )
    expect(r.packet.mark & 0x4000).toBe(0x4000)
    const elsewhere = {...nodePort, dst: '172.31.0.13'}
    expect(evaluateChain(ipt, 'KUBE-SERVICES', elsewhere, 'nat', env(elsewhere))!.packet.mark).toBe(0)
  })
})

describe('statistic: each way through is an alternative with its probability', () => {
  it("kube-proxy's KUBE-SVC with --probability 0.5: two endpoints, 50% each, each DNAT with its rule", () => {
    const dns: FilterPacket = {
      src: '172.20.1.3',
      dst: '10.96.0.10',
      protocol: 'udp',
      sport: 4000,
      dport: 53,
      in: 'calicc9a21fb75b',
      ctstate: 'NEW',
      mark: 0,
      phys: {},
    }
    const r = evaluateChain(ipt, 'PREROUTING', dns, 'nat', env(dns))!
    expect(r.alternatives!.map((a) => [a.probability, a.nat?.args.join(' ')])).toEqual([
      [0.5, '--to-destination 172.20.1.2:53'],
      [0.5, '--to-destination 172.20.2.2:53'],
    ])
    expect(r.alternatives![0]!.evidence).toContain(
      '-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns -> 172.20.1.2:53" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-AAAAAAAAAAAAAAAA    (statistic random 50%: taken on this way)',
    )
  })

  it('nth: one packet in N', () => {
    expect(matchExtension('statistic --mode nth --every 3 --packet 0', vxlanIn, {})).toMatchObject({
      result: 'random',
      probability: 1 / 3,
    })
    expect(matchExtension('statistic --mode random --probability 1.0', vxlanIn, {}).result).toBe('yes')
  })
})

describe('mark, connmark and the targets that set them', () => {
  it('MARK in one chain is read by a later rule; CONNMARK --save-mark carries it to the connection mark', () => {
    const t = save(
      'mangle',
      ':PREROUTING ACCEPT [0:0]',
      ':X - [0:0]',
      '-A PREROUTING -j X',
      '-A X -j MARK --set-xmark 0x40000/0x40000',
      '-A PREROUTING -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff',
      '-A PREROUTING -m connmark --mark 0x40000/0x40000 -j DROP',
    )
    const r = evaluateChain(t, 'PREROUTING', vxlanIn, 'mangle', env(vxlanIn))!
    expect(r).toMatchObject({verdict: 'DROP', packet: {mark: 0x40000, ctmark: 0x40000}})
    expect(matchExtension('connmark ! --mark 0x1/0x1', {...vxlanIn, ctmark: 1}, {}).result).toBe('no')
  })
})

describe('conntrack and state', () => {
  it('a new flow is NEW, the reply ESTABLISHED; DNAT/SNAT hold after translation', () => {
    const local = {...vxlanIn, src: '172.31.0.12', dst: '127.0.0.1', protocol: 'tcp', dport: 10248}
    const r = evaluateChain(ipt, 'INPUT', local, 'filter', env(local))!
    expect(r).toMatchObject({
      verdict: 'DROP',
      rule: {raw: expect.stringContaining('block incoming localnet connections')},
    })
    const translated = {...local, ctnat: {dnat: true}}
    expect(evaluateChain(ipt, 'INPUT', translated, 'filter', env(translated))!.verdict).toBe('ACCEPT')
    expect(matchExtension('conntrack --ctdir REPLY', {...vxlanIn, ctdir: 'REPLY'}, {}).result).toBe('yes')
    expect(
      matchExtension(
        'conntrack --ctorigdst 10.96.0.10',
        {...vxlanIn, ctorig: {src: '172.20.1.2', dst: '10.96.0.10'}},
        {},
      ).result,
    ).toBe('yes')
  })
})

describe('rpfilter (the FIB check) and physdev', () => {
  it("Felix's raw rule drops a workload's packet whose source does not route back through its interface", () => {
    const fromPod: FilterPacket = {
      src: '172.20.1.2',
      dst: '172.20.2.2',
      protocol: 'icmp',
      in: 'calicc9a21fb75b',
      ctstate: 'NEW',
      mark: 0,
      phys: {},
    }
    const podRoute = node1.routes.find((r) => r.dst === '172.20.1.2/32')!
    const ok = evaluateChain(
      ipt,
      'PREROUTING',
      {...fromPod, in: podRoute.dev!},
      'raw',
      env({...fromPod, in: podRoute.dev!}),
    )!
    expect(ok.verdict).toBe('ACCEPT')
    const other = node1.links.find((l) => l.name.startsWith('cali') && l.name !== podRoute.dev)!.name
    const spoofed = {...fromPod, in: other}
    const r = evaluateChain(ipt, 'PREROUTING', spoofed, 'raw', env(spoofed))!
    expect(r).toMatchObject({
      verdict: 'DROP',
      rule: {raw: expect.stringContaining('-m rpfilter --validmark --invert -j DROP')},
    })
  })

  it('physdev: bridged frames carry their ports; a routed packet none; unknown when the walk cannot tell', () => {
    const bridged = {...vxlanIn, phys: {in: 'veth1', out: 'veth2', bridged: true}}
    expect(matchExtension('physdev --physdev-is-bridged', bridged, {}).result).toBe('yes')
    expect(matchExtension('physdev --physdev-in veth+ ! --physdev-out veth2', bridged, {}).result).toBe('no')
    expect(matchExtension('physdev --physdev-is-bridged', vxlanIn, {}).result).toBe('no')
    expect(matchExtension('physdev --physdev-is-bridged', {...vxlanIn, phys: undefined}, {}).result).toBe('unknown')
  })
})

describe('the rest', () => {
  it('comment and multiport match; a bare -m rpfilter is kept (not silently ignored); an unknown module still says so', () => {
    expect(matchExtension('comment --comment x', vxlanIn, {}).result).toBe('yes')
    expect(
      parseIptablesSave(
        ['*raw', ':PREROUTING ACCEPT [0:0]', '-A PREROUTING -m rpfilter -j DROP', 'COMMIT', ''].join('\n'),
      ).tables[0]!.chains[0]!.rules[0]!.match.other,
    ).toEqual(['rpfilter'])
    expect(matchExtension('string --algo bm --string foo', vxlanIn, {})).toEqual({
      result: 'unknown',
      why: 'string --algo bm --string foo: not modelled by netctl',
    })
  })
})

describe("recent (kube-proxy's ClientIP affinity, from /proc/net/xt_recent)", () => {
  const recent = parseXtRecent(fixture('xt-recent', 'kube-proxy-node1.txt'))
  const SEP = 'KUBE-SEP-JIQVO3ZP6MGKT3A5'
  const rcheck = (seconds: number, name = SEP) =>
    `recent --rcheck --seconds ${seconds} --reap --name ${name} --mask 255.255.255.255 --rsource`
  const from = (src: string): XtPacket => ({src, dst: '172.21.0.81', protocol: 'tcp', dport: 80, mark: 0})
  const withLists: MatchEnv = {recent}

  it("--rcheck matches a client in the endpoint's list within --seconds, and no one else", () => {
    // and says the match is on what the list remembers (ClientIP affinity decided, not the packet alone)
    expect(matchExtension(rcheck(10800), from('172.20.1.3'), withLists)).toEqual({
      result: 'yes',
      remembered: `recent list ${SEP}`,
    })
    expect(matchExtension(`! ${rcheck(10800)}`, from('172.20.1.4'), withLists)).toEqual({result: 'yes'})
    // the list of another endpoint, and another client
    expect(matchExtension(rcheck(10800, 'KUBE-SEP-K3ONOJLFIWKSRTBE'), from('172.20.1.3'), withLists).result).toBe('no')
    expect(matchExtension(rcheck(10800), from('172.20.1.4'), withLists).result).toBe('no')
  })

  it('an entry older than --seconds no longer matches (its last packet 1 jiffy before the lists were read)', () => {
    // HZ 250: 1 s is 250 jiffies; the client's last packet was 1 jiffy before the read
    expect(matchExtension(rcheck(1), from('172.20.1.3'), withLists).result).toBe('yes')
    const older: MatchEnv = {recent: {...recent, jiffies: recent.jiffies! + 2 * 250}}
    expect(matchExtension(rcheck(1), from('172.20.1.3'), older).result).toBe('no')
    expect(matchExtension(rcheck(10800), from('172.20.1.3'), older).result).toBe('yes')
  })

  it('--set always matches; without the lists, or the clock for --seconds, the walk cannot tell', () => {
    expect(
      matchExtension(`recent --set --name ${SEP} --mask 255.255.255.255 --rsource`, from('10.9.9.9'), {}).result,
    ).toBe('yes')
    const none = matchExtension(rcheck(10800), from('172.20.1.3'), {
      recentMissing: 'node1: /proc/net/xt_recent not read',
    })
    expect(none).toMatchObject({result: 'unknown', why: expect.stringContaining('/proc/net/xt_recent not read')})
    const noClock: MatchEnv = {recent: {tables: recent.tables}}
    expect(matchExtension(rcheck(10800), from('172.20.1.3'), noClock)).toMatchObject({
      result: 'unknown',
      why: expect.stringContaining("the kernel's clock"),
    })
  })
})
