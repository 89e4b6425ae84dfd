import {createHash} from 'node:crypto'

import {felixPolicyChain, lengthLimitedId} from '../../analyze/checks/policy-dataplane.js'
import {policyDirections, selectorMatches} from '../../analyze/policy.js'
import {NAMESPACE_NAME_LABEL} from '../../analyze/policy-verdict.js'
import type {InventoryNetworkPolicy} from '../../model/inventory.js'
import type {LabPlan, LabPod} from '../types.js'
import {clearMark, emit, MARK_ACCEPT, MARK_SCRATCH0, markClear, markSet, type Rule, setMark} from './felix.js'
import type {RestoreFile} from './restore.js'

/**
 * Kubernetes NetworkPolicies as Felix programs them (projectcalico/calico
 * felix/rules/policy.go, endpoints.go): one `cali-pi-` (ingress) and one
 * `cali-po-` (egress) chain per policy in the default tier, jumped to from the
 * selected workloads' cali-tw-/cali-fw- chains. An allowing rule sets the
 * accept mark and returns. As Felix does (felix/rules/policy.go, felix/ipsets):
 * a selector peer (podSelector, namespaceSelector, both) is an ipset of the
 * pods it selects, type hash:net, matched with `-m set --match-set NAME src`
 * (ingress) or `dst` (egress); a named port is a hash:ip,port set of the
 * selected pods' `IP,proto:port` matched with `dst,dst`; an ipBlock stays a
 * CIDR match (`--source CIDR`), its excepts a negated CIDR block on a scratch
 * mark. Set names have Felix's shape — `cali40` + `s:` (selector) or `n:`
 * (named port) + the base64url SHA-224 of the set's content, cut to 31
 * characters (ipset's limit) — hashed over the lab's own rendering of the
 * selector, not Calico's converted selector text. Named ports resolve against
 * the destination pods' container ports (lab up --pod-ports): for ingress the
 * pods the policy selects, for egress every pod; a pod without the name is no
 * member, so a set can be empty and its rule match nothing, as in Felix.
 */

export {felixPolicyChain, lengthLimitedId}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])
const nsOf = (p: InventoryNetworkPolicy): string => p.metadata.namespace ?? 'default'
/** A namespace's labels as the API server holds them: --namespace-labels, and the name label it always sets. */
const nsLabels = (plan: LabPlan, ns: string): Record<string, string> => ({
  ...plan.namespaceLabels?.[ns],
  [NAMESPACE_NAME_LABEL]: ns,
})

/** An ipset of Felix's policy dataplane: its type and members, as `ipset restore` takes them. */
export interface FelixIpset {
  name: string
  type: 'hash:net' | 'hash:ip,port'
  members: string[]
}

/** Felix's IPv4 main set name for a set id: `cali40` + id, cut to ipset's 31 characters (ipsets.NameForMainIPSet). */
const mainSetName = (id: string): string => `cali40${id}`.slice(0, 31)
/** A unique id as libcalico-go's MakeUniqueID: `prefix:` + base64url(SHA-224(`prefix:` + content)). */
const uniqueId = (prefix: string, content: string): string =>
  `${prefix}:${createHash('sha224').update(`${prefix}:${content}`).digest('base64url')}`

/** The policy dataplane's ipsets, collected while the rules are built. */
class IpsetBook {
  readonly sets = new Map<string, FelixIpset>()
  add(set: FelixIpset): string {
    this.sets.set(set.name, set)
    return set.name
  }
}

/** A peer's address match (without the -s/-d flag or set direction): the selector's ipset, or its ipBlock (excepts beside). */
type PeerMatch = {set: string} | {cidr: string; except: string[]}

function peerMatches(peer: unknown, policyNs: string, plan: LabPlan, book: IpsetBook): PeerMatch[] {
  if (!isRecord(peer)) return []
  if (isRecord(peer.ipBlock))
    return typeof peer.ipBlock.cidr === 'string'
      ? [
          {
            cidr: peer.ipBlock.cidr,
            except: asArray(peer.ipBlock.except).filter((x): x is string => typeof x === 'string'),
          },
        ]
      : []
  const hasPod = peer.podSelector !== undefined && peer.podSelector !== null
  const hasNs = peer.namespaceSelector !== undefined && peer.namespaceSelector !== null
  if (!hasPod && !hasNs) return []
  const members = plan.pods
    .filter((p) =>
      hasNs ? selectorMatches(peer.namespaceSelector, nsLabels(plan, p.namespace)) : p.namespace === policyNs,
    )
    .filter((p) => !hasPod || selectorMatches(peer.podSelector, p.labels ?? {}))
    .map((p) => `${p.ip}/32`)
  // the selector as one text: a podSelector alone is of the policy's namespace
  const selector = JSON.stringify({
    namespace: hasNs ? null : policyNs,
    namespaceSelector: hasNs ? peer.namespaceSelector : null,
    podSelector: hasPod ? peer.podSelector : null,
  })
  return [{set: book.add({name: mainSetName(uniqueId('s', selector)), type: 'hash:net', members})}]
}

