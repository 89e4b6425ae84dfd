import {describe, expect, it} from 'vitest'

import {lookupRoute} from '../../src/analyze/fib.js'
import {
  answersArp,
  needsNoNeighbour,
  nextHopAddresses,
  resolveNeighbour,
  resolveNextHops,
} from '../../src/analyze/neighbour.js'
import type {Link, Neighbour} from '../../src/model/node-state.js'
import {fibStateFromIpJson} from '../helpers/ip-json.js'
import {loadFibFixture} from './fib-fixtures.js'

const eth0: Link = {
  ifindex: 2,
  name: 'eth0',
  mtu: 1500,
  operstate: 'UP',
  adminUp: true,
  flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
}
const tun0: Link = {
  ifindex: 7,
  name: 'flannel0',
  kind: 'tun',
  mtu: 1472,
  operstate: 'UNKNOWN',
  adminUp: true,
  flags: ['POINTOPOINT', 'MULTICAST', 'NOARP', 'UP', 'LOWER_UP'],
  tun: {type: 'tun', pi: false},
}
const neigh = (dst: string, state: string[], extra: Partial<Neighbour> = {}): Neighbour => ({
  dst,
  dev: 'eth0',
  state,
  ...extra,
})

describe('resolveNeighbour: kernel NUD states', () => {
  const cases: Array<[string[], string, boolean]> = [
    [['PERMANENT'], 'resolved', false],
    [['REACHABLE'], 'resolved', false],
    [['STALE'], 'resolved', true],
    [['DELAY'], 'resolved', true],
    [['PROBE'], 'resolved', true],
    [['NOARP'], 'noarp', false],
  ]
  for (const [state, status, revalidating] of cases) {
    it(`${state.join(' ')} with an lladdr is usable${revalidating ? ' (re-validated while in use)' : ''}`, () => {
      const r = resolveNeighbour(
        {links: [eth0], neighbours: [neigh('172.16.0.9', state, {lladdr: '02:00:00:00:00:09'})]},
        {address: '172.16.0.9', dev: 'eth0'},
      )
      expect(r).toMatchObject({status, state: state[0], lladdr: '02:00:00:00:00:09', revalidating})
      expect(r.disposition).toBeUndefined()
      expect(r.evidence).toEqual([`172.16.0.9 dev eth0 lladdr 02:00:00:00:00:09 ${state[0]}`])
    })
  }

  for (const state of [['FAILED'], ['INCOMPLETE'], ['NONE']]) {
    it(`${state[0]} leaves the next hop unresolved`, () => {
      const r = resolveNeighbour(
        {links: [eth0], neighbours: [neigh('172.16.0.9', state)]},
        {address: '172.16.0.9', dev: 'eth0'},
      )
      expect(r).toMatchObject({status: 'unresolved', state: state[0], disposition: 'NEIGHBOR_UNRESOLVED'})
      expect(r.evidence).toEqual([`172.16.0.9 dev eth0 ${state[0]}`])
    })
  }

  it('a missing entry is unresolved, and an entry on another device does not count', () => {
    const r = resolveNeighbour(
      {links: [eth0], neighbours: [neigh('172.16.0.9', ['REACHABLE'], {dev: 'eth1', lladdr: '02:00:00:00:00:09'})]},
      {address: '172.16.0.9', dev: 'eth0'},
    )
    expect(r).toMatchObject({status: 'unresolved', state: 'MISSING', disposition: 'NEIGHBOR_UNRESOLVED'})
  })

  it('a proxy entry answers other hosts, it does not resolve the node own next hop', () => {
    const r = resolveNeighbour(
      {links: [eth0], neighbours: [neigh('172.16.0.9', [], {proxy: true})]},
      {address: '172.16.0.9', dev: 'eth0'},
    )
    expect(r.status).toBe('unresolved')
    expect(r.notes[0]).toMatch(/^172\.16\.0\.9 dev eth0 proxy: a proxy entry/)
  })

  it('NOARP / point-to-point devices (a TUN device) need no neighbour at all', () => {
    expect(needsNoNeighbour(tun0)).toBe(true)
    expect(needsNoNeighbour(eth0)).toBe(false)
    const r = resolveNeighbour({links: [tun0], neighbours: []}, {address: '172.20.2.5', dev: 'flannel0'})
    expect(r).toMatchObject({status: 'noarp', revalidating: false})
    expect(r.disposition).toBeUndefined()
  })

  it('IPv6 addresses compare by value, whatever their spelling', () => {
    const r = resolveNeighbour(
      {links: [eth0], neighbours: [neigh('fe80::0:1', ['STALE'], {lladdr: '02:00:00:00:00:01', router: true})]},
      {address: 'fe80::1', dev: 'eth0'},
    )
    expect(r).toMatchObject({status: 'resolved', revalidating: true})
    expect(r.evidence).toEqual(['fe80::0:1 dev eth0 lladdr 02:00:00:00:00:01 router STALE'])
  })
})

