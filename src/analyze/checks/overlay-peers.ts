/**
 * Overlay checks per peer, on vxlan backends: for every other node, the
 * PERMANENT neighbour `<vtepIP> lladdr <VtepMAC>` and the FDB entry
 * `<VtepMAC> dst <peerIP> self permanent` on the tunnel device, compared with
 * what the peer announces (its annotation) and what its device really has.
 */
import type {FdbEntry, Link, Neighbour, NodeState} from '../../model/node-state.js'
import type {SnapshotNode} from '../../model/snapshot.js'
import {sharedBy} from './addressing.js'
import type {CheckContext, Vtep} from './context.js'
import {fdbLine, linkLine, neighLine, routeLine, someNames} from './evidence.js'
import {nativeRoutes} from './native.js'
import {tunnelUsable} from './overlay-device.js'
import {type Check, raise, type Raised, raisedOver} from './raise.js'
import type {StateIndex} from './state-index.js'

const ZERO_MAC = '00:00:00:00:00:00'
const mac = (m: string | undefined): string => (m ?? '').toLowerCase()

export interface PeerView {
  node: SnapshotNode
  state: NodeState
  /** the state's tables, indexed */
  index: StateIndex
  dev: Link
  peer: SnapshotNode
  peerIP: string
  vtep: Vtep
  /** MACs the peer may rightly be reached at: its announced VTEP MAC and its device's own (none, one or both) */
  goodMACs: readonly string[]
  fdb: FdbEntry[]
  neigh?: Neighbour
}

/**
 * Every (node, peer) pair whose vxlan state can be checked: the tunnel is up, links / neighbours / FDB were read.
 * Built once per snapshot and shared by the checks that read it.
 */
export function vxlanPeerViews(ctx: CheckContext): PeerView[] {
  return ctx.nodeMemo('vxlanPeerViews', () => peerViewsOf(ctx))
}

function peerViewsOf(ctx: CheckContext): PeerView[] {
  const t = ctx.profile.tunnel
  if (!t || t.kind !== 'vxlan' || ctx.profile.peerRoute !== 'vtep') return []
  // what a peer looks like is the same from every node: worked out once per peer, not once per pair (nor per node visit)
  const peers = ctx.memo('vxlanPeers', () => {
    const out: Array<{peer: SnapshotNode; peerIP: string; vtep: Vtep; goodMACs: readonly string[]}> = []
    for (const peer of ctx.nodes) {
      // no pod subnet: the agent has nothing to program for that peer
      if (ctx.podNets(peer).length === 0) continue
      const vtep = ctx.vtep(peer)
      const peerState = ctx.state(peer.name)
      const own = peerState && ctx.link(peerState, t.dev)?.mac
      // at most two, in an array: no set made per peer of the cluster
      const goodMACs = vtep.mac
        ? own && mac(own) !== vtep.mac
          ? [vtep.mac, mac(own)]
          : [vtep.mac]
        : own
          ? [mac(own)]
          : []
      out.push({peer, peerIP: ctx.underlayIP(peer), vtep, goodMACs})
    }
    return out
  })
  const views: PeerView[] = []
  for (const {node, state} of ctx.examined()) {
    const dev = tunnelUsable(ctx, state)
    if (!dev || !ctx.ok(state, 'neighbours', 'fdb')) continue
    const ix = ctx.index(state)
    const fdb = ix.fdbOn(dev.name)
    const nativeRouteTo = nativeRoutes(ctx, node, state)
    for (const {peer, peerIP, vtep, goodMACs} of peers) {
      // routed natively (DirectRouting, CrossSubnet): no tunnel state either
      if (peer.name === node.name || nativeRouteTo(peer, peerIP)) continue
      // every view of one shape (neigh set, if only to undefined): the checks that read them stay monomorphic
      const neigh = vtep.ip ? ix.neighbour(dev.name, vtep.ip) : undefined
      views.push({node, state, index: ix, dev, peer, peerIP, vtep, goodMACs, fdb, neigh})
    }
  }
  return views
}

