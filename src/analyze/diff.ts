/**
 * What changed between two snapshots of one cluster, per node and for the
 * cluster's objects, in the lines the tools print (`ip route`, `ip neigh`,
 * `bridge fdb`, `ip -d link`, `iptables-save`, `nft list ruleset`, `ipset
 * save`, `sysctl`, `birdc show protocols`, subnet.env, CNI files). Pure.
 *
 * What always changes is left out unless `all`: packet and byte counters,
 * conntrack, the recent match's lists (ClientIP affinity), the ageing of learned neighbours (REACHABLE, STALE, DELAY, PROBE
 * are one state here), the multicast NOARP neighbours the kernel makes and
 * collects by itself, learned bridge FDB entries, process ids.
 */
import type {Ipset, NftRuleset} from '../model/netfilter.js'
import type {
  Address,
  FdbEntry,
  Iptables,
  IptablesChain,
  Link,
  Neighbour,
  NodeState,
  PodNetnsState,
} from '../model/node-state.js'
import type {Snapshot} from '../model/snapshot.js'
import {
  addrLine,
  annotationLine,
  birdProtocolLine,
  birdRouteLine,
  chainLine,
  fdbLine,
  linkLine,
  neighLine,
  routeLine,
  sysctlLine,
} from './checks/evidence.js'
import {formatRule} from './iproute2.js'
import {iptablesNftTables} from './netfilter/owned-tables.js'

export interface DiffOptions {
  /** counters, conntrack, neighbour and FDB ageing too */
  all?: boolean
  /** only these nodes (cluster objects are still compared) */
  nodes?: readonly string[]
}

/** One place of state (a tool's listing): the lines only BEFORE has, and those only AFTER has. */
export interface SectionDiff {
  /** what prints it, e.g. `ip route`, `iptables-save -t filter`, `pod default/web: ip route` */
  section: string
  removed: string[]
  added: string[]
}

export interface NodeDiff {
  node: string
  /** added/removed: the node is in one snapshot only; uncollected: its state is missing on a side */
  status: 'added' | 'removed' | 'changed' | 'uncollected'
  /** the side(s) whose state was not collected, with uncollected */
  uncollected?: Array<'before' | 'after'>
  sections: SectionDiff[]
}

export interface SnapshotDiff {
  before: {cluster: string; startedAt: string}
  after: {cluster: string; startedAt: string}
  all: boolean
  nodes: {added: string[]; removed: string[]}
  pods: {added: string[]; removed: string[]}
  /** nodes, pods, Services and endpoints, NetworkPolicies, namespaces: as lines */
  cluster: SectionDiff[]
  /** only nodes with a change */
  nodeDiffs: NodeDiff[]
  /** the number of changed lines in all */
  changes: number
}

/** Neighbour states the kernel moves through by itself as an entry ages. */
const AGEING_NUD = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE'])

/** A line and the identity it is compared by (the line itself, or the line without what only ages). */
interface Item {
  line: string
  key: string
}

const same = (line: string): Item => ({line, key: line})

/**
 * Lines only on one side, by identity, duplicates counted (two identical
 * iptables rules are two lines). Order is kept as each side lists it.
 */
function multisetDiff(before: readonly Item[], after: readonly Item[]): {removed: string[]; added: string[]} {
  const count = new Map<string, number>()
  for (const i of after) count.set(i.key, (count.get(i.key) ?? 0) + 1)
  const removed: string[] = []
  for (const i of before) {
    const n = count.get(i.key) ?? 0
    if (n > 0) count.set(i.key, n - 1)
    else removed.push(i.line)
  }
  const left = new Map<string, number>()
  for (const i of before) left.set(i.key, (left.get(i.key) ?? 0) + 1)
  const added: string[] = []
  for (const i of after) {
    const n = left.get(i.key) ?? 0
    if (n > 0) left.set(i.key, n - 1)
    else added.push(i.line)
  }
  return {removed, added}
}

/** Above this many cells the ordered diff falls back to the multiset one (a rewrite of thousands of rules). */
const LCS_CELLS = 4_000_000

/**
 * For lists whose order matters (a chain's rules, a file's lines): a rule moved
 * is removed and added. The common head and tail are set aside first, so that
 * one rule inserted into a chain of thousands costs nothing.
 */
