import {bitAt, commonBits, type Ip, ipFromBytes, maskIp} from './ip.js'

interface TrieNode<T> {
  /** the prefix this node stands for (bits past `len` are zero) */
  key: Uint8Array
  len: number
  /** the same as an address, made once (only nodes that hold values need it) */
  prefix?: Ip
  /** values stored on exactly this prefix, in insertion order */
  values?: T[]
  children: [TrieNode<T> | undefined, TrieNode<T> | undefined]
}

export interface PrefixMatch<T> {
  prefix: Ip
  len: number
  values: T[]
}

/**
 * A path-compressed binary (patricia) trie over address bits, one per
 * family. Lookups walk at most `bits` levels and compare each bit once, so a
 * longest-prefix match costs O(prefix length) whatever the table size; that
 * keeps a trace over a large cluster's tables cheap.
 */
export class PrefixTrie<T> {
  private readonly root: TrieNode<T>
  private count = 0

  constructor(readonly bits: 32 | 128) {
    this.root = {key: new Uint8Array(bits / 8), len: 0, children: [undefined, undefined]}
  }

  get size(): number {
    return this.count
  }

  /** Store `value` on prefix/len (host bits of `prefix` are ignored). */
  insert(prefix: Ip, len: number, value: T): void {
    if (prefix.bytes.length * 8 !== this.bits)
      throw new Error(`prefix ${prefix.text} does not fit a ${this.bits}-bit trie`)
    if (len < 0 || len > this.bits) throw new Error(`prefix length ${len} out of range`)
    const key = maskIp(prefix, len).bytes
    let node = this.root
    for (;;) {
      if (node.len === len) {
        node.prefix ??= ipFromBytes(node.key)
        ;(node.values ??= []).push(value)
        this.count++
        return
      }
      const b = bitAt(key, node.len)
      const child = node.children[b]
      if (!child) {
        node.children[b] = {key, len, prefix: ipFromBytes(key), values: [value], children: [undefined, undefined]}
        this.count++
        return
      }
      const common = commonBits(key, child.key, Math.min(len, child.len), node.len)
      if (common === child.len) {
        node = child
        continue
      }
      // The new prefix and the child part ways (or the new one is shorter): put a node at the fork.
      const fork: TrieNode<T> = {
        key: maskIp(ipFromBytes(key), common).bytes,
        len: common,
        children: [undefined, undefined],
      }
      fork.children[bitAt(child.key, common)] = child
      node.children[b] = fork
      if (common === len) {
        fork.prefix = ipFromBytes(fork.key)
        fork.values = [value]
        this.count++
        return
      }
      fork.children[bitAt(key, common)] = {
        key,
        len,
        prefix: ipFromBytes(key),
        values: [value],
        children: [undefined, undefined],
      }
      this.count++
      return
    }
  }

  /** Every stored prefix that contains `addr`, longest first. */
  matches(addr: Ip): Array<PrefixMatch<T>> {
    if (addr.bytes.length * 8 !== this.bits) return []
    const found: Array<PrefixMatch<T>> = []
    let node: TrieNode<T> | undefined = this.root
    let checked = 0
    while (node) {
      // only the bits this node adds beyond its parent need comparing
      if (commonBits(addr.bytes, node.key, node.len, checked) < node.len) break
      checked = node.len
      if (node.values) found.push({prefix: node.prefix ?? ipFromBytes(node.key), len: node.len, values: node.values})
      if (node.len === this.bits) break
      node = node.children[bitAt(addr.bytes, node.len)]
    }
    return found.reverse()
  }

  /** The longest stored prefix containing `addr`. */
  longest(addr: Ip): PrefixMatch<T> | undefined {
    return this.matches(addr)[0]
  }

  /** Values stored on exactly prefix/len. */
  exact(prefix: Ip, len: number): T[] {
    const key = maskIp(prefix, len).bytes
    let node: TrieNode<T> | undefined = this.root
    while (node && node.len < len) node = node.children[bitAt(key, node.len)]
    if (!node || node.len !== len || commonBits(key, node.key, len) < len) return []
    return node.values ?? []
  }

  /** Every stored prefix, in address order (shorter first on ties). */
  *entries(): Generator<PrefixMatch<T>> {
    const stack: Array<TrieNode<T>> = [this.root]
    while (stack.length > 0) {
      const node = stack.pop() as TrieNode<T>
      if (node.values) yield {prefix: node.prefix ?? ipFromBytes(node.key), len: node.len, values: node.values}
      if (node.children[1]) stack.push(node.children[1])
      if (node.children[0]) stack.push(node.children[0])
    }
  }
}

const mask4 = (len: number): number => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0)

/**
 * IPv4 prefixes as numbers, one map per prefix length: what the forwarding model's tables need for
 * a node's main table of thousands of routes (one per peer). Inserting is a map write per prefix
 * (no bytes, no text made), and a longest-prefix match is one map read per length present, longest
 * first; the trie above costs an address object and a walk per prefix to build. The same answers as
 * PrefixTrie for IPv4.
 */
export class PrefixTable4<T> {
  readonly bits = 32
  private readonly byLen = new Map<number, Map<number, T[]>>()
  /** the lengths present, longest first */
  private lens: number[] = []
  private count = 0

  get size(): number {
    return this.count
  }

  /** Store `value` on net/len (`net` as an unsigned number; host bits are ignored). */
  insert(net: number, len: number, value: T): void {
    if (len < 0 || len > 32) throw new Error(`prefix length ${len} out of range`)
    let at = this.byLen.get(len)
    if (!at) {
      this.byLen.set(len, (at = new Map()))
      this.lens = [...this.byLen.keys()].sort((a, b) => b - a)
    }
    const key = (net & mask4(len)) >>> 0
    const values = at.get(key)
    if (values) values.push(value)
    else at.set(key, [value])
    this.count++
  }

  /** Every stored prefix that contains `addr`, longest first. */
  matches(addr: Ip): Array<PrefixMatch<T>> {
    if (addr.bytes.length !== 4) return []
    const b = addr.bytes
    const a = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0
    const found: Array<PrefixMatch<T>> = []
    for (const len of this.lens) {
      const net = (a & mask4(len)) >>> 0
      const values = this.byLen.get(len)!.get(net)
      if (values) found.push({prefix: ipFromBytes(bytesOf(net)), len, values})
    }
    return found
  }

  /** The longest stored prefix containing `addr`. */
  longest(addr: Ip): PrefixMatch<T> | undefined {
    return this.matches(addr)[0]
  }

  /** The values of each stored prefix, in no particular order (nothing made per prefix). */
  *valueLists(): Generator<T[]> {
    for (const at of this.byLen.values()) yield* at.values()
  }

  /** Every stored prefix, in address order (shorter first on ties). */
  *entries(): Generator<PrefixMatch<T>> {
    const all = [...this.byLen].flatMap(([len, at]) => [...at].map(([net, values]) => ({net, len, values})))
    all.sort((x, y) => x.net - y.net || x.len - y.len)
    for (const e of all) yield {prefix: ipFromBytes(bytesOf(e.net)), len: e.len, values: e.values}
  }
}

const bytesOf = (n: number): Uint8Array => Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255)