/** The route through the tunnel to the peer's pods, for evidence. */
function peerRouteLines(ctx: CheckContext, v: PeerView): string[] {
  const nets = ctx.podNets(v.peer)
  return v.state.routes.filter((r) => r.family === 'inet' && r.table === 'main' && nets.includes(r.dst)).map(routeLine)
}

const subjectOf = (v: PeerView): string => `${v.dev.name} → ${v.peer.name} (${v.peerIP})`

export const fdbMissing: Check = (ctx) =>
  raisedOver(vxlanPeerViews(ctx), (v) => {
    const ix = v.index
    if (ix.fdbTo(v.dev.name, v.peerIP).length > 0 || ix.fdbHasMAC(v.dev.name, v.goodMACs)) return undefined
    const known = v.vtep.mac !== undefined
    return raise('FDB_MISSING', {
      node: v.node.name,
      peers: [v.peer.name],
      subject: subjectOf(v),
      message: `${v.dev.name} on ${v.node.name} has no FDB entry for ${v.peer.name}: ${known ? `${v.vtep.mac} dst ${v.peerIP}` : `nothing points at ${v.peerIP}`}, so frames to its pods have no outer destination`,
      evidence: [...(v.vtep.macSource ? [v.vtep.macSource] : []), ...v.fdb.filter((f) => f.dst).map(fdbLine)],
      vars: {
        peer: v.peer.name,
        peerIP: v.peerIP,
        dev: v.dev.name,
        node: v.node.name,
        ...(known ? {vtepMAC: v.vtep.mac!} : {}),
      },
      ...(known ? {} : {without: ['vtepMAC']}),
    })
  })

export const neighMissing: Check = (ctx) =>
  raisedOver(vxlanPeerViews(ctx), (v) => {
    if (!v.vtep.ip || (v.neigh?.lladdr && !v.neigh.state.some((s) => s === 'FAILED' || s === 'INCOMPLETE')))
      return undefined
    const known = v.vtep.mac !== undefined
    return raise('NEIGH_MISSING', {
      node: v.node.name,
      peers: [v.peer.name],
      subject: subjectOf(v),
      message: `${v.dev.name} on ${v.node.name} has ${v.neigh ? `only a ${v.neigh.state.join(',')} entry` : 'no neighbour entry'} for ${v.peer.name}'s VTEP ${v.vtep.ip}, so packets routed to it cannot be framed`,
      evidence: [
        ...peerRouteLines(ctx, v),
        ...(v.neigh ? [neighLine(v.neigh)] : []),
        ...(v.vtep.macSource ? [v.vtep.macSource] : []),
      ],
      vars: {peer: v.peer.name, vtepIP: v.vtep.ip, dev: v.dev.name, ...(known ? {vtepMAC: v.vtep.mac!} : {})},
      ...(known ? {} : {without: ['vtepMAC']}),
    })
  })

export const neighNotPermanent: Check = (ctx) =>
  raisedOver(vxlanPeerViews(ctx), (v) => {
    const n = v.neigh
    if (!n?.lladdr || n.state.some((s) => s === 'PERMANENT' || s === 'NOARP' || s === 'FAILED' || s === 'INCOMPLETE'))
      return undefined
    if (v.goodMACs.length > 0 && !v.goodMACs.includes(mac(n.lladdr))) return undefined // a wrong MAC is VTEP_MAC_MISMATCH
    return raise('NEIGH_NOT_PERMANENT', {
      node: v.node.name,
      peers: [v.peer.name],
      subject: subjectOf(v),
      message: `the neighbour entry for ${v.peer.name}'s VTEP ${n.dst} on ${v.node.name} is ${n.state.join(',')}, not PERMANENT: it can age out and nothing resolves it again`,
      evidence: [neighLine(n)],
      vars: {vtepIP: n.dst, vtepMAC: v.vtep.mac ?? mac(n.lladdr), dev: v.dev.name},
    })
  })

