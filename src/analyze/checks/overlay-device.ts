/**
 * Overlay checks on the tunnel device itself: there, up, the same VNI and
 * port as everywhere else, its checksum offload, and flannel udp's daemon.
 */
import type {Link, NodeState} from '../../model/node-state.js'
import type {SnapshotNode} from '../../model/snapshot.js'
import type {CheckContext} from './context.js'
import {linkLine, noDeviceLine, routeLine} from './evidence.js'
import {type Check, raise, type Raised} from './raise.js'

/** The backend's tunnel device on a node, when links were read and it is there. */
export function tunnelLink(ctx: CheckContext, state: NodeState): Link | undefined {
  const t = ctx.profile.tunnel
  return t && ctx.ok(state, 'links') ? ctx.link(state, t.dev) : undefined
}

/** Administratively up and not reported down: the kernel keeps routes through it. */
export function isUp(l: Link): boolean {
  return l.adminUp && l.operstate !== 'DOWN' && l.operstate !== 'LOWERLAYERDOWN'
}

/** The tunnel exists and is up: per-peer state through it is worth checking. */
export function tunnelUsable(ctx: CheckContext, state: NodeState): Link | undefined {
  const l = tunnelLink(ctx, state)
  return l && isUp(l) ? l : undefined
}

export const tunnelDeviceMissing: Check = (ctx) => {
  const t = ctx.profile.tunnel
  if (!t) return []
  return ctx.collected().flatMap(({node, state}) => {
    if (!ctx.ok(state, 'links') || ctx.link(state, t.dev)) return []
    return [
      raise('TUNNEL_DEVICE_MISSING', {
        node: node.name,
        subject: t.dev,
        message: `${t.dev} does not exist on ${node.name}: ${ctx.profile.name} needs it for every peer's pods (the per-peer routes, neighbours and FDB entries through it are gone with it)`,
        evidence: [noDeviceLine(t.dev)],
        vars: {node: node.name, dev: t.dev},
      }),
    ]
  })
}

export const tunnelDeviceDown: Check = (ctx) =>
  ctx.collected().flatMap(({node, state}) => {
    const l = tunnelLink(ctx, state)
    if (!l || isUp(l)) return []
    return [
      raise('TUNNEL_DEVICE_DOWN', {
        node: node.name,
        subject: l.name,
        message: `${l.name} on ${node.name} is ${l.adminUp ? `operationally ${l.operstate}` : 'administratively down'}: the kernel drops the routes through it, so no peer's pods are reachable`,
        evidence: [linkLine(l)],
        vars: {node: node.name, dev: l.name},
      }),
    ]
  })

/** The value most nodes have; a tie goes to the backend's default. */
function consensus(values: number[], fallback: number | undefined): number | undefined {
  const counts = new Map<number, number>()
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1)
  const max = Math.max(0, ...counts.values())
  const top = [...counts.entries()].filter(([, n]) => n === max).map(([v]) => v)
  if (top.length === 1) return top[0]
  return fallback !== undefined && top.includes(fallback) ? fallback : undefined
}

function vxlanOutliers(
  ctx: CheckContext,
  field: 'port' | 'vni',
): Array<{node: SnapshotNode; link: Link; expected: number; witness?: {node: string; link: Link}}> {
  const t = ctx.profile.tunnel
  if (!t || t.kind !== 'vxlan') return []
  const devs = ctx.collected().flatMap(({node, state}) => {
    const link = tunnelLink(ctx, state)
    return link?.vxlan ? [{node, link, value: link.vxlan[field]}] : []
  })
  if (devs.length < 2) return []
  const expected = consensus(
    devs.map((d) => d.value),
    field === 'port' ? t.port : t.vni,
  )
  if (expected === undefined) return []
  const witness = devs.find((d) => d.value === expected)
  return devs
    .filter((d) => d.value !== expected)
    .map((d) => ({
      node: d.node,
      link: d.link,
      expected,
      ...(witness ? {witness: {node: witness.node.name, link: witness.link}} : {}),
    }))
}

