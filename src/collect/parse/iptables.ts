import type {Iptables, IptablesChain, IptablesRule, IptablesTable} from '../../model/node-state.js'
import {ParseError} from './errors.js'

/**
 * `iptables-save -c` → tables, chains (policy and counters) and rules with
 * their counters and the matches netctl reasons about. Anything else a rule
 * matches on is kept in `match.other`, so a consumer knows the rule is not
 * fully understood.
 */

/** Split a rule line into words the way iptables-save quotes them ("..." with \" and \\ escapes). */
export function tokenize(line: string): string[] {
  const words: string[] = []
  let i = 0
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++
    if (i >= line.length) break
    let word = ''
    let quoted = false
    while (i < line.length && (quoted || !/\s/.test(line[i]!))) {
      const c = line[i]!
      if (c === '"') {
        quoted = !quoted
      } else if (c === '\\' && i + 1 < line.length) {
        i++
        word += line[i]
      } else {
        word += c
      }
      i++
    }
    if (quoted) throw new Error('unterminated quote')
    words.push(word)
  }
  return words
}

const COUNTERS = /^\[(\d+):(\d+)\]$/

type Match = IptablesRule['match']
type Field = 'source' | 'destination' | 'inInterface' | 'outInterface' | 'protocol' | 'dport' | 'sport'

const BASIC: Record<string, Field> = {
  '-s': 'source',
  '--source': 'source',
  '--src': 'source',
  '-d': 'destination',
  '--destination': 'destination',
  '--dst': 'destination',
  '-i': 'inInterface',
  '--in-interface': 'inInterface',
  '-o': 'outInterface',
  '--out-interface': 'outInterface',
  '-p': 'protocol',
  '--protocol': 'protocol',
}

/** Options of modules netctl models; everything else in a module goes to `other`. */
const MODULE_FIELDS: Record<string, Record<string, Field | 'ctstate' | 'comment'>> = {
  tcp: {'--dport': 'dport', '--destination-port': 'dport', '--sport': 'sport', '--source-port': 'sport'},
  udp: {'--dport': 'dport', '--destination-port': 'dport', '--sport': 'sport', '--source-port': 'sport'},
  sctp: {'--dport': 'dport', '--sport': 'sport'},
  multiport: {
    '--dports': 'dport',
    '--destination-ports': 'dport',
    '--sports': 'sport',
    '--source-ports': 'sport',
    '--ports': 'dport',
  },
  state: {'--state': 'ctstate'},
  conntrack: {'--ctstate': 'ctstate'},
  comment: {'--comment': 'comment'},
}

/** Modules that match nothing by themselves (`-m udp` after `-p udp`, `-m comment`). */
const QUIET_MODULES = new Set(['tcp', 'udp', 'sctp', 'icmp', 'icmp6', 'comment', 'multiport', 'state', 'conntrack'])

const isOption = (w: string | undefined): boolean =>
  w !== undefined && w.startsWith('-') && w.length > 1 && !/^-\d/.test(w)

/** Parse one `-A CHAIN ...` line (without its counters). */
export function parseRule(raw: string, words: string[]): Omit<IptablesRule, 'packets' | 'bytes'> {
  if (words[0] !== '-A' && words[0] !== '--append') throw new Error(`expected -A, got '${words[0] ?? ''}'`)
  const chain = words[1]
  if (!chain) throw new Error('-A without a chain')
  const match: Match = {}
  const negated: string[] = []
  const other: string[] = []
  const rule: Omit<IptablesRule, 'packets' | 'bytes'> = {raw, chain, match}
  let module: string | undefined
  let moduleOther: string[] | undefined
  let negateNext = false
  const flushModule = (): void => {
    // a module with no options of its own still matches on something (`-m rpfilter`, `-m physdev`),
    // except those whose options the fields above took or that only name the protocol
    if (module && moduleOther && (moduleOther.length > 0 || !QUIET_MODULES.has(module)))
      other.push([module, ...moduleOther].join(' '))
    module = undefined
    moduleOther = undefined
  }
  // value of an option; old iptables wrote the negation after the option (`-s ! 10.0.0.0/8`)
  const value = (at: number): {v: string; next: number; neg: boolean} => {
    if (words[at] === '!') return {v: words[at + 1] ?? '', next: at + 2, neg: true}
    return {v: words[at] ?? '', next: at + 1, neg: false}
  }
  const set = (field: Field | 'ctstate' | 'comment', v: string, neg: boolean): void => {
    if (field === 'ctstate') match.ctstate = v.split(',').filter(Boolean)
    else if (field === 'comment') match.comment = v
    else match[field] = v
    if (neg && field !== 'comment') negated.push(field)
  }

  let i = 2
  while (i < words.length) {
    const w = words[i]!
    if (w === '!') {
      negateNext = true
      i++
      continue
    }
    if (w === '-j' || w === '--jump' || w === '-g' || w === '--goto') {
      flushModule()
      rule.target = words[i + 1]
      if (w === '-g' || w === '--goto') rule.goto = true
      // iptables-save prints the target last: the rest are its options
      const args = words.slice(i + 2)
      if (args.length > 0) rule.targetArgs = args
      break
    }
    if (w === '-m' || w === '--match') {
      flushModule()
      module = words[i + 1] ?? ''
      moduleOther = []
      i += 2
      continue
    }
    const basic = BASIC[w]
    if (basic) {
      flushModule()
      const {v, next, neg} = value(i + 1)
      set(basic, v, neg || negateNext)
      negateNext = false
      i = next
      continue
    }
    const field = module ? MODULE_FIELDS[module]?.[w] : undefined
    if (field) {
      const {v, next, neg} = value(i + 1)
      set(field, v, neg || negateNext)
      negateNext = false
      i = next
      continue
    }
    // An option nobody models: keep it, with its values, as written.
    const words2 = [...(negateNext ? ['!'] : []), w]
    negateNext = false
    i++
    while (i < words.length && !isOption(words[i]) && words[i] !== '!') words2.push(words[i++]!)
    if (module && moduleOther) moduleOther.push(...words2)
    else other.push(words2.join(' '))
  }
  flushModule()
  if (other.length > 0) match.other = other
  if (negated.length > 0) match.negated = negated
  return rule
}

