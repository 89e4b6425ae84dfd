/**
 * One node's tables, indexed once: the checks ask "the route for exactly
 * this subnet", "the neighbour for this address on this device", "the FDB
 * entries towards this address" once per peer, so a scan per question would
 * make every check quadratic in a node's tables. Built on first use by the
 * CheckContext (CheckContext.index), so one run of the checks shares them.
 */
import type {FdbEntry, Link, Neighbour, NodeState, Route} from '../../model/node-state.js'
import {parsePrefix} from './ip.js'

export class StateIndex {
  /** IPv4 routes of table main, in the kernel's order */
  readonly mainRoutes: Route[]
  private readonly mainByDst = new Map<string, Route[]>()
  /** "net/len" (numbers) → the first main unicast-or-not route for that exact prefix */
  private readonly mainByPrefix = new Map<number, Route>()
  private readonly links = new Map<string, Link>()
  private readonly neighbours = new Map<string, Neighbour>()
  private readonly fdbByDev = new Map<string, FdbEntry[]>()
  private readonly fdbByDevDst = new Map<string, FdbEntry[]>()
  private readonly fdbMACs = new Map<string, Set<string>>()

  constructor(state: NodeState) {
    this.mainRoutes = []
    for (const r of state.routes) {
      if (r.family !== 'inet' || r.table !== 'main') continue
      this.mainRoutes.push(r)
      const same = this.mainByDst.get(r.dst)
      if (same) same.push(r)
      else this.mainByDst.set(r.dst, [r])
      const p = parsePrefix(r.dst)
      if (p && !this.mainByPrefix.has(prefixKey(p.net, p.len))) this.mainByPrefix.set(prefixKey(p.net, p.len), r)
    }
    for (const l of state.links) {
      if (!this.links.has(l.name)) this.links.set(l.name, l)
    }
    for (const n of state.neighbours) {
      const k = `${n.dev} ${n.dst}`
      if (!this.neighbours.has(k)) this.neighbours.set(k, n)
    }
    for (const f of state.fdb) {
      push(this.fdbByDev, f.dev, f)
      if (f.dst) push(this.fdbByDevDst, `${f.dev} ${f.dst}`, f)
      let macs = this.fdbMACs.get(f.dev)
      if (!macs) this.fdbMACs.set(f.dev, (macs = new Set()))
      macs.add((f.mac ?? '').toLowerCase())
    }
  }

  /** Main-table routes for exactly this destination, as written ("10.244.1.0/24"). */
  routesTo(dst: string): Route[] {
    return this.mainByDst.get(dst) ?? []
  }

  /** The route the node would use for a whole subnet: the exact one, else the longest non-default one covering it. */
  covering(net: string): Route | undefined {
    const exact = this.mainByDst.get(net)?.[0]
    if (exact) return exact
    const p = parsePrefix(net)
    if (!p) return undefined
    for (let len = p.len; len > 0; len--) {
      const r = this.mainByPrefix.get(prefixKey(p.len === len ? p.net : (p.net & maskOf(len)) >>> 0, len))
      if (r) return r
    }
    return undefined
  }

  link(name: string): Link | undefined {
    return this.links.get(name)
  }

  /** The first neighbour entry for this address on this device. */
  neighbour(dev: string, dst: string): Neighbour | undefined {
    return this.neighbours.get(`${dev} ${dst}`)
  }

  fdbOn(dev: string): FdbEntry[] {
    return this.fdbByDev.get(dev) ?? []
  }

  /** FDB entries on this device sending to this address. */
  fdbTo(dev: string, dst: string): FdbEntry[] {
    return this.fdbByDevDst.get(`${dev} ${dst}`) ?? []
  }

  /** Does the device hold an FDB entry for any of these MACs (lower case)? */
  fdbHasMAC(dev: string, macs: ReadonlySet<string>): boolean {
    const have = this.fdbMACs.get(dev)
    if (!have) return false
    for (const m of macs) if (have.has(m)) return true
    return false
  }
}

const maskOf = (len: number): number => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0)
/** a prefix as one number: the network times 64 plus the length (exact in a double) */
export const prefixKey = (net: number, len: number): number => net * 64 + len

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k)
  if (a) a.push(v)
  else m.set(k, [v])
}

