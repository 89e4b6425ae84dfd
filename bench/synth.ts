/**
 * A synthetic cluster of N nodes, grown from a real lab snapshot (fixtures/snapshots/*-lab.json).
 *
 * The lab's first node is the template. Each entry of its state (route, neighbour, FDB entry,
 * link, address, BGP session, ...) is either its own (it names none of its peers) or about one
 * peer (it names a peer's underlay address, pod subnet or a MAC of one of the peer's links).
 * Node i gets the template's own entries with the template's identity replaced by its own, and
 * the entries about one pattern peer once per peer, with that peer's identity put in. An
 * identity is what differs between nodes: the name, the underlay address, the pod subnet, and
 * the names and MACs of the node's links and pods' links (the kernel picks them at random).
 * Up to the lab's size the identities are the lab's own, so a re-generation of the lab's size
 * can be compared with the lab entry by entry (test/bench/synth.test.ts); beyond it they are
 * made up (underlay 172.31.0.0/16, pod subnets in 10.0.0.0/8 when the lab's network is too
 * small).
 *
 * Node states are made one at a time (`nodeState(i)`), so a 5,000-node cluster is streamed to
 * a file, never held whole.
 */
import path from 'node:path'

import {factsMakerFor} from '../src/analyze/checks/index.js'
import {ipv4ToNumber, numberToIPv4, parsePrefix} from '../src/analyze/ip.js'
import type {NodeState} from '../src/model/node-state.js'
import type {Snapshot, SnapshotNode, SnapshotPod} from '../src/model/snapshot.js'
import {openLinesSpool, writeChunks} from '../src/model/snapshot-file.js'

interface Identity {
  name: string
  ip: string
  /** the pod subnet's network address as a number (the lab's /24 or /26 slot) */
  podBase: number
  /** positional: the template's links[k] is this node's links[k] */
  linkNames: string[]
  linkMACs: string[]
  podLinkMACs: string[]
}

export interface Synthetic {
  /** the snapshot without node states */
  skeleton: Snapshot
  names: string[]
  /** node i's state, made on demand (undefined when it is left uncollected) */
  nodeState(i: number): NodeState | undefined
}

export interface SynthOptions {
  /** only these nodes get state (the others are known, as after a partial collect) */
  collected?: ReadonlySet<string>
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

function identityOf(s: Snapshot, n: SnapshotNode): Identity {
  const st = s.nodeStates[n.name]!
  return {
    name: n.name,
    ip: n.internalIP,
    podBase: parsePrefix(n.podCIDRs[0])!.net,
    linkNames: st.links.map((l) => l.name),
    linkMACs: st.links.map((l) => (l.mac ?? '').toLowerCase()),
    podLinkMACs: st.pods.flatMap((p) => p.links.map((l) => (l.mac ?? '').toLowerCase())),
  }
}

/** A made-up MAC, locally administered, unique per node and slot. */
const macOf = (node: number, slot: number): string =>
  ['0a', (node >> 16) & 255, (node >> 8) & 255, node & 255, (slot >> 8) & 255, slot & 255]
    .map((b) => (typeof b === 'string' ? b : b.toString(16).padStart(2, '0')))
    .join(':')

/** fe80:: + the modified EUI-64 of a MAC, as `ip -j addr` writes it. */
function linkLocal(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16))
  b[0] = b[0]! ^ 2
  const words = [(b[0] << 8) | b[1]!, (b[2]! << 8) | 0xff, (0xfe << 8) | b[3]!, (b[4]! << 8) | b[5]!]
  return `fe80::${words.map((w) => w.toString(16)).join(':')}`
}

/** The solicited-node multicast group's MAC (33:33:ff + the last three bytes), in the FDB of every IPv6 link. */
const solicited = (mac: string): string => `33:33:ff:${mac.split(':').slice(3).join(':')}`

type Who = 'self' | 'peer'
/** A token of an identity: where to find its value in another identity. */
type Slot = {who: Who; value: (id: Identity) => string} | {who: Who; pod: number}

/**
 * The tokens of the template node (self) and of the pattern peer (peer), found once; a template
 * entry is cut at them once, and made for any (node, peer) by joining the pieces with their values.
 */
