/**
 * A SMALL converter from raw `ip -j` output to the node model, for the
 * forwarding-model tests only. The real parsers live in src/collect (written
 * separately); once they land, these tests should feed their output instead
 * and this file can go.
 */
import type {FibState} from '../../src/analyze/fib.js'
import type {Address, Family, Link, Neighbour, NextHop, Route, RouteType, Rule} from '../../src/model/node-state.js'
import {run} from '../../src/util/exec.js'

/** What one namespace looks like to `ip -j`, saved as it was printed. */
export interface RawIpState {
  /** ip -j -d link show */
  link: any[]
  /** ip -j addr show */
  addr: any[]
  /** ip -j -4 route show table all */
  route4: any[]
  /** ip -j -6 route show table all */
  route6: any[]
  /** ip -j -4 rule show */
  rule4: any[]
  /** ip -j -6 rule show */
  rule6: any[]
  /** ip -j neigh show nud all, then ip -j neigh show proxy */
  neigh: any[]
  /** `sysctl net.ipv4.conf net.ipv4.ip_forward net.ipv6.conf.all.forwarding` as key → value */
  sysctls: Record<string, string>
}

export function linksFromIpJson(raw: any[]): Link[] {
  return raw.map((l) => {
    const kind: string | undefined = l.linkinfo?.info_kind
    const data = l.linkinfo?.info_data ?? {}
    const link: Link = {
      ifindex: l.ifindex,
      name: l.ifname,
      ...(kind ? {kind} : {}),
      mtu: l.mtu,
      ...(l.address ? {mac: l.address} : {}),
      operstate: l.operstate ?? 'UNKNOWN',
      adminUp: (l.flags ?? []).includes('UP'),
      flags: l.flags ?? [],
      ...(l.master ? {master: l.master} : {}),
      ...(kind === 'veth' && l.link_index !== undefined ? {peerIfindex: l.link_index} : {}),
      ...(l.link_netnsid !== undefined ? {linkNetnsid: l.link_netnsid} : {}),
    }
    if (kind === 'vxlan') {
      link.vxlan = {
        vni: data.id,
        port: data.port,
        ...(data.local ? {local: data.local} : {}),
        ...(data.link ? {dev: data.link} : {}),
        learning: !!data.learning,
        ...(data.group ? {group: data.group} : {}),
      }
    }
    if (kind === 'tun') link.tun = {type: data.type === 'tap' ? 'tap' : 'tun', pi: !!data.pi}
    return link
  })
}

export function addressesFromIpJson(raw: any[]): Address[] {
  const out: Address[] = []
  for (const l of raw) {
    for (const a of l.addr_info ?? []) {
      if (a.family !== 'inet' && a.family !== 'inet6') continue
      out.push({
        dev: l.ifname,
        family: a.family,
        local: a.local,
        prefixlen: a.prefixlen,
        scope: String(a.scope ?? 'global'),
        ...(a.broadcast ? {broadcast: a.broadcast} : {}),
      })
    }
  }
  return out
}

function toCidr(dst: string, family: Family): string {
  if (dst === 'default') return family === 'inet' ? '0.0.0.0/0' : '::/0'
  if (dst.includes('/')) return dst
  return `${dst}/${family === 'inet' ? 32 : 128}`
}

export function routesFromIpJson(raw: any[], family: Family): Route[] {
  return raw.map((r) => {
    const flags: string[] = r.flags ?? []
    const nexthops: NextHop[] | undefined = r.nexthops?.map((n: any) => ({
      ...(n.gateway ? {gateway: n.gateway} : {}),
      ...(n.dev ? {dev: n.dev} : {}),
      weight: n.weight ?? 1,
      onlink: (n.flags ?? []).includes('onlink'),
      flags: n.flags ?? [],
    }))
    return {
      family,
      table: r.table === undefined ? 'main' : String(r.table),
      type: (r.type ?? 'unicast') as RouteType,
      dst: toCidr(r.dst, family),
      ...(r.gateway ? {gateway: r.gateway} : {}),
      ...(r.dev ? {dev: r.dev} : {}),
      ...(r.protocol ? {protocol: String(r.protocol)} : {}),
      ...(r.scope ? {scope: String(r.scope)} : {}),
      ...(r.prefsrc ? {prefsrc: r.prefsrc} : {}),
      ...(r.metric !== undefined ? {metric: r.metric} : {}),
      onlink: flags.includes('onlink'),
      flags,
      ...(nexthops ? {nexthops} : {}),
    }
  })
}

function selector(addr: string | undefined, len: number | undefined): string | undefined {
  if (addr === undefined) return undefined
  if (addr === 'all') return 'all'
  return len === undefined ? addr : `${addr}/${len}`
}

