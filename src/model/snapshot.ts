import {UsageError} from '../errors.js'
import {readUserFile} from '../util/files.js'
import {firstSchemaError, validatorFor} from '../util/schema.js'
import {printable} from '../util/text.js'
import type {InventoryNamespace, InventoryPod, InventoryService} from './inventory.js'
import type {NodeState} from './node-state.js'
import {SNAPSHOT_SCHEMA_VERSION} from './schema-version.js'

export {SNAPSHOT_SCHEMA_VERSION}

/**
 * A snapshot: everything netctl knows about a cluster at one moment, as plain
 * JSON. `netctl collect` writes one; every command that reads live state can
 * read one instead (`--snapshot FILE`). Validated on load against
 * schemas/snapshot.schema.json; within a schemaVersion fields are only added.
 */
export const SNAPSHOT_SCHEMA = 'snapshot'

export type CollectionErrorCode = 'NODE_UNREACHABLE' | 'COLLECTION_PARTIAL'

/** A node that could not be collected (NODE_UNREACHABLE) or only in part (COLLECTION_PARTIAL). */
export interface CollectionError {
  node: string
  code: CollectionErrorCode
  message: string
}

export interface SnapshotNode {
  name: string
  internalIP: string
  externalIP?: string
  /** the named network namespace the node was entered through (a lab node: the inventory's access.netns) */
  netns?: string
  podCIDRs: string[]
  annotations: Record<string, string>
  labels: Record<string, string>
}

/** A pod as the inventory (or the Kubernetes API) describes it; the snapshot keeps it as is. */
export type SnapshotPod = InventoryPod

/** A namespace and its labels. */
export type SnapshotNamespace = InventoryNamespace

/** A NetworkPolicy as the API holds it (networking.k8s.io/v1), its spec verbatim. */
export interface SnapshotNetworkPolicy {
  namespace: string
  name: string
  spec: Record<string, unknown>
}

export interface Snapshot {
  schemaVersion: typeof SNAPSHOT_SCHEMA_VERSION
  generator: {name: 'netctl'; version: string}
  startedAt: string
  finishedAt: string
  cluster: {
    /** lab: `lab up` wrote the inventory; inventory: a hand-written file; kubernetes: the API */
    source: 'lab' | 'inventory' | 'kubernetes'
    name: string
    backend: string
    clusterCIDR: string
    /** the CNI running the pod network (flannel, calico, canal, ...); absent when the source did not say */
    cni?: string
    /** the Service CIDR, when the source says */
    serviceCIDR?: string
  }
  nodes: SnapshotNode[]
  pods: SnapshotPod[]
  /** node name → its dataplane state; a node that could not be collected has none */
  nodeStates: Record<string, NodeState>
  errors: CollectionError[]
  /** every NetworkPolicy in the cluster: from the API, or an inventory's networkPolicies: (absent when the source has none) */
  networkPolicies?: SnapshotNetworkPolicy[]
  /** namespaces with their labels, for namespaceSelectors (absent when the source has none) */
  namespaces?: SnapshotNamespace[]
  /** Services with their EndpointSlice endpoints (the inventory's `services:`; absent when the source has none) */
  services?: InventoryService[]
}

/** Check a parsed snapshot: the version first (a newer one says so), then the schema. */
export function validateSnapshot(data: unknown, file = 'snapshot'): Snapshot {
  if (data === null || typeof data !== 'object' || Array.isArray(data))
    throw new UsageError(`${file}: not a netctl snapshot (expected a JSON object)`, false)
  const version = (data as {schemaVersion?: unknown}).schemaVersion
  if (typeof version === 'number' && Number.isInteger(version) && version > SNAPSHOT_SCHEMA_VERSION) {
    throw new UsageError(
      `${file}: snapshot version ${version} is newer than this netctl supports (${SNAPSHOT_SCHEMA_VERSION})`,
      false,
    )
  }
  const validate = validatorFor(SNAPSHOT_SCHEMA)
  if (!validate(data)) throw new UsageError(`${file}: invalid snapshot: ${firstSchemaError(validate.errors)}`, false)
  const snapshot = data as Snapshot
  checkSnapshot(snapshot, file)
  return snapshot
}

/** What the schema cannot say: a node name is a key (nodeStates, pods, findings), so it is unique, as in an inventory. */
function checkSnapshot(s: Snapshot, file: string): void {
  const seen = new Map<string, number>()
  s.nodes.forEach((n, i) => {
    const first = seen.get(n.name)
    if (first !== undefined)
      throw new UsageError(
        `${file}: invalid snapshot: nodes[${i}].name: '${printable(n.name)}' is already nodes[${first}]`,
        false,
      )
    seen.set(n.name, i)
  })
}

export function parseSnapshot(text: string, file = 'snapshot'): Snapshot {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (error) {
    throw new UsageError(`${file}: not a netctl snapshot (not JSON: ${(error as Error).message.split('\n')[0]})`, false)
  }
  return validateSnapshot(data, file)
}

/** `--snapshot FILE` for every command that can work offline. */
export async function loadSnapshot(file: string): Promise<Snapshot> {
  return parseSnapshot(await readUserFile(file), file)
}

/** Nodes that were collected, fully or in part. */
export function collectedNodes(s: Snapshot): string[] {
  return Object.keys(s.nodeStates)
}

/**
 * The path `nsenter --net=` takes for a pod's network namespace, as the node's probe found it
 * (the container runtime's netns path); a named namespace (an inventory's `netns: NAME`, a lab pod)
 * is a file under /var/run/netns. Undefined when the probe did not find the pod.
 */
export function podNetnsPath(s: Snapshot, pod: {node: string; namespace: string; name: string}): string | undefined {
  const entered = s.nodeStates[pod.node]?.pods.find((p) => p.namespace === pod.namespace && p.name === pod.name)?.netns
  return entered && !entered.startsWith('/') ? `/var/run/netns/${entered}` : entered
}
