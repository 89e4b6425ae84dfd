/**
 * One node's tables, indexed once: the checks ask "the route for exactly
 * this subnet", "the neighbour for this address on this device", "the FDB
 * entries towards this address" once per peer, so a scan per question would
 * make every check quadratic in a node's tables. Built on first use by the
 * CheckContext (CheckContext.index), so one run of the checks shares them.
 */
import type {FdbEntry, Link, Neighbour, NodeState, Route} from '../../model/node-state.js'
import {parsePrefix, parsePrefixUncached, type Prefix4} from '../ip.js'

export class StateIndex {
  private routeIx?: {
    main: Route[]
    byDst: Map<string, Route[]>
    byPrefix: Map<number, Route>
    /** each main route's destination, parsed once (IPv4) */
    prefixes: Map<Route, Prefix4 | undefined>
  }
  private linkIx?: Map<string, Link>
  /** by device, then address: two lookups of strings the state already holds, no key made per question */
  private neighIx?: Map<string, Map<string, Neighbour>>
  private fdbIx?: {
    byDev: Map<string, FdbEntry[]>
    byDevDst: Map<string, Map<string, FdbEntry[]>>
    macs: Map<string, Set<string>>
  }

  // each table is indexed when first asked about: a check that reads a node's links does not pay for its routes
  constructor(private readonly state: NodeState) {}

  private get routes() {
    if (this.routeIx) return this.routeIx
    const ix = {
      main: [] as Route[],
      byDst: new Map<string, Route[]>(),
      byPrefix: new Map<number, Route>(),
      prefixes: new Map<Route, Prefix4 | undefined>(),
    }
    for (const r of this.state.routes) {
      if (r.family !== 'inet' || r.table !== 'main') continue
      ix.main.push(r)
      push(ix.byDst, r.dst, r)
      // each text read once here (thousands of peers' subnets): the parse memo would only grow
      const p = parsePrefixUncached(r.dst)
      ix.prefixes.set(r, p)
      // the first route for each prefix, in the kernel's order
      if (p && !ix.byPrefix.has(prefixKey(p.net, p.len))) ix.byPrefix.set(prefixKey(p.net, p.len), r)
    }
    return (this.routeIx = ix)
  }

  private get fdb() {
    if (this.fdbIx) return this.fdbIx
    const ix = {
      byDev: new Map<string, FdbEntry[]>(),
      byDevDst: new Map<string, Map<string, FdbEntry[]>>(),
      macs: new Map<string, Set<string>>(),
    }
    for (const f of this.state.fdb) {
      push(ix.byDev, f.dev, f)
      if (f.dst) push(inner(ix.byDevDst, f.dev), f.dst, f)
      let macs = ix.macs.get(f.dev)
      if (!macs) ix.macs.set(f.dev, (macs = new Set()))
      macs.add((f.mac ?? '').toLowerCase())
    }
    return (this.fdbIx = ix)
  }

  /** IPv4 routes of table main, in the kernel's order */
  get mainRoutes(): Route[] {
    return this.routes.main
  }

  /** A main route's destination as a prefix, parsed when the routes were indexed (undefined: not IPv4). */
  prefix(r: Route): Prefix4 | undefined {
    const ix = this.routes
    return ix.prefixes.has(r) ? ix.prefixes.get(r) : parsePrefix(r.dst)
  }

  /** Main-table routes for exactly this destination, as written ("10.244.1.0/24"). */
  routesTo(dst: string): Route[] {
    return this.routes.byDst.get(dst) ?? []
  }

  /** The route the node would use for a whole subnet: the exact one, else the longest non-default one covering it. */
  covering(net: string): Route | undefined {
    const exact = this.routes.byDst.get(net)?.[0]
    if (exact) return exact
    const p = parsePrefix(net)
    if (!p) return undefined
    for (let len = p.len; len > 0; len--) {
      const r = this.routes.byPrefix.get(prefixKey(p.len === len ? p.net : (p.net & maskOf(len)) >>> 0, len))
      if (r) return r
    }
    return undefined
  }

  link(name: string): Link | undefined {
    if (!this.linkIx) {
      this.linkIx = new Map()
      for (const l of this.state.links) if (!this.linkIx.has(l.name)) this.linkIx.set(l.name, l)
    }
    return this.linkIx.get(name)
  }

  /** The first neighbour entry for this address on this device. */
  neighbour(dev: string, dst: string): Neighbour | undefined {
    if (!this.neighIx) {
      this.neighIx = new Map()
      for (const n of this.state.neighbours) {
        const onDev = inner(this.neighIx, n.dev)
        if (!onDev.has(n.dst)) onDev.set(n.dst, n)
      }
    }
    return this.neighIx.get(dev)?.get(dst)
  }

  fdbOn(dev: string): FdbEntry[] {
    return this.fdb.byDev.get(dev) ?? []
  }

  /** FDB entries on this device sending to this address. */
  fdbTo(dev: string, dst: string): FdbEntry[] {
    return this.fdb.byDevDst.get(dev)?.get(dst) ?? []
  }

  /** Does the device hold an FDB entry for any of these MACs (lower case)? */
  fdbHasMAC(dev: string, macs: ReadonlySet<string>): boolean {
    const have = this.fdb.macs.get(dev)
    if (!have) return false
    for (const m of macs) if (have.has(m)) return true
    return false
  }
}

const maskOf = (len: number): number => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0)
/** a prefix as one number: the network times 64 plus the length (exact in a double) */
export const prefixKey = (net: number, len: number): number => net * 64 + len

function inner<K, K2, V>(m: Map<K, Map<K2, V>>, k: K): Map<K2, V> {
  let v = m.get(k)
  if (!v) m.set(k, (v = new Map()))
  return v
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k)
  if (a) a.push(v)
  else m.set(k, [v])
}
