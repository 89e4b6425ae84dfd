/**
 * One node's tables, indexed once: the checks ask "the route for exactly
 * this subnet", "the neighbour for this address on this device", "the FDB
 * entries towards this address" once per peer, so a scan per question would
 * make every check quadratic in a node's tables. Built on first use by the
 * CheckContext (CheckContext.index), so one run of the checks shares them.
 */
import type {FdbEntry, Link, Neighbour, NodeState, Route} from '../../model/node-state.js'
import {ipText, maskOf, parsePrefix, parsePrefixUncached, type Prefix4} from '../ip.js'
import {addressIndex, type NeighbourIndex} from '../neighbour.js'

interface RouteIndex {
  main: Route[]
  /** main[i]'s destination parsed (undefined: not IPv4) */
  prefixes: Array<Prefix4 | undefined>
  /** the first main route per destination as written; every one where a destination has several */
  first: Map<string, Route>
  all: Map<string, Route[]>
  /** the first route per prefix (network and length as one number), made when `covering` is first asked */
  byPrefix?: Map<number, Route>
}

export class StateIndex {
  private routeIx?: RouteIndex
  private linkIx?: Map<string, Link>
  /** the walk's index of the neighbour table when it made one (a trace), else one of this index's own */
  private neighIx?: NeighbourIndex
  private fdbIx?: {
    byDev: Map<string, FdbEntry[]>
    byDevDst: Map<string, Map<string, FdbEntry[]>>
    macs: Map<string, Set<string>>
  }

  // each table is indexed when first asked about: a check that reads a node's links does not pay for its routes
  constructor(private readonly state: NodeState) {}

  // a route per peer: no array, no key and no map entry made per route beyond the one by destination
  private get routes(): RouteIndex {
    if (this.routeIx) return this.routeIx
    const ix: RouteIndex = {
      main: [],
      prefixes: [],
      first: new Map<string, Route>(),
      all: new Map<string, Route[]>(),
    }
    for (const r of this.state.routes) {
      if (r.family !== 'inet' || r.table !== 'main') continue
      ix.main.push(r)
      ix.prefixes.push(parsePrefixUncached(r.dst))
      const first = ix.first.get(r.dst)
      if (!first) ix.first.set(r.dst, r)
      else {
        const all = ix.all.get(r.dst)
        if (all) all.push(r)
        else ix.all.set(r.dst, [first, r])
      }
    }
    return (this.routeIx = ix)
  }

  /** IPv4 routes of table main, in the kernel's order */
  get mainRoutes(): Route[] {
    return this.routes.main
  }

  /** The destination of mainRoutes[AT] as a prefix (undefined: not IPv4), parsed once. */
  prefixAt(at: number): Prefix4 | undefined {
    return this.routes.prefixes[at]
  }

  /** Main-table routes for exactly this destination, as written ("10.244.1.0/24"). */
  routesTo(dst: string): Route[] {
    const ix = this.routes
    const first = ix.first.get(dst)
    return first ? (ix.all.get(dst) ?? [first]) : []
  }

  /** The first main-table route for exactly this destination, in the kernel's order. */
  firstRouteTo(dst: string): Route | undefined {
    return this.routes.first.get(dst)
  }

  /** The route the node would use for a whole subnet: the exact one, else the longest non-default one covering it. */
  covering(net: string): Route | undefined {
    const ix = this.routes
    const exact = ix.first.get(net)
    if (exact) return exact
    const p = parsePrefix(net)
    if (!p) return undefined
    if (!ix.byPrefix) {
      ix.byPrefix = new Map()
      ix.main.forEach((r, at) => {
        const q = ix.prefixes[at]
        // the first route for each prefix, in the kernel's order
        if (q && !ix.byPrefix!.has(prefixKey(q.net, q.len))) ix.byPrefix!.set(prefixKey(q.net, q.len), r)
      })
    }
    for (let len = p.len; len > 0; len--) {
      const r = ix.byPrefix.get(prefixKey(p.len === len ? p.net : (p.net & maskOf(len)) >>> 0, len))
      if (r) return r
    }
    return undefined
  }

  private get fdb() {
    if (this.fdbIx) return this.fdbIx
    const ix = {
      byDev: new Map<string, FdbEntry[]>(),
      byDevDst: new Map<string, Map<string, FdbEntry[]>>(),
      macs: new Map<string, Set<string>>(),
    }
    // entries come device by device: the device's maps are looked up when it changes, not per entry
    let dev: string | undefined
    let onDev: FdbEntry[] = []
    let byDst = new Map<string, FdbEntry[]>()
    let macs = new Set<string>()
    for (const f of this.state.fdb) {
      if (f.dev !== dev) {
        dev = f.dev
        onDev = ix.byDev.get(dev) ?? []
        if (onDev.length === 0) ix.byDev.set(dev, onDev)
        byDst = inner(ix.byDevDst, dev)
        macs = ix.macs.get(dev) ?? new Set()
        if (macs.size === 0) ix.macs.set(dev, macs)
      }
      onDev.push(f)
      if (f.dst) push(byDst, f.dst, f)
      // a MAC as iproute2 prints it is lower case already: toLowerCase then returns it, nothing made
      macs.add(f.mac === undefined ? '' : f.mac.toLowerCase())
    }
    return (this.fdbIx = ix)
  }

  link(name: string): Link | undefined {
    if (!this.linkIx) {
      this.linkIx = new Map()
      for (const l of this.state.links) if (!this.linkIx.has(l.name)) this.linkIx.set(l.name, l)
    }
    return this.linkIx.get(name)
  }

  /**
   * The first neighbour entry for this address on this device: looked up in the index the trace's
   * walk reads too (neighbour.ts), so that a node's table is indexed once for both.
   */
  neighbour(dev: string, dst: string): Neighbour | undefined {
    const text = ipText(dst)
    this.neighIx ??= addressIndex(this.state.neighbours, false)
    return text === undefined ? undefined : this.neighIx.get(dev)?.get(text)?.[0]
  }

  fdbOn(dev: string): FdbEntry[] {
    return this.fdb.byDev.get(dev) ?? []
  }

  /** FDB entries on this device sending to this address. */
  fdbTo(dev: string, dst: string): FdbEntry[] {
    return this.fdb.byDevDst.get(dev)?.get(dst) ?? []
  }

  /** Does the device hold an FDB entry for any of these MACs (lower case)? */
  fdbHasMAC(dev: string, macs: readonly string[]): boolean {
    const have = this.fdb.macs.get(dev)
    if (!have) return false
    for (const m of macs) if (have.has(m)) return true
    return false
  }
}

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