export function rulesFromIpJson(raw: any[], family: Family): Rule[] {
  return raw.map((r) => {
    const action: Rule['action'] = r.action ?? (r.goto !== undefined ? 'goto' : 'nop' in r ? 'nop' : 'lookup')
    const src = selector(r.src, r.srclen)
    const dst = selector(r.dst, r.dstlen)
    return {
      family,
      priority: r.priority ?? 0,
      ...(src ? {src} : {}),
      ...(dst ? {dst} : {}),
      ...(r.iif ? {iif: r.iif} : {}),
      ...(r.oif ? {oif: r.oif} : {}),
      ...(r.fwmark !== undefined ? {fwmark: r.fwmask ? `${r.fwmark}/${r.fwmask}` : String(r.fwmark)} : {}),
      ...('not' in r ? {not: true} : {}),
      ...(action === 'lookup' ? {table: String(r.table)} : {}),
      ...(action === 'goto' ? {goto: Number(r.goto)} : {}),
      action,
    }
  })
}

export function neighboursFromIpJson(raw: any[]): Neighbour[] {
  return raw.map((n) => ({
    dst: n.dst,
    dev: n.dev,
    ...(n.lladdr ? {lladdr: n.lladdr} : {}),
    state: n.state ?? [],
    ...('router' in n ? {router: true} : {}),
    ...('proxy' in n ? {proxy: true} : {}),
  }))
}

/** sysctl's "key = value" lines. */
export function parseSysctl(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^([^=\s]+)\s*=\s*(.*)$/.exec(line.trim())
    if (m) out[m[1] as string] = (m[2] as string).trim()
  }
  return out
}

export function fibStateFromIpJson(raw: RawIpState): FibState & {neighbours: Neighbour[]} {
  return {
    links: linksFromIpJson(raw.link),
    addresses: addressesFromIpJson(raw.addr),
    routes: [...routesFromIpJson(raw.route4, 'inet'), ...routesFromIpJson(raw.route6, 'inet6')],
    rules: [...rulesFromIpJson(raw.rule4, 'inet'), ...rulesFromIpJson(raw.rule6, 'inet6')],
    neighbours: neighboursFromIpJson(raw.neigh),
    sysctls: raw.sysctls,
  }
}

/** The sysctls the forwarding model reads; the rest of `sysctl net.ipv4.conf` is left out of fixtures. */
const SYSCTL_KEYS =
  /(^net\.ipv4\.ip_forward$)|(\.(forwarding|rp_filter|accept_local|send_redirects|route_localnet|src_valid_mark|ignore_routes_with_linkdown|proxy_arp)$)/

async function ipj(netns: string, args: string[]): Promise<any[]> {
  const r = await run('ip', ['-n', netns, '-j', ...args])
  if (r.code !== 0) throw new Error(`ip -n ${netns} -j ${args.join(' ')}: ${r.stderr.trim()}`)
  return r.stdout.trim() === '' ? [] : (JSON.parse(r.stdout) as any[])
}

/** Read everything the forwarding model needs from a live namespace (lab tests and the fixture recorder). */
export async function readRawIpState(netns: string): Promise<RawIpState> {
  const [link, addr, route4, route6, rule4, rule6, neighAll, neighProxy] = await Promise.all([
    ipj(netns, ['-d', 'link', 'show']),
    ipj(netns, ['addr', 'show']),
    ipj(netns, ['-4', 'route', 'show', 'table', 'all']),
    ipj(netns, ['-6', 'route', 'show', 'table', 'all']),
    ipj(netns, ['-4', 'rule', 'show']),
    ipj(netns, ['-6', 'rule', 'show']),
    ipj(netns, ['neigh', 'show', 'nud', 'all']),
    ipj(netns, ['neigh', 'show', 'proxy']),
  ])
  const s = await run('ip', [
    'netns',
    'exec',
    netns,
    'sysctl',
    'net.ipv4.conf',
    'net.ipv4.ip_forward',
    'net.ipv6.conf.all.forwarding',
  ])
  if (s.code !== 0) throw new Error(`sysctl in ${netns}: ${s.stderr.trim()}`)
  const sysctls = Object.fromEntries(Object.entries(parseSysctl(s.stdout)).filter(([k]) => SYSCTL_KEYS.test(k)))
  return {link, addr, route4, route6, rule4, rule6, neigh: [...neighAll, ...neighProxy], sysctls}
}

/**
 * Wait (up to `timeoutMs`) until no address of the namespace is still in
 * IPv6 duplicate address detection: a tentative address has no local route
 * yet, so a snapshot taken then and a kernel asked a moment later disagree.
 */
export async function settleAddresses(netns: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const addrs = await ipj(netns, ['addr', 'show'])
    const tentative = addrs.some((l) => (l.addr_info ?? []).some((a: any) => a.tentative))
    if (!tentative || Date.now() > until) return
    await new Promise((r) => setTimeout(r, 200))
  }
}
