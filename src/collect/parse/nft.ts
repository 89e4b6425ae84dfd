import type {
  NftChain,
  NftElement,
  NftExpr,
  NftFamily,
  NftRule,
  NftRuleset,
  NftSet,
  NftTable,
} from '../../model/netfilter.js'
import {num, ParseError, str, strList} from './errors.js'

/**
 * `nft -j list ruleset` → tables with their chains (base chains with hook,
 * priority and policy), rules (expressions kept as nft printed them, plus the
 * rule as `nft list ruleset` writes it, for evidence), sets and maps (verdict
 * maps too) with their elements (concatenations, prefixes and ranges kept as
 * values). Objects nft has and netctl does not use (flowtables, counters,
 * quotas, ct helpers) are skipped.
 */

const FAMILIES = new Set<NftFamily>(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'])

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/** `nft -j list ruleset` checked to be nft's JSON: the document, and its list of objects. */
export function nftDocument(text: string, section = 'nftables'): {document: Record<string, unknown>; list: unknown[]} {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new ParseError(section, `invalid JSON (${(error as Error).message.slice(0, 120)})`)
  }
  const list = isObj(value) ? value.nftables : undefined
  if (!isObj(value) || !Array.isArray(list)) throw new ParseError(section, 'expected {"nftables": [...]}')
  return {document: value, list}
}

export function parseNftRuleset(text: string, section = 'nftables'): NftRuleset {
  const {list} = nftDocument(text, section)
  const out: NftRuleset = {tables: []}
  const tables = new Map<string, NftTable>()
  const chains = new Map<string, NftChain>()
  const tableOf = (o: Record<string, unknown>, i: number, what: string): NftTable => {
    const family = str(o.family)
    const name = str(o.table)
    const t = tables.get(`${family} ${name}`)
    if (!t) throw new ParseError(section, `object ${i}: ${what} of unknown table ${family ?? '?'} ${name ?? '?'}`)
    return t
  }
  list.forEach((item, i) => {
    if (!isObj(item)) throw new ParseError(section, `object ${i} is not an object`)
    const [kind] = Object.keys(item)
    const o = item[kind!]
    if (!isObj(o)) throw new ParseError(section, `object ${i} (${kind}) is not an object`)
    switch (kind) {
      case 'metainfo': {
        const v = str(o.version)
        if (v) out.version = v
        return
      }
      case 'table': {
        const family = str(o.family) as NftFamily | undefined
        const name = str(o.name)
        if (!family || !FAMILIES.has(family) || !name)
          throw new ParseError(section, `object ${i}: a table needs a family and a name`)
        const t: NftTable = {family, name, chains: [], sets: []}
        const handle = num(o.handle)
        if (handle !== undefined) t.handle = handle
        const flags = strList(o.flags)
        if (flags.length > 0) t.flags = flags
        if (typeof o.comment === 'string') t.comment = o.comment
        tables.set(`${family} ${name}`, t)
        out.tables.push(t)
        return
      }
      case 'chain': {
        const t = tableOf(o, i, 'chain')
        const name = str(o.name)
        if (!name) throw new ParseError(section, `object ${i}: a chain without a name`)
        const c: NftChain = {name, rules: []}
        const handle = num(o.handle)
        if (handle !== undefined) c.handle = handle
        if (typeof o.type === 'string') c.type = o.type
        if (typeof o.hook === 'string') c.hook = o.hook
        const prio = num(o.prio)
        if (prio !== undefined) c.prio = prio
        if (o.policy === 'accept' || o.policy === 'drop') c.policy = o.policy
        if (typeof o.dev === 'string') c.dev = o.dev
        if (typeof o.comment === 'string') c.comment = o.comment
        if (c.hook !== undefined && c.prio === undefined)
          throw new ParseError(section, `object ${i}: base chain ${name} without a priority`)
        chains.set(`${t.family} ${t.name} ${name}`, c)
        t.chains.push(c)
        return
      }
      case 'rule': {
        const t = tableOf(o, i, 'rule')
        const chainName = str(o.chain)
        let c = chains.get(`${t.family} ${t.name} ${chainName}`)
        if (!c) {
          if (!chainName) throw new ParseError(section, `object ${i}: a rule without a chain`)
          // a rule listed before its chain: keep it anyway
          c = {name: chainName, rules: []}
          chains.set(`${t.family} ${t.name} ${chainName}`, c)
          t.chains.push(c)
        }
        if (!Array.isArray(o.expr))
          throw new ParseError(section, `object ${i}: rule in ${chainName} has no expressions`)
        const expr = o.expr.filter(isObj) as NftExpr[]
        if (expr.length !== o.expr.length)
          throw new ParseError(section, `object ${i}: rule in ${chainName} has an expression that is not an object`)
        const r: NftRule = {expr, text: ''}
        const handle = num(o.handle)
        if (handle !== undefined) r.handle = handle
        if (typeof o.comment === 'string') r.comment = o.comment
        for (const e of expr) {
          const counter = e.counter
          if (isObj(counter)) {
            const p = num(counter.packets)
            const b = num(counter.bytes)
            if (p !== undefined) r.packets = p
            if (b !== undefined) r.bytes = b
          }
        }
        r.text = renderRule(r)
        c.rules.push(r)
        return
      }
      case 'set':
      case 'map': {
        const t = tableOf(o, i, kind)
        const name = str(o.name)
        const type = Array.isArray(o.type) ? strList(o.type) : str(o.type)
        if (!name || type === undefined) throw new ParseError(section, `object ${i}: a ${kind} needs a name and a type`)
        const s: NftSet = {name, kind, type, elements: []}
        if (kind === 'map') {
          const m = Array.isArray(o.map) ? strList(o.map) : str(o.map)
          if (m === undefined) throw new ParseError(section, `object ${i}: map ${name} without a value type`)
          s.map = m
        }
        const flags = strList(o.flags)
        if (flags.length > 0) s.flags = flags
        const handle = num(o.handle)
        if (handle !== undefined) s.handle = handle
        if (typeof o.comment === 'string') s.comment = o.comment
        const elems = o.elem
        if (elems !== undefined && !Array.isArray(elems))
          throw new ParseError(section, `object ${i}: ${kind} ${name}: elements are not a list`)
        for (const e of elems ?? []) s.elements.push(element(e, kind === 'map'))
        t.sets.push(s)
        return
      }
      default:
        // flowtable, counter, quota, ct helper, limit, element (only in `list set`): not used by the walk
        return
    }
  })
  return out
}

