import {readFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {ipv4ToNumber as ipv4ToInt, numberToIPv4 as intToIPv4} from '../../src/analyze/ip.js'
import {forwarderConfig, tunAddress} from '../../src/lab/backends/flannel-udp.js'
import {
  checkIPv4,
  decrementTTL,
  describePacket,
  ipv4Destination,
  ipv4HeaderChecksum,
  ipv4Source,
  parseForwarderConfig,
  parseIPv4Prefix,
  PeerTable,
} from '../../src/lab/flannel-udp-wire.js'
import {planLab} from '../../src/lab/topology.js'
import {REPO} from '../helpers/cli.js'

interface Captured {
  packets: Array<{what: string; hex: string}>
}

// Real datagrams socat handed to a lab forwarder: what flannel0 gives flanneld.
const fixture = JSON.parse(readFileSync(path.join(REPO, 'fixtures/flannel-udp/from-flannel0.json'), 'utf8')) as Captured
const packet = (i: number): Buffer => Buffer.from(fixture.packets[i]!.hex, 'hex')
const [ECHO, SYN, RS] = [0, 1, 2]

describe('flannel udp wire helpers on packets read from flannel0', () => {
  it('accepts the IPv4 packets and names the IPv6 one', () => {
    expect(checkIPv4(packet(ECHO))).toBeUndefined()
    expect(checkIPv4(packet(SYN))).toBeUndefined()
    expect(checkIPv4(packet(RS))).toBe('notIPv4')
  })

  it('rejects a packet cut short of its total length or header', () => {
    expect(checkIPv4(packet(ECHO).subarray(0, 40))).toBe('malformed')
    expect(checkIPv4(packet(SYN).subarray(0, 12))).toBe('malformed')
  })

  it('reads the addresses the capture describes', () => {
    for (const i of [ECHO, SYN]) {
      const p = packet(i)
      const [src, dst] = /(\S+) > (\S+?)[: ,]/.exec(fixture.packets[i]!.what)!.slice(1)
      expect(intToIPv4(ipv4Source(p))).toBe(src)
      expect(intToIPv4(ipv4Destination(p))).toBe(dst)
      expect(describePacket(p)).toContain(`${src} > ${dst}`)
    }
  })

  it('computes the same header checksum as the kernel wrote', () => {
    for (const i of [ECHO, SYN]) {
      const p = packet(i)
      expect(ipv4HeaderChecksum(p)).toBe(p.readUInt16BE(10))
    }
  })

  it('decrements the TTL and patches the checksum to what a full recomputation gives', () => {
    for (const i of [ECHO, SYN]) {
      const p = packet(i)
      const ttl = p[8]!
      expect(decrementTTL(p)).toBe(true)
      expect(p[8]).toBe(ttl - 1)
      expect(p.readUInt16BE(10)).toBe(ipv4HeaderChecksum(p))
    }
  })

  it('keeps decrementing correctly down to 1 and refuses to send a packet with TTL 1 on', () => {
    const p = packet(ECHO)
    while (p[8]! > 1) {
      expect(decrementTTL(p)).toBe(true)
      expect(p.readUInt16BE(10)).toBe(ipv4HeaderChecksum(p))
    }
    const before = Buffer.from(p)
    expect(decrementTTL(p)).toBe(false)
    expect(p.equals(before)).toBe(true)
  })
})

describe('PeerTable', () => {
  const peers = [
    {name: 'wide', ip: '172.31.0.21', podCIDR: '172.20.0.0/16'},
    {name: 'node2', ip: '172.31.0.12', podCIDR: '172.20.2.0/24'},
    {name: 'half', ip: '172.31.0.22', podCIDR: '172.20.2.128/25'},
  ]
  const table = new PeerTable(peers)
  const lookup = (ip: string): string | undefined => table.lookup(ipv4ToInt(ip)!)?.name

  it('picks the longest podCIDR that holds the destination, whatever the order given', () => {
    expect(lookup('172.20.2.7')).toBe('node2')
    expect(lookup('172.20.2.200')).toBe('half')
    expect(lookup('172.20.9.9')).toBe('wide')
    expect(new PeerTable([...peers].reverse()).lookup(ipv4ToInt('172.20.2.200')!)?.name).toBe('half')
  })

  it('has no peer outside every podCIDR', () => {
    expect(lookup('172.21.0.1')).toBeUndefined()
    expect(new PeerTable([]).lookup(ipv4ToInt('172.20.2.7')!)).toBeUndefined()
  })

  it('finds a peer by its underlay address only', () => {
    expect(table.byAddress('172.31.0.12')?.name).toBe('node2')
    expect(table.byAddress('172.20.2.0')).toBeUndefined()
  })

  it('parses prefixes and refuses what is not one', () => {
    expect(parseIPv4Prefix('172.20.2.9/24')).toEqual({network: ipv4ToInt('172.20.2.0'), length: 24, mask: 0xffffff00})
    expect(parseIPv4Prefix('0.0.0.0/0')).toEqual({network: 0, length: 0, mask: 0})
    for (const bad of ['172.20.2.0', '172.20.2.0/33', '172.20.256.0/24', '172.20.2.0/24/1', 'x/8'])
      expect(parseIPv4Prefix(bad)).toBeUndefined()
  })
})

describe('forwarder config', () => {
  const plan = planLab(
    {
      name: 'udp-unit',
      nodes: 3,
      podsPerNode: 1,
      backend: 'flannel-udp',
      topology: 'routed',
      routeReflectors: 1,
      ssh: false,
    },
    '/nonexistent',
  )
  const node = plan.nodes[1]!

  it('lists every other node as a peer, with its InternalIP and podCIDR, and files under the node dir', () => {
    const c = forwarderConfig(plan, node)
    expect(c.nodeIP).toBe(node.ip)
    expect(c.port).toBe(8285)
    expect(c.peers).toEqual(
      plan.nodes.filter((n) => n !== node).map((n) => ({name: n.name, ip: n.ip, podCIDR: n.podCIDR})),
    )
    for (const f of [c.logFile, c.statusFile]) expect(f.startsWith(`${node.dir}/`)).toBe(true)
  })

  it('round-trips through the file format', () => {
    const c = forwarderConfig(plan, node)
    expect(parseForwarderConfig(JSON.stringify(c))).toEqual(c)
  })

  it('gives flannel0 the node subnet .0 with the cluster prefix', () => {
    expect(tunAddress(plan, node)).toBe(`${node.podCIDR.split('/')[0]}/${plan.clusterCIDR.split('/')[1]}`)
  })

  it('refuses a broken config in one line', () => {
    const c = forwarderConfig(plan, node)
    const broken = [
      '{',
      JSON.stringify({...c, nodeIP: 'node2'}),
      JSON.stringify({...c, port: 0}),
      JSON.stringify({...c, tunSocket: {forwarder: 18285}}),
      JSON.stringify({...c, peers: [{name: 'x', ip: '172.31.0.1', podCIDR: '172.20.1.0'}]}),
    ]
    for (const text of broken) {
      expect(() => parseForwarderConfig(text)).toThrow(/^invalid forwarder config: [^\n]+$/)
    }
  })
})