class Tokens {
  private readonly slots = new Map<string, Slot>()
  private readonly pods: Array<{prefix: string; who: Who}> = []
  private readonly re: RegExp

  constructor(self: Identity, peer: Identity, shared: ReadonlySet<string>) {
    const add = (who: Who, from: Identity) => {
      // the first mapping wins: a bridge wears the MAC of one of its ports
      const set = (a: string, value: (id: Identity) => string) => {
        if (a && a !== '00:00:00:00:00:00' && !shared.has(a) && !this.slots.has(a)) this.slots.set(a, {who, value})
      }
      // and with a MAC, what the kernel derives from it: the IPv6 link-local address and its solicited-node group
      const setMAC = (a: string, value: (id: Identity) => string) => {
        if (!a || shared.has(a) || a === '00:00:00:00:00:00') return
        set(a, value)
        set(linkLocal(a), (id) => linkLocal(value(id)))
        set(solicited(a), (id) => solicited(value(id)))
      }
      set(from.name, (id) => id.name)
      set(from.ip, (id) => id.ip)
      set(from.ip.replace(/\./g, '_'), (id) => id.ip.replace(/\./g, '_'))
      from.linkMACs.forEach((m, k) => setMAC(m, (id) => id.linkMACs[k] ?? m))
      from.podLinkMACs.forEach((m, k) => setMAC(m, (id) => id.podLinkMACs[k] ?? m))
      if (who === 'self')
        from.linkNames.forEach((l, k) => /^(veth|cali)/.test(l) && set(l, (id) => id.linkNames[k] ?? l))
      this.pods.push({prefix: podPrefixOf(from), who})
    }
    add('self', self)
    if (peer !== self) add('peer', peer)
    const alts = [
      ...[...this.slots.keys()].sort((a, b) => b.length - a.length).map(esc),
      ...this.pods.map((p) => `${esc(p.prefix)}\\d{1,3}`),
    ]
    // whole tokens only: node1 is not node10, 172.31.0.1 is not 172.31.0.11 (Mesh_172_31_0_12 and pod-node1-1 hold tokens)
    this.re = new RegExp(`(?<![0-9A-Za-z:])(?:${alts.join('|')})(?![0-9A-Za-z:]|\\.\\d)`, 'g')
  }

  /** Cut a template entry at its tokens. */
  compile(text: string): Compiled {
    const parts: Array<string | Slot> = []
    let last = 0
    for (const m of text.matchAll(this.re)) {
      parts.push(text.slice(last, m.index))
      const direct = this.slots.get(m[0])
      if (direct) parts.push(direct)
      else {
        const p = this.pods.find((q) => m[0].startsWith(q.prefix))!
        parts.push({who: p.who, pod: Number(m[0].slice(p.prefix.length))})
      }
      last = m.index + m[0].length
    }
    parts.push(text.slice(last))
    const make = (self: Identity, peer?: Identity) => {
      let out = ''
      for (const part of parts) {
        if (typeof part === 'string') out += part
        else {
          const id = part.who === 'self' ? self : peer!
          out += 'pod' in part ? numberToIPv4(id.podBase + part.pod) : part.value(id)
        }
      }
      return out
    }
    return Object.assign(make, {aboutPeer: parts.some((p) => typeof p !== 'string' && p.who === 'peer')})
  }
}

type Compiled = ((self: Identity, peer?: Identity) => string) & {aboutPeer: boolean}

const podPrefixOf = (id: Identity): string => numberToIPv4(id.podBase).split('.').slice(0, 3).join('.') + '.'

/** Does an entry name this node (its underlay address, a pod address, a MAC of its own)? */
function mentions(json: string, id: Identity, shared: ReadonlySet<string>): boolean {
  const ip = new RegExp(
    `(?<![0-9A-Za-z:])(${esc(id.ip)}|${esc(id.ip.replace(/\./g, '_'))}|${esc(podPrefixOf(id))}\\d{1,3})(?![0-9A-Za-z:]|\\.\\d)`,
  )
  return (
    ip.test(json) ||
    id.linkMACs.some((m) => m !== '' && !shared.has(m) && m !== '00:00:00:00:00:00' && json.includes(m))
  )
}