/** Entries this node holds for a peer under a MAC the peer does not have (undefined: none). */
function staleForPeer(v: PeerView, macs: Map<string, string>): {neigh?: Neighbour; fdb: FdbEntry[]} | undefined {
  if (v.goodMACs.length === 0) return undefined
  const neigh = v.neigh?.lladdr && !v.goodMACs.includes(mac(v.neigh.lladdr)) ? v.neigh : undefined
  const ix = v.index
  const toPeer = ix.fdbTo(v.dev.name, v.peerIP)
  // the usual pair: its neighbour and FDB entries carry the peer's own MAC
  if (!neigh && toPeer.every((f) => v.goodMACs.includes(mac(f.mac)))) return undefined
  const hasGoodFdb = ix.fdbHasMAC(v.dev.name, v.goodMACs)
  const fdb = toPeer.filter(
    (f) =>
      mac(f.mac) !== ZERO_MAC &&
      !macs.has(mac(f.mac)) &&
      (!hasGoodFdb || (neigh !== undefined && mac(neigh.lladdr) === mac(f.mac))),
  )
  return {...(neigh ? {neigh} : {}), fdb}
}

export const vtepMacMismatch: Check = (ctx) => [...vtepMacMismatchCluster(ctx), ...vtepMacMismatchPerPeer(ctx)]

/** The part of VTEP_MAC_MISMATCH a streamed run works out once: shared MACs, devices unlike their announcement. */
export const vtepMacMismatchCluster: Check = (ctx) => [...sharedVtepMAC(ctx), ...deviceMacMismatch(ctx)]

/** The part of VTEP_MAC_MISMATCH read from each node's neighbours and FDB, peer by peer. */
export const vtepMacMismatchPerPeer: Check = (ctx) => {
  const macs = ctx.vtepMACs()
  return raisedOver(vxlanPeerViews(ctx), (v) => {
    const stale = staleForPeer(v, macs)
    if (!stale || (!stale.neigh && stale.fdb.length === 0)) return undefined
    const staleMAC = mac(stale.neigh?.lladdr ?? stale.fdb[0]!.mac)
    const good = v.vtep.mac ?? v.goodMACs[0]!
    return raise('VTEP_MAC_MISMATCH', {
      node: v.node.name,
      peers: [v.peer.name],
      subject: subjectOf(v),
      message: `${v.node.name} reaches ${v.peer.name}'s VTEP at ${staleMAC}, but ${v.peer.name}'s VTEP MAC is ${good}: the peer drops frames addressed to another MAC`,
      evidence: [
        ...(stale.neigh ? [neighLine(stale.neigh)] : []),
        ...stale.fdb.map(fdbLine),
        ...(v.vtep.macSource ? [v.vtep.macSource] : []),
      ],
      vars: {staleMAC, peer: v.peer.name, vtepIP: v.vtep.ip ?? '', vtepMAC: good, dev: v.dev.name, peerIP: v.peerIP},
    })
  })
}

/** Nodes announcing one VTEP MAC (cloned machines, a copied annotation): a peer's FDB holds one entry per MAC, so all but one are unreachable. */
function sharedVtepMAC(ctx: CheckContext): Raised[] {
  const t = ctx.profile.tunnel
  if (!t || t.kind !== 'vxlan') return []
  return sharedBy(ctx.nodes, (n) => ctx.vtep(n).mac || undefined).map(([m, holders]): Raised => {
    const names = holders.map((h) => h.name)
    return raise('VTEP_MAC_MISMATCH', {
      peers: names,
      subject: `shared VTEP MAC ${m}`,
      message: `${holders.length} nodes announce the VTEP MAC ${m} (${someNames(names)}): a peer's FDB holds one entry per MAC, so frames for all but one of them go to the wrong node`,
      evidence: holders.map((h) => ctx.vtep(h).macSource ?? `${h.name}: VTEP MAC ${m}`),
      vars: {node: names[1]!, keep: names[0]!, vtepMAC: m, dev: t.dev},
      fixTemplate:
        '# each node needs a VTEP MAC of its own: keep <vtepMAC> on <keep>; on every other node listed, e.g. <node>, delete <dev> and restart the CNI agent (flanneld, calico-node) so that it is made again with a fresh MAC and announced\nip link delete <dev>',
    })
  })
}

