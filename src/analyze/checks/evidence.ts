/**
 * Evidence lines: node state written back the way the tools print it, so a
 * finding quotes what a user would see running `ip route`, `ip neigh`,
 * `bridge fdb`, `ip -d link`, `ip -o addr`, `sysctl`, `iptables-save` or
 * `birdc show protocols` on the node.
 */
import {formatNeighbour, formatRoute} from '../format.js'
import type {Address, BgpRoute, BgpSession, FdbEntry, IptablesChain, Link, Neighbour, Route} from '../../model/node-state.js'

/** `ip route`: one route on one line, multipath next hops too (the one formatter in src/analyze/format.ts). */
export const routeLine = (r: Route): string => formatRoute(r, {oneLine: true})

/** `ip neigh`: `10.244.2.0 dev flannel.1 lladdr 5e:... PERMANENT` (the one formatter in src/analyze/format.ts). */
export const neighLine = (n: Neighbour): string => formatNeighbour(n)

/** `bridge fdb`: `5e:... dev flannel.1 dst 172.18.0.12 self permanent`. */
export function fdbLine(f: FdbEntry): string {
  const w = [f.mac, 'dev', f.dev]
  if (f.vlan !== undefined) w.push('vlan', String(f.vlan))
  if (f.dst) w.push('dst', f.dst)
  if (f.port !== undefined) w.push('port', String(f.port))
  if (f.vni !== undefined) w.push('vni', String(f.vni))
  if (f.master) w.push('master', f.master)
  if (f.self) w.push('self')
  if (f.permanent) w.push('permanent')
  else if (f.static) w.push('static')
  else if (f.state && f.state !== 'permanent') w.push(f.state)
  return w.join(' ')
}

/** `ip -d -o link` on one line: flags, mtu, master, state, MAC, and the vxlan / tun details. */
export function linkLine(l: Link): string {
  const w = [`${l.ifindex}: ${l.name}: <${l.flags.join(',')}>`, 'mtu', String(l.mtu)]
  if (l.master) w.push('master', l.master)
  w.push('state', l.operstate)
  if (l.kind === 'tun' || !l.mac) w.push('link/none')
  else w.push(`link/${l.name === 'lo' ? 'loopback' : 'ether'} ${l.mac}`)
  if (l.vxlan) {
    const v = l.vxlan
    w.push('vxlan', 'id', String(v.vni))
    if (v.group) w.push('group', v.group)
    if (v.local) w.push('local', v.local)
    if (v.dev) w.push('dev', v.dev)
    w.push('dstport', String(v.port))
    if (!v.learning) w.push('nolearning')
  } else if (l.tun) {
    w.push('tun', 'type', l.tun.type, l.tun.pi ? 'pi' : 'nopi')
  } else if (l.kind) {
    w.push(l.kind)
  }
  return w.join(' ')
}

/** What `ip link show DEV` answers for a device that is not there. */
export function noDeviceLine(dev: string): string {
  return `Device "${dev}" does not exist.`
}

/** `ip -o -4 addr show`: `3: cni0    inet 10.244.1.1/24 brd 10.244.1.255 scope global cni0`. */
export function addrLine(a: Address, ifindex?: number): string {
  const w = [`${ifindex ?? '?'}: ${a.dev}   `, a.family === 'inet' ? 'inet' : 'inet6', `${a.local}/${a.prefixlen}`]
  if (a.broadcast) w.push('brd', a.broadcast)
  w.push('scope', a.scope)
  if (a.family === 'inet') w.push(a.dev)
  return w.join(' ')
}

/** `sysctl net.ipv4.ip_forward` prints `net.ipv4.ip_forward = 0`. */
export function sysctlLine(key: string, value: string): string {
  return `${key} = ${value}`
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
  if (names.length <= max) return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`
  return `${names.slice(0, max).join(', ')} and ${names.length - max} more`
}