function orderedDiff(before: readonly string[], after: readonly string[]): {removed: string[]; added: string[]} {
  let head = 0
  while (head < before.length && head < after.length && before[head] === after[head]) head++
  let tail = 0
  while (
    tail < before.length - head &&
    tail < after.length - head &&
    before[before.length - 1 - tail] === after[after.length - 1 - tail]
  )
    tail++
  const a = before.slice(head, before.length - tail)
  const b = after.slice(head, after.length - tail)
  if (a.length === 0 || b.length === 0) return {removed: [...a], added: [...b]}
  if (a.length * b.length > LCS_CELLS) return multisetDiff(a.map(same), b.map(same))
  // longest common subsequence, then walk it
  const w = b.length + 1
  const lcs = new Uint32Array((a.length + 1) * w)
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i * w + j] =
        a[i] === b[j] ? lcs[(i + 1) * w + j + 1]! + 1 : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!)
    }
  }
  const removed: string[] = []
  const added: string[] = []
  let i = 0
  let j = 0
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      i++
      j++
    } else if (lcs[(i + 1) * w + j]! >= lcs[i * w + j + 1]!) removed.push(a[i++]!)
    else added.push(b[j++]!)
  }
  removed.push(...a.slice(i))
  added.push(...b.slice(j))
  return {removed, added}
}

/** One section's listing on one side: unordered items, or ordered groups of lines (chains, files). */
type Listing = {kind: 'set'; items: Item[]} | {kind: 'ordered'; groups: Map<string, string[]>}

function diffListing(
  section: string,
  before: Listing | undefined,
  after: Listing | undefined,
): SectionDiff | undefined {
  const kind = before?.kind ?? after?.kind
  let removed: string[] = []
  let added: string[] = []
  if (kind === 'set') {
    ;({removed, added} = multisetDiff(
      before?.kind === 'set' ? before.items : [],
      after?.kind === 'set' ? after.items : [],
    ))
  } else {
    const b = before?.kind === 'ordered' ? before.groups : new Map<string, string[]>()
    const a = after?.kind === 'ordered' ? after.groups : new Map<string, string[]>()
    for (const group of new Set([...b.keys(), ...a.keys()])) {
      const d = orderedDiff(b.get(group) ?? [], a.get(group) ?? [])
      removed.push(...d.removed)
      added.push(...d.added)
    }
  }
  return removed.length + added.length > 0 ? {section, removed, added} : undefined
}

function diffListings(before: Map<string, Listing>, after: Map<string, Listing>): SectionDiff[] {
  const out: SectionDiff[] = []
  for (const section of new Set([...before.keys(), ...after.keys()])) {
    const d = diffListing(section, before.get(section), after.get(section))
    if (d) out.push(d)
  }
  return out
}

const setOf = (lines: Iterable<Item>): Listing => ({kind: 'set', items: [...lines]})

/** `[123:4567]` counters and nft's `counter packets N bytes M`, when they are to be ignored. */
function withoutCounters(chain: IptablesChain, all: boolean): IptablesChain {
  return all ? chain : {...chain, packets: undefined, bytes: undefined}
}

function nftCounters(text: string, all: boolean): string {
  return all ? text : text.replace(/\bcounter packets \d+ bytes \d+/g, 'counter')
}

/** A learned neighbour is the same entry while it only ages; a PERMANENT, NOARP, FAILED or INCOMPLETE one is compared as printed. */
function neighbourItem(n: Neighbour, all: boolean): Item {
  const line = neighLine(n)
  if (all || n.state.length === 0 || !n.state.every((s) => AGEING_NUD.has(s))) return same(line)
  return {line, key: neighLine({...n, state: ['REACHABLE|STALE|DELAY|PROBE']})}
}

/**
 * The NOARP entries the kernel makes for a multicast destination as it sends
 * to it (IPv6's all-routers, MLD, solicited-node groups) and collects again
 * later: they come and go by themselves.
 */
function multicastNoarp(n: Neighbour): boolean {
  return n.state.includes('NOARP') && (/^ff/i.test(n.dst) || /^2(2[4-9]|3\d)\./.test(n.dst))
}

/** Learned bridge FDB entries (neither permanent nor static) come and go as frames pass. */
const learned = (f: FdbEntry): boolean => !f.permanent && !f.static

