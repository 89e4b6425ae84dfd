/**
 * Hand-built traces shaped like the walker's answers on a 3-node flannel vxlan
 * lab "demo" (`netctl lab up --nodes 3`: underlay 172.31.0.0/24, pods
 * 172.20.0.0/16): delivered with encap and decap, and stopped at FDB_MISS.
 * Built from src/model types only, so render tests never depend on the walker.
 */
import {makeFinding} from '../../src/analyze/catalogue/index.js'
import type {Hop, Packet, Trace} from '../../src/model/trace.js'

export const node1 = {name: 'node1', ip: '172.31.0.11', vtepMAC: '06:5e:11:a0:3c:01'}
export const node3 = {name: 'node3', ip: '172.31.0.13', vtepMAC: '3a:0c:7f:19:d2:03'}

const ping: Packet = {src: '172.20.1.2', dst: '172.20.3.3', protocol: 'icmp', size: 84, df: false, encap: []}
const wrapped: Packet = {
  ...ping,
  size: 134,
  encap: [{type: 'vxlan', outerSrc: node1.ip, outerDst: node3.ip, vni: 1, port: 8472}],
}
const pong: Packet = {...ping, src: ping.dst, dst: ping.src}
const pongWrapped: Packet = {
  ...pong,
  size: 134,
  encap: [{type: 'vxlan', outerSrc: node3.ip, outerDst: node1.ip, vni: 1, port: 8472}],
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
    netns: 'demo.node1',
    in: 'veth1a2b3c4d',
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
      '172.20.3.0/24 via 172.20.3.0 dev flannel.1 onlink',
      `172.20.3.0 dev flannel.1 lladdr ${node3.vtepMAC} PERMANENT`,
    ],
    packet: ping,
  },
  {
    node: 'node1',
    netns: 'demo.node1',
    in: 'cni0',
    out: 'flannel.1',
    action: 'encap',
    evidence: [`${node3.vtepMAC} dev flannel.1 dst ${node3.ip} self permanent`],
    packet: wrapped,
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
    node: 'node3',
    netns: 'demo.node3',
    in: 'eth0',
    out: 'flannel.1',
    action: 'decap',
    evidence: ['flannel.1: vxlan id 1 dstport 8472'],
    packet: ping,
  },
  {
    node: 'node3',
    netns: 'demo.node3',
    in: 'flannel.1',
    out: 'cni0',
    action: 'route',
    evidence: ['172.20.3.0/24 dev cni0 proto kernel scope link src 172.20.3.1'],
    packet: ping,
  },
  {
    node: 'node3',
    netns: 'demo.node3.pod2',
    in: 'eth0',
    action: 'deliver',
    evidence: ['local 172.20.3.3 dev eth0 table local proto kernel scope host src 172.20.3.3'],
  },
]

const reply: Hop[] = [
  {
    node: 'node3',
    netns: 'demo.node3.pod2',
    out: 'eth0',
    action: 'route',
    evidence: ['default via 172.20.3.1 dev eth0'],
    packet: pong,
  },
  {
    node: 'node3',
    netns: 'demo.node3',
    in: 'cni0',
    out: 'flannel.1',
    action: 'encap',
    evidence: [`${node1.vtepMAC} dev flannel.1 dst ${node1.ip} self permanent`],
    packet: pongWrapped,
  },
  {
    node: 'node1',
    netns: 'demo.node1',
    in: 'eth0',
    out: 'flannel.1',
    action: 'decap',
    evidence: ['flannel.1: vxlan id 1 dstport 8472'],
    packet: pong,
  },
  {
    node: 'node1',
    netns: 'demo.node1.pod1',
    in: 'eth0',
    action: 'deliver',
    evidence: ['local 172.20.1.2 dev eth0 table local'],
  },
]

export const delivered: Trace = {
  disposition: 'DELIVERED',
  src: {ip: ping.src, pod: 'pod-node1-1', namespace: 'default', node: 'node1', netns: 'demo.node1.pod1'},
  dst: {ip: ping.dst, pod: 'pod-node3-2', namespace: 'default', node: 'node3', netns: 'demo.node3.pod2'},
  packet: ping,
  hops: forward,
  returnPath: {disposition: 'DELIVERED', hops: reply},
  findings: [],
}

/** node1 lost its FDB entry for node3's VTEP: the walk stops at the encap. */
export const fdbMiss: Trace = {
  ...delivered,
  disposition: 'FDB_MISS',
  hops: [
    ...forward.slice(0, 3),
    {
      node: 'node1',
      netns: 'demo.node1',
      in: 'cni0',
      out: 'flannel.1',
      action: 'drop',
      evidence: [`bridge fdb show dev flannel.1: no entry for ${node3.vtepMAC}`],
      findings: ['FDB_MISSING'],
    },
  ],
  returnPath: null,
  findings: [
    makeFinding('VXLAN_CSUM_OFFLOAD', {
      node: 'node3',
      subject: 'flannel.1',
      message: 'tx-checksum-ip-generic is on for flannel.1',
      evidence: ['tx-checksum-ip-generic: on'],
      vars: {dev: 'flannel.1'},
    }),
    makeFinding('FDB_MISSING', {
      node: 'node1',
      subject: `flannel.1 → node3 (${node3.ip})`,
      message: `no FDB entry for node3's VTEP ${node3.vtepMAC} on flannel.1`,
      evidence: [`172.20.3.0 dev flannel.1 lladdr ${node3.vtepMAC} PERMANENT`],
      vars: {node: 'node1', peer: 'node3', peerIP: node3.ip, vtepMAC: node3.vtepMAC, dev: 'flannel.1'},
    }),
  ],
}
