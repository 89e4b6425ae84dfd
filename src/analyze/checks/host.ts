/**
 * Host checks: the node's forwarding switches, reverse-path filter, bridge
 * netfilter, and the links pod traffic crosses.
 */
import type {Link, NodeState, Route} from '../../model/node-state.js'
import {LINK_NO_CARRIER_FIX} from '../catalogue/host.js'
import {endpointsOf, isReady} from '../service-endpoints.js'
import type {CheckContext} from './context.js'
import {confKey, pathLinks, podPath} from './devices.js'
import {BR_NF, brNetfilterLine, linkLine, routeLine, sysctlLine} from './evidence.js'
import {arrivalFrom} from './native.js'
import {isUp} from './overlay-device.js'
import {type Check, raise, type Raised} from './raise.js'

export const ipForwardDisabled: Check = (ctx) =>
  ctx.collected().flatMap(({node, state}): Raised[] => {
    if (!ctx.ok(state, 'sysctls')) return []
    const global = state.sysctls['net.ipv4.ip_forward']
    if (global === '0') {
      return [
        raise('IP_FORWARD_DISABLED', {
          node: node.name,
          subject: 'net.ipv4.ip_forward',
          message: `${node.name} does not forward IPv4: nothing its pods send leaves the node, and nothing for them comes in`,
          evidence: [sysctlLine('net.ipv4.ip_forward', global)],
          vars: {},
        }),
      ]
    }
    // forwarding on, but switched off on an interface pod traffic arrives on
    return pathLinks(podPath(ctx, node, state)).flatMap((l): Raised[] => {
      const key = confKey(l.name, 'forwarding')
      if (state.sysctls[key] !== '0') return []
      return [
        raise('IP_FORWARD_DISABLED', {
          node: node.name,
          subject: key,
          message: `${node.name} does not forward IPv4 packets that arrive on ${l.name}`,
          evidence: [
            sysctlLine(key, '0'),
            ...(global === undefined ? [] : [sysctlLine('net.ipv4.ip_forward', global)]),
          ],
          vars: {},
        }),
      ]
    })
  })

/** The route the node would use for a whole subnet: the exact one, else the longest non-default one covering it. */
export function routeCovering(ctx: CheckContext, state: NodeState, net: string): Route | undefined {
  return ctx.index(state).covering(net)
}

const routeDevs = (r: Route): string[] => (r.nexthops ? r.nexthops.map((n) => n.dev ?? '') : [r.dev ?? ''])

export const rpFilterAsymmetric: Check = (ctx) =>
  ctx.examined().flatMap(({node, state}): Raised[] => {
    if (!ctx.ok(state, 'sysctls', 'routes4', 'links', 'addresses')) return []
    const p = podPath(ctx, node, state)
    const all = Number(state.sysctls['net.ipv4.conf.all.rp_filter'] ?? 0)
    const seen = new Set<string>()
    // loose or no filtering where pod traffic can arrive: no peer's route back needs reading
    const strict = (l: Link | undefined) =>
      l !== undefined && Math.max(all, Number(state.sysctls[confKey(l.name, 'rp_filter')] ?? 0)) === 1
    if (!strict(p.uplink) && !strict(p.tunnel)) return []
    return ctx.peers(node.name).flatMap((peer): Raised[] => {
      // where packets from that peer's pods come in: the tunnel, or the uplink for native routing
      const arrival: Link | undefined = arrivalFrom(ctx, node, state, peer) === 'uplink' ? p.uplink : p.tunnel
      if (!arrival || seen.has(arrival.name)) return []
      const key = confKey(arrival.name, 'rp_filter')
      const own = Number(state.sysctls[key] ?? 0)
      if (Math.max(all, own) !== 1) return []
      for (const net of ctx.podNets(peer)) {
        const back = routeCovering(ctx, state, net)
        if (!back || back.type !== 'unicast' || routeDevs(back).includes(arrival.name)) continue
        seen.add(arrival.name)
        return [
          raise('RP_FILTER_ASYMMETRIC', {
            node: node.name,
            peers: [peer.name],
            subject: `${arrival.name} rp_filter`,
            message: `${node.name} filters strictly on ${arrival.name}, where ${peer.name}'s pods (${net}) arrive, but its route back to them leaves by ${routeDevs(back).join(',')}: their packets are dropped as spoofed`,
            evidence: [
              sysctlLine('net.ipv4.conf.all.rp_filter', String(all)),
              sysctlLine(key, String(own)),
              routeLine(back),
            ],
            vars: {dev: arrival.name},
          }),
        ]
      }
      return []
    })
  })