/** A set element: `value`, `{"elem": {"val": value, "comment": ...}}`, or for a map `[key, value]`. */
function element(e: unknown, isMap: boolean): NftElement {
  let key = e
  let value: unknown
  if (isMap && Array.isArray(e) && e.length === 2) {
    key = e[0]
    value = e[1]
  }
  const out: NftElement = {key}
  if (isObj(key) && isObj(key.elem)) {
    out.key = key.elem.val
    if (typeof key.elem.comment === 'string') out.comment = key.elem.comment
  }
  if (value !== undefined) out.value = value
  return out
}

// ---- rendering: the rule as `nft list ruleset` prints it -------------------------------------

/** meta keys nft prints without the `meta` keyword */
const BARE_META = new Set(['iif', 'oif', 'iifname', 'oifname', 'iiftype', 'oiftype', 'iifgroup', 'oifgroup'])
// iif and oif name an interface by index, yet nft lists them by name, quoted like iifname
const STRING_KEYS = new Set(['iifname', 'oifname', 'iif', 'oif', 'ibrname', 'obrname', 'ibriport', 'obriport'])

function isMarkExpr(e: unknown): boolean {
  if (!isObj(e)) return false
  const m = e.meta ?? e.ct
  return isObj(m) && m.key === 'mark'
}

function isStringExpr(e: unknown): boolean {
  if (!isObj(e)) return false
  if (isObj(e.meta) && STRING_KEYS.has(String(e.meta.key))) return true
  return Array.isArray(e.concat) && e.concat.some(isStringExpr)
}

interface Hint {
  mark?: boolean
  quote?: boolean | boolean[]
}

