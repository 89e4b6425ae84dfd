/**
 * BGP checks (Calico's BIRD): sessions Established, AS numbers agreeing,
 * learnt routes in the kernel, the mesh's size, route reflector cluster IDs,
 * and sessions to addresses that are no node.
 */
import type {BgpSession, NodeState} from '../../model/node-state.js'
import type {SnapshotNode} from '../../model/snapshot.js'
import {parsePrefix, prefixContains} from '../ip.js'
import {ANN, type CheckContext} from './context.js'
import {annotationLine, birdDetailLines, birdProtocolLine, birdRouteLine, routeLine} from './evidence.js'
import {type Check, raise, type Raised} from './raise.js'

/** Calico names its sessions to nodes Mesh_<ip> (full mesh) and Node_<ip> (BGPPeers to nodes, reflectors). */
const NODE_SESSION = /^(Mesh|Node)_/

function birdNodes(ctx: CheckContext): Array<{node: SnapshotNode; state: NodeState; sessions: BgpSession[]}> {
  return ctx
    .collected()
    .flatMap(({node, state}) =>
      state.bird && ctx.ok(state, 'bird-protocols') ? [{node, state, sessions: state.bird.sessions}] : [],
    )
}

/** BIRD is expected where the backend uses it, or where other nodes of a Calico cluster run it. */
function birdExpected(ctx: CheckContext): boolean {
  return ctx.profile.bgp || (ctx.profile.family === 'calico' && birdNodes(ctx).length > 0)
}

function asMismatch(ctx: CheckContext, s: BgpSession): {peer?: SnapshotNode; announced?: number} | undefined {
  const owner = s.neighborAddress ? ctx.ownerOfIP(s.neighborAddress) : undefined
  const peer = owner ? ctx.node(owner) : undefined
  const ann = peer?.annotations[ANN.calicoAS]
  const announced = ann && /^\d+$/.test(ann) ? Number(ann) : undefined
  const differs = announced !== undefined && s.neighborAs !== undefined && announced !== s.neighborAs
  if (!differs && !/bad peer as/i.test(s.lastError ?? '')) return undefined
  return {...(peer ? {peer} : {}), ...(announced !== undefined ? {announced} : {})}
}

const unknownPeer = (ctx: CheckContext, s: BgpSession): boolean =>
  NODE_SESSION.test(s.name) && s.neighborAddress !== undefined && ctx.ownerOfIP(s.neighborAddress) === undefined

export const bgpSessionDown: Check = (ctx) => [...sessionsDown(ctx), ...birdNotRunning(ctx)]

function sessionsDown(ctx: CheckContext): Raised[] {
  return birdNodes(ctx).flatMap(({node, sessions}) =>
    sessions.flatMap((s): Raised[] => {
      if (s.bgpState === 'Established' || unknownPeer(ctx, s) || asMismatch(ctx, s)) return []
      const owner = s.neighborAddress ? ctx.ownerOfIP(s.neighborAddress) : undefined
      return [
        raise('BGP_SESSION_DOWN', {
          node: node.name,
          peers: owner ? [owner] : [],
          subject: `${s.name}${owner ? ` → ${owner}` : ''}`,
          message: `${node.name}'s BGP session ${s.name} to ${owner ?? s.neighborAddress ?? '?'} is ${s.state === 'down' ? 'disabled' : s.bgpState}${s.lastError ? ` (${s.lastError})` : ''}: no routes are exchanged over it`,
          evidence: [birdProtocolLine(s), ...birdDetailLines(s)],
          vars: {peerIP: s.neighborAddress ?? '', protocol: s.name},
        }),
      ]
    }),
  )
}

/** A node where BIRD should run and does not: its control socket is gone and no bird process is there. */
function birdNotRunning(ctx: CheckContext): Raised[] {
  if (!birdExpected(ctx)) return []
  return ctx.collected().flatMap(({node, state}): Raised[] => {
    const section = state.sections['bird-protocols']
    if (!section || section.status === 'ok' || !ctx.ok(state, 'processes')) return []
    if (state.processes.some((p) => p.name === 'bird' || p.name === 'bird6')) return []
    return [
      raise('BGP_SESSION_DOWN', {
        node: node.name,
        peers: ctx.peers(node.name).map((p) => p.name),
        subject: 'BIRD',
        message: `BIRD is not running on ${node.name}: none of its BGP sessions can be up, and peers lose its routes`,
        evidence: [`birdc: ${section.message ?? section.status}`],
        vars: {node: node.name},
        fixTemplate: [
          '# calico-node runs BIRD: restart it on <node> and read its log',
          'kubectl -n kube-system delete pod -l k8s-app=calico-node --field-selector spec.nodeName=<node>',
        ].join('\n'),
      }),
    ]
  })
}

export const bgpAsMismatch: Check = (ctx) =>
  birdNodes(ctx).flatMap(({node, sessions}) =>
    sessions.flatMap((s): Raised[] => {
      const m = asMismatch(ctx, s)
      if (!m) return []
      const peerAS = s.neighborAs ?? m.announced ?? '?'
      return [
        raise('BGP_AS_MISMATCH', {
          node: node.name,
          peers: m.peer ? [m.peer.name] : [],
          subject: `${s.name}${m.peer ? ` → ${m.peer.name}` : ''}`,
          message: `${node.name} expects ${m.peer?.name ?? s.neighborAddress} in AS ${s.neighborAs ?? '?'}${m.announced !== undefined ? `, but it runs AS ${m.announced}` : ''}${s.lastError ? ` (${s.lastError})` : ''}`,
          evidence: [
            birdProtocolLine(s),
            ...birdDetailLines(s),
            ...(m.peer && m.announced !== undefined
              ? [`${m.peer.name}: ${annotationLine(ANN.calicoAS, String(m.announced))}`]
              : []),
          ],
          vars: {peerAS, localAS: s.localAs ?? '?', peer: m.peer?.name ?? s.neighborAddress ?? '', protocol: s.name},
        }),
      ]
    }),
  )

