import {describe, expect, it} from 'vitest'

import type {BgpSession} from '../../../src/model/node-state.js'
import {broken, codes, findings, node, only} from './helpers.js'

const session = (s: any, n: string, name: string): BgpSession => node(s, n).bird!.sessions.find((x) => x.name === name)!
const down = (x: BgpSession, bgpState = 'Active', lastError = 'Socket: Connection refused') =>
  Object.assign(x, {state: 'start', bgpState, lastError})

describe('BGP sessions', () => {
  it("BGP_SESSION_DOWN: the reflector's session to node3 is Active; evidence as birdc prints it", () => {
    const s = broken('calico-rr', (s) => {
      down(session(s, 'node1', 'Node_172_31_0_13'))
    })
    const f = only(s, 'BGP_SESSION_DOWN')
    expect(f).toMatchObject({node: 'node1', subject: 'Node_172_31_0_13 → node3'})
    expect(f.evidence[0]).toBe(
      `Node_172_31_0_13 BGP        ---        start  ${session(s, 'node1', 'Node_172_31_0_13').since}  Active        Socket: Connection refused`,
    )
    expect(f.evidence).toContain('    Neighbor address: 172.31.0.13')
    expect(f.fix).toContain('iptables -I INPUT -p tcp --dport 179 -s 172.31.0.13 -j ACCEPT')
    expect(f.fix).toContain('birdc restart Node_172_31_0_13')
  })

  it('BIRD not running on node2: its peers see their sessions down, and node2 itself is named', () => {
    const s = broken('calico-bgp', (s) => {
      const n2 = node(s, 'node2')
      delete n2.bird
      n2.processes = []
      n2.sections['bird-protocols'] = {status: 'absent', message: 'no BIRD control socket at /run/calico/bird.ctl'}
      n2.sections['bird-routes'] = {status: 'absent', message: 'no BIRD control socket at /run/calico/bird.ctl'}
      down(session(s, 'node1', 'Mesh_172_31_0_12'))
      down(session(s, 'node3', 'Mesh_172_31_0_12'))
    })
    const f = findings(s, 'BGP_SESSION_DOWN')
    expect(f.map((x) => [x.node, x.subject])).toEqual([
      ['node1', 'Mesh_172_31_0_12 → node2'],
      ['node3', 'Mesh_172_31_0_12 → node2'],
      ['node2', 'BIRD'],
    ])
    expect(f[2]!.evidence).toEqual(['birdc: no BIRD control socket at /run/calico/bird.ctl'])
    expect(f[2]!.fix).toContain(
      'kubectl -n kube-system delete pod -l k8s-app=calico-node --field-selector spec.nodeName=node2',
    )
  })

  it('a flannel node without BIRD is not missing one', () => {
    expect(codes(broken('flannel-vxlan', () => {}))).toEqual([])
  })

  it('BGP_AS_MISMATCH: node2 announces AS 64513 while its peers expect 64512 (instead of BGP_SESSION_DOWN)', () => {
    const s = broken('calico-bgp', (s) => {
      s.nodes[1]!.annotations['projectcalico.org/ASNumber'] = '64513'
      down(session(s, 'node1', 'Mesh_172_31_0_12'), 'OpenSent', 'Received: Bad peer AS')
      down(session(s, 'node3', 'Mesh_172_31_0_12'), 'Active', 'Received: Bad peer AS')
    })
    const f = findings(s, 'BGP_AS_MISMATCH')
    expect(f.map((x) => x.node)).toEqual(['node1', 'node3'])
    expect(f[0]!.evidence).toContain('    Neighbor AS:      64512')
    expect(f[0]!.evidence).toContain('    Last error:       Received: Bad peer AS')
    expect(f[0]!.evidence).toContain('node2: projectcalico.org/ASNumber: 64513')
    expect(f[0]!.fix).toContain('# the peering expects AS 64512, this node runs 64512: make them agree')
    expect(findings(s, 'BGP_SESSION_DOWN')).toEqual([])
  })

  it("BGP_ROUTE_NOT_INSTALLED: a reflected route BIRD holds that the client's kernel lacks", () => {
    const s = broken('calico-rr', (s) => {
      node(s, 'node3').routes = node(s, 'node3').routes.filter((r) => r.dst !== '172.20.2.0/26')
    })
    const f = only(s, 'BGP_ROUTE_NOT_INSTALLED')
    expect(f).toMatchObject({
      node: 'node3',
      subject: '172.20.2.0/26',
      evidence: ['172.20.2.0/26 unicast [Node_172_31_0_11] * from 172.31.0.11 via 172.31.0.12 on eth0'],
    })
    expect(f.message).toContain("(node2's pods)")
    expect(codes(s)).toEqual(['BGP_ROUTE_NOT_INSTALLED'])
  })

  it('BGP_PEER_UNKNOWN: a mesh session to an address that is no node (not also BGP_SESSION_DOWN); a configured global peer is fine', () => {
    const s = broken('calico-bgp', (s) => {
      node(s, 'node1').bird!.sessions.push({
        name: 'Mesh_172_31_0_99',
        state: 'start',
        bgpState: 'Connect',
        since: '08:04:13.846',
        neighborAddress: '172.31.0.99',
        neighborAs: 64512,
        localAs: 64512,
        lastError: 'Socket: No route to host',
      })
      node(s, 'node2').bird!.sessions.push({
        name: 'Global_172_31_0_250',
        state: 'up',
        bgpState: 'Established',
        neighborAddress: '172.31.0.250',
        neighborAs: 65000,
        localAs: 64512,
      })
    })
    const f = only(s, 'BGP_PEER_UNKNOWN')
    expect(f).toMatchObject({severity: 'warning', node: 'node1', subject: 'Mesh_172_31_0_99'})
    // the row as bird2 printed it (fixtures/bird/bird2-node1-protocols.txt)
    expect(f.evidence[0]).toBe(
      'Mesh_172_31_0_99 BGP        ---        start  08:04:13.846  Connect       Socket: No route to host',
    )
    expect(f.fix).not.toContain('calicoctl delete node')
    expect(f.fix).toContain('172.31.0.99')
    expect(codes(s)).toEqual(['BGP_PEER_UNKNOWN'])
  })
})

