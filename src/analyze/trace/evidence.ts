import type {FdbEntry, Link} from '../../model/node-state.js'
import type {RouteDecision} from '../fib.js'

/**
 * Evidence lines the trace adds to what src/analyze/format.ts prints: each
 * reads like the line a user finds in `bridge fdb`, `ip -d link`, `sysctl`.
 */

/** One FDB entry as `bridge fdb show` prints it. */
export function formatFdb(e: FdbEntry): string {
  const words = [e.mac, 'dev', e.dev]
  if (e.vlan !== undefined) words.push('vlan', String(e.vlan))
  if (e.dst) words.push('dst', e.dst)
  if (e.port !== undefined) words.push('port', String(e.port))
  if (e.vni !== undefined) words.push('vni', String(e.vni))
  if (e.self) words.push('self')
  if (e.master) words.push('master', e.master)
  if (e.permanent) words.push('permanent')
  else if (e.static) words.push('static')
  return words.join(' ')
}

/** A sysctl as `sysctl NAME` prints it; a device's '.' is written '/' in the name, as sysctl does. */
export function formatSysctl(key: string, value: string): string {
  return `${key} = ${value}`
}

/** A vxlan device as `ip -d link show` describes it. */
export function formatVxlan(link: Link): string {
  const v = link.vxlan
  if (!v) return `${link.name}: ${link.kind ?? 'link'} mtu ${link.mtu}`
  const words = [`${link.name}:`, 'vxlan', 'id', String(v.vni)]
  if (v.local) words.push('local', v.local)
  if (v.group) words.push('group', v.group)
  if (v.dev) words.push('dev', v.dev)
  words.push('dstport', String(v.port))
  if (!v.learning) words.push('nolearning')
  words.push('mtu', String(link.mtu), ...(link.mac ? ['address', link.mac] : []))
  return words.join(' ')
}

/** A veth end and where its peer lives: `eth0@if4 peer veth34cff18e in demo.node1`. */
export function formatVeth(link: Link, peer: {dev: string; netns: string} | undefined): string {
  const head = `${link.name}@if${link.peerIfindex ?? '?'}`
  return peer ? `${head} peer ${peer.dev} in ${peer.netns}` : `${head}: its peer is not in the snapshot`
}

/** A link's state words, as `ip link` shows them. */
export function formatLinkState(link: Link): string {
  return `${link.ifindex}: ${link.name}: <${link.flags.join(',')}> mtu ${link.mtu}${link.master ? ` master ${link.master}` : ''} state ${link.operstate}`
}

/**
 * The lines of a route decision worth showing: the rule only when the
 * namespace has rules of its own (the default three say nothing), and never
 * the model's remark about rules the snapshot lacks (pods carry none).
 */
export function decisionEvidence(d: RouteDecision, customRules: boolean): string[] {
  return d.evidence.filter((l) => !l.startsWith('no ip rule in the snapshot') && !l.startsWith('no ip -6 rule') && (customRules || !/^\d+:\s/.test(l)))
}
