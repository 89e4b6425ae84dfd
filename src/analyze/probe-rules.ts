/**
 * `trace --probe`'s netfilter counters. Pure: which rules the probe reads on each node
 * (planned from the walk's filter hops), and their deltas from two reads of the node's
 * rulesets (`iptables-save -c`, `nft -j list ruleset`, parsed by src/collect/parse).
 *
 * A filter hop's evidence lists the rules it matched under `# <ruleset>` labels
 * (src/analyze/trace/filter.ts): `# iptables nat`, `# iptables` (filter),
 * `# nft inet firewalld filter_FORWARD (hook forward priority 10)`. A hop with one
 * ruleset has no label: its iptables rules are then looked up in every table.
 */
import type {NftRule, NftRuleset} from '../model/netfilter.js'
import type {Iptables, IptablesRule} from '../model/node-state.js'
import type {Hop, ProbeRuleCounter, Trace} from '../model/trace.js'

/** A chain the walk crossed on a node, and the rules of it the walk's evidence names. */
export interface PlannedChain {
  node: string
  path: 'forward' | 'return'
  hop: number
  ruleset: 'iptables' | 'nft'
  /** iptables: the table, undefined when the evidence does not say (any table); nft: `family name` */
  table?: string
  chain: string
  /** the rules as the walk printed them (notes after them stripped) */
  used: string[]
}

const IPT_VERDICTS = new Set(['ACCEPT', 'DROP', 'REJECT', 'RETURN', 'MASQUERADE', 'SNAT', 'DNAT', 'MARK', 'LOG'])
const IPT_DROPS = new Set(['DROP', 'REJECT'])
// the walk appends its remarks after four spaces: `-A X … -j Y    (cannot tell: …)`
const bare = (line: string): string => line.split('    (')[0]!.trim()

/** The rule an nft counter statement is in, without the counter's values (they change; the rule does not). */
export function nftRuleKey(text: string): string {
  return text.replace(/\bcounter packets \d+ bytes \d+/g, 'counter').trim()
}

/** Hops in a node's host namespace: not the source's or the destination's own (pod) namespace, which carries no agent's rules. */
export function hostHop(trace: Trace, hop: Hop): boolean {
  return ![trace.src.pod ? trace.src.netns : undefined, trace.dst.pod ? trace.dst.netns : undefined].includes(hop.netns)
}

function hopChains(hop: Hop, path: 'forward' | 'return', index: number): PlannedChain[] {
  const chains = new Map<string, PlannedChain>()
  const chainOf = (ruleset: 'iptables' | 'nft', table: string | undefined, chain: string): PlannedChain => {
    const key = `${ruleset}|${table ?? ''}|${chain}`
    let c = chains.get(key)
    if (!c) {
      c = {node: hop.node, path, hop: index, ruleset, ...(table ? {table} : {}), chain, used: []}
      chains.set(key, c)
    }
    return c
  }
  let label: {ruleset: 'iptables' | 'nft'; table?: string; chain?: string} = {ruleset: 'iptables'}
  for (const line of hop.evidence) {
    if (line.startsWith('# ')) {
      const words = line.slice(2).split(/\s+/)
      if (words[0] === 'nft' && words.length >= 4)
        label = {ruleset: 'nft', table: `${words[1]} ${words[2]}`, chain: words[3]!}
      else if (words[0]?.startsWith('iptables')) label = {ruleset: 'iptables', table: words[1] ?? 'filter'}
      continue
    }
    if (label.ruleset === 'iptables' && line.startsWith('-A ')) {
      const rule = bare(line)
      const words = rule.split(/\s+/)
      const c = chainOf('iptables', label.table, words[1]!)
      c.used.push(rule)
      // the chain it jumps or goes to is crossed too: its drop rules are read even when none of its rules matched
      const j = words.findIndex((w) => w === '-j' || w === '-g')
      const target = j >= 0 ? words[j + 1] : undefined
      if (target && !IPT_VERDICTS.has(target)) chainOf('iptables', label.table, target)
      continue
    }
    // `table ip kube-proxy chain services:`: the rules after it are that chain's (a jump's target, or the base chain)
    // (also without a `# nft …` label before it: a hop whose only ruleset is nft has none)
    const header = /^table (\S+ \S+) chain (\S+):$/.exec(line)
    if (header) {
      label = {ruleset: 'nft', table: header[1]!, chain: header[2]!}
      chainOf('nft', label.table, label.chain!)
      continue
    }
    if (label.ruleset === 'nft' && label.chain && !line.startsWith('chain ') && !line.startsWith('(')) {
      const rule = nftRuleKey(bare(line))
      const c = chainOf('nft', label.table, label.chain)
      c.used.push(rule)
      const jump = /\b(?:jump|goto) (\S+)/.exec(rule)
      if (jump) chainOf('nft', label.table, jump[1]!)
    }
  }
  return [...chains.values()]
}