export interface IptablesParseOptions {
  section?: string
  /** the variant the caller knows it ran (iptables-legacy-save, iptables-nft-save) */
  variant?: Iptables['variant']
}

export function parseIptablesSave(text: string, opts: IptablesParseOptions = {}): Iptables {
  const section = opts.section ?? 'iptables'
  let variant: Iptables['variant'] = opts.variant ?? 'unknown'
  const tables: IptablesTable[] = []
  let table: IptablesTable | undefined
  let chains = new Map<string, IptablesChain>()
  const lines = text.split('\n')
  lines.forEach((rawLine, idx) => {
    const lineNo = idx + 1
    const line = rawLine.trim()
    if (line === '') return
    if (line.startsWith('#')) {
      const gen = /^# Generated by (?:ip6?tables|xtables)\S*-save v(\d+)\.(\d+)\S*(?: \((nf_tables|legacy)\))?/.exec(
        line,
      )
      if (gen && opts.variant === undefined) {
        if (gen[3] === 'nf_tables') variant = 'nft'
        else if (gen[3] === 'legacy') variant = 'legacy'
        // before 1.8 there was only the legacy backend
        else if (Number(gen[1]) === 1 && Number(gen[2]) < 8) variant = 'legacy'
      }
      return
    }
    if (line.startsWith('*')) {
      if (table)
        throw new ParseError(section, `table ${line.slice(1)} starts before table ${table.name} was committed`, lineNo)
      table = {name: line.slice(1).trim(), chains: []}
      chains = new Map()
      if (!table.name) throw new ParseError(section, 'table without a name', lineNo)
      return
    }
    if (!table) throw new ParseError(section, `'${line.slice(0, 40)}' outside of any table`, lineNo)
    if (line === 'COMMIT') {
      tables.push(table)
      table = undefined
      return
    }
    if (line.startsWith(':')) {
      const m = /^:(\S+)\s+(\S+)(?:\s+\[(\d+):(\d+)\])?\s*$/.exec(line)
      if (!m) throw new ParseError(section, `malformed chain line '${line.slice(0, 60)}'`, lineNo)
      const chain: IptablesChain = {name: m[1]!, rules: []}
      if (m[2] !== '-') chain.policy = m[2]!
      if (m[3] !== undefined) {
        chain.packets = Number(m[3])
        chain.bytes = Number(m[4])
      }
      chains.set(chain.name, chain)
      table.chains.push(chain)
      return
    }
    let words: string[]
    try {
      words = tokenize(line)
    } catch (error) {
      throw new ParseError(section, (error as Error).message, lineNo)
    }
    let packets: number | undefined
    let bytes: number | undefined
    if (words[0]?.startsWith('[')) {
      const c = COUNTERS.exec(words[0])
      if (!c) throw new ParseError(section, `malformed counters '${words[0]}'`, lineNo)
      packets = Number(c[1])
      bytes = Number(c[2])
      words = words.slice(1)
    }
    const raw = line.replace(/^\[\d+:\d+\]\s+/, '')
    let rule: IptablesRule
    try {
      rule = parseRule(raw, words)
    } catch (error) {
      throw new ParseError(section, (error as Error).message, lineNo)
    }
    if (packets !== undefined) {
      rule.packets = packets
      rule.bytes = bytes
    }
    let chain = chains.get(rule.chain)
    if (!chain) {
      // a chain used before it was declared: keep the rule anyway
      chain = {name: rule.chain, rules: []}
      chains.set(chain.name, chain)
      table.chains.push(chain)
    }
    chain.rules.push(rule)
  })
  if (table) throw new ParseError(section, `table ${table.name} has no COMMIT (output cut short?)`, lines.length)
  return {variant, tables}
}
