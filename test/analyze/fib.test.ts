import {describe, expect, it} from 'vitest'

import {compileFib, type FibState, lookupRoute} from '../../src/analyze/fib.js'
import {formatNeighbour, formatRoute, formatRule} from '../../src/analyze/iproute2.js'
import type {Address, Link, Route, Rule} from '../../src/model/node-state.js'
import {fibStateFromIpJson, neighboursFromIpJson, routesFromIpJson, rulesFromIpJson} from '../helpers/ip-json.js'
import {loadFibFixtures, textLines} from './fib-fixtures.js'
import {compareWithKernel, describeQuery} from './kernel-oracle.js'

const UP = ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP']
const link = (name: string, ifindex: number, extra: Partial<Link> = {}): Link => ({
  ifindex,
  name,
  mtu: 1500,
  operstate: 'UP',
  adminUp: true,
  flags: UP,
  ...extra,
})
const lo = link('lo', 1, {flags: ['LOOPBACK', 'UP', 'LOWER_UP'], operstate: 'UNKNOWN', mtu: 65536})
const addr = (dev: string, cidr: string, scope = 'global'): Address => {
  const [local, len] = cidr.split('/')
  return {dev, family: cidr.includes(':') ? 'inet6' : 'inet', local: local as string, prefixlen: Number(len), scope}
}
const route = (dst: string, extra: Partial<Route> = {}): Route => ({
  family: dst.includes(':') ? 'inet6' : 'inet',
  table: 'main',
  type: 'unicast',
  dst,
  onlink: false,
  flags: [],
  ...extra,
})
const connected = (dst: string, dev: string, src: string): Route =>
  route(dst, {dev, protocol: 'kernel', scope: 'link', prefsrc: src})
const rule = (priority: number, extra: Partial<Rule>): Rule => ({
  family: 'inet',
  priority,
  src: 'all',
  action: 'lookup',
  ...extra,
})
const defaults: Rule[] = [rule(0, {table: 'local'}), rule(32766, {table: 'main'}), rule(32767, {table: 'default'})]

/** A flannel vxlan node as a snapshot might give it: main table only, no rules, no local table. */
function flannelNode(sysctls?: Record<string, string>): FibState {
  return {
    links: [
      lo,
      link('eth0', 2),
      link('cni0', 3, {kind: 'bridge', mtu: 1450}),
      link('flannel.1', 5, {kind: 'vxlan', mtu: 1450, operstate: 'UNKNOWN'}),
    ],
    addresses: [
      addr('lo', '127.0.0.1/8', 'host'),
      addr('eth0', '172.31.0.11/24'),
      addr('cni0', '172.20.1.1/24'),
      addr('flannel.1', '172.20.1.0/32'),
    ],
    routes: [
      connected('172.20.1.0/24', 'cni0', '172.20.1.1'),
      route('172.20.2.0/24', {gateway: '172.20.2.0', dev: 'flannel.1', onlink: true, flags: ['onlink']}),
      route('172.20.3.0/24', {gateway: '172.20.3.0', dev: 'flannel.1', onlink: true, flags: ['onlink']}),
      connected('172.31.0.0/24', 'eth0', '172.31.0.11'),
    ],
    ...(sysctls ? {sysctls} : {}),
  }
}

describe('lookupRoute replays the kernel (ip route get answers recorded from real namespaces)', () => {
  for (const fx of loadFibFixtures()) {
    it(`${fx.file}: ${fx.description}`, () => {
      const state = fibStateFromIpJson(fx.ip)
      const fib = compileFib(state)
      expect(fx.queries.length).toBeGreaterThan(20)
      const diffs = fx.queries.flatMap(({query, kernel}) =>
        compareWithKernel(fib, query, lookupRoute(fib, query), kernel),
      )
      expect(diffs).toEqual([])
    })
  }

  it('the recordings cover every kind of answer: routes, local, broadcast, and each errno', () => {
    const answers = loadFibFixtures().flatMap((f) => f.queries.map((q) => q.kernel))
    const kinds = new Set(answers.map((k) => k.error ?? k.route?.type ?? 'unicast'))
    for (const k of [
      'unicast',
      'local',
      'broadcast',
      'anycast',
      'Network is unreachable',
      'No route to host',
      'Permission denied',
      'Invalid argument',
    ])
      expect(kinds).toContain(k)
    // iif lookups, multipath, custom tables, marks and oif are all in there
    const queries = loadFibFixtures().flatMap((f) => f.queries.map((q) => q.query))
    expect(queries.some((q) => q.iif)).toBe(true)
    expect(queries.some((q) => q.oif)).toBe(true)
    expect(queries.some((q) => q.fwmark !== undefined)).toBe(true)
    expect(answers.some((k) => k.route?.table === '100')).toBe(true)
  })
})