/** A value (right-hand side, set element, map data), as nft writes it. */
export function renderValue(v: unknown, hint: Hint = {}): string {
  if (v === null || v === undefined) return ''
  if (typeof v === 'number') return hint.mark ? `0x${(v >>> 0).toString(16).padStart(8, '0')}` : String(v)
  // `fib saddr . iif oif missing`, `tcp option mptcp exists`: nft's JSON says false and true
  if (typeof v === 'boolean') return v ? 'exists' : 'missing'
  if (typeof v === 'string') {
    const q = Array.isArray(hint.quote) ? hint.quote[0] : hint.quote
    return q && !v.startsWith('@') ? `"${v}"` : v
  }
  if (Array.isArray(v)) return v.map((x) => renderValue(x, hint)).join(', ')
  if (!isObj(v)) return String(v)
  if (isObj(v.prefix)) return `${renderValue(v.prefix.addr)}/${renderValue(v.prefix.len)}`
  if (Array.isArray(v.range)) return `${renderValue(v.range[0], hint)}-${renderValue(v.range[1], hint)}`
  if (Array.isArray(v.concat)) {
    const q = Array.isArray(hint.quote) ? hint.quote : v.concat.map(() => !!hint.quote)
    return v.concat.map((x, i) => renderValue(x, {...hint, quote: q[i] ?? false})).join(' . ')
  }
  if (Array.isArray(v.set))
    return `{ ${v.set.map((x) => (Array.isArray(x) && x.length === 2 ? `${renderValue(x[0], hint)} : ${renderValue(x[1])}` : renderValue(x, hint))).join(', ')} }`
  if (isObj(v.elem))
    return `${renderValue(v.elem.val, hint)}${typeof v.elem.comment === 'string' ? ` comment "${v.elem.comment}"` : ''}`
  const verdict = renderVerdict(v)
  if (verdict) return verdict
  return renderExpr(v)
}

function renderVerdict(v: Record<string, unknown>): string | undefined {
  for (const k of ['accept', 'drop', 'continue', 'return', 'queue'] as const)
    if (k in v && (v[k] === null || isObj(v[k]))) return k
  for (const k of ['jump', 'goto'] as const)
    if (isObj(v[k])) return `${k} ${String((v[k] as {target?: unknown}).target)}`
  return undefined
}

/** An expression (the left-hand side of a match, a statement's argument). */
export function renderExpr(e: unknown): string {
  if (!isObj(e)) return renderValue(e)
  if (isObj(e.payload)) {
    const p = e.payload
    if (p.base !== undefined) return `@${String(p.base)},${String(p.offset)},${String(p.len)}`
    return `${String(p.protocol)} ${String(p.field)}`
  }
  if (isObj(e.meta)) {
    const k = String(e.meta.key)
    return BARE_META.has(k) ? k : `meta ${k}`
  }
  if (isObj(e.ct)) return `ct${typeof e.ct.dir === 'string' ? ` ${e.ct.dir}` : ''} ${String(e.ct.key)}`
  if (isObj(e.fib)) {
    const flags = strList(e.fib.flags)
    const result = String(e.fib.result)
    return `fib ${flags.join(' . ')} ${result === 'oif' || result === 'oifname' ? result : result}`
  }
  if (isObj(e.numgen)) {
    const off = num(e.numgen.offset)
    return `numgen ${String(e.numgen.mode)} mod ${String(e.numgen.mod)}${off ? ` offset ${off}` : ''}`
  }
  if (isObj(e.jhash)) return `jhash ${renderExpr(e.jhash.expr)} mod ${String(e.jhash.mod)}`
  if (isObj(e.symhash)) return `symhash mod ${String(e.symhash.mod)}`
  if (Array.isArray(e.concat)) return e.concat.map(renderExpr).join(' . ')
  for (const op of ['&', '|', '^', '<<', '>>'] as const) {
    const args = e[op]
    if (Array.isArray(args) && args.length === 2)
      return `${renderExpr(args[0])} ${op} ${renderValue(args[1], {mark: isMarkExpr(args[0])})}`
  }
  if (isObj(e.map)) return `${renderExpr(e.map.key)} map ${renderValue(e.map.data)}`
  if (isObj(e.rt)) return `rt ${String(e.rt.key)}`
  if (isObj(e.socket)) return `socket ${String(e.socket.key)}`
  if (isObj(e.osf)) return `osf name`
  if (isObj(e.exthdr)) return `exthdr ${String(e.exthdr.name)}`
  if (isObj(e['tcp option'])) return `tcp option ${String((e['tcp option'] as Record<string, unknown>).name)}`
  return renderValue(e)
}

const OPS: Record<string, string> = {'==': '', in: ''}

