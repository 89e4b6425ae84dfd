/**
 * Evidence lines: node state written back the way the tools print it, so a
 * finding quotes what a user would see running `ip route`, `ip neigh`,
 * `bridge fdb`, `ip -d link`, `ip -o addr`, `sysctl`, `iptables-save` or
 * `birdc show protocols` on the node.
 */
import type {BgpRoute, BgpSession, IptablesChain, Neighbour, Route} from '../../model/node-state.js'
import {formatNeighbour, formatRoute} from '../iproute2.js'

// `bridge fdb`, `ip -d -o link`, `ip -o addr`: the one printer of iproute2's forms
export {addrLine, fdbLine, linkLine, noDeviceLine} from '../iproute2.js'

/** `ip route`: one route on one line, multipath next hops too (src/analyze/iproute2.ts). */
export const routeLine = (r: Route): string => formatRoute(r, {oneLine: true})

/** `ip neigh`: `10.244.2.0 dev flannel.1 lladdr 5e:... PERMANENT` (src/analyze/iproute2.ts). */
export const neighLine = (n: Neighbour): string => formatNeighbour(n)

/** `sysctl net.ipv4.ip_forward` prints `net.ipv4.ip_forward = 0` (a device's '.' written '/' in the key, as sysctl does); the trace's too. */
export function sysctlLine(key: string, value: string): string {
  return `${key} = ${value}`
}

/** The bridge's netfilter switch as sysctl answers for it, also when br_netfilter is not loaded (no such key). */
export const BR_NF = 'net.bridge.bridge-nf-call-iptables'
export function brNetfilterLine(value: string | undefined): string {
  return value === undefined
    ? 'sysctl: cannot stat /proc/sys/net/bridge/bridge-nf-call-iptables: No such file or directory'
    : sysctlLine(BR_NF, value)
}

/** A chain's head as iptables-save prints it: `:FORWARD DROP [0:0]`. */
export function chainLine(c: IptablesChain): string {
  return `:${c.name} ${c.policy ?? '-'} [${c.packets ?? 0}:${c.bytes ?? 0}]`
}

/** One row of `birdc show protocols`, in BIRD 2's column layout. */
export function birdProtocolLine(s: BgpSession): string {
  const pad = (t: string, n: number): string => (t.length >= n ? t : t + ' '.repeat(n - t.length))
  // the short listing keeps the error in info; `show protocols all` also has it as Last error
  const message = s.info ?? s.lastError
  const info = message ? `${pad(s.bgpState, 13)} ${message}` : s.bgpState
  return `${pad(s.name, 10)} ${pad('BGP', 10)} ${pad('---', 10)} ${pad(s.state, 6)} ${pad(s.since ?? '', 12)}  ${info}`.trimEnd()
}

/** The detail lines `birdc show protocols all NAME` prints for a BGP session, indented as BIRD indents them. */
export function birdDetailLines(s: BgpSession): string[] {
  const out = [`  BGP state:          ${s.bgpState}`]
  if (s.neighborAddress) out.push(`    Neighbor address: ${s.neighborAddress}`)
  if (s.neighborAs !== undefined) out.push(`    Neighbor AS:      ${s.neighborAs}`)
  if (s.localAs !== undefined) out.push(`    Local AS:         ${s.localAs}`)
  if (s.lastError) out.push(`    Last error:       ${s.lastError}`)
  return out
}

/** A route as `birdc show route` prints it, its next hop folded onto the line. */
export function birdRouteLine(r: BgpRoute): string {
  const w = [r.prefix, r.type ?? 'unicast', `[${r.protocol}]`]
  if (r.primary) w.push('*')
  if (r.from) w.push(`from ${r.from}`)
  if (r.gateway) w.push('via', r.gateway)
  if (r.dev) w.push('on', r.dev)
  for (const nh of r.nexthops ?? []) w.push('via', nh.gateway ?? '?', 'on', nh.dev ?? '?')
  return w.join(' ')
}

/** A node annotation as `kubectl get node -o yaml` shows it. */
export function annotationLine(key: string, value: string): string {
  return `${key}: ${value}`
}

/** "node1, node2, node3 and 2997 more": a message names a few; the evidence names every one. */
export function someNames(names: readonly string[], max = 5): string {
  if (names.length <= max)
    return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`
  return `${names.slice(0, max).join(', ')} and ${names.length - max} more`
}