describe('formatters print the model as iproute2 does', () => {
  for (const fx of loadFibFixtures()) {
    it(`${fx.file}: ip -4 route show table all, ip -4 rule, ip neigh`, () => {
      expect(routesFromIpJson(fx.ip.route4, 'inet').map((r) => formatRoute(r))).toEqual(textLines(fx.text.route4))
      // ip puts a tab after the rule priority; the evidence uses a space
      expect(rulesFromIpJson(fx.ip.rule4, 'inet').map((r) => formatRule(r, {detached: r.iif === 'nosuch'}))).toEqual(
        textLines(fx.text.rule4).map((l) => l.replace('\t', ' ')),
      )
      expect(neighboursFromIpJson(fx.ip.neigh).map(formatNeighbour)).toEqual(textLines(fx.text.neigh))
    })
  }
})

describe('lookupRoute on a flannel vxlan node', () => {
  it('sends a remote pod to the peer VTEP, on-link, from the flannel.1 address, with the lines behind it', () => {
    const d = lookupRoute(flannelNode(), {dst: '172.20.2.5'})
    expect(d).toMatchObject({
      type: 'unicast',
      direction: 'output',
      table: 'main',
      rulePriority: 32766,
      gateway: '172.20.2.0',
      dev: 'flannel.1',
      src: '172.20.1.0',
      onlink: true,
    })
    expect(d.error).toBeUndefined()
    expect(d.evidence).toEqual([
      "no ip rule in the snapshot: the kernel's default rules are assumed",
      '32766: from all lookup main',
      '172.20.2.0/24 via 172.20.2.0 dev flannel.1 onlink',
    ])
  })

  it('derives the local table from the addresses when the snapshot has none, and says so', () => {
    const own = lookupRoute(flannelNode(), {dst: '172.31.0.11'})
    expect(own).toMatchObject({type: 'local', dev: 'lo', src: '172.31.0.11', table: 'local', rulePriority: 0})
    expect(own.evidence).toContain('local 172.31.0.11 dev eth0 table local proto kernel scope host src 172.31.0.11')
    expect(own.notes.join(' ')).toMatch(/derived from the addresses/)
    expect(lookupRoute(flannelNode(), {dst: '172.20.1.255'})).toMatchObject({
      type: 'broadcast',
      dev: 'cni0',
      src: '172.20.1.1',
    })
    expect(lookupRoute(flannelNode(), {dst: '127.0.0.9'})).toMatchObject({type: 'local', src: '127.0.0.1'})
  })

  it('has no route outside its tables (no default route): ENETUNREACH', () => {
    expect(lookupRoute(flannelNode(), {dst: '172.29.1.1'})).toMatchObject({type: 'no-route', error: 'ENETUNREACH'})
  })

  it('forwards a pod packet received on cni0, unless forwarding is off', () => {
    const on = lookupRoute(flannelNode({'net.ipv4.ip_forward': '1'}), {
      dst: '172.20.3.7',
      src: '172.20.1.2',
      iif: 'cni0',
    })
    expect(on).toMatchObject({
      type: 'unicast',
      direction: 'input',
      gateway: '172.20.3.0',
      dev: 'flannel.1',
      src: '172.20.1.2',
    })
    const off = lookupRoute(flannelNode({'net.ipv4.ip_forward': '0'}), {
      dst: '172.20.3.7',
      src: '172.20.1.2',
      iif: 'cni0',
    })
    expect(off).toMatchObject({type: 'forwarding-disabled', error: 'EHOSTUNREACH'})
    const unknown = lookupRoute(flannelNode(), {dst: '172.20.3.7', src: '172.20.1.2', iif: 'cni0'})
    expect(unknown.notes.join(' ')).toMatch(/forwarding on cni0 is not in the snapshot: assumed on/)
  })

  it('refuses a packet that claims to come from one of the node addresses (martian source)', () => {
    expect(
      lookupRoute(flannelNode({'net.ipv4.ip_forward': '1'}), {dst: '172.20.3.7', src: '172.31.0.11', iif: 'cni0'}),
    ).toMatchObject({type: 'martian-source', error: 'EINVAL'})
  })
})

