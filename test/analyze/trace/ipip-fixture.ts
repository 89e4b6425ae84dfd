/**
 * A Calico IPIP cluster, hand-built: the kernel here has no ipip, so the
 * recorded Calico BGP lab becomes what calico-node programs in IPIP Always
 * mode. Every node gets tunl0 as the handmade IPIP probe fixture records it
 * (ip -j -d link: kind ipip, NOARP, mtu 1480) with its tunnel address (the
 * block's first address, /32); every route BIRD put in the kernel towards a
 * peer's block, `via <nodeIP> dev eth0`, goes `via <nodeIP> dev tunl0 onlink`
 * instead, in the kernel and in BIRD's table alike; pod veths take the tunnel
 * MTU (1500 − 20).
 */
import {parseLinks} from '../../../src/collect/parse/iproute.js'
import type {Link} from '../../../src/model/node-state.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {sectionOf} from '../../helpers/fixtures.js'
import {network, snapshotFixture} from './fixtures.js'

export const IPIP_MTU = 1480

function tunl0(ifindex: number): Link {
  const link = parseLinks(sectionOf('calico-ipip-node1.handmade.out', 'links')).find((l) => l.name === 'tunl0')
  if (!link) throw new Error('the handmade IPIP probe fixture has no tunl0')
  return {...link, ifindex}
}

export function calicoIpipSnapshot(opts: {tunnelMtu?: number} = {}): Snapshot {
  const snap = snapshotFixture('calico-bgp-lab')
  snap.cluster.backend = 'calico-ipip'
  for (const node of snap.nodes) {
    const state = snap.nodeStates[node.name]!
    const link = tunl0(Math.max(...state.links.map((l) => l.ifindex)) + 1)
    state.links.push({...link, mtu: opts.tunnelMtu ?? link.mtu})
    state.addresses.push({
      dev: 'tunl0',
      family: 'inet',
      local: network(node.podCIDRs[0]!),
      prefixlen: 32,
      scope: 'global',
    })
    state.sysctls['net.ipv4.conf.tunl0.rp_filter'] = '0'
    state.sysctls['net.ipv4.conf.tunl0.forwarding'] = '1'
    for (const r of state.routes) {
      if (r.protocol === 'bird' && r.type === 'unicast' && r.dev === 'eth0' && r.gateway) {
        r.dev = 'tunl0'
        r.onlink = true
        r.flags = ['onlink']
      }
    }
    for (const r of state.bird?.routes ?? []) if (r.protocol.startsWith('Mesh_') && r.dev === 'eth0') r.dev = 'tunl0'
    for (const l of state.links) if (l.name.startsWith('cali')) l.mtu = IPIP_MTU
    for (const p of state.pods) for (const l of p.links) if (l.name === 'eth0') l.mtu = IPIP_MTU
  }
  return snap
}
