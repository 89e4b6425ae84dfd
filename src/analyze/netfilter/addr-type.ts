import type {NodeState} from '../../model/node-state.js'
import {cidrContains, parseCidr, parseIp} from '../ip.js'

const ADDR_TYPES: Record<string, string> = {
  local: 'LOCAL',
  broadcast: 'BROADCAST',
  anycast: 'ANYCAST',
  multicast: 'MULTICAST',
  unicast: 'UNICAST',
  blackhole: 'BLACKHOLE',
  unreachable: 'UNREACHABLE',
  prohibit: 'PROHIBIT',
  throw: 'THROW',
  nat: 'NAT',
}

/**
 * The address type xt_addrtype gives `ip`: the route the node's local table
 * holds for it (LOCAL, BROADCAST, ...), UNICAST when none; with a device
 * (--limit-iface-in/out) only a route through that device counts.
 */
export function addrType(state: NodeState, ip: string, dev?: string): string | undefined {
  const a = parseIp(ip)
  if (!a) return undefined
  if (a.family === 'inet') {
    if (a.bytes[0]! >= 224 && a.bytes[0]! < 240) return 'MULTICAST'
    if (a.bytes.every((b) => b === 255) || a.bytes[0] === 0) return 'BROADCAST'
  } else if (a.bytes[0] === 0xff) return 'MULTICAST'
  const local = state.routes.filter((r) => r.table === 'local' && r.family === a.family)
  if (local.length === 0) {
    // no local table in the snapshot: the node's own addresses are what it holds
    if (
      state.sections[a.family === 'inet' ? 'routes4' : 'routes6']?.status !== 'ok' &&
      state.sections.addresses?.status !== 'ok'
    )
      return undefined
    return state.addresses.some((x) => parseIp(x.local)?.text === a.text && (dev === undefined || x.dev === dev))
      ? 'LOCAL'
      : 'UNICAST'
  }
  let best: (typeof local)[number] | undefined
  let bestLen = -1
  for (const r of local) {
    const c = parseCidr(r.dst)
    if (c && c.len > bestLen && cidrContains(c, a)) {
      best = r
      bestLen = c.len
    }
  }
  if (!best || (dev !== undefined && best.dev !== dev)) return 'UNICAST'
  return ADDR_TYPES[best.type] ?? 'UNICAST'
}
