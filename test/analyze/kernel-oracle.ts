/**
 * The kernel as the oracle: `ip -j route get` for a query, and the comparison
 * of its answer with the forwarding model's decision. Shared by the lab test
 * (live namespaces) and the fixture tests (answers recorded from them).
 */
import {
  type CompiledFib,
  ERRNO_MESSAGE,
  type FibState,
  normalTable,
  type PacketQuery,
  type RouteDecision,
} from '../../src/analyze/fib.js'
import {type Cidr, ipFromBytes, parseCidr, v6} from '../../src/analyze/ip.js'
import {mapLimit, run} from '../../src/util/exec.js'
import type {LabUp} from '../helpers/lab.js'

/** What `ip -j route get` said: the route it printed, or the error after "RTNETLINK answers: ". */
export interface KernelAnswer {
  route?: Record<string, any>
  error?: string
}

export interface RecordedQuery {
  query: PacketQuery
  kernel: KernelAnswer
}

export function routeGetArgs(q: PacketQuery): string[] {
  const args = ['route', 'get', q.dst]
  if (q.src) args.push('from', q.src)
  if (q.iif) args.push('iif', q.iif)
  if (q.oif) args.push('oif', q.oif)
  if (q.fwmark !== undefined) args.push('mark', String(q.fwmark))
  return args
}

export function describeQuery(q: PacketQuery): string {
  return `ip route get ${routeGetArgs(q).slice(2).join(' ')}`
}

export async function kernelRouteGet(netns: string, q: PacketQuery): Promise<KernelAnswer> {
  const family = q.dst.includes(':') ? '-6' : '-4'
  const r = await run('ip', ['-n', netns, '-j', family, ...routeGetArgs(q)])
  if (r.code !== 0) {
    const line = r.stderr.split('\n').find((l) => l.trim() !== '') ?? `exit ${r.code}`
    return {
      error: line
        .replace(/^RTNETLINK answers:\s*/, '')
        .replace(/^Error:\s*/, '')
        .trim(),
    }
  }
  const parsed = JSON.parse(r.stdout) as Array<Record<string, any>>
  return {route: parsed[0] ?? {}}
}

const BATCH_TOKEN = /^[A-Za-z0-9_.:@/-]+$/

/**
 * Many `ip route get` in one `ip -batch` process per chunk (`-force` keeps it
 * going past errors): stdout holds one JSON line per answered query, stderr
 * the error of each refused one followed by `Command failed -:LINE`.
 */
export async function kernelRouteGetMany(netns: string, queries: PacketQuery[], chunk = 400): Promise<KernelAnswer[]> {
  const lines = queries.map((q) => routeGetArgs(q).join(' '))
  if (lines.some((l) => !l.split(' ').every((t) => BATCH_TOKEN.test(t))))
    return mapLimit(queries, 4, (q) => kernelRouteGet(netns, q))
  const chunks: number[] = []
  for (let i = 0; i < lines.length; i += chunk) chunks.push(i)
  const parts = await mapLimit(chunks, 2, async (start) => {
    const mine = lines.slice(start, start + chunk)
    const r = await run('ip', ['-n', netns, '-j', '-force', '-batch', '-'], {
      input: `${mine.join('\n')}\n`,
      timeoutMs: 120_000,
    })
    const failed = new Map<number, string>()
    let last = ''
    for (const l of r.stderr.split('\n')) {
      const m = /Command failed -:(\d+)/.exec(l)
      if (m)
        failed.set(
          Number(m[1]),
          last
            .replace(/^RTNETLINK answers:\s*/, '')
            .replace(/^Error:\s*/, '')
            .trim(),
        )
      else if (l.trim() !== '') last = l
    }
    const outputs = r.stdout.split('\n').filter((l) => l.trim() !== '')
    let next = 0
    return mine.map((_, i): KernelAnswer => {
      const err = failed.get(i + 1)
      if (err !== undefined) return {error: err}
      const out = outputs[next++]
      if (out === undefined) throw new Error(`ip -batch in ${netns}: no answer for '${mine[i]}'`)
      return {route: (JSON.parse(out) as Array<Record<string, any>>)[0] ?? {}}
    })
  })
  return parts.flat()
}