export const bgpRouteNotInstalled: Check = (ctx) =>
  birdNodes(ctx).flatMap(({node, state, sessions}) => {
    if (!ctx.ok(state, 'bird-routes', 'routes4')) return []
    const names = new Set(sessions.map((s) => s.name))
    // the kernel's routes looked up by destination in the node's index, not scanned per BIRD route
    const ix = ctx.index(state)
    const cluster = parsePrefix(ctx.snapshot.cluster.clusterCIDR)
    // Calico vxlan: Felix programs the routes itself, BIRD only carries them
    const anyProtocol = ctx.profile.mode === 'calico-vxlan'
    return (state.bird?.routes ?? []).flatMap((b): Raised[] => {
      if (!b.primary || !names.has(b.protocol) || (b.type ?? 'unicast') !== 'unicast') return []
      const prefix = parsePrefix(b.prefix)
      if (!cluster || !prefix || !prefixContains(cluster, prefix)) return []
      const kernel = ix.routesTo(b.prefix)
      if (kernel.some((r) => r.type === 'unicast' && (anyProtocol || r.protocol === 'bird'))) return []
      const owner = b.gateway ? ctx.ownerOfIP(b.gateway) : undefined
      return [
        raise('BGP_ROUTE_NOT_INSTALLED', {
          node: node.name,
          peers: owner ? [owner] : [],
          subject: b.prefix,
          message: `BIRD on ${node.name} has a best route for ${b.prefix}${owner ? ` (${owner}'s pods)` : ''} from ${b.protocol}, but the kernel ${kernel.length ? `holds ${kernel.map(routeLine).join('; ')} instead` : 'has no route for it'}`,
          evidence: [birdRouteLine(b), ...kernel.map(routeLine)],
          vars: {podCIDR: b.prefix},
        }),
      ]
    })
  })

/** Calico's advice: the full mesh up to about 100 nodes. */
export const MESH_LIMIT = 100

export const bgpMeshTooLarge: Check = (ctx) => {
  const mesh =
    ctx.profile.mode === 'calico-bgp' || birdNodes(ctx).some((b) => b.sessions.some((s) => s.name.startsWith('Mesh_')))
  const n = ctx.nodes.length
  if (!mesh || n <= MESH_LIMIT || !ctx.nodes[0]) return []
  return [
    raise('BGP_MESH_TOO_LARGE', {
      subject: `node-to-node mesh of ${n} nodes`,
      message: `${n} nodes in a full BGP mesh: ${n - 1} sessions per node, ${(n * (n - 1)) / 2} in all; route reflectors keep that constant`,
      evidence: birdNodes(ctx)
        .slice(0, 1)
        .flatMap(({node, sessions}) => [
          `${node.name}: ${sessions.filter((s) => s.name.startsWith('Mesh_')).length} Mesh_ sessions`,
        ]),
      vars: {node: ctx.nodes[0].name},
    }),
  ]
}

export const rrClusterIdConflict: Check = (ctx) => {
  const byID = new Map<string, Array<{node: SnapshotNode; clients?: Set<string>}>>()
  for (const node of ctx.nodes) {
    const id = node.annotations[ANN.calicoRRClusterID]
    if (!id) continue
    const sessions = ctx.state(node.name)?.bird?.sessions
    const clients = sessions
      ? new Set(
          sessions
            .filter((s) => /\broute-reflector\b/.test(s.session ?? '') && s.neighborAddress)
            .map((s) => s.neighborAddress!),
        )
      : undefined
    byID.set(id, [...(byID.get(id) ?? []), {node, ...(clients ? {clients} : {})}])
  }
  return [...byID.entries()].flatMap(([id, rrs]): Raised[] => {
    const known = rrs.filter((r) => r.clients !== undefined)
    if (known.length < 2) return []
    // the reflectors themselves peer too; compare the clients they serve
    const rrIPs = new Set(rrs.flatMap((r) => ctx.addressesOf(r.node)))
    const key = (c: Set<string>): string =>
      [...c]
        .filter((ip) => !rrIPs.has(ip))
        .sort()
        .join(',')
    if (new Set(known.map((r) => key(r.clients!))).size === 1) return []
    return [
      raise('RR_CLUSTER_ID_CONFLICT', {
        peers: rrs.map((r) => r.node.name),
        subject: `cluster ID ${id}`,
        message: `route reflectors ${rrs.map((r) => r.node.name).join(', ')} share cluster ID ${id} but serve different clients: routes one reflects to the other are dropped as loops`,
        evidence: known.flatMap((r) => [
          `${r.node.name}: ${annotationLine(ANN.calicoRRClusterID, id)}`,
          `${r.node.name} reflects for: ${key(r.clients!) || '(no clients)'}`,
        ]),
        vars: {clusterID: id, node: rrs[0]!.node.name},
      }),
    ]
  })
}

export const bgpPeerUnknown: Check = (ctx) =>
  birdNodes(ctx).flatMap(({node, sessions}) =>
    sessions.flatMap((s): Raised[] => {
      if (!unknownPeer(ctx, s)) return []
      return [
        raise('BGP_PEER_UNKNOWN', {
          node: node.name,
          subject: s.name,
          message: `${node.name} has a BGP session ${s.name} (${s.bgpState}) to ${s.neighborAddress}, which is no node of the cluster`,
          evidence: [birdProtocolLine(s), ...birdDetailLines(s)],
          vars: {peerIP: s.neighborAddress!},
          without: ['peer'],
        }),
      ]
    }),
  )
