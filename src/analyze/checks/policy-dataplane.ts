/**
 * POLICY_NOT_PROGRAMMED / POLICY_STALE_RULES: the snapshot's NetworkPolicies
 * against the policy chains Felix programmed in each Calico node's filter
 * table. Felix names a Kubernetes NetworkPolicy's chains `cali-pi-` (ingress)
 * and `cali-po-` (egress) + `knp/<namespace>/<name>`, shortened to `_` and a
 * sha256 when longer than iptables' 28 characters (felix/rules/policy.go
 * PolicyChainName, libcalico-go hash.GetLengthLimitedID), and jumps to them
 * from the selected pods' cali-tw-/cali-fw- chains. A node where Felix runs
 * (it has cali-FORWARD) must hold the chain of every policy that selects one
 * of its pods, jumped to from a workload chain; it must hold no policy chain
 * whose policy is gone.
 */
import {createHash} from 'node:crypto'

import type {IptablesTable} from '../../model/node-state.js'
import type {SnapshotNetworkPolicy} from '../../model/snapshot.js'
import {policyDirections, policyKey, selectedPods} from '../policy.js'
import {ruleSets, tableOf} from './iptables-walk.js'
import {type Check, raise, type Raised} from './raise.js'

const IPTABLES_MAX_CHAIN = 28

/** libcalico-go hash.GetLengthLimitedID: the suffix as is, or `_` and its sha256 (URL-safe base64) cut to fit. */
export function lengthLimitedId(prefix: string, suffix: string, max = IPTABLES_MAX_CHAIN): string {
  const s = suffix || '_'
  if (prefix.length + s.length > max || (prefix.length + s.length === max && s.startsWith('_'))) {
    return `${prefix}_${createHash('sha256')
      .update(s)
      .digest('base64url')
      .slice(0, max - 1 - prefix.length)}`
  }
  return prefix + s
}

/** Felix's chain for a Kubernetes NetworkPolicy (PolicyID{Kind: KubernetesNetworkPolicy}.ID() = knp/<namespace>/<name>). */
export function felixPolicyChain(direction: 'Ingress' | 'Egress', namespace: string, name: string): string {
  return lengthLimitedId(direction === 'Ingress' ? 'cali-pi-' : 'cali-po-', `knp/${namespace}/${name}`)
}

const POLICY_CHAIN = /^cali-p[io]-/

/** The lines that show a chain and what jumps to it, as iptables-save prints them. */
function chainLines(filter: IptablesTable, chain: string, max = 4): string[] {
  const own = filter.chains.find((c) => c.name === chain)
  const jumps = filter.chains.flatMap((c) => c.rules.filter((r) => r.target === chain).map((r) => r.raw))
  return [...(own ? [`:${chain} - [0:0]`, ...own.rules.slice(0, max).map((r) => r.raw)] : []), ...jumps.slice(0, max)]
}

function policyLine(policy: SnapshotNetworkPolicy): string {
  return `networkpolicy ${policyKey(policy)}: podSelector ${JSON.stringify(policy.spec.podSelector ?? {})}, ${policyDirections(policy.spec).join(' and ')}`
}

/** Both directions of the comparison in one pass over the nodes. */
const policyDataplane: Check = (ctx) => {
  const policies = ctx.snapshot.networkPolicies ?? []
  const owned = new Map<string, SnapshotNetworkPolicy>()
  for (const p of policies)
    for (const d of ['Ingress', 'Egress'] as const) owned.set(felixPolicyChain(d, p.namespace, p.name), p)
  return ctx.collected().flatMap(({node, state}): Raised[] => {
    const out: Raised[] = []
    for (const set of ruleSets(state)) {
      const filter = tableOf(set.iptables, 'filter')
      // Felix's own dispatch: a node without it runs no Felix (flannel) and programs no policy
      if (!filter?.chains.some((c) => c.name === 'cali-FORWARD')) continue
      const present = new Set(filter.chains.map((c) => c.name))
      for (const policy of policies) {
        const local = selectedPods(policy, ctx.snapshot.pods).filter((p) => p.node === node.name && !p.hostNetwork)
        if (local.length === 0) continue
        for (const direction of policyDirections(policy.spec)) {
          const chain = felixPolicyChain(direction, policy.namespace, policy.name)
          const from = direction === 'Ingress' ? 'cali-tw-' : 'cali-fw-'
          const jumped = filter.chains.some((c) => c.name.startsWith(from) && c.rules.some((r) => r.target === chain))
          if (present.has(chain) && jumped) continue
          const why = present.has(chain)
            ? `no ${from}<iface> chain jumps to ${chain}`
            : `no chain ${chain} in the filter table`
          out.push(
            raise('POLICY_NOT_PROGRAMMED', {
              node: node.name,
              subject: `NetworkPolicy ${policyKey(policy)}`,
              message: `NetworkPolicy ${policyKey(policy)} selects ${local.length} pod${local.length === 1 ? '' : 's'} on ${node.name} for ${direction}, but its Felix has not programmed it: ${why}`,
              evidence: [
                `API: ${policyLine(policy)}`,
                `API: selects on ${node.name}: ${local.map((p) => `${p.namespace}/${p.name}`).join(', ')}`,
                `${node.name} ${set.tool}: ${why}`,
                ...chainLines(filter, chain).map((l) => `${node.name} ${set.tool}: ${l}`),
              ],
              vars: {node: node.name, namespace: policy.namespace, policy: policy.name},
            }),
          )
        }
      }
      for (const chain of filter.chains.filter((c) => POLICY_CHAIN.test(c.name) && !owned.has(c.name))) {
        out.push(
          raise('POLICY_STALE_RULES', {
            node: node.name,
            subject: `chain ${chain.name}`,
            message: `${node.name} holds policy chain ${chain.name}, but no NetworkPolicy in the API owns it (${policies.length} polic${policies.length === 1 ? 'y' : 'ies'} there): a deleted policy's rules, still enforced`,
            evidence: [
              ...chainLines(filter, chain.name).map((l) => `${node.name} ${set.tool}: ${l}`),
              `API: ${policies.length === 0 ? 'no NetworkPolicy' : `NetworkPolicies ${policies.slice(0, 5).map(policyKey).join(', ')}${policies.length > 5 ? ` and ${policies.length - 5} more` : ''}`}, none named by ${chain.name}`,
            ],
            vars: {node: node.name},
          }),
        )
      }
    }
    return out
  })
}

export const policyNotProgrammed: Check = (ctx) =>
  policyDataplane(ctx).filter((r) => r.finding.code === 'POLICY_NOT_PROGRAMMED')
export const policyStaleRules: Check = (ctx) =>
  policyDataplane(ctx).filter((r) => r.finding.code === 'POLICY_STALE_RULES')
