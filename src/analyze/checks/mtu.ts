/**
 * MTU checks: the tunnel device must leave room for its encapsulation on the
 * uplink, pods must not send more than the path carries, and every node
 * should size its tunnel alike.
 */
import type {Link, NodeState, PodNetnsState} from '../../model/node-state.js'
import type {SnapshotNode} from '../../model/snapshot.js'
import type {CheckContext} from './context.js'
import {linkLine} from './evidence.js'
import {tunnelLink} from './overlay-device.js'
import {type Check, raise, type Raised} from './raise.js'

interface MtuView {
  node: SnapshotNode
  state: NodeState
  uplink: Link
  tunnel?: Link
  overhead: number
  /** the largest packet a pod may send into the path */
  podMax: number
}

function mtuViews(ctx: CheckContext): MtuView[] {
  return ctx.collected().flatMap(({node, state}) => {
    if (!ctx.ok(state, 'links', 'addresses')) return []
    const uplink = ctx.uplink(node, state)
    if (!uplink) return []
    const tunnel = tunnelLink(ctx, state)
    const overhead = ctx.profile.tunnel?.overhead ?? 0
    const podMax = tunnel ? Math.min(tunnel.mtu, uplink.mtu - overhead) : uplink.mtu - overhead
    return [{node, state, uplink, ...(tunnel ? {tunnel} : {}), overhead, podMax}]
  })
}

/** A pod's own interface (eth0), as it sees it. */
function podLink(p: PodNetnsState): Link | undefined {
  return p.links.find((l) => l.name === 'eth0') ?? p.links.find((l) => l.name !== 'lo')
}

const podSubject = (p: PodNetnsState, l: Link): string => `pod ${p.namespace}/${p.name} ${l.name}`

export const mtuExceedsEncap: Check = (ctx) => {
  if (!ctx.profile.tunnel) return []
  return mtuViews(ctx).flatMap((v): Raised[] => {
    const room = v.uplink.mtu - v.overhead
    const out: Raised[] = []
    if (v.tunnel && v.tunnel.mtu > room) {
      out.push(
        raise('MTU_EXCEEDS_ENCAP', {
          node: v.node.name,
          subject: v.tunnel.name,
          message: `${v.tunnel.name} on ${v.node.name} has MTU ${v.tunnel.mtu}; with ${v.overhead} bytes of encapsulation a full packet is ${v.tunnel.mtu + v.overhead}, more than ${v.uplink.name}'s ${v.uplink.mtu}`,
          evidence: [linkLine(v.tunnel), linkLine(v.uplink)],
          vars: {dev: v.tunnel.name, mtu: room},
        }),
      )
    }
    for (const p of v.state.pods) {
      const l = podLink(p)
      if (!l || l.mtu <= room) continue
      out.push(
        raise('MTU_EXCEEDS_ENCAP', {
          node: v.node.name,
          subject: podSubject(p, l),
          message: `pod ${p.namespace}/${p.name} on ${v.node.name} sends up to ${l.mtu} bytes; encapsulated (+${v.overhead}) that exceeds ${v.uplink.name}'s MTU ${v.uplink.mtu} (set it inside the pod's network namespace)`,
          evidence: [`${p.netns}: ${linkLine(l)}`, linkLine(v.uplink)],
          vars: {dev: l.name, mtu: room},
        }),
      )
    }
    return out
  })
}

/** The MTU most nodes give their tunnel device. */
function commonTunnelMtu(views: MtuView[]): number | undefined {
  const counts = new Map<number, number>()
  for (const v of views) if (v.tunnel) counts.set(v.tunnel.mtu, (counts.get(v.tunnel.mtu) ?? 0) + 1)
  const sorted = [...counts.entries()].sort((a, b) => b[1] - a[1])
  return sorted.length > 1 && sorted[0]![1] > sorted[1]![1] ? sorted[0]![0] : undefined
}

export const mtuMismatch: Check = (ctx) => {
  const views = mtuViews(ctx)
  const common = commonTunnelMtu(views)
  return views.flatMap((v): Raised[] => {
    const out: Raised[] = []
    const room = v.uplink.mtu - v.overhead
    if (common !== undefined && v.tunnel && v.tunnel.mtu !== common && v.tunnel.mtu <= room) {
      out.push(
        raise('MTU_MISMATCH', {
          node: v.node.name,
          subject: v.tunnel.name,
          message: `${v.tunnel.name} on ${v.node.name} has MTU ${v.tunnel.mtu}; the other nodes use ${common}`,
          evidence: [linkLine(v.tunnel)],
          vars: {dev: v.tunnel.name, mtu: Math.min(common, room)},
        }),
      )
    }
    const bridge = ctx.profile.bridge ? v.state.links.find((l) => l.name === ctx.profile.bridge) : undefined
    if (bridge && bridge.mtu > v.podMax) {
      out.push(
        raise('MTU_MISMATCH', {
          node: v.node.name,
          subject: bridge.name,
          message: `${bridge.name} on ${v.node.name} has MTU ${bridge.mtu}, above the ${v.podMax} the path to other nodes carries`,
          evidence: [linkLine(bridge), ...(v.tunnel ? [linkLine(v.tunnel)] : [linkLine(v.uplink)])],
          vars: {dev: bridge.name, mtu: v.podMax},
        }),
      )
    }
    for (const p of v.state.pods) {
      const l = podLink(p)
      // above the encapsulation room it is MTU_EXCEEDS_ENCAP instead
      if (!l || l.mtu <= v.podMax || (ctx.profile.tunnel && l.mtu > room)) continue
      out.push(
        raise('MTU_MISMATCH', {
          node: v.node.name,
          subject: podSubject(p, l),
          message: `pod ${p.namespace}/${p.name} on ${v.node.name} has MTU ${l.mtu}, above the ${v.podMax} of ${v.tunnel?.name ?? v.uplink.name} (set it inside the pod's network namespace)`,
          evidence: [`${p.netns}: ${linkLine(l)}`, linkLine(v.tunnel ?? v.uplink)],
          vars: {dev: l.name, mtu: v.podMax},
        }),
      )
    }
    return out
  })
}
