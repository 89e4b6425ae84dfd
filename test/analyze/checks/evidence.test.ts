import {describe, expect, it} from 'vitest'

import {
  birdDetailLines,
  birdProtocolLine,
  chainLine,
  fdbLine,
  neighLine,
  routeLine,
  sysctlLine,
} from '../../../src/analyze/checks/evidence.js'
import {formatRoute} from '../../../src/analyze/iproute2.js'
import {parseBirdProtocols} from '../../../src/collect/parse/bird.js'
import {parseRoutes} from '../../../src/collect/parse/iproute.js'
import {parseIptablesSave} from '../../../src/collect/parse/iptables.js'
import {fixture} from '../../helpers/fixtures.js'

// Evidence must read as the tool printed it: fed the parsed form of real output, the formatters give the real lines back.
describe('evidence lines', () => {
  it('birdc show protocols: each BGP row of bird2 2.0.12, byte for byte (trailing blanks aside)', () => {
    const text = fixture('bird', 'bird2-node1-protocols.txt')
    const rows = text.split('\n').map((l) => l.trimEnd())
    const sessions = parseBirdProtocols(text)
    expect(sessions.length).toBeGreaterThan(2)
    for (const s of sessions) expect(rows).toContain(birdProtocolLine(s))
  })

  it('birdc show protocols all: the detail lines appear as BIRD indents them', () => {
    const text = fixture('bird', 'bird2-node1-protocols-all-peer-down.txt')
    const rows = text.split('\n').map((l) => l.trimEnd())
    const down = parseBirdProtocols(text).find((s) => s.name === 'Mesh_172_31_0_13')!
    for (const line of birdDetailLines(down)) expect(rows).toContain(line)
    expect(birdDetailLines(down)).toContain('    Last error:       Socket: Connection refused')
  })

  it('iptables-save: a chain head with its counters', () => {
    const t = parseIptablesSave(fixture('iptables', 'flannel-kube-proxy-nft.txt'))
    const forward = t.tables[0]!.chains.find((c) => c.name === 'FORWARD')!
    expect(chainLine(forward)).toBe(':FORWARD DROP [0:0]')
    expect(fixture('iptables', 'flannel-kube-proxy-nft.txt')).toContain(
      chainLine(t.tables[0]!.chains.find((c) => c.name === 'FLANNEL-FWD')!),
    )
  })

  it('ip route / ip neigh / bridge fdb shapes (compared with the kernel in test/analyze/checks/lab.test.ts)', () => {
    expect(
      routeLine({
        family: 'inet',
        table: 'main',
        type: 'unicast',
        dst: '0.0.0.0/0',
        gateway: '172.31.0.1',
        dev: 'eth0',
        onlink: false,
        flags: [],
      }),
    ).toBe('default via 172.31.0.1 dev eth0')
    expect(
      routeLine({
        family: 'inet',
        table: 'main',
        type: 'unicast',
        dst: '172.20.1.2/32',
        dev: 'cali1',
        scope: 'link',
        onlink: false,
        flags: [],
      }),
    ).toBe('172.20.1.2 dev cali1 scope link')
    expect(
      routeLine({
        family: 'inet',
        table: 'main',
        type: 'unicast',
        dst: '172.20.4.0/26',
        protocol: 'bird',
        metric: 32,
        onlink: false,
        flags: [],
        nexthops: [
          {gateway: '172.31.0.12', dev: 'eth0', weight: 1, onlink: false},
          {gateway: '172.31.0.13', dev: 'eth0', weight: 1, onlink: false},
        ],
      }),
    ).toBe(
      '172.20.4.0/26 proto bird metric 32 nexthop via 172.31.0.12 dev eth0 weight 1 nexthop via 172.31.0.13 dev eth0 weight 1',
    )
    expect(neighLine({dst: '172.20.2.0', dev: 'flannel.1', lladdr: '26:e0:d3:be:af:be', state: ['PERMANENT']})).toBe(
      '172.20.2.0 dev flannel.1 lladdr 26:e0:d3:be:af:be PERMANENT',
    )
    expect(
      fdbLine({
        mac: '26:e0:d3:be:af:be',
        dev: 'flannel.1',
        dst: '172.31.0.12',
        self: true,
        permanent: true,
        static: false,
        state: 'permanent',
      }),
    ).toBe('26:e0:d3:be:af:be dev flannel.1 dst 172.31.0.12 self permanent')
    expect(sysctlLine('net.ipv4.conf.flannel/1.rp_filter', '1')).toBe('net.ipv4.conf.flannel/1.rp_filter = 1')
  })

  it('ip route: the one route formatter, a multipath route folded onto its first line', () => {
    const routes = parseRoutes(fixture('iproute', 'route4-bird-multipath.json'), 'inet')
    const multipath = routes.filter((r) => r.nexthops?.length)
    expect(multipath.length).toBeGreaterThan(0)
    for (const r of routes) {
      const listed = formatRoute(r)
      expect(routeLine(r)).toBe(listed.split('\n\t').join(' '))
      // the one-line quote leaves the cached listing form alone
      expect(formatRoute(r)).toBe(listed)
    }
    expect(multipath.map(routeLine)[0]).toMatch(
      /^172\.21\.9\.0\/26 proto bird metric 32 nexthop via \S+ dev eth0 weight 1 nexthop via /,
    )
  })
})