export const vxlanPortMismatch: Check = (ctx) =>
  vxlanOutliers(ctx, 'port').map(({node, link, expected, witness}) =>
    raise('VXLAN_PORT_MISMATCH', {
      node: node.name,
      subject: link.name,
      message: `${link.name} on ${node.name} uses UDP port ${link.vxlan!.port}; the other nodes send to and listen on ${expected}, so vxlan traffic between them is refused`,
      evidence: [linkLine(link), ...(witness ? [`${witness.node}: ${linkLine(witness.link)}`] : [])],
      vars: {port: expected, node: node.name, dev: link.name},
    }),
  )

export const vniMismatch: Check = (ctx) =>
  vxlanOutliers(ctx, 'vni').map(({node, link, expected, witness}) =>
    raise('VNI_MISMATCH', {
      node: node.name,
      subject: link.name,
      message: `${link.name} on ${node.name} has VNI ${link.vxlan!.vni}; the other nodes use VNI ${expected}, so neither side accepts the other's frames`,
      evidence: [linkLine(link), ...(witness ? [`${witness.node}: ${linkLine(witness.link)}`] : [])],
      vars: {vni: expected, dev: link.name, node: node.name},
    }),
  )

/**
 * The heuristic, stated plainly: the netfilter bug that corrupted the outer
 * UDP checksum of vxlan packets (flannel #1279, Calico #3145) was fixed in
 * Linux 5.7, and Calico turns the offload off on kernels older than that. So:
 * tx-checksum-ip-generic on, on a kernel older than 5.7, is worth knowing.
 * Distributions backport fixes, and NAT between nodes can still trigger it on
 * newer kernels, so this is information, not a diagnosis.
 */
const FIXED_IN: [number, number] = [5, 7]

export function kernelOlderThan(release: string | undefined, [major, minor]: [number, number]): boolean | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release ?? '')
  if (!m) return undefined
  const a = Number(m[1])
  const b = Number(m[2])
  return a < major || (a === major && b < minor)
}

export const vxlanCsumOffload: Check = (ctx) => {
  const t = ctx.profile.tunnel
  if (!t || t.kind !== 'vxlan') return []
  return ctx.collected().flatMap(({node, state}) => {
    const features = state.offloads?.[t.dev]
    if (!ctx.ok(state, 'offloads') || features?.['tx-checksum-ip-generic'] !== true) return []
    if (kernelOlderThan(state.kernel, FIXED_IN) !== true) return []
    return [
      raise('VXLAN_CSUM_OFFLOAD', {
        node: node.name,
        subject: t.dev,
        severity: 'info',
        message: `${t.dev} on ${node.name} offloads the outer UDP checksum on kernel ${state.kernel}, older than the 5.7 netfilter fix: if Service traffic across nodes stalls, turn the offload off (distributions may have backported the fix)`,
        evidence: [`uname -r: ${state.kernel}`, `ethtool -k ${t.dev}: tx-checksum-ip-generic: on`],
        vars: {dev: t.dev},
      }),
    ]
  })
}

/** flanneld itself, or the lab's stand-in for it. */
const UDP_DAEMON = /^(flanneld|netctl-udp-for)/

export const udpDaemonDown: Check = (ctx) => {
  if (ctx.profile.mode !== 'flannel-udp') return []
  return ctx.collected().flatMap(({node, state}): Raised[] => {
    const running = state.processes.some(
      (p) => UDP_DAEMON.test(p.name) || /\b(flanneld|netctl-udp-forwarder)\b/.test(p.args),
    )
    const tun = ctx.ok(state, 'links') ? ctx.link(state, 'flannel0') : undefined
    const daemonGone = ctx.ok(state, 'processes') && !running
    const deviceGone = ctx.ok(state, 'links') && !tun
    if (!daemonGone && !deviceGone) return []
    const route = state.routes.find((r) => r.dev === 'flannel0' && r.table === 'main' && r.family === 'inet')
    const why = daemonGone
      ? 'neither flanneld nor the udp forwarder runs in its network namespace'
      : 'flannel0, which the daemon holds open, is gone'
    return [
      raise('UDP_DAEMON_DOWN', {
        node: node.name,
        subject: 'flanneld (udp)',
        message: `${node.name}: ${why}; nothing carries packets between flannel0 and UDP 8285`,
        evidence: [tun ? linkLine(tun) : noDeviceLine('flannel0'), ...(route ? [routeLine(route)] : [])],
        vars: {node: node.name},
      }),
    ]
  })
}
