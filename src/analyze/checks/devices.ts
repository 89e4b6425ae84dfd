/**
 * The interfaces pod traffic crosses on a node: its uplink, the backend's
 * tunnel, the pod bridge, and each pod's host-side veth.
 */
import type {Link, NodeState} from '../../model/node-state.js'
import type {SnapshotNode} from '../../model/snapshot.js'
import type {CheckContext} from './context.js'

export interface PodPath {
  uplink?: Link
  tunnel?: Link
  bridge?: Link
  /** host ends of pod veths: enslaved to the bridge (flannel) or cali* (Calico) */
  hostVeths: Link[]
}

export function podPath(ctx: CheckContext, node: SnapshotNode, state: NodeState): PodPath {
  const uplink = ctx.uplink(node, state)
  const tunnel = ctx.profile.tunnel ? ctx.link(state, ctx.profile.tunnel.dev) : undefined
  const bridge = ctx.profile.bridge ? ctx.link(state, ctx.profile.bridge) : undefined
  const hostVeths = state.links.filter(
    (l) =>
      l.kind === 'veth' &&
      l.name !== uplink?.name &&
      ((bridge !== undefined && l.master === bridge.name) || l.name.startsWith('cali')),
  )
  return {...(uplink ? {uplink} : {}), ...(tunnel ? {tunnel} : {}), ...(bridge ? {bridge} : {}), hostVeths}
}

export function pathLinks(p: PodPath): Link[] {
  return [p.uplink, p.tunnel, p.bridge, ...p.hostVeths].filter((l): l is Link => l !== undefined)
}

/** sysctl writes a '.' in an interface name as '/': net.ipv4.conf.flannel/1.rp_filter. */
export function confKey(dev: string, setting: string): string {
  return `net.ipv4.conf.${dev.replace(/\./g, '/')}.${setting}`
}

/** An iptables interface match (`cali+` is a prefix) against a device name. */
export function ifaceMatches(pattern: string, dev: string): boolean {
  return pattern.endsWith('+') ? dev.startsWith(pattern.slice(0, -1)) : pattern === dev
}
