import {felixPolicyChain, lengthLimitedId} from '../../analyze/checks/policy-dataplane.js'
import {NAMESPACE_NAME_LABEL} from '../../analyze/policy-verdict.js'
import {policyDirections, selectorMatches} from '../../analyze/policy.js'
import type {InventoryNetworkPolicy} from '../../model/inventory.js'
import type {LabPlan, LabPod} from '../types.js'
import {MARK_ACCEPT, MARK_SCRATCH0, clearMark, emit, markClear, markSet, setMark, type Rule} from './felix.js'
import type {RestoreFile} from './restore.js'

/**
 * Kubernetes NetworkPolicies as Felix programs them (projectcalico/calico
 * felix/rules/policy.go, endpoints.go): one `cali-pi-` (ingress) and one
 * `cali-po-` (egress) chain per policy in the default tier, jumped to from the
 * selected workloads' cali-tw-/cali-fw- chains. An allowing rule sets the
 * accept mark and returns. Felix names the peers' pods by ipsets; the lab
 * matches their addresses one rule each (`--source IP/32`), which the walk
 * reads without ipsets and which says the same thing for a lab's fixed pods.
 * Named ports resolve against the lab pod's container ports (lab pods have
 * none: such a rule matches nothing, as Felix's empty named-port set would).
 */

export {felixPolicyChain, lengthLimitedId}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])
const nsOf = (p: InventoryNetworkPolicy): string => p.metadata.namespace ?? 'default'
const nsLabels = (ns: string): Record<string, string> => ({[NAMESPACE_NAME_LABEL]: ns})

/** A peer's address matches (without the -s/-d flag): the pods it names, or its ipBlock (excepts beside). */
function peerNets(peer: unknown, policyNs: string, plan: LabPlan): Array<{cidr: string; except: string[]}> {
  if (!isRecord(peer)) return []
  if (isRecord(peer.ipBlock)) return typeof peer.ipBlock.cidr === 'string' ? [{cidr: peer.ipBlock.cidr, except: asArray(peer.ipBlock.except).filter((x): x is string => typeof x === 'string')}] : []
  const hasPod = peer.podSelector !== undefined && peer.podSelector !== null
  const hasNs = peer.namespaceSelector !== undefined && peer.namespaceSelector !== null
  if (!hasPod && !hasNs) return []
  return plan.pods
    .filter((p) => (hasNs ? selectorMatches(peer.namespaceSelector, nsLabels(p.namespace)) : p.namespace === policyNs))
    .filter((p) => !hasPod || selectorMatches(peer.podSelector, p.labels ?? {}))
    .map((p) => ({cidr: `${p.ip}/32`, except: []}))
}

/** A rule's port matches, Felix's `-p X -m multiport --destination-ports` form; undefined entry: any port. */
function portMatches(ports: unknown, selected: readonly LabPod[]): Array<string | undefined> {
  const list = asArray(ports)
  if (list.length === 0) return [undefined]
  const out: string[] = []
  for (const raw of list) {
    const e = isRecord(raw) ? raw : {}
    const proto = (typeof e.protocol === 'string' ? e.protocol : 'TCP').toLowerCase()
    if (e.port === undefined || e.port === null) out.push(`-p ${proto}`)
    else if (typeof e.port === 'number') out.push(`-p ${proto} -m multiport --destination-ports ${e.port}${typeof e.endPort === 'number' ? `:${e.endPort}` : ''}`)
    else if (typeof e.port === 'string') {
      const name = e.port
      for (const p of selected) {
        const n = (p as LabPod & {ports?: Array<{name?: string; containerPort: number; protocol?: string}>}).ports?.find((x) => x.name === name && (x.protocol ?? 'TCP').toLowerCase() === proto)
        if (n) out.push(`--destination ${p.ip}/32 -p ${proto} -m multiport --destination-ports ${n.containerPort}`)
      }
    }
  }
  return out
}

/** One policy chain's rules for one direction. */
function policyRules(policy: InventoryNetworkPolicy, direction: 'Ingress' | 'Egress', plan: LabPlan, selected: readonly LabPod[]): Rule[] {
  const out: Rule[] = []
  const peerFlag = direction === 'Ingress' ? '--source' : '--destination'
  const accept = (match: string | undefined): Rule[] => [
    {...(match ? {match} : {}), action: setMark(MARK_ACCEPT)},
    {match: markSet(MARK_ACCEPT), action: '--jump RETURN'},
  ]
  for (const rule of asArray(direction === 'Ingress' ? policy.spec.ingress : policy.spec.egress)) {
    const r = isRecord(rule) ? rule : {}
    const peers = asArray(direction === 'Ingress' ? r.from : r.to)
    const nets = peers.length === 0 ? [undefined] : peers.flatMap((peer) => peerNets(peer, nsOf(policy), plan))
    for (const net of nets) {
      for (const ports of portMatches(r.ports, selected)) {
        const parts: string[] = []
        if (net) parts.push(`${peerFlag} ${net.cidr}`)
        if (net && net.except.length > 0) {
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
}

/** Declare and fill the policy chains that select the given (local) pods; Flannel labs never come here. */
export function felixPolicyChains(f: RestoreFile, plan: LabPlan, pods: readonly LabPod[]): ProgrammedPolicies {
  const bySelected = new Map<string, {ingress: string[]; egress: string[]}>()
  const chains: string[] = []
  for (const policy of plan.networkPolicies ?? []) {
    const ns = nsOf(policy)
    const selected = pods.filter((p) => p.namespace === ns && selectorMatches(policy.spec.podSelector ?? {}, p.labels ?? {}))
    if (selected.length === 0) continue
    for (const direction of policyDirections(policy.spec)) {
      const chain = felixPolicyChain(direction, ns, policy.metadata.name)
      emit(f, 'filter', chain, policyRules(policy, direction, plan, selected))
      chains.push(chain)
      for (const p of selected) {
        const entry = bySelected.get(p.name) ?? {ingress: [], egress: []}
        entry[direction === 'Ingress' ? 'ingress' : 'egress'].push(chain)
        bySelected.set(p.name, entry)
      }
    }
  }
  return {chains, selecting: (pod) => bySelected.get(pod.name) ?? {ingress: [], egress: []}}
}