describe('BGP topology', () => {
  it('BGP_MESH_TOO_LARGE: a full mesh of 101 nodes (cluster-wide)', () => {
    const s = broken('calico-bgp', (s) => {
      for (let i = 4; i <= 101; i++)
        s.nodes.push({name: `node${i}`, internalIP: `172.31.1.${i}`, podCIDRs: [], annotations: {}, labels: {}})
    })
    const f = only(s, 'BGP_MESH_TOO_LARGE')
    expect(f.node).toBeUndefined()
    expect(f.message).toContain('100 sessions per node, 5050 in all')
    expect(codes(broken('calico-bgp', () => {}))).toEqual([])
  })

  it('RR_CLUSTER_ID_CONFLICT: two reflectors share 244.0.0.1 but serve different clients', () => {
    const rr2 = (clients: string[]) =>
      broken('calico-rr', (s) => {
        s.nodes[1]!.annotations['projectcalico.org/RouteReflectorClusterID'] = '244.0.0.1'
        for (const ip of clients) {
          node(s, 'node2').bird!.sessions.push({
            name: `Node_${ip.replace(/\./g, '_')}`,
            state: 'up',
            bgpState: 'Established',
            neighborAddress: ip,
            neighborAs: 64512,
            localAs: 64512,
            session: 'internal multihop route-reflector AS4',
          })
        }
      })
    const s = rr2(['172.31.0.14'])
    const f = only(s, 'RR_CLUSTER_ID_CONFLICT')
    expect(f.node).toBeUndefined()
    expect(f.subject).toBe('cluster ID 244.0.0.1')
    expect(f.evidence).toEqual([
      'node1: projectcalico.org/RouteReflectorClusterID: 244.0.0.1',
      'node1 reflects for: 172.31.0.13,172.31.0.14',
      'node2: projectcalico.org/RouteReflectorClusterID: 244.0.0.1',
      'node2 reflects for: 172.31.0.14',
    ])
    // redundant reflectors for the same clients: what a shared cluster ID is for
    expect(findings(rr2(['172.31.0.13', '172.31.0.14']), 'RR_CLUSTER_ID_CONFLICT')).toEqual([])
  })
})