describe('next hops of a route decision, on real recorded nodes', () => {
  it('flannel vxlan node1: every pinged address resolves, the absent on-link one does not', () => {
    const fx = loadFibFixture('flannel-vxlan-node1.json')
    const state = fibStateFromIpJson(fx.ip)
    expect(fx.pings?.length).toBeGreaterThan(3)
    for (const p of fx.pings ?? []) {
      const d = lookupRoute(state, {dst: p.dst})
      const res = resolveNextHops(state, d, p.dst)
      expect(res.length).toBe(1)
      if (p.ok)
        expect(
          res.map((r) => r.status),
          p.dst,
        ).toEqual(['resolved'])
      else expect(res[0], p.dst).toMatchObject({status: 'unresolved', disposition: 'NEIGHBOR_UNRESOLVED'})
    }
    // a remote pod resolves to the peer VTEP's PERMANENT entry, not to the pod itself
    const remote = resolveNextHops(state, lookupRoute(state, {dst: '172.20.2.2'}), '172.20.2.2')[0]
    expect(remote).toMatchObject({address: '172.20.2.0', dev: 'flannel.1', state: 'PERMANENT', status: 'resolved'})
  })

  it('calico-style pods: the one behind proxy ARP resolves 169.254.1.1, the other one does not', () => {
    for (const [file, status] of [
      ['proxy-arp-pod-x3a.json', 'resolved'],
      ['proxy-arp-pod-x3b.json', 'unresolved'],
    ] as const) {
      const state = fibStateFromIpJson(loadFibFixture(file).ip)
      const d = lookupRoute(state, {dst: '172.28.0.2'})
      expect(nextHopAddresses(d, '172.28.0.2')).toEqual([{address: '169.254.1.1', dev: 'eth0'}])
      expect(resolveNextHops(state, d, '172.28.0.2')[0]?.status, file).toBe(status)
    }
  })

  it('a local destination needs no neighbour', () => {
    const state = fibStateFromIpJson(loadFibFixture('flannel-vxlan-node1.json').ip)
    expect(nextHopAddresses(lookupRoute(state, {dst: '172.31.0.11'}), '172.31.0.11')).toEqual([])
  })
})

describe('answersArp agrees with what the pods saw (recorded)', () => {
  it('proxy_arp and a proxy entry answer for 169.254.1.1; a plain veth does not', () => {
    const fx = loadFibFixture('proxy-arp-host-x3.json')
    const host = fibStateFromIpJson(fx.ip)
    expect(fx.arp?.length).toBe(3)
    const how: string[] = []
    for (const a of fx.arp ?? []) {
      const ans = answersArp(host, {target: '169.254.1.1', sender: a.sender, dev: a.dev})
      expect(ans.answers, `${a.dev}: ${ans.reason}`).toBe(a.pinged)
      if (ans.how) how.push(ans.how)
    }
    expect(how.sort()).toEqual(['proxy-entry', 'proxy_arp'])
    // its own address is always answered; a target routed back out of the asking device never is
    expect(answersArp(host, {target: '172.28.0.1', sender: '172.28.1.5', dev: 'cali1'})).toMatchObject({
      answers: true,
      how: 'local',
    })
    expect(answersArp(host, {target: '172.28.1.5', sender: '172.28.1.5', dev: 'cali1'}).answers).toBe(false)
  })
})