/**
 * Every way the model's decision differs from the kernel's answer (empty: they
 * agree): same outcome or errno, same table, same device and gateway (for
 * multipath: the kernel's pick is one of the model's nexthops), same source.
 */
export function compareWithKernel(fib: CompiledFib, q: PacketQuery, d: RouteDecision, k: KernelAnswer): string[] {
  const diffs: string[] = []
  const ours = d.error
    ? `error ${d.error} (${ERRNO_MESSAGE[d.error]}) [${d.type}]`
    : `${d.type} dev ${d.dev ?? '-'} via ${d.gateway ?? '-'} src ${d.src ?? '-'} table ${d.table ?? '-'}${(d.nexthops?.length ?? 0) > 1 ? ` nexthops ${JSON.stringify(d.nexthops)}` : ''}`
  const theirs = k.error ? `error ${k.error}` : JSON.stringify(k.route)
  const say = (what: string) =>
    diffs.push(
      `${describeQuery(q)}: ${what}\n    model:  ${ours}\n    kernel: ${theirs}\n    evidence: ${d.evidence.join(' | ')}\n    notes: ${d.notes.join(' | ')}`,
    )
  if (k.error) {
    // a multipath flow whose source check depends on the nexthop the hash picks
    const maybeRefused = !d.error && k.error === ERRNO_MESSAGE.EINVAL && (d.nexthops ?? []).some((n) => n.refused)
    if (!d.error) {
      if (!maybeRefused) say('the kernel refuses, the model routes')
    } else if (ERRNO_MESSAGE[d.error] !== k.error) say('different errors')
    return diffs
  }
  if (d.error) {
    say('the model refuses, the kernel routes')
    return diffs
  }
  const r = k.route ?? {}
  const kType = r.type ?? 'unicast'
  if (kType !== d.type) say(`type ${kType} vs ${d.type}`)
  const hops = d.nexthops && d.nexthops.length > 0 ? d.nexthops : [{dev: d.dev, gateway: d.gateway, src: d.src}]
  const picked =
    d.type === 'local' || (d.type === 'broadcast' && d.direction === 'input')
      ? {dev: 'lo', gateway: undefined, src: d.src}
      : hops.find((h) => h.dev === r.dev && (h.gateway ?? undefined) === (r.gateway ?? undefined))
  if (!picked) say(`kernel's dev ${r.dev} via ${r.gateway ?? '-'} is not among the model's nexthops`)
  else if ('refused' in picked && picked.refused)
    say(`the kernel uses a nexthop the model says the source check refuses`)
  if (!q.iif && !q.src && picked && (picked.src ?? undefined) !== (r.prefsrc ?? undefined))
    say(`src ${r.prefsrc} vs ${picked.src}`)
  if (r.table !== undefined) {
    if (normalTable(r.table) !== normalTable(d.table)) say(`table ${r.table} vs ${d.table}`)
  } else if (d.table !== undefined && d.table !== 'main' && !(d.table === 'local' && !fib.customRules[d.family])) {
    say(`table main vs ${d.table}`)
  }
  return diffs
}

export interface SpreadOptions {
  /** destinations beyond the ones the tables suggest */
  dsts?: string[]
  /** sources for packets arriving on an interface (iif lookups); the node's own addresses are added */
  remoteSources?: string[]
  marks?: number[]
  /** devices to try as iif and oif (default: every link but lo) */
  devs?: string[]
  family?: 'inet' | 'inet6'
}

/**
 * A spread of `ip route get` questions for one namespace: every prefix in its
 * tables (first host and one more), its own and its neighbours' addresses,
 * the special addresses, each asked plainly, from each own address, arriving
 * on each device from several sources, with marks, and out of each device.
 */