function renderMatch(m: Record<string, unknown>): string {
  const op = String(m.op ?? '==')
  // a bitmask's flags: a bare list (`ct state established,related`), and a masked one
  // (`tcp flags syn / fin,syn,rst,ack`), as nft lists them
  const masked = isObj(m.left) && Array.isArray(m.left['&']) ? (m.left['&'] as unknown[]) : undefined
  if (masked && Array.isArray(masked[1]) && (op === '==' || op === '!='))
    return `${renderExpr(masked[0])} ${op === '!=' ? '!= ' : ''}${flagList(m.right)} / ${flagList(masked[1])}`
  if (Array.isArray(m.right)) return `${renderExpr(m.left)} ${OPS[op] ?? `${op} `}${flagList(m.right)}`
  const left = renderExpr(m.left)
  const right = renderValue(m.right, {
    mark:
      isMarkExpr(m.left) ||
      (isObj(m.left) &&
        Object.keys(m.left).some((k) => ['&', '|', '^'].includes(k)) &&
        isMarkExpr((m.left as Record<string, unknown[]>)[Object.keys(m.left)[0]!]![0])),
    quote: isStringExpr(m.left),
  })
  // nft spells out == after a bitwise operation (`meta mark & 0x4000 == 0x0`)
  const binop = isObj(m.left) && ['&', '|', '^'].some((k) => k in (m.left as object))
  const o = binop && op === '==' ? op : (OPS[op] ?? op)
  return o === '' ? `${left} ${right}` : `${left} ${o} ${right}`
}

const flagList = (v: unknown): string => (Array.isArray(v) ? v.map((x) => renderValue(x)).join(',') : renderValue(v))

function renderNat(kind: string, s: Record<string, unknown>): string {
  const fam = typeof s.family === 'string' ? ` ${s.family}` : ''
  const addr = s.addr !== undefined ? renderValue(s.addr) : ''
  const port = s.port !== undefined ? renderValue(s.port) : ''
  const flags = strList(s.flags)
  const to = addr || port ? ` to ${addr}${port ? `:${port}` : ''}` : ''
  return `${kind}${fam}${to}${flags.length > 0 ? ` ${flags.join(',')}` : ''}`
}

/** One statement (or a match) of a rule, as nft writes it. */
export function renderStatement(e: NftExpr): string {
  const [k] = Object.keys(e)
  const v = e[k!]
  const o = isObj(v) ? v : {}
  switch (k) {
    case 'match':
      return renderMatch(o)
    case 'accept':
    case 'drop':
    case 'continue':
    case 'return':
      return k
    case 'jump':
    case 'goto':
      return `${k} ${String(o.target)}`
    case 'counter':
      return isObj(v)
        ? `counter packets ${String(o.packets ?? 0)} bytes ${String(o.bytes ?? 0)}`
        : `counter name ${String(v)}`
    case 'reject': {
      const type = o.type
      const code = o.expr
      if (
        type === undefined ||
        (type === 'icmp' && code === 'port-unreachable') ||
        (type === 'icmpx' && code === 'port-unreachable')
      )
        return 'reject'
      if (type === 'tcp reset') return 'reject with tcp reset'
      return `reject with ${String(type)} ${String(code)}`
    }
    case 'mangle': {
      const key = renderExpr(o.key)
      const mark = isMarkExpr(o.key)
      const value = isObj(o.value) ? renderExpr(o.value) : renderValue(o.value, {mark})
      return `${key} set ${value}`
    }
    case 'vmap':
      return `${renderExpr(o.key)} vmap ${renderValue(o.data)}`
    case 'dnat':
    case 'snat':
      return renderNat(k, o)
    case 'masquerade':
    case 'redirect': {
      const flags = strList(o.flags)
      const port = o.port !== undefined ? ` to :${renderValue(o.port)}` : ''
      return `${k}${port}${flags.length > 0 ? ` ${flags.join(',')}` : ''}`
    }
    case 'log':
      return `log${typeof o.prefix === 'string' ? ` prefix "${o.prefix}"` : ''}`
    case 'limit': {
      // nft leaves out the default burst (5 packets)
      const unit = typeof o.rate_unit === 'string' && o.rate_unit !== 'packets' ? ` ${o.rate_unit}` : ''
      const burst = num(o.burst)
      const burstUnit = typeof o.burst_unit === 'string' ? o.burst_unit : 'packets'
      const shown = burst && !(burst === 5 && burstUnit === 'packets') ? ` burst ${burst} ${burstUnit}` : ''
      return `limit rate ${o.inv ? 'over ' : ''}${String(o.rate)}${unit}/${String(o.per)}${shown}`
    }
    case 'notrack':
      return 'notrack'
    case 'xt':
      return `xt ${String(o.type)} ${String(o.name)}`
    case 'set':
      return `${String(o.op)} ${String(o.set)} { ${renderExpr(o.elem)} }`
    case 'ct count':
      return `ct count${o.inv ? ' over' : ''} ${String(o.val)}`
    default:
      return `${k} ${JSON.stringify(v)}`
  }
}

export function renderRule(r: Pick<NftRule, 'expr' | 'comment'>): string {
  const text = r.expr.map(renderStatement).join(' ')
  return r.comment === undefined ? text : `${text} comment "${r.comment}"`
}
