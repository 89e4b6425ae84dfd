/**
 * What a walk of one netfilter chain gives, iptables and nftables alike: the
 * builder of one way's result and the gathering of the ways a statistic or
 * numgen split gives. A leaf beside filter.ts, which walks the rulesets with
 * iptables.ts and nft.ts: both evaluators build their results here.
 */

/** How one walk of a chain ended: a rule decided, or the walk came to the chain's end (its policy then decides). */
export type ChainEnd<Rule, Verdict, Nat> =
  {kind: 'verdict'; verdict: Verdict; rule: Rule; chain: string; nat?: Nat} | {kind: 'return'} | {kind: 'end'}

/** One way through a chain. */
export interface ChainResult<Rule, Verdict, Nat, Packet, Uncertain> {
  verdict: Verdict
  /** the rule that decided; absent when the chain's policy did */
  rule?: Rule
  /** the chain the decision was taken in */
  chain: string
  evidence: string[]
  /** rules netctl cannot evaluate that would change the verdict had they matched */
  uncertain: Uncertain[]
  /** the packet as it leaves the chain */
  packet: Packet
  /** a nat chain: the translation the deciding rule asks for */
  nat?: Nat
  /** the probability of this way through the chain (1 unless a split made several) */
  probability: number
}

/**
 * One way's result: the deciding rule's verdict (and translation), else the
 * chain's policy with its evidence line; and the rules passed over as not
 * evaluable whose own verdict would have let the packet through where this
 * one does not, or the reverse (`passes` says which verdicts let it through).
 */
export function chainResult<Rule, Verdict, Nat, Packet, Uncertain>(
  out: ChainEnd<Rule, Verdict, Nat>,
  policy: {chain: string; verdict: Verdict; line: string},
  walk: {evidence: string[]; packet: Packet; unknown: Array<Uncertain & {would?: Verdict}>},
  probability: number,
  passes: (v: Verdict) => boolean,
): ChainResult<Rule, Verdict, Nat, Packet, Uncertain> {
  const {evidence, packet} = walk
  let result: ChainResult<Rule, Verdict, Nat, Packet, Uncertain>
  if (out.kind === 'verdict') {
    const {verdict, rule, chain, nat} = out
    result = {verdict, rule, chain, evidence, uncertain: [], packet, probability, ...(nat ? {nat} : {})}
  } else {
    evidence.push(policy.line)
    result = {verdict: policy.verdict, chain: policy.chain, evidence, uncertain: [], packet, probability}
  }
  result.uncertain = walk.unknown
    .filter((u) => u.would !== undefined && passes(u.would) !== passes(result.verdict))
    .map(({would: _would, ...u}) => u as unknown as Uncertain)
  return result
}

/** The ways through a chain as one result: the one way, or the most likely with every way as its alternatives. */
export function withAlternatives<R extends {probability: number; alternatives?: R[]}>(ways: R[]): R {
  if (ways.length === 1) return ways[0]!
  const best = ways.reduce((a, b) => (b.probability > a.probability ? b : a))
  return {...best, alternatives: ways}
}
