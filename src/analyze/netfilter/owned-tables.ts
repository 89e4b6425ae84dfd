import type {NodeState} from '../../model/node-state.js'

const IPT_TABLE_NAMES = new Set(['raw', 'mangle', 'nat', 'filter', 'security'])

/**
 * The tables nft lists that iptables-nft owns (filter, nat, ... of family ip
 * holding xt compat expressions, or named in the node's iptables-nft dump):
 * they are walked from iptables-save, not twice.
 */
export function iptablesNftTables(s: NodeState): Set<string> {
  const out = new Set<string>()
  for (const ipt of [s.iptables?.variant === 'nft' ? s.iptables : undefined, s.iptablesNft])
    for (const t of ipt?.tables ?? []) out.add(t.name)
  for (const t of s.nft?.tables ?? []) {
    if (
      (t.family === 'ip' || t.family === 'ip6') &&
      IPT_TABLE_NAMES.has(t.name) &&
      t.chains.some((c) => c.rules.some((r) => r.expr.some((e) => 'xt' in e)))
    )
      out.add(t.name)
  }
  return out
}