describe('lookupRoute: tables', () => {
  const base = (routes: Route[], extra: Partial<FibState> = {}): FibState => ({
    links: [lo, link('eth0', 2), link('eth1', 3)],
    addresses: [addr('lo', '127.0.0.1/8', 'host'), addr('eth0', '172.16.0.1/24'), addr('eth1', '172.16.1.1/24')],
    routes: [
      connected('172.16.0.0/24', 'eth0', '172.16.0.1'),
      connected('172.16.1.0/24', 'eth1', '172.16.1.1'),
      ...routes,
    ],
    rules: defaults,
    ...extra,
  })

  it('takes the longest prefix even when a shorter one has a lower metric', () => {
    const s = base([
      route('172.17.0.0/16', {gateway: '172.16.0.9', dev: 'eth0', metric: 0}),
      route('172.17.5.0/24', {gateway: '172.16.1.9', dev: 'eth1', metric: 900}),
    ])
    expect(lookupRoute(s, {dst: '172.17.5.5'})).toMatchObject({gateway: '172.16.1.9', dev: 'eth1'})
    expect(lookupRoute(s, {dst: '172.17.6.5'})).toMatchObject({gateway: '172.16.0.9', dev: 'eth0'})
  })

  it('takes the lowest metric on one prefix, and passes over a route whose device is down', () => {
    const routes = [
      route('172.17.0.0/16', {gateway: '172.16.0.9', dev: 'eth0', metric: 20}),
      route('172.17.0.0/16', {gateway: '172.16.1.9', dev: 'eth1', metric: 10}),
    ]
    expect(lookupRoute(base(routes), {dst: '172.17.1.1'})).toMatchObject({dev: 'eth1', route: {metric: 10}})
    const down = base(routes, {
      links: [
        lo,
        link('eth0', 2),
        link('eth1', 3, {adminUp: false, flags: ['BROADCAST', 'MULTICAST'], operstate: 'DOWN'}),
      ],
    })
    const d = lookupRoute(down, {dst: '172.17.1.1'})
    expect(d).toMatchObject({dev: 'eth0', route: {metric: 20}})
    expect(d.notes.join('\n')).toMatch(
      /passed over: 172\.17\.0\.0\/16 via 172\.16\.1\.9 dev eth1 metric 10: dev eth1 is down/,
    )
    expect(d.passedOver).toEqual([{route: routes[1], reason: 'dev eth1 is down (the kernel marks the nexthop dead)'}])
  })

  it('still uses a route on a device without carrier, and flags it; ignore_routes_with_linkdown makes it skip', () => {
    const routes = [
      route('172.17.0.0/16', {gateway: '172.16.1.9', dev: 'eth1', metric: 10}),
      route('0.0.0.0/0', {gateway: '172.16.0.9', dev: 'eth0'}),
    ]
    const links = [
      lo,
      link('eth0', 2),
      link('eth1', 3, {flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'], operstate: 'DOWN'}),
    ]
    const d = lookupRoute(base(routes, {links}), {dst: '172.17.1.1'})
    expect(d).toMatchObject({dev: 'eth1', linkdown: true})
    expect(d.notes.join(' ')).toMatch(/no carrier/)
    const ignoring = lookupRoute(
      base(routes, {links, sysctls: {'net.ipv4.conf.eth1.ignore_routes_with_linkdown': '1'}}),
      {dst: '172.17.1.1'},
    )
    expect(ignoring).toMatchObject({dev: 'eth0', gateway: '172.16.0.9'})
    expect(ignoring.passedOver?.map((p) => p.reason)).toEqual([
      'dev eth1 has no carrier and ignore_routes_with_linkdown is set',
    ])
    expect(d.passedOver).toBeUndefined()
  })

  it('answers reject routes with their errno, and throw sends the lookup to the next rule', () => {
    const s = base([
      route('172.18.1.0/24', {type: 'blackhole'}),
      route('172.18.2.0/24', {type: 'unreachable'}),
      route('172.18.3.0/24', {type: 'prohibit'}),
      route('172.18.4.0/24', {type: 'throw'}),
      route('172.18.4.0/24', {table: 'default', gateway: '172.16.1.9', dev: 'eth1'}),
    ])
    expect(lookupRoute(s, {dst: '172.18.1.1'})).toMatchObject({type: 'blackhole', error: 'EINVAL'})
    expect(lookupRoute(s, {dst: '172.18.2.1'})).toMatchObject({type: 'unreachable', error: 'EHOSTUNREACH'})
    expect(lookupRoute(s, {dst: '172.18.3.1'})).toMatchObject({type: 'prohibit', error: 'EACCES'})
    const thrown = lookupRoute(s, {dst: '172.18.4.1'})
    expect(thrown).toMatchObject({type: 'unicast', table: 'default', rulePriority: 32767, dev: 'eth1'})
    expect(thrown.evidence).toEqual([
      '32766: from all lookup main',
      'throw 172.18.4.0/24',
      '32767: from all lookup default',
      '172.18.4.0/24 via 172.16.1.9 dev eth1 table default',
    ])
  })

  it('returns every nexthop of a multipath route, each with its source, and drops a dead one', () => {
    const mp = route('172.19.0.0/16', {
      nexthops: [
        {gateway: '172.16.0.9', dev: 'eth0', weight: 1, onlink: false},
        {gateway: '172.16.1.9', dev: 'eth1', weight: 3, onlink: false},
      ],
    })
    const d = lookupRoute(base([mp]), {dst: '172.19.1.1'})
    expect(d.type).toBe('unicast')
    expect(d.dev).toBeUndefined()
    expect(d.nexthops).toEqual([
      {gateway: '172.16.0.9', dev: 'eth0', weight: 1, onlink: false, linkdown: false, src: '172.16.0.1'},
      {gateway: '172.16.1.9', dev: 'eth1', weight: 3, onlink: false, linkdown: false, src: '172.16.1.1'},
    ])
    expect(d.evidence[1]).toBe(
      '172.19.0.0/16\n\tnexthop via 172.16.0.9 dev eth0 weight 1\n\tnexthop via 172.16.1.9 dev eth1 weight 3',
    )
    const oneDown = lookupRoute(
      base([mp], {
        links: [
          lo,
          link('eth0', 2, {adminUp: false, flags: ['BROADCAST', 'MULTICAST'], operstate: 'DOWN'}),
          link('eth1', 3),
        ],
      }),
      {dst: '172.19.1.1'},
    )
    expect(oneDown).toMatchObject({dev: 'eth1', gateway: '172.16.1.9', src: '172.16.1.1'})
    expect(oneDown.nexthops).toHaveLength(1)
  })

  it('with an oif and no route through it, assumes the destination is on-link there (as the kernel does)', () => {
    const d = lookupRoute(base([route('0.0.0.0/0', {gateway: '172.16.0.9', dev: 'eth0'})]), {
      dst: '172.19.1.1',
      oif: 'eth1',
    })
    expect(d).toMatchObject({type: 'unicast', dev: 'eth1', src: '172.16.1.1', onlink: true})
    expect(d.gateway).toBeUndefined()
  })
})

describe('lookupRoute: source address selection', () => {
  const s: FibState = {
    links: [lo, link('eth0', 2), link('eth1', 3)],
    addresses: [
      addr('lo', '127.0.0.1/8', 'host'),
      addr('eth0', '172.16.4.1/24', 'link'),
      addr('eth0', '172.16.44.1/24'),
      addr('eth0', '172.16.44.2/24'),
      addr('eth0', '172.16.45.1/24'),
      addr('eth1', '172.16.9.1/24'),
    ],
    routes: [
      route('172.16.4.0/24', {dev: 'eth0', scope: 'link', protocol: 'kernel', prefsrc: '172.16.4.1'}),
      route('172.16.44.0/24', {dev: 'eth0', scope: 'link', protocol: 'kernel', prefsrc: '172.16.44.1'}),
      route('172.16.45.0/24', {dev: 'eth0', scope: 'link', protocol: 'kernel', prefsrc: '172.16.45.1'}),
      route('172.16.9.0/24', {dev: 'eth1', scope: 'link', protocol: 'kernel', prefsrc: '172.16.9.1'}),
      route('172.21.1.0/24', {gateway: '172.16.4.9', dev: 'eth0'}),
      route('172.21.2.0/24', {gateway: '172.16.45.9', dev: 'eth0'}),
      route('172.21.3.0/24', {dev: 'eth0', scope: 'link'}),
      route('172.21.4.0/24', {gateway: '172.16.45.9', dev: 'eth0', prefsrc: '172.16.44.2'}),
    ],
  }

  it('skips a link-scope address for a gateway route, and prefers the address in the gateway subnet', () => {
    expect(lookupRoute(s, {dst: '172.21.1.1'}).src).toBe('172.16.44.1')
    expect(lookupRoute(s, {dst: '172.21.2.1'}).src).toBe('172.16.45.1')
  })

  it('takes the first primary address for a link-scope route, whatever its scope', () => {
    expect(lookupRoute(s, {dst: '172.21.3.1'}).src).toBe('172.16.4.1')
  })

  it('takes prefsrc, even a secondary address, when the route names one', () => {
    expect(lookupRoute(s, {dst: '172.21.4.1'}).src).toBe('172.16.44.2')
  })

  it('falls back to another device when the out device has no fitting address', () => {
    const only = {
      ...s,
      addresses: [
        addr('lo', '127.0.0.1/8', 'host'),
        addr('eth0', '172.16.4.1/24', 'link'),
        addr('eth1', '172.16.9.1/24'),
      ],
    }
    expect(lookupRoute(only, {dst: '172.21.1.1'}).src).toBe('172.16.9.1')
  })

  it('keeps a given source, refusing one the node does not own', () => {
    expect(lookupRoute(s, {dst: '172.21.2.1', src: '172.16.9.1'}).src).toBe('172.16.9.1')
    expect(lookupRoute(s, {dst: '172.21.2.1', src: '172.16.77.1'})).toMatchObject({
      type: 'bad-source',
      error: 'ENETUNREACH',
    })
  })
})

describe('lookupRoute: policy rules', () => {
  const links = [lo, link('eth0', 2), link('eth1', 3)]
  const addresses = [addr('lo', '127.0.0.1/8', 'host'), addr('eth0', '172.16.0.1/24'), addr('eth1', '172.16.1.1/24')]
  const routes = [
    connected('172.16.0.0/24', 'eth0', '172.16.0.1'),
    connected('172.16.1.0/24', 'eth1', '172.16.1.1'),
    route('0.0.0.0/0', {gateway: '172.16.0.9', dev: 'eth0'}),
    route('0.0.0.0/0', {table: '100', gateway: '172.16.1.9', dev: 'eth1'}),
  ]
  const withRules = (extra: Rule[]): FibState => ({links, addresses, routes, rules: [...defaults, ...extra]})
  const viaTable100 = (s: FibState, q: Parameters<typeof lookupRoute>[1]) => lookupRoute(s, q).table === '100'

  it('matches `from` only when the packet has that source (ip route get without from has none)', () => {
    const s = withRules([rule(100, {src: '172.16.1.0/24', table: '100'})])
    expect(viaTable100(s, {dst: '172.22.0.1'})).toBe(false)
    const d = lookupRoute(s, {dst: '172.22.0.1', src: '172.16.1.1'})
    expect(d).toMatchObject({table: '100', rulePriority: 100, gateway: '172.16.1.9'})
    expect(d.evidence).toEqual(['100: from 172.16.1.0/24 lookup 100', 'default via 172.16.1.9 dev eth1 table 100'])
  })

  it('matches fwmark under its mask', () => {
    const s = withRules([rule(100, {fwmark: '0x10/0xf0', table: '100'})])
    expect(viaTable100(s, {dst: '172.22.0.1', fwmark: 0x15})).toBe(true)
    expect(viaTable100(s, {dst: '172.22.0.1', fwmark: '0x1f'})).toBe(true)
    expect(viaTable100(s, {dst: '172.22.0.1', fwmark: 0x25})).toBe(false)
    expect(viaTable100(s, {dst: '172.22.0.1'})).toBe(false)
  })

  it('inverts with not, and matches iif lo for packets the node originates', () => {
    const not = withRules([rule(100, {not: true, dst: '172.22.0.0/16', table: '100'})])
    expect(viaTable100(not, {dst: '172.22.0.1'})).toBe(false)
    expect(viaTable100(not, {dst: '172.23.0.1'})).toBe(true)
    const iifLo = withRules([rule(100, {iif: 'lo', table: '100'})])
    expect(viaTable100(iifLo, {dst: '172.22.0.1'})).toBe(true)
    expect(
      viaTable100(
        {...iifLo, sysctls: {'net.ipv4.ip_forward': '1'}},
        {dst: '172.22.0.1', src: '172.16.0.7', iif: 'eth0'},
      ),
    ).toBe(false)
  })

  it('never matches a rule on a device the node lacks', () => {
    expect(
      viaTable100(withRules([rule(100, {iif: 'nosuch', table: '100'})]), {
        dst: '172.22.0.1',
        src: '172.16.0.7',
        iif: 'eth0',
      }),
    ).toBe(false)
  })

  it('jumps with goto, continues past nop and past a table that does not exist', () => {
    const s = withRules([
      rule(100, {dst: '172.22.0.0/16', action: 'goto', goto: 300}),
      rule(200, {dst: '172.22.0.0/16', action: 'unreachable'}),
      rule(300, {dst: '172.22.0.0/16', action: 'nop'}),
      rule(400, {dst: '172.22.0.0/16', table: '555'}),
      rule(500, {dst: '172.22.0.0/16', table: '100'}),
    ])
    const d = lookupRoute(s, {dst: '172.22.0.1'})
    expect(d).toMatchObject({table: '100', rulePriority: 500})
    expect(d.evidence).toEqual([
      '100: from all to 172.22.0.0/16 goto 300',
      '500: from all to 172.22.0.0/16 lookup 100',
      'default via 172.16.1.9 dev eth1 table 100',
    ])
  })

  it('answers rule actions with the errno of the rule (unreachable: ENETUNREACH, unlike the route type)', () => {
    const s = withRules([
      rule(100, {dst: '172.22.1.0/24', action: 'unreachable'}),
      rule(101, {dst: '172.22.2.0/24', action: 'prohibit'}),
      rule(102, {dst: '172.22.3.0/24', action: 'blackhole'}),
    ])
    expect(lookupRoute(s, {dst: '172.22.1.1'})).toMatchObject({
      type: 'unreachable',
      error: 'ENETUNREACH',
      rulePriority: 100,
    })
    expect(lookupRoute(s, {dst: '172.22.2.1'})).toMatchObject({type: 'prohibit', error: 'EACCES'})
    expect(lookupRoute(s, {dst: '172.22.3.1'})).toMatchObject({type: 'blackhole', error: 'EINVAL'})
  })
})

describe('lookupRoute: packets received on an interface', () => {
  const s = (sysctls: Record<string, string>): FibState => ({
    links: [lo, link('eth0', 2), link('eth1', 3)],
    addresses: [addr('lo', '127.0.0.1/8', 'host'), addr('eth0', '172.16.0.1/24'), addr('eth1', '172.16.1.1/24')],
    routes: [
      connected('172.16.0.0/24', 'eth0', '172.16.0.1'),
      connected('172.16.1.0/24', 'eth1', '172.16.1.1'),
      route('0.0.0.0/0', {gateway: '172.16.0.9', dev: 'eth0'}),
    ],
    sysctls: {'net.ipv4.ip_forward': '1', 'net.ipv4.conf.all.rp_filter': '0', ...sysctls},
  })

  it('drops a source whose route back leaves by another device under strict rp_filter, not under loose', () => {
    const q = {dst: '172.16.1.5', src: '172.24.0.1', iif: 'eth1'}
    expect(lookupRoute(s({'net.ipv4.conf.eth1.rp_filter': '1'}), q)).toMatchObject({type: 'rp-filter', error: 'EINVAL'})
    expect(lookupRoute(s({'net.ipv4.conf.eth1.rp_filter': '2'}), q)).toMatchObject({type: 'unicast', dev: 'eth1'})
    expect(lookupRoute(s({'net.ipv4.conf.eth1.rp_filter': '0'}), q)).toMatchObject({type: 'unicast', dev: 'eth1'})
    expect(lookupRoute(s({'net.ipv4.conf.eth0.rp_filter': '1'}), {...q, iif: 'eth0'})).toMatchObject({
      type: 'unicast',
      dev: 'eth1',
    })
  })

  it('delivers local and broadcast destinations to the node, and refuses martians', () => {
    expect(lookupRoute(s({}), {dst: '172.16.1.1', src: '172.16.0.7', iif: 'eth0'})).toMatchObject({
      type: 'local',
      dev: 'lo',
    })
    expect(lookupRoute(s({}), {dst: '172.16.1.255', src: '172.16.0.7', iif: 'eth0'})).toMatchObject({
      type: 'broadcast',
      dev: 'lo',
    })
    expect(lookupRoute(s({}), {dst: '172.16.1.5', src: '127.0.0.1', iif: 'eth0'})).toMatchObject({
      type: 'martian-source',
      error: 'EINVAL',
    })
    expect(lookupRoute(s({}), {dst: '127.0.0.1', src: '172.16.0.7', iif: 'eth0'})).toMatchObject({
      type: 'martian-destination',
      error: 'EINVAL',
    })
    expect(lookupRoute(s({}), {dst: '172.16.1.5', iif: 'eth0'})).toMatchObject({
      type: 'martian-source',
      error: 'EINVAL',
    })
  })
})

describe('lookupRoute: IPv6', () => {
  const s: FibState = {
    links: [lo, link('eth0', 2), link('eth1', 3)],
    addresses: [
      addr('lo', '::1/128', 'host'),
      addr('eth0', 'fd00:1::1/64'),
      addr('eth0', 'fe80::1/64', 'link'),
      addr('eth1', 'fd00:2::1/64'),
      addr('eth1', 'fe80::2/64', 'link'),
    ],
    routes: [
      route('fd00:1::/64', {dev: 'eth0', protocol: 'kernel', metric: 256}),
      route('fd00:2::/64', {dev: 'eth1', protocol: 'kernel', metric: 256}),
      route('fe80::/64', {dev: 'eth0', protocol: 'kernel', metric: 256}),
      route('fe80::/64', {dev: 'eth1', protocol: 'kernel', metric: 256}),
      route('::/0', {gateway: 'fd00:1::9', dev: 'eth0', metric: 1024}),
      route('fd00:9::/48', {gateway: 'fd00:2::9', dev: 'eth1', metric: 5}),
      route('fd00:9::/48', {gateway: 'fd00:1::9', dev: 'eth0', metric: 10}),
      route('fd00:66::/48', {type: 'blackhole', dev: 'lo', metric: 1024}),
    ],
  }

  it('routes by prefix and metric and picks a source on the out device', () => {
    expect(lookupRoute(s, {dst: 'fd00:9::1'})).toMatchObject({dev: 'eth1', gateway: 'fd00:2::9', src: 'fd00:2::1'})
    expect(lookupRoute(s, {dst: 'fd00:9::1', oif: 'eth0'})).toMatchObject({
      dev: 'eth0',
      gateway: 'fd00:1::9',
      src: 'fd00:1::1',
    })
    expect(lookupRoute(s, {dst: 'fd00:66::1'})).toMatchObject({type: 'blackhole', error: 'EINVAL'})
    expect(lookupRoute(s, {dst: 'fd00:1::1'})).toMatchObject({type: 'local', src: 'fd00:1::1'})
  })

  it('picks a link-local source for a link-local destination, on the named device', () => {
    expect(lookupRoute(s, {dst: 'fe80::77', oif: 'eth1'})).toMatchObject({dev: 'eth1', src: 'fe80::2'})
  })

  it('keeps a received link-local destination on the device it came in on', () => {
    expect(lookupRoute(s, {dst: 'fe80::77', src: 'fe80::99', iif: 'eth1'})).toMatchObject({
      type: 'unicast',
      dev: 'eth1',
    })
  })
})

describe('compareWithKernel (the lab oracle) notices disagreement', () => {
  it('reports a different device, a different error and a refusal the model misses', () => {
    const fib = compileFib(flannelNode())
    const q = {dst: '172.20.2.5'}
    const d = lookupRoute(fib, q)
    expect(
      compareWithKernel(fib, q, d, {
        route: {dst: '172.20.2.5', gateway: '172.20.2.0', dev: 'flannel.1', prefsrc: '172.20.1.0'},
      }),
    ).toEqual([])
    expect(
      compareWithKernel(fib, q, d, {
        route: {dst: '172.20.2.5', gateway: '172.31.0.12', dev: 'eth0', prefsrc: '172.31.0.11'},
      })[0],
    ).toMatch(/not among the model's nexthops/)
    expect(compareWithKernel(fib, q, d, {error: 'Network is unreachable'})[0]).toMatch(
      /the kernel refuses, the model routes/,
    )
    expect(describeQuery({dst: '172.20.2.5', src: '172.20.1.2', iif: 'cni0', fwmark: 1})).toBe(
      'ip route get 172.20.2.5 from 172.20.1.2 iif cni0 mark 1',
    )
  })
})