const PER_ENTRY_TABLES = ['links', 'addresses', 'routes', 'rules', 'neighbours', 'fdb'] as const

type Part = {marks: Array<'own' | 'peer'>; own: Compiled[]; peer: Compiled[]}

/**
 * Grow `lab` (a snapshot of a real lab, every node collected) to `n` nodes.
 */
export function synthesize(lab: Snapshot, n: number, opts: SynthOptions = {}): Synthetic {
  const template = lab.nodes[0]!
  const tState = lab.nodeStates[template.name]!
  const real = lab.nodes.map((node) => identityOf(lab, node))
  const tId = real[0]!
  const pattern = real[real.length - 1]!
  const others = real.slice(1)
  // a MAC every node wears (Calico's ee:ee:ee:ee:ee:ee on its veths) names no node
  const count = new Map<string, number>()
  for (const id of real)
    for (const m of new Set([...id.linkMACs, ...id.podLinkMACs])) count.set(m, (count.get(m) ?? 0) + 1)
  const shared = new Set([...count].filter(([, c]) => c > 1).map(([m]) => m))
  const tokens = new Tokens(tId, pattern, shared)

  // the lab's network and underlay, widened when the cluster does not fit
  const network = parsePrefix(lab.cluster.clusterCIDR)!
  const podLen = parsePrefix(template.podCIDRs[0])!.len
  const slots = 2 ** (24 - network.len) - 2
  const widenPods = n > slots
  const uplinkAddr = tState.addresses.find((a) => a.local === template.internalIP)!
  const underlayNet = parsePrefix(`${template.internalIP}/${uplinkAddr.prefixlen}`)!
  const widenUnderlay = n + 11 > 2 ** (32 - underlayNet.len) - 2
  const useReal = !widenPods && !widenUnderlay

  const ids: Identity[] = Array.from({length: n}, (_, i) => {
    if (useReal && i < real.length) return real[i]!
    const ip = numberToIPv4(underlayNet.net + 11 + i)
    const podBase = widenPods ? ipv4ToNumber('10.0.0.0')! + (i + 1) * 256 : network.net + (i + 1) * 256
    const made = (m: string, slot: number) =>
      m === '00:00:00:00:00:00' || m === '' || shared.has(m) ? m : macOf(i, slot)
    return {
      name: `node${i + 1}`,
      ip,
      podBase,
      linkNames: tId.linkNames,
      linkMACs: tId.linkMACs.map((m, k) => made(m, k)),
      podLinkMACs: tId.podLinkMACs.map((m, k) => made(m, 256 + k)),
    }
  })
  const names = ids.map((id) => id.name)
  const underlay = `${numberToIPv4(underlayNet.net)}/${underlayNet.len}`
  const widen = (text: string): string => {
    let out = text
    if (widenPods) out = out.split(lab.cluster.clusterCIDR).join('10.0.0.0/8')
    if (widenUnderlay) out = out.split(underlay).join(`${numberToIPv4(underlayNet.net)}/16`)
    return out
  }
  const own = (text: string) => tokens.compile(widen(text))

  // the template's entries, split into its own and those about the pattern peer (entries about other peers are dropped)
  const split = (entries: unknown[]): Part => {
    const part: Part = {marks: [], own: [], peer: []}
    for (const e of entries) {
      const json = JSON.stringify(e)
      const made = own(json)
      const about = made.aboutPeer ? pattern : others.find((o) => mentions(json, o, shared))
      if (!about) {
        part.own.push(made)
        part.marks.push('own')
      } else if (about === pattern) {
        part.peer.push(made)
        part.marks.push('peer')
      }
    }
    return part
  }
  const tables = Object.fromEntries(PER_ENTRY_TABLES.map((t) => [t, split(tState[t] as unknown[])])) as Record<
    (typeof PER_ENTRY_TABLES)[number],
    Part
  >
  const birdSessions = tState.bird ? split(tState.bird.sessions) : undefined
  const birdRoutes = tState.bird ? split(tState.bird.routes) : undefined
  const {links: _l, addresses: _a, routes: _r, rules: _u, neighbours: _n, fdb: _f, ...restOfState} = tState
  const rest = own(
    JSON.stringify(
      restOfState.bird ? {...restOfState, bird: {...restOfState.bird, sessions: [], routes: []}} : restOfState,
    ),
  )

  const expand = (part: Part, i: number): unknown[] => {
    const out: unknown[] = []
    let o = 0
    let emitted = false
    for (const m of part.marks) {
      if (m === 'own') out.push(JSON.parse(part.own[o++]!(ids[i]!)))
      else if (!emitted) {
        // every peer's copy where the pattern peer's entries were
        emitted = true
        for (let j = 0; j < n; j++) if (j !== i) for (const p of part.peer) out.push(JSON.parse(p(ids[i]!, ids[j]!)))
      }
    }
    return out
  }

  const node = own(JSON.stringify(template))
  const pods = lab.pods.filter((p) => p.node === template.name).map((p) => own(JSON.stringify(p)))
  const skeleton: Snapshot = {
    ...lab,
    cluster: {...lab.cluster, clusterCIDR: widenPods ? '10.0.0.0/8' : lab.cluster.clusterCIDR},
    nodes: ids.map((id) => {
      const made = JSON.parse(node(id)) as SnapshotNode
      made.podCIDRs = [`${numberToIPv4(id.podBase)}/${podLen}`]
      const calico = made.annotations['projectcalico.org/IPv4Address']
      if (widenUnderlay && calico) made.annotations['projectcalico.org/IPv4Address'] = `${id.ip}/16`
      return made
    }),
    pods: ids.flatMap((id) => pods.map((p) => JSON.parse(p(id)) as SnapshotPod)),
    nodeStates: {},
    errors: [],
  }

  return {
    skeleton,
    names,
    nodeState(i: number): NodeState | undefined {
      if (opts.collected && !opts.collected.has(names[i]!)) return undefined
      const state = JSON.parse(rest(ids[i]!)) as Record<string, unknown>
      for (const t of PER_ENTRY_TABLES) state[t] = expand(tables[t], i)
      if (widenUnderlay)
        for (const a of state.addresses as NodeState['addresses']) if (a.local === ids[i]!.ip) a.prefixlen = 16
      const bird = state.bird as NodeState['bird']
      if (bird && birdSessions && birdRoutes) {
        bird.sessions = expand(birdSessions, i) as typeof bird.sessions
        bird.routes = expand(birdRoutes, i) as typeof bird.routes
      }
      // the template's order of tables, as the probe writes them
      return Object.fromEntries(Object.keys(tState).map((k) => [k, state[k]])) as unknown as NodeState
    },
  }
}