/** A link's line: `ip -d -o link` with a bridge port's hairpin mode. */
function linkItem(l: Link): Item {
  return same(l.bridgePort ? `${linkLine(l)} hairpin ${l.bridgePort.hairpin ? 'on' : 'off'}` : linkLine(l))
}

/** The links, addresses, routes and neighbours a node or a pod namespace has. */
function netnsListings(
  prefix: string,
  s: Pick<NodeState, 'links' | 'addresses' | 'routes' | 'neighbours'> & {rules?: NodeState['rules']},
  all: boolean,
  out: Map<string, Listing>,
): void {
  const ifindex = new Map(s.links.map((l) => [l.name, l.ifindex]))
  out.set(`${prefix}ip -d link`, setOf(s.links.map(linkItem)))
  out.set(`${prefix}ip addr`, setOf(s.addresses.map((a: Address) => same(addrLine(a, ifindex.get(a.dev))))))
  out.set(`${prefix}ip route show table all`, setOf(s.routes.map((r) => same(routeLine(r)))))
  if (s.rules) out.set(`${prefix}ip rule`, setOf(s.rules.map((r) => same(formatRule(r)))))
  out.set(
    `${prefix}ip neigh`,
    setOf(s.neighbours.filter((n) => all || !multicastNoarp(n)).map((n) => neighbourItem(n, all))),
  )
}

function iptablesListings(tool: string, t: Iptables | undefined, all: boolean, out: Map<string, Listing>): void {
  if (!t) return
  for (const table of t.tables) {
    const groups = new Map<string, string[]>()
    for (const chain of table.chains)
      groups.set(chain.name, [chainLine(withoutCounters(chain, all)), ...chain.rules.map((r) => r.raw)])
    out.set(`${tool} -t ${table.name}`, {kind: 'ordered', groups})
  }
}

/** nft's tables but those iptables-nft owns: iptables-save prints those already (the walk reads them once too). */
function nftListings(
  r: NftRuleset | undefined,
  iptablesOwned: Set<string>,
  all: boolean,
  out: Map<string, Listing>,
): void {
  if (!r) return
  for (const table of r.tables) {
    if ((table.family === 'ip' || table.family === 'ip6') && iptablesOwned.has(table.name)) continue
    const groups = new Map<string, string[]>()
    for (const c of table.chains) {
      const base = c.hook
        ? ` type ${c.type ?? 'filter'} hook ${c.hook}${c.dev ? ` device ${c.dev}` : ''} priority ${c.prio ?? 0}; policy ${c.policy ?? 'accept'};`
        : ''
      groups.set(`chain ${c.name}`, [
        `chain ${c.name} {${base}`,
        ...c.rules.map((rule) => `chain ${c.name}: ${nftCounters(rule.text, all)}`),
      ])
    }
    for (const set of table.sets) {
      const head = `${set.kind} ${set.name} { type ${[set.type].flat().join(' . ')}${set.map ? ` : ${[set.map].flat().join(' . ')}` : ''}${set.flags?.length ? `; flags ${set.flags.join(',')}` : ''} }`
      // elements are a set: their order is the kernel's hash order
      const elements = set.elements
        .map(
          (e) =>
            `${set.kind} ${set.name}: element ${JSON.stringify(e.key)}${e.value === undefined ? '' : ` : ${JSON.stringify(e.value)}`}`,
        )
        .sort()
      groups.set(`${set.kind} ${set.name}`, [head, ...elements])
    }
    out.set(`nft list table ${table.family} ${table.name}`, {kind: 'ordered', groups})
  }
}

/** ipset members may carry `packets N bytes N` (sets created with counters) and a ticking `timeout N`. */
function ipsetListing(sets: Ipset[] | undefined, all: boolean): Listing | undefined {
  if (!sets) return undefined
  const items: Item[] = []
  for (const s of sets) {
    items.push(same(['create', s.name, s.type, ...s.options].join(' ')))
    for (const m of s.members) {
      const options = all ? (m.options ?? []) : stripTicking(m.options ?? [])
      items.push(same(['add', s.name, m.value, ...options].join(' ')))
    }
  }
  return setOf(items)
}

function stripTicking(options: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < options.length; i++) {
    if (['packets', 'bytes', 'timeout'].includes(options[i]!) && /^\d+$/.test(options[i + 1] ?? '')) i++
    else out.push(options[i]!)
  }
  return out
}