export function spreadQueries(state: FibState, o: SpreadOptions = {}): PacketQuery[] {
  const family = o.family ?? 'inet'
  const own = state.addresses.filter((a) => a.family === family && a.dev !== 'lo').map((a) => a.local)
  const dsts = new Set<string>(o.dsts ?? [])
  for (const a of own) dsts.add(a)
  for (const r of state.routes) {
    if ((r.family ?? 'inet') !== family) continue
    const c = parseCidr(r.dst, family)
    if (!c || c.len === 0) continue
    if (family === 'inet6' && (v6.isMulticast(c.ip) || v6.isLinkLocal(c.ip))) continue
    dsts.add(nthHost(c, 1))
    if (c.len <= 30) dsts.add(nthHost(c, 77))
    if (r.gateway) dsts.add(r.gateway)
    for (const nh of r.nexthops ?? []) if (nh.gateway) dsts.add(nh.gateway)
  }
  if (family === 'inet')
    for (const x of [
      '0.0.0.0',
      '255.255.255.255',
      '127.0.0.1',
      '127.3.4.5',
      '198.51.100.7',
      '224.0.0.1',
      '224.0.0.251',
      '239.1.2.3',
      '0.1.2.3',
    ])
      dsts.add(x)
  else for (const x of ['::1', '2001:db8::7']) dsts.add(x)
  const devs = o.devs ?? state.links.filter((l) => l.name !== 'lo').map((l) => l.name)
  const sources = [...new Set([...(o.remoteSources ?? []), ...own.slice(0, 1)])]
  const qs: PacketQuery[] = []
  for (const dst of dsts) {
    qs.push({dst})
    for (const src of own.slice(0, 3)) qs.push({dst, src})
    if (family === 'inet') qs.push({dst, src: '198.51.100.9'})
    for (const iif of devs) for (const src of sources) qs.push({dst, src, iif})
    for (const mark of o.marks ?? []) qs.push({dst, fwmark: mark})
    for (const oif of devs) qs.push({dst, oif})
  }
  return qs
}

function nthHost(c: Cidr, n: number): string {
  const b = Uint8Array.from(c.ip.bytes)
  const hostBits = (c.ip.family === 'inet' ? 32 : 128) - c.len
  const add = hostBits >= 8 ? n : hostBits === 0 ? 0 : n % (1 << hostBits)
  let carry = add
  for (let i = b.length - 1; i >= 0 && carry > 0; i--) {
    const v = (b[i] as number) + carry
    b[i] = v & 0xff
    carry = v >> 8
  }
  return ipFromBytes(b).text
}

/**
 * The questions for one lab node: every pod, node, VTEP (.0) and bridge
 * address, a pod CIDR no node has, an absent address on the node's own
 * subnet; packets arriving from other nodes and from pods; a mark.
 */
export function labSpread(lab: LabUp, nodeName: string): SpreadOptions {
  const node = lab.nodes.find((n) => n.name === nodeName)
  if (!node) throw new Error(`no node ${nodeName} in lab ${lab.name}`)
  const others = lab.nodes.filter((n) => n.name !== nodeName)
  const base = (cidr: string, last: number) => cidr.replace(/\.\d+\/\d+$/, `.${last}`)
  return {
    dsts: [
      ...lab.pods.map((p) => p.ip),
      ...lab.nodes.map((n) => n.ip),
      ...lab.nodes.map((n) => base(n.podCIDR, 0)),
      ...lab.nodes.map((n) => base(n.podCIDR, 1)),
      '172.20.99.5',
      base(node.subnet, 200),
    ],
    remoteSources: [
      ...others.map((n) => n.ip),
      ...lab.pods.filter((p) => p.node !== nodeName).map((p) => p.ip),
      ...lab.pods.filter((p) => p.node === nodeName).map((p) => p.ip),
    ].slice(0, 5),
    marks: [1],
  }
}
