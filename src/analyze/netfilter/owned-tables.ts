/**
 * Who owns what in a node's netfilter state: the nft tables iptables-nft writes (walked from iptables-save),
 * the agent a chain belongs to, and the built-in chains ufw manages. The walk and the checks both ask.
 */
import type {IptablesTable, NodeState} from '../../model/node-state.js'

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

/** Which agent wrote a chain (or a native nft table): the evidence says whose rule dropped. */
export function chainOwner(chain: string, nftTable?: string): string {
  const t = nftTable ?? ''
  if (/^KUBE-/.test(chain) || t === 'kube-proxy') return 'kube-proxy'
  if (/^FLANNEL-/.test(chain) || /^flannel/.test(t)) return 'flanneld'
  if (/^cali-/.test(chain) || /^calico/.test(t)) return 'Felix'
  if (/^ufw6?-/.test(chain)) return 'ufw'
  return 'the host'
}

/** Whether ufw manages the built-in `chain` of this filter table: its jump to ufw's chain for that hook is there. */
export function ufwManages(filter: IptablesTable | undefined, chain: string): boolean {
  return filter?.chains.some((c) => c.name === `ufw-before-${chain.toLowerCase()}`) === true
}