/** A rule's port matches, Felix's `-p X -m multiport --destination-ports` form or a named port's set; undefined entry: any port. */
function portMatches(
  ports: unknown,
  policy: InventoryNetworkPolicy,
  direction: 'Ingress' | 'Egress',
  dests: readonly LabPod[],
  book: IpsetBook,
): Array<string | undefined> {
  const list = asArray(ports)
  if (list.length === 0) return [undefined]
  const out: string[] = []
  for (const raw of list) {
    const e = isRecord(raw) ? raw : {}
    const proto = (typeof e.protocol === 'string' ? e.protocol : 'TCP').toLowerCase()
    if (e.port === undefined || e.port === null) out.push(`-p ${proto}`)
    else if (typeof e.port === 'number')
      out.push(
        `-p ${proto} -m multiport --destination-ports ${e.port}${typeof e.endPort === 'number' ? `:${e.endPort}` : ''}`,
      )
    else if (typeof e.port === 'string') {
      const name = e.port
      // the named port's set: every destination pod that has a port of that name and protocol, as IP,proto:port
      // (ingress: the pods the policy selects; egress: any pod, the rule's peers narrowing it beside)
      const members = dests.flatMap(
        (p) =>
          p.ports
            ?.filter((x) => x.name === name && x.protocol.toLowerCase() === proto)
            .map((x) => `${p.ip},${proto}:${x.containerPort}`) ?? [],
      )
      const content = JSON.stringify(
        direction === 'Ingress'
          ? {namespace: nsOf(policy), podSelector: policy.spec.podSelector ?? {}, port: name, protocol: proto}
          : {port: name, protocol: proto},
      )
      const set = book.add({name: mainSetName(uniqueId('n', content)), type: 'hash:ip,port', members})
      out.push(`-p ${proto} -m set --match-set ${set} dst,dst`)
    }
  }
  return out
}

/** One policy chain's rules for one direction. */
function policyRules(
  policy: InventoryNetworkPolicy,
  direction: 'Ingress' | 'Egress',
  plan: LabPlan,
  selected: readonly LabPod[],
  book: IpsetBook,
): Rule[] {
  const out: Rule[] = []
  const peerFlag = direction === 'Ingress' ? '--source' : '--destination'
  const setDir = direction === 'Ingress' ? 'src' : 'dst'
  const accept = (match: string | undefined): Rule[] => [
    {...(match ? {match} : {}), action: setMark(MARK_ACCEPT)},
    {match: markSet(MARK_ACCEPT), action: '--jump RETURN'},
  ]
  for (const rule of asArray(direction === 'Ingress' ? policy.spec.ingress : policy.spec.egress)) {
    const r = isRecord(rule) ? rule : {}
    const peers = asArray(direction === 'Ingress' ? r.from : r.to)
    const nets = peers.length === 0 ? [undefined] : peers.flatMap((peer) => peerMatches(peer, nsOf(policy), plan, book))
    for (const net of nets) {
      for (const ports of portMatches(
        r.ports,
        policy,
        direction,
        direction === 'Ingress' ? selected : plan.pods,
        book,
      )) {
        const parts: string[] = []
        if (net && 'set' in net) parts.push(`-m set --match-set ${net.set} ${setDir}`)
        else if (net) parts.push(`${peerFlag} ${net.cidr}`)
        if (net && 'cidr' in net && net.except.length > 0) {
          // Felix's negated-CIDR block: the scratch mark flags an excepted address, the allow requires it clear
          out.push({action: clearMark(MARK_SCRATCH0)})
          for (const ex of net.except) out.push({match: `${peerFlag} ${ex}`, action: setMark(MARK_SCRATCH0)})
          parts.push(markClear(MARK_SCRATCH0))
        }
        if (ports) parts.push(ports)
        out.push(...accept(parts.length > 0 ? parts.join(' ') : undefined))
      }
    }
  }
  return out
}

export interface ProgrammedPolicies {
  /** every cali-pi-/cali-po- chain programmed on the node */
  chains: string[]
  /** a local pod's policy chains, ingress and egress, in the policies' order */
  selecting(pod: LabPod): {ingress: string[]; egress: string[]}
  /** the ipsets the chains match (selectors, named ports) */
  ipsets: FelixIpset[]
}

/** Declare and fill the policy chains that select the given (local) pods; Flannel labs never come here. */
export function felixPolicyChains(f: RestoreFile, plan: LabPlan, pods: readonly LabPod[]): ProgrammedPolicies {
  const bySelected = new Map<string, {ingress: string[]; egress: string[]}>()
  const chains: string[] = []
  const book = new IpsetBook()
  for (const policy of plan.networkPolicies ?? []) {
    const ns = nsOf(policy)
    const selected = pods.filter(
      (p) => p.namespace === ns && selectorMatches(policy.spec.podSelector ?? {}, p.labels ?? {}),
    )
    if (selected.length === 0) continue
    for (const direction of policyDirections(policy.spec)) {
      const chain = felixPolicyChain(direction, ns, policy.metadata.name)
      emit(f, 'filter', chain, policyRules(policy, direction, plan, selected, book))
      chains.push(chain)
      for (const p of selected) {
        const entry = bySelected.get(p.name) ?? {ingress: [], egress: []}
        entry[direction === 'Ingress' ? 'ingress' : 'egress'].push(chain)
        bySelected.set(p.name, entry)
      }
    }
  }
  return {
    chains,
    selecting: (pod) => bySelected.get(pod.name) ?? {ingress: [], egress: []},
    ipsets: [...book.sets.values()],
  }
}

/** The policy ipsets in `ipset restore -exist` form: each created if absent and refilled (flush, then its members). */
export function felixPolicyIpsetRestore(sets: readonly FelixIpset[]): string {
  const lines = sets.flatMap((s) => [
    `create ${s.name} ${s.type} family inet hashsize 1024 maxelem 1048576`,
    `flush ${s.name}`,
    ...s.members.map((m) => `add ${s.name} ${m}`),
  ])
  return lines.length > 0 ? `${lines.join('\n')}\n` : ''
}

/** Whether an ipset name is one of the policy sets (selectors `cali40s:`, named ports `cali40n:`), which the lab owns and removes when no rule needs it. */
export const isPolicyIpset = (name: string): boolean => /^cali40[sn]:/.test(name)
