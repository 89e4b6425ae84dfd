import {readFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {makeFinding} from '../../src/analyze/catalogue/index.js'
import {FINDING_CODES} from '../../src/model/finding.js'
import {DISPOSITIONS, type Hop, HOP_ACTIONS, type Packet, type Trace} from '../../src/model/trace.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {REPO} from '../helpers/cli.js'

const schema = (name: string) => JSON.parse(readFileSync(path.join(REPO, 'schemas', `${name}.schema.json`), 'utf8'))

// A 2-node flannel vxlan lab "demo" as `netctl lab up` plans it: underlay 172.31.0.0/24, pods 172.20.0.0/16.
const node1 = {name: 'node1', ip: '172.31.0.11', podCIDR: '172.20.1.0/24', vtepMAC: '06:5e:11:a0:3c:01'}
const node2 = {name: 'node2', ip: '172.31.0.12', podCIDR: '172.20.2.0/24', vtepMAC: '0e:91:d2:47:b8:02'}
const ping: Packet = {src: '172.20.1.2', dst: '172.20.2.2', protocol: 'icmp', size: 84, df: true, encap: []}
const wrapped: Packet = {
  ...ping,
  size: 134,
  encap: [{type: 'vxlan', outerSrc: node1.ip, outerDst: node2.ip, vni: 1, port: 8472}],
}

const forward: Hop[] = [
  {
    node: 'node1',
    netns: 'demo.node1.pod1',
    out: 'eth0',
    action: 'route',
    evidence: ['default via 172.20.1.1 dev eth0'],
    packet: ping,
  },
  {
    node: 'node1',
    netns: 'demo.node1.pod1',
    out: 'eth0',
    action: 'veth',
    evidence: ['eth0@if9 peer vethc41d9a02 in demo.node1'],
    packet: ping,
  },
  {
    node: 'node1',
    netns: 'demo.node1',
    in: 'vethc41d9a02',
    out: 'cni0',
    action: 'bridge',
    evidence: ['0a:58:ac:14:01:01 dev cni0 self permanent'],
    packet: ping,
  },
  {
    node: 'node1',
    netns: 'demo.node1',
    in: 'cni0',
    out: 'flannel.1',
    action: 'route',
    evidence: [
      '172.20.2.0/24 via 172.20.2.0 dev flannel.1 onlink',
      `172.20.2.0 dev flannel.1 lladdr ${node2.vtepMAC} PERMANENT`,
    ],
    packet: ping,
  },
  {
    node: 'node1',
    netns: 'demo.node1',
    in: 'cni0',
    out: 'flannel.1',
    action: 'forward',
    evidence: ['net.ipv4.ip_forward = 1', '-A FORWARD -s 172.20.0.0/16 -j ACCEPT'],
    packet: ping,
  },
  {
    node: 'node1',
    netns: 'demo.node1',
    out: 'flannel.1',
    action: 'encap',
    evidence: [
      `${node2.vtepMAC} dev flannel.1 dst ${node2.ip} self permanent`,
      'flannel.1: vxlan id 1 local 172.31.0.11 dstport 8472 nolearning',
    ],
    packet: wrapped,
    findings: ['VXLAN_CSUM_OFFLOAD'],
  },
  {
    node: 'node1',
    netns: 'demo.node1',
    out: 'eth0',
    action: 'underlay',
    evidence: ['172.31.0.0/24 dev eth0 proto kernel scope link src 172.31.0.11'],
    packet: wrapped,
  },
  {
    node: 'node2',
    netns: 'demo.node2',
    in: 'eth0',
    out: 'flannel.1',
    action: 'decap',
    evidence: [`flannel.1: vxlan id 1 dstport 8472, inner dst ${node2.vtepMAC} is its own`],
    packet: ping,
  },
  {
    node: 'node2',
    netns: 'demo.node2',
    in: 'flannel.1',
    out: 'cni0',
    action: 'route',
    evidence: ['172.20.2.0/24 dev cni0 proto kernel scope link src 172.20.2.1'],
    packet: ping,
  },
  {
    node: 'node2',
    netns: 'demo.node2',
    in: 'cni0',
    out: 'veth5f0e7b13',
    action: 'bridge',
    evidence: ['0a:58:ac:14:02:02 dev veth5f0e7b13 master cni0'],
    packet: ping,
  },
  {
    node: 'node2',
    netns: 'demo.node2.pod1',
    in: 'eth0',
    action: 'deliver',
    evidence: ['local 172.20.2.2 dev eth0 table local proto kernel scope host src 172.20.2.2'],
  },
]

const reply: Hop[] = [
  {
    node: 'node2',
    netns: 'demo.node2.pod1',
    out: 'eth0',
    action: 'route',
    evidence: ['default via 172.20.2.1 dev eth0'],
  },
  {
    node: 'node2',
    netns: 'demo.node2',
    in: 'cni0',
    out: 'flannel.1',
    action: 'route',
    evidence: ['172.20.1.0/24 via 172.20.1.0 dev flannel.1 onlink'],
  },
  {
    node: 'node2',
    netns: 'demo.node2',
    out: 'flannel.1',
    action: 'encap',
    evidence: [`${node1.vtepMAC} dev flannel.1 dst ${node1.ip} self permanent`],
  },
  {
    node: 'node1',
    netns: 'demo.node1',
    in: 'eth0',
    out: 'flannel.1',
    action: 'decap',
    evidence: ['flannel.1: vxlan id 1 dstport 8472'],
  },
  {
    node: 'node1',
    netns: 'demo.node1.pod1',
    in: 'eth0',
    action: 'deliver',
    evidence: ['local 172.20.1.2 dev eth0 table local'],
  },
]

const delivered: Trace = {
  disposition: 'DELIVERED',
  src: {ip: ping.src, pod: 'pod-node1-1', namespace: 'default', node: 'node1', netns: 'demo.node1.pod1'},
  dst: {ip: ping.dst, pod: 'pod-node2-1', namespace: 'default', node: 'node2', netns: 'demo.node2.pod1'},
  packet: ping,
  hops: forward,
  returnPath: {disposition: 'DELIVERED', hops: reply},
  findings: [
    makeFinding('VXLAN_CSUM_OFFLOAD', {
      node: 'node1',
      subject: 'flannel.1',
      message: 'tx-checksum-ip-generic is on for flannel.1',
      evidence: ['tx-checksum-ip-generic: on'],
      vars: {dev: 'flannel.1'},
    }),
  ],
}

// The same trace with node1's FDB entry for node2 gone: the walk stops at the encap.
const fdbMiss: Trace = {
  ...delivered,
  disposition: 'FDB_MISS',
  hops: [
    ...forward.slice(0, 5),
    {
      node: 'node1',
      netns: 'demo.node1',
      out: 'flannel.1',
      action: 'drop',
      evidence: [`bridge fdb show dev flannel.1: no entry for ${node2.vtepMAC}`],
      findings: ['FDB_MISSING'],
    },
  ],
  returnPath: null,
  findings: [
    makeFinding('FDB_MISSING', {
      node: 'node1',
      subject: `flannel.1 → node2 (${node2.ip})`,
      message: `no FDB entry for node2's VTEP ${node2.vtepMAC} on flannel.1`,
      evidence: [
        `172.20.2.0 dev flannel.1 lladdr ${node2.vtepMAC} PERMANENT`,
        'bridge fdb show dev flannel.1: (none for node2)',
      ],
      vars: {node: 'node1', peer: 'node2', peerIP: node2.ip, vtepMAC: node2.vtepMAC, dev: 'flannel.1'},
    }),
  ],
}

const clone = <T>(v: T): any => JSON.parse(JSON.stringify(v))

describe('schemas/trace.schema.json', () => {
  const validate = validatorFor('trace')

  it('accepts a delivered flannel vxlan trace with its return path', () => {
    expect(validate(clone(delivered)), describeSchemaError(validate.errors)).toBe(true)
  })

  it('accepts a trace that stopped (FDB_MISS) with no return path', () => {
    expect(validate(clone(fdbMiss)), describeSchemaError(validate.errors)).toBe(true)
  })

  it('rejects an unknown disposition, missing hops, a bad severity, an unknown hop action', () => {
    const broken: Array<[string, (t: any) => void, RegExp]> = [
      ['unknown disposition', (t) => (t.disposition = 'DROPPED'), /disposition/],
      ['unknown return disposition', (t) => (t.returnPath.disposition = 'LOST'), /returnPath/],
      ['no hops', (t) => delete t.hops, /hops/],
      ['hop without evidence', (t) => delete t.hops[3].evidence, /hops\[3\]/],
      ['bad severity', (t) => (t.findings[0].severity = 'critical'), /findings\[0\]\.severity/],
      ['unknown finding code', (t) => (t.findings[0].code = 'FDB_MISSINGG'), /findings\[0\]\.code/],
      ['unknown hop action', (t) => (t.hops[0].action = 'teleport'), /hops\[0\]\.action/],
      ['vxlan without outer addresses', (t) => delete t.hops[5].packet.encap[0].outerDst, /encap\[0\]/],
      ['no return path at all', (t) => delete t.returnPath, /returnPath/],
    ]
    for (const [what, breakIt, where] of broken) {
      const t = clone(delivered)
      breakIt(t)
      expect(validate(t), what).toBe(false)
      expect(validate.errors?.map((e) => describeSchemaError([e])).join('; '), what).toMatch(where)
    }
  })
})

describe('the schemas follow the model', () => {
  it("inlines exactly schemas/finding.schema.json as the trace schema's finding definition", () => {
    const {$schema: _s, $id: _i, ...finding} = schema('finding')
    expect(schema('trace').definitions.finding).toEqual(finding)
  })

  it('list every finding code, disposition and hop action of src/model', () => {
    expect(schema('finding').properties.code.enum).toEqual([...FINDING_CODES])
    expect(schema('trace').definitions.disposition.enum).toEqual([...DISPOSITIONS])
    expect(schema('trace').definitions.hop.properties.action.enum).toEqual([...HOP_ACTIONS])
  })

  it('validates findings made by makeFinding with schemas/finding.schema.json', () => {
    const validate = validatorFor('finding')
    for (const f of [...delivered.findings, ...fdbMiss.findings])
      expect(validate(f), describeSchemaError(validate.errors)).toBe(true)
    expect(validate({...fdbMiss.findings[0], evidence: 'one string'})).toBe(false)
  })
})
