import type {Link} from '../../model/node-state.js'
import type {RouteDecision} from '../fib.js'
import {vxlanWords} from '../iproute2.js'

/**
 * Evidence lines the trace adds to what src/analyze/iproute2.ts prints: each
 * reads like the line a user finds in `ip -d link` (a sysctl's line is
 * src/analyze/checks/evidence.ts's).
 */

/** A vxlan device as `ip -d link show` describes it, with its MTU and address after the details. */
export function formatVxlan(link: Link): string {
  const v = link.vxlan
  if (!v) return `${link.name}: ${link.kind ?? 'link'} mtu ${link.mtu}`
  return [`${link.name}:`, ...vxlanWords(v), 'mtu', String(link.mtu), ...(link.mac ? ['address', link.mac] : [])].join(
    ' ',
  )
}

/** A veth end and where its peer lives: `eth0@if4 peer veth34cff18e in demo.node1`. */
export function formatVeth(link: Link, peer: {dev: string; netns: string} | undefined): string {
  const head = `${link.name}@if${link.peerIfindex ?? '?'}`
  return peer ? `${head} peer ${peer.dev} in ${peer.netns}` : `${head}: its peer is not in the snapshot`
}

/**
 * The lines of a route decision worth showing: the rule only when the
 * namespace has rules of its own (the default three say nothing), and never
 * the model's remark about rules the snapshot lacks (pods carry none).
 */
export function decisionEvidence(d: RouteDecision, customRules: boolean): string[] {
  return d.evidence.filter(
    (l) =>
      !l.startsWith('no ip rule in the snapshot') &&
      !l.startsWith('no ip -6 rule') &&
      (customRules || !/^\d+:\s/.test(l)),
  )
}
