import {describe, expect, it} from 'vitest'

import {parseBirdProtocols, parseBirdRoutes} from '../../../src/collect/parse/bird.js'
import {ParseError} from '../../../src/collect/parse/errors.js'
import {fixture} from '../../helpers/fixtures.js'

// bird2-*: real birdcl output from bird2 2.0.12 run in lab nodes with a Calico-like
// config (mesh sessions, a peer that does not exist, a peer whose BIRD was stopped).
// bird1-calico-*: hand-written in the shape of Calico's BIRD 1.x fork.

describe('show protocols all', () => {
  it('BIRD 2: Established, Connect (no route), Idle; non-BGP protocols are not sessions', () => {
    const s = parseBirdProtocols(fixture('bird', 'bird2-node1-protocols-all.txt'))
    expect(s.map((x) => x.name)).toEqual([
      'Mesh_172_31_0_12',
      'Mesh_172_31_0_13',
      'Mesh_172_31_0_99',
      'Node_172_31_0_12_ebgp',
    ])
    expect(s[0]).toMatchObject({
      state: 'up',
      bgpState: 'Established',
      neighborAddress: '172.31.0.12',
      neighborAs: 64512,
      localAs: 64512,
      since: '08:04:15.443',
    })
    expect(s[0]!.routes).toEqual({imported: 1, exported: 1, preferred: 1})
    expect(s[2]).toMatchObject({
      state: 'start',
      bgpState: 'Connect',
      lastError: 'Socket: No route to host',
      info: 'Socket: No route to host',
    })
    expect(s[2]!.routes).toBeUndefined()
    expect(s[3]).toMatchObject({bgpState: 'Idle', neighborAs: 65001})
  })

  it('BIRD 2: a peer whose daemon stopped is Active with the socket error', () => {
    const s = parseBirdProtocols(fixture('bird', 'bird2-node1-protocols-all-peer-down.txt'))
    expect(s.find((x) => x.name === 'Mesh_172_31_0_13')).toMatchObject({
      state: 'start',
      bgpState: 'Active',
      lastError: 'Socket: Connection refused',
    })
  })

  it('BIRD 2 without "all": only the table, states from the Info column', () => {
    const s = parseBirdProtocols(fixture('bird', 'bird2-node1-protocols.txt'))
    expect(s.map((x) => [x.name, x.state, x.bgpState])).toEqual([
      ['Mesh_172_31_0_12', 'up', 'Established'],
      ['Mesh_172_31_0_13', 'start', 'Active'],
      ['Mesh_172_31_0_99', 'start', 'Connect'],
      ['Node_172_31_0_12_ebgp', 'start', 'Idle'],
    ])
    expect(s[1]!.info).toBe('Socket: Connection refused')
  })

  it("BIRD 1.x (Calico's fork): dates in Since, per-protocol Routes, Passive", () => {
    const s = parseBirdProtocols(fixture('bird', 'bird1-calico-protocols-all.txt'))
    expect(s.map((x) => [x.name, x.bgpState])).toEqual([
      ['Mesh_10_0_0_12', 'Established'],
      ['Mesh_10_0_0_13', 'Active'],
      ['Mesh_10_0_0_14', 'Connect'],
      ['Node_10_0_0_1', 'Passive'],
    ])
    expect(s[0]).toMatchObject({
      since: '2024-05-02',
      neighborAddress: '10.0.0.12',
      neighborAs: 64512,
      routes: {imported: 2, exported: 1, preferred: 2},
    })
    expect(s[0]!.localAs).toBeUndefined()
    expect(s[1]!.lastError).toBe('Socket: Connection refused')
  })

  it('raw control-socket replies with reply codes', () => {
    const raw =
      '0001 BIRD 1.5.0 ready.\n2002-name     proto    table    state  since       info\n1002-kernel1  Kernel   master   up     16:36:22\n device1  Device   master   up     16:36:22\n Node_10_161_1_1 BGP      master   up     05:21:27    Established\n0000\n'
    expect(parseBirdProtocols(raw)).toMatchObject([
      {name: 'Node_10_161_1_1', state: 'up', bgpState: 'Established', since: '05:21:27'},
    ])
  })

  it('truncated and non-BIRD output are ParseErrors', () => {
    expect(() => parseBirdProtocols(fixture('bird', 'bird-truncated-protocols.txt'))).toThrow(ParseError)
    expect(() => parseBirdProtocols(fixture('bird', 'bird-truncated-protocols.txt'))).toThrow(/cut short/)
    expect(() => parseBirdProtocols(fixture('bird', 'bird-error-socket.txt'))).toThrow(/not BIRD protocol output/)
  })
})

