/**
 * NetworkPolicies in a lab: `netctl lab policy apply | delete | list`. The lab
 * records them (its record and the inventory it writes), so that collect,
 * trace and check see them as they would see a cluster's. A Calico or Canal lab with
 * agent rules (--proxy-mode iptables|nftables) also programs them into
 * Felix's chains on every node (agents/felix-policy.ts); flannel labs do not enforce them.
 * The commands reach these through src/services/lab-policy.ts, which holds
 * the lab's change lock around them.
 */
import {parseAllDocuments} from 'yaml'

import {UsageError} from '../errors.js'
import {backendCni, cniRunsFelix} from '../model/backends.js'
import type {InventoryNetworkPolicy} from '../model/inventory.js'
import {reprogramFelixPolicies} from './agents/index.js'
import {writeInventory} from './inventory.js'
import {loadRecord, saveRecord} from './state.js'
import type {LabRecord} from './types.js'

export interface LabPolicySummary {
  namespace: string
  name: string
  podSelector: unknown
  policyTypes: string[]
}

export interface LabPolicyResult {
  lab: string
  /** apply: each document, as kubectl apply says it */
  applied?: Array<{namespace: string; name: string; result: 'created' | 'configured' | 'unchanged'}>
  /** delete: the policy removed */
  deleted?: Array<{namespace: string; name: string}>
  /** the lab's policies afterwards */
  policies: LabPolicySummary[]
  /** whether the lab's CNI enforces them */
  enforced: boolean
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
const key = (p: InventoryNetworkPolicy): string => `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/

/** One object as `kubectl apply -f` reads it: a NetworkPolicy, or a List of them. */
function policiesOf(obj: unknown, where: string): InventoryNetworkPolicy[] {
  if (obj === null || obj === undefined) return []
  if (!isRecord(obj)) throw new UsageError(`${where}: not an object`)
  if (obj.kind === 'List' && Array.isArray(obj.items))
    return obj.items.flatMap((item, i) => policiesOf(item, `${where} items[${i}]`))
  if (obj.kind !== 'NetworkPolicy')
    throw new UsageError(
      `${where}: kind ${JSON.stringify(obj.kind)}: only NetworkPolicy (networking.k8s.io/v1) goes into a lab`,
    )
  if (obj.apiVersion !== undefined && obj.apiVersion !== 'networking.k8s.io/v1')
    throw new UsageError(`${where}: apiVersion ${JSON.stringify(obj.apiVersion)}: use networking.k8s.io/v1`)
  const meta = isRecord(obj.metadata) ? obj.metadata : {}
  const name = meta.name
  const namespace = meta.namespace ?? 'default'
  if (typeof name !== 'string' || name.length > 253 || !DNS_SUBDOMAIN.test(name))
    throw new UsageError(`${where}: metadata.name ${JSON.stringify(name)} is not a NetworkPolicy name`)
  if (typeof namespace !== 'string' || namespace.length > 63 || !DNS_LABEL.test(namespace))
    throw new UsageError(`${where}: metadata.namespace ${JSON.stringify(namespace)} is not a namespace name`)
  const spec = obj.spec ?? {}
  if (!isRecord(spec)) throw new UsageError(`${where}: spec must be an object`)
  if (spec.podSelector !== undefined && !isRecord(spec.podSelector))
    throw new UsageError(`${where}: spec.podSelector must be a label selector`)
  for (const dir of ['ingress', 'egress'] as const)
    if (spec[dir] !== undefined && !Array.isArray(spec[dir]))
      throw new UsageError(`${where}: spec.${dir} must be a list of rules`)
  return [{apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: {name, namespace}, spec}]
}

/** The documents of a file (YAML with ---, or JSON), as NetworkPolicies. */
export function parsePolicyDocuments(text: string, file: string): InventoryNetworkPolicy[] {
  const docs = parseAllDocuments(text)
  const out: InventoryNetworkPolicy[] = []
  for (const [i, doc] of (Array.isArray(docs) ? docs : [docs]).entries()) {
    if (doc.errors.length > 0)
      throw new UsageError(
        `${file}: document ${i + 1}: not valid YAML or JSON (${doc.errors[0]!.message.split('\n')[0]})`,
      )
    out.push(...policiesOf(doc.toJS(), `${file}: document ${i + 1}`))
  }
  if (out.length === 0) throw new UsageError(`${file}: no NetworkPolicy in it`)
  return out
}

const enforces = (record: LabRecord): boolean => cniRunsFelix(backendCni(record.backend))

function summary(record: LabRecord, extra: Partial<LabPolicyResult> = {}): LabPolicyResult {
  const policies = (record.networkPolicies ?? []).map((p) => ({
    namespace: p.metadata.namespace ?? 'default',
    name: p.metadata.name,
    podSelector: p.spec.podSelector ?? {},
    policyTypes: Array.isArray(p.spec.policyTypes) ? (p.spec.policyTypes as string[]) : [],
  }))
  return {lab: record.name, ...extra, policies, enforced: enforces(record)}
}

async function store(record: LabRecord, policies: InventoryNetworkPolicy[]): Promise<void> {
  const updated = {...record, networkPolicies: policies}
  await saveRecord(updated)
  await writeInventory(updated)
  await reprogramFelixPolicies(updated)
}

/** `lab policy apply -f FILE` on the lab's record as it is now: create or replace each policy by namespace/name. */
export async function applyTo(record: LabRecord, incoming: InventoryNetworkPolicy[]): Promise<LabPolicyResult> {
  const current = [...(record.networkPolicies ?? [])]
  const applied: NonNullable<LabPolicyResult['applied']> = []
  for (const p of incoming) {
    const i = current.findIndex((c) => key(c) === key(p))
    const result =
      i < 0 ? 'created' : JSON.stringify(current[i]!.spec) === JSON.stringify(p.spec) ? 'unchanged' : 'configured'
    if (i < 0) current.push(p)
    else current[i] = p
    applied.push({namespace: p.metadata.namespace!, name: p.metadata.name, result})
  }
  await store(record, current)
  return summary({...record, networkPolicies: current}, {applied})
}

/** `lab policy delete NAME [-n NS]` on the lab's record as it is now. */
export async function deleteFrom(record: LabRecord, name: string, namespace: string): Promise<LabPolicyResult> {
  const lab = record.name
  const current = record.networkPolicies ?? []
  const kept = current.filter((p) => key(p) !== `${namespace}/${name}`)
  if (kept.length === current.length)
    throw new UsageError(
      `lab ${lab} has no NetworkPolicy ${namespace}/${name} (see netctl lab policy list --lab ${lab})`,
      false,
    )
  await store(record, kept)
  return summary({...record, networkPolicies: kept}, {deleted: [{namespace, name}]})
}

/** `lab policy list` */
export async function listLabPolicies(lab: string): Promise<LabPolicyResult> {
  return summary(await loadRecord(lab))
}