/** Every listing of one node's state, keyed by what prints it. */
export function nodeListings(s: NodeState, all: boolean): Map<string, Listing> {
  const out = new Map<string, Listing>()
  if (s.kernel) out.set('uname -r', setOf([same(s.kernel)]))
  netnsListings('', s, all, out)
  out.set('bridge fdb', setOf(s.fdb.filter((f) => all || !learned(f)).map((f) => same(fdbLine(f)))))
  out.set('sysctl', setOf(Object.entries(s.sysctls).map(([k, v]) => same(sysctlLine(k, v)))))
  iptablesListings('iptables-save', s.iptables, all, out)
  iptablesListings('iptables-legacy-save', s.iptablesLegacy, all, out)
  iptablesListings('iptables-nft-save', s.iptablesNft, all, out)
  nftListings(s.nft, iptablesNftTables(s), all, out)
  const ipsets = ipsetListing(s.ipsets, all)
  if (ipsets) out.set('ipset save', ipsets)
  if (s.bird) {
    out.set('birdc show protocols', setOf(s.bird.sessions.map((x) => same(birdProtocolLine(x)))))
    out.set('birdc show route', setOf(s.bird.routes.map((x) => same(birdRouteLine(x)))))
  }
  if (s.flannelSubnetEnv)
    out.set('cat subnet.env', setOf(Object.entries(s.flannelSubnetEnv).map(([k, v]) => same(`${k}=${v}`))))
  if (s.cni) {
    out.set(`ls ${s.cni.binDir}`, setOf(s.cni.plugins.map(same)))
    for (const f of s.cni.files)
      out.set(`cat ${s.cni.confDir}/${f.name}`, {kind: 'ordered', groups: new Map([['', f.content.split('\n')]])})
  }
  for (const [dev, features] of Object.entries(s.offloads ?? {})) {
    out.set(`ethtool -k ${dev}`, setOf(Object.entries(features).map(([k, on]) => same(`${k}: ${on ? 'on' : 'off'}`))))
  }
  // a daemon restarted has a new pid: the same process here, unless --all
  out.set('ps', setOf(s.processes.map((p) => same(all ? `${p.pid} ${p.args || p.name}` : p.args || p.name))))
  if (all && s.conntrack)
    out.set('conntrack -C', setOf([same(`${s.conntrack.count ?? '?'} of ${s.conntrack.max ?? '?'}`)]))
  // the recent match's lists (ClientIP affinity): which client each endpoint remembers, traffic's doing like conntrack
  if (all && s.xtRecent)
    out.set(
      'cat /proc/net/xt_recent/*',
      setOf(
        s.xtRecent.tables.flatMap((t) =>
          t.entries.map((e) => same(`${t.name}: src=${e.address} ttl: ${e.ttl} last_seen: ${e.lastSeen}`)),
        ),
      ),
    )
  out.set(
    'probe sections',
    setOf(Object.entries(s.sections).map(([k, r]) => same(`${k}: ${r.status}${r.cause ? ` (${r.cause})` : ''}`))),
  )
  for (const pod of s.pods) podListings(pod, all, out)
  return out
}

function podListings(pod: PodNetnsState, all: boolean, out: Map<string, Listing>): void {
  netnsListings(`pod ${pod.namespace}/${pod.name}: `, pod, all, out)
}