describe('show route [all]', () => {
  it('BIRD 2: BGP routes via peers, the static blackhole, kernel and direct routes', () => {
    const r = parseBirdRoutes(fixture('bird', 'bird2-node1-route-all.txt'))
    expect(r.find((x) => x.prefix === '172.21.2.0/26')).toMatchObject({
      protocol: 'Mesh_172_31_0_12',
      gateway: '172.31.0.12',
      dev: 'eth0',
      primary: true,
      type: 'unicast',
      asPath: '',
    })
    expect(r.find((x) => x.prefix === '172.21.1.0/26')).toMatchObject({
      protocol: 'static1',
      type: 'blackhole',
      primary: true,
    })
    expect(r.find((x) => x.prefix === '172.21.1.0/26')!.gateway).toBeUndefined()
    expect(r.find((x) => x.prefix === '172.20.2.0/24')).toMatchObject({
      protocol: 'kernel1',
      gateway: '172.20.2.0',
      dev: 'flannel.1',
    })
    expect(r.find((x) => x.prefix === '172.31.0.0/24')).toMatchObject({protocol: 'direct1', dev: 'eth0'})
  })

  it('BIRD 2: two routes for one prefix, only one primary', () => {
    for (const file of ['bird2-node1-route-multi.txt', 'bird2-node1-route-all-multi.txt']) {
      const r = parseBirdRoutes(fixture('bird', file)).filter((x) => x.prefix === '172.21.9.0/26')
      expect(r.map((x) => [x.protocol, x.gateway, x.primary])).toEqual([
        ['Mesh_172_31_0_12', '172.31.0.12', true],
        ['Mesh_172_31_0_13', '172.31.0.13', false],
      ])
    }
  })

  it('BIRD 1.x: via/dev on the first line, unreachable routes from a reflector, AS paths', () => {
    const r = parseBirdRoutes(fixture('bird', 'bird1-calico-route-all.txt'))
    expect(r.find((x) => x.prefix === '192.168.12.0/26')).toMatchObject({
      gateway: '10.0.0.12',
      dev: 'tunl0',
      protocol: 'Mesh_10_0_0_12',
      primary: true,
      type: 'unicast',
    })
    expect(r.find((x) => x.prefix === '192.168.11.5/32')).toMatchObject({dev: 'cali1f2a3b4c5d6', protocol: 'kernel1'})
    expect(r.find((x) => x.prefix === '192.168.13.0/26')).toMatchObject({type: 'unreachable', from: '10.0.0.12'})
    const svc = r.filter((x) => x.prefix === '10.96.0.0/12')
    expect(svc.map((x) => [x.gateway, x.primary, x.asPath])).toEqual([
      ['10.0.0.1', true, '65001'],
      ['10.0.0.12', false, '65001'],
    ])
  })

  it('multipath: every hop kept, no single gateway', () => {
    const text =
      'Table master4:\n10.0.0.0/24          unicast [static1 12:00:00.000] * (200)\n\tvia 10.1.1.1 on eth0 weight 1\n\tvia 10.1.2.1 on eth1 weight 2\n'
    const [route] = parseBirdRoutes(text)
    expect(route!.gateway).toBeUndefined()
    expect(route!.nexthops).toEqual([
      {gateway: '10.1.1.1', dev: 'eth0', weight: 1},
      {gateway: '10.1.2.1', dev: 'eth1', weight: 2},
    ])
  })

  it('garbage and truncated routes are ParseErrors', () => {
    expect(() => parseBirdRoutes(fixture('bird', 'bird-garbage-routes.txt'))).toThrow(/line 3: unrecognized route line/)
    const text = fixture('bird', 'bird2-node1-route-all.txt')
    for (const cut of [60, 100, 200, text.length - 5])
      expect(() => parseBirdRoutes(text.slice(0, cut))).toThrow(ParseError)
  })
})