/** The whole snapshot in memory: small clusters (tests). */
export function synthesizeSnapshot(lab: Snapshot, n: number, opts: SynthOptions = {}): Snapshot {
  const g = synthesize(lab, n, opts)
  const nodeStates: Record<string, NodeState> = {}
  g.names.forEach((name, i) => {
    const st = g.nodeState(i)
    if (st) nodeStates[name] = st
  })
  return {...g.skeleton, nodeStates}
}

/**
 * Write a synthetic cluster as `collect --output-file FILE.jsonl` writes one (the same spool: each
 * node's state and its cluster facts as it is made, the head with the index first), a node at a
 * time. Returns the entries written (routes, neighbours, FDB entries, links, addresses).
 */
export async function writeSynthetic(g: Synthetic, file: string): Promise<{entries: number}> {
  const spool = await openLinesSpool(path.dirname(file), factsMakerFor(g.skeleton.cluster))
  let entries = 0
  try {
    for (let i = 0; i < g.names.length; i++) {
      const st = g.nodeState(i)
      if (!st) continue
      entries += st.routes.length + st.neighbours.length + st.fdb.length + st.links.length + st.addresses.length
      await spool.add(g.names[i]!, st)
    }
    await writeChunks(file, spool.chunks(g.skeleton))
  } finally {
    await spool.close()
  }
  return {entries}
}