export const brNetfilterOff: Check = (ctx) => {
  if (!ctx.profile.bridge) return []
  // the nodes holding a ready endpoint of a Service: a pod beside one that reaches it by the Service gets
  // its reply bridged past conntrack, untranslated, and refuses it
  const endpointNodes = new Set(
    (ctx.snapshot.services ?? []).flatMap((s) =>
      endpointsOf(s)
        .filter(isReady)
        .map((e) => e.nodeName),
    ),
  )
  return ctx.collected().flatMap(({node, state}): Raised[] => {
    if (!ctx.ok(state, 'sysctls', 'links') || !ctx.link(state, ctx.profile.bridge!)) return []
    const v = state.sysctls[BR_NF]
    if (v !== undefined && v !== '0') return []
    const policy = ctx.profile.policy
    return [
      raise('BR_NETFILTER_OFF', {
        node: node.name,
        subject: BR_NF,
        severity: policy || endpointNodes.has(node.name) ? 'warning' : 'info',
        message: `frames between pods on ${ctx.profile.bridge} of ${node.name} bypass iptables (${v === undefined ? 'br_netfilter is not loaded' : `${BR_NF} is 0`})${policy ? ': NetworkPolicy and Service NAT miss same-node traffic' : ': Service NAT misses same-node pod traffic'}`,
        evidence: [brNetfilterLine(v)],
        vars: {},
      }),
    ]
  })
}

/** Down, or up without carrier; an empty bridge has no carrier by design, so it only counts when set down. */
function linkDown(l: Link, isBridge: boolean): boolean {
  if (!l.adminUp) return true
  if (isBridge) return false
  return !isUp(l) || l.flags.includes('NO-CARRIER')
}

export const linkDownCheck: Check = (ctx) =>
  ctx.collected().flatMap(({node, state}): Raised[] => {
    if (!ctx.ok(state, 'links')) return []
    const p = podPath(ctx, node, state)
    const out: Raised[] = []
    const down = (l: Link, what: string, pod?: {netns: string; subject: string}): void => {
      const state = l.adminUp
        ? `up but ${l.flags.includes('NO-CARRIER') ? 'has no carrier' : `operationally ${l.operstate}`}`
        : 'administratively down'
      out.push(
        raise('LINK_DOWN', {
          node: node.name,
          subject: pod?.subject ?? l.name,
          message: `${what} ${l.name} on ${node.name} is ${state}${pod ? ` (set it up inside ${pod.netns})` : ''}`,
          evidence: [pod ? `${pod.netns}: ${linkLine(l)}` : linkLine(l)],
          vars: {dev: l.name},
          ...(l.adminUp ? {fixTemplate: LINK_NO_CARRIER_FIX} : {}),
        }),
      )
    }
    if (p.uplink && linkDown(p.uplink, false)) down(p.uplink, 'the uplink')
    if (p.bridge && linkDown(p.bridge, true)) down(p.bridge, 'the pod bridge')
    for (const v of p.hostVeths) if (linkDown(v, false)) down(v, 'the host end of a pod veth')
    for (const pod of state.pods) {
      const l = pod.links.find((x) => x.name === 'eth0')
      if (l && linkDown(l, false))
        down(l, `pod ${pod.namespace}/${pod.name}'s`, {
          netns: pod.netns,
          subject: `pod ${pod.namespace}/${pod.name} ${l.name}`,
        })
    }
    return out
  })