/** A node's own device MAC differs from the MAC it announces: every peer programs the announced one. */
function deviceMacMismatch(ctx: CheckContext): Raised[] {
  const t = ctx.profile.tunnel
  if (!t || t.kind !== 'vxlan') return []
  return ctx.examined().flatMap(({node, state}): Raised[] => {
    const dev = ctx.ok(state, 'links') ? ctx.link(state, t.dev) : undefined
    const v = ctx.vtep(node)
    if (!dev?.mac || !v.mac || !v.macSource || v.macSource.includes(linkLine(dev)) || mac(dev.mac) === v.mac) return []
    return [
      raise('VTEP_MAC_MISMATCH', {
        node: node.name,
        subject: `${t.dev} on ${node.name}`,
        message: `${node.name}'s ${t.dev} has MAC ${mac(dev.mac)} but announces ${v.mac}: peers program the announced MAC and ${node.name} drops their frames (run the fix on every other node)`,
        evidence: [linkLine(dev), v.macSource],
        vars: {
          staleMAC: v.mac,
          peer: node.name,
          vtepIP: v.ip ?? '',
          vtepMAC: mac(dev.mac),
          dev: t.dev,
          peerIP: ctx.underlayIP(node),
        },
      }),
    ]
  })
}

export const fdbStale: Check = (ctx) => {
  const macs = ctx.vtepMACs()
  const t = ctx.profile.tunnel
  if (!t || t.kind !== 'vxlan') return []
  const out: Raised[] = []
  for (const {node, state} of ctx.examined()) {
    const dev = tunnelUsable(ctx, state)
    if (!dev || !ctx.ok(state, 'fdb')) continue
    // a loop over the node's entries (one per peer), nothing made for the many that are right
    for (const f of state.fdb) {
      if (f.dev !== dev.name || !f.dst) continue
      const ipOwner = ctx.ownerOfIP(f.dst)
      const fMAC = mac(f.mac)
      const macOwner = macs.get(fMAC)
      if (ipOwner && (fMAC === ZERO_MAC || macOwner === ipOwner)) continue
      // a MAC no node has, sent to a node: the peer's old VTEP MAC (VTEP_MAC_MISMATCH) unless a right entry exists too
      if (ipOwner && !macOwner && ipOwner !== node.name) {
        const right = state.fdb.some((g) => g.dev === dev.name && macs.get(mac(g.mac)) === ipOwner)
        const neigh = state.neighbours.find((n) => n.dev === dev.name && mac(n.lladdr) === fMAC)
        if (!right || neigh) continue
      }
      const owner = macOwner ? ctx.node(macOwner) : undefined
      const why = !ipOwner
        ? `${f.dst} is no node's address`
        : macOwner
          ? `${f.mac} is ${macOwner}'s VTEP, but ${f.dst} is ${ipOwner}`
          : `no node has the MAC ${f.mac}`
      out.push(
        raise('FDB_STALE', {
          node: node.name,
          peers: [...(owner ? [owner.name] : []), ...(ipOwner ? [ipOwner] : [])],
          subject: `${dev.name}: ${f.mac} dst ${f.dst}`,
          message: `a stale FDB entry on ${node.name}: ${why}`,
          evidence: [fdbLine(f)],
          vars: {
            vtepMAC: fMAC,
            dev: dev.name,
            staleIP: f.dst,
            ...(owner ? {peer: owner.name, peerIP: ctx.underlayIP(owner)} : {}),
          },
          ...(owner ? {} : {without: ['peer', 'peerIP']}),
        }),
      )
    }
  }
  return out
}