const labelsText = (labels: Record<string, string> | undefined): string =>
  Object.entries(labels ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(',')

/** Keys of an object in a fixed order, so that two equal specs print alike. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  )
}

/** The cluster's objects as lines, as kubectl's wide listings would show them. */
function clusterListings(s: Snapshot): Map<string, Listing> {
  const out = new Map<string, Listing>()
  const nodeLines: Item[] = []
  for (const n of s.nodes) {
    nodeLines.push(
      same(
        `node ${n.name} internalIP ${n.internalIP}${n.externalIP ? ` externalIP ${n.externalIP}` : ''} podCIDRs ${n.podCIDRs.join(',') || '<none>'}`,
      ),
    )
    for (const [k, v] of Object.entries(n.annotations))
      nodeLines.push(same(`node ${n.name} annotation ${annotationLine(k, v)}`))
    for (const [k, v] of Object.entries(n.labels)) nodeLines.push(same(`node ${n.name} label ${k}=${v}`))
  }
  out.set('nodes', setOf(nodeLines))
  out.set(
    'pods',
    setOf(
      s.pods.map((p) =>
        same(
          `pod ${p.namespace}/${p.name} node ${p.node} ip ${p.ip}${p.hostNetwork ? ' hostNetwork' : ''}${p.labels ? ` labels ${labelsText(p.labels) || '<none>'}` : ''}`,
        ),
      ),
    ),
  )
  const services: Item[] = []
  for (const svc of s.services ?? []) {
    const ports = svc.ports
      .map(
        (p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol}${p.targetPort ? `→${p.targetPort}` : ''}`,
      )
      .join(',')
    services.push(same(`service ${svc.namespace}/${svc.name} ${svc.type ?? 'ClusterIP'} ${svc.clusterIP} ${ports}`))
    for (const e of svc.endpoints ?? []) {
      const ready = e.conditions?.ready === false ? ' not-ready' : ''
      services.push(
        same(
          `service ${svc.namespace}/${svc.name} endpoint ${e.addresses.join(',')}${e.nodeName ? ` on ${e.nodeName}` : ''}${ready}`,
        ),
      )
    }
  }
  if (s.services) out.set('services and endpoints', setOf(services))
  if (s.networkPolicies)
    out.set(
      'networkpolicies',
      setOf(s.networkPolicies.map((p) => same(`networkpolicy ${p.namespace}/${p.name} ${canonicalJson(p.spec)}`))),
    )
  if (s.namespaces)
    out.set(
      'namespaces',
      setOf(s.namespaces.map((n) => same(`namespace ${n.name} ${labelsText(n.labels) || '<no labels>'}`))),
    )
  return out
}

function names(a: readonly string[], b: readonly string[]): {added: string[]; removed: string[]} {
  const before = new Set(a)
  const after = new Set(b)
  return {added: b.filter((x) => !before.has(x)), removed: a.filter((x) => !after.has(x))}
}

/** The difference from BEFORE to AFTER. */
export function diffSnapshots(before: Snapshot, after: Snapshot, opts: DiffOptions = {}): SnapshotDiff {
  const all = opts.all ?? false
  const cluster = diffListings(clusterListings(before), clusterListings(after))
  const nodes = names(
    before.nodes.map((n) => n.name),
    after.nodes.map((n) => n.name),
  )
  const podName = (p: {namespace: string; name: string}): string => `${p.namespace}/${p.name}`
  const pods = names(before.pods.map(podName), after.pods.map(podName))
  const wanted = opts.nodes ? new Set(opts.nodes) : undefined
  const nodeDiffs: NodeDiff[] = []
  const allNodes = [...new Set([...before.nodes.map((n) => n.name), ...after.nodes.map((n) => n.name)])]
  for (const node of allNodes) {
    if (wanted && !wanted.has(node)) continue
    const b = before.nodeStates[node]
    const a = after.nodeStates[node]
    const inBefore = before.nodes.some((n) => n.name === node)
    const inAfter = after.nodes.some((n) => n.name === node)
    const sections = diffListings(b ? nodeListings(b, all) : new Map(), a ? nodeListings(a, all) : new Map())
    const status: NodeDiff['status'] = !inBefore ? 'added' : !inAfter ? 'removed' : !a || !b ? 'uncollected' : 'changed'
    if (status === 'changed' && sections.length === 0) continue
    const uncollected =
      status === 'uncollected'
        ? ([...(b ? [] : ['before']), ...(a ? [] : ['after'])] as Array<'before' | 'after'>)
        : undefined
    // a side not collected says nothing about what changed: no lines
    nodeDiffs.push({
      node,
      status,
      ...(uncollected ? {uncollected} : {}),
      sections: status === 'uncollected' ? [] : sections,
    })
  }
  const count = (ds: SectionDiff[]): number => ds.reduce((n, d) => n + d.removed.length + d.added.length, 0)
  return {
    before: {cluster: before.cluster.name, startedAt: before.startedAt},
    after: {cluster: after.cluster.name, startedAt: after.startedAt},
    all,
    nodes,
    pods,
    cluster,
    nodeDiffs,
    changes: count(cluster) + nodeDiffs.reduce((n, d) => n + count(d.sections), 0),
  }
}