/** The chains whose rules the probe reads, per hop of either path that ran netfilter in a host namespace. */
export function probeChains(trace: Trace): PlannedChain[] {
  const of = (hops: readonly Hop[], path: 'forward' | 'return') =>
    hops.flatMap((h, i) =>
      hostHop(trace, h) && (h.action === 'filter' || h.action === 'drop') ? hopChains(h, path, i) : [],
    )
  return [
    ...of(trace.hops, 'forward'),
    ...(trace.returnPath && trace.packet.protocol !== 'udp' ? of(trace.returnPath.hops, 'return') : []),
  ]
}

/** The rulesets a node needs read for the probe: iptables, nft, or neither. */
export function rulesetsToRead(chains: readonly PlannedChain[], node: string): {iptables: boolean; nft: boolean} {
  const mine = chains.filter((c) => c.node === node)
  return {iptables: mine.some((c) => c.ruleset === 'iptables'), nft: mine.some((c) => c.ruleset === 'nft')}
}

/** One node's rulesets as read around the probe. */
export interface RulesetRead {
  /** every iptables variant read (iptables-save -c; legacy and nft when both are installed) */
  iptables?: Iptables[]
  nft?: NftRuleset
}

interface Counted {
  table: string
  chain: string
  rule: string
  drops: boolean
  packets: number
  bytes: number
}

function iptablesRules(read: RulesetRead | undefined, table: string | undefined, chain: string): Counted[] {
  return (read?.iptables ?? []).flatMap((ipt) =>
    ipt.tables
      .filter((t) => table === undefined || t.name === table)
      .flatMap((t) =>
        t.chains
          .filter((c) => c.name === chain)
          .flatMap((c) =>
            c.rules
              .filter((r: IptablesRule) => r.packets !== undefined)
              .map((r) => ({
                table: t.name,
                chain,
                rule: r.raw,
                drops: IPT_DROPS.has(r.target ?? ''),
                packets: r.packets!,
                bytes: r.bytes ?? 0,
              })),
          ),
      ),
  )
}

function nftRules(read: RulesetRead | undefined, table: string, chain: string): Counted[] {
  const [family, name] = table.split(' ')
  return (read?.nft?.tables ?? [])
    .filter((t) => t.family === family && t.name === name)
    .flatMap((t) =>
      t.chains
        .filter((c) => c.name === chain)
        .flatMap((c) =>
          c.rules
            .filter((r: NftRule) => r.packets !== undefined)
            .map((r) => ({
              table,
              chain,
              rule: nftRuleKey(r.text),
              drops: r.expr.some((e) => 'drop' in e || 'reject' in e),
              packets: r.packets!,
              bytes: r.bytes ?? 0,
            })),
        ),
    )
}

/**
 * The counters of the planned chains' rules that the walk used or that drop, as deltas
 * between two reads; each rule once (where the walk first crossed it). A rule absent
 * from either read (changed meanwhile, or without a counter) is left out.
 */
export function ruleCounterDeltas(
  chains: readonly PlannedChain[],
  before: ReadonlyMap<string, RulesetRead>,
  after: ReadonlyMap<string, RulesetRead>,
): ProbeRuleCounter[] {
  const out: ProbeRuleCounter[] = []
  const seen = new Set<string>()
  for (const c of chains) {
    const read = (m: ReadonlyMap<string, RulesetRead>) =>
      c.ruleset === 'iptables'
        ? iptablesRules(m.get(c.node), c.table, c.chain)
        : nftRules(m.get(c.node), c.table!, c.chain)
    const was = read(before)
    for (const now of read(after)) {
      const used = c.used.includes(now.rule)
      if (!used && !now.drops) continue
      const key = `${c.node}|${c.ruleset}|${now.table}|${now.chain}|${now.rule}`
      if (seen.has(key)) continue
      // the same rule text twice in a chain: paired in order
      const then = was.find((w) => w.table === now.table && w.rule === now.rule)
      if (!then) continue
      was.splice(was.indexOf(then), 1)
      seen.add(key)
      out.push({
        node: c.node,
        path: c.path,
        hop: c.hop,
        ruleset: c.ruleset,
        table: now.table,
        chain: now.chain,
        rule: now.rule,
        used,
        drops: now.drops,
        packets: now.packets - then.packets,
        bytes: now.bytes - then.bytes,
      })
    }
  }
  return out
}
