import {existsSync} from 'node:fs'
import {readFile, rename, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {parseDocument} from 'yaml'

import type {Detection} from '../cluster/detect.js'
import type {KubeCluster} from '../cluster/kube.js'
import {type ClusterSource, openClusterSource, resolveSource, type SourceFlags} from '../collect/source.js'
import {UsageError} from '../errors.js'
import {labInventoryFile} from '../lab/inventory.js'
import {loadRecord, recordPath} from '../lab/state.js'
import {defaultStateRoot} from '../lab/topology.js'
import type {LabRecord} from '../lab/types.js'
import type {Inventory} from '../model/inventory.js'
import {VTEP_MAC_ANNOTATIONS} from './plan/facts.js'
import {isConfiguredBackend} from './plan/profiles.js'
import type {ClusterFacts, ConfiguredBackend} from './plan/types.js'

/**
 * The cluster a `backend` command works on: a lab (netctl runs its daemons),
 * an inventory of real nodes (kernel-only switches), or a Kubernetes cluster
 * (the CNI's own objects are changed and its daemons do the work). The source
 * gives the nodes and the transports to them; close() ends them (debug pods).
 */
export interface BackendTarget {
  kind: 'lab' | 'inventory' | 'kubernetes'
  source: ClusterSource
  /** lab and inventory: the file the inventory came from */
  inventoryFile?: string
  inventory: Inventory
  record?: LabRecord
  configured: ConfiguredBackend
  /** Kubernetes: the API and what was detected */
  kube?: {cluster: KubeCluster; detection: Detection}
  close(): Promise<void>
  /** The same cluster read anew (after waiting for another run's change lock, what was read is stale). */
  reopen?(): Promise<BackendTarget>
}

export async function resolveTarget(flags: SourceFlags): Promise<BackendTarget> {
  const spec = resolveSource(flags)
  const source = await openClusterSource(spec)
  try {
    return {...(await targetOf(source)), reopen: () => resolveTarget(flags)}
  } catch (error) {
    await source.close()
    throw error
  }
}

async function targetOf(source: ClusterSource): Promise<BackendTarget> {
  const {spec, inventory} = source
  const close = (): Promise<void> => source.close()
  if (spec.kind === 'kubernetes') {
    const detection = source.detection!
    if (!isConfiguredBackend(detection.backend)) {
      const why = detection.details.notes.length > 0 ? ` (${detection.details.notes.join('; ')})` : ''
      throw new UsageError(
        `the cluster runs ${detection.cni === 'unknown' ? 'no CNI netctl knows' : detection.cni} with backend ${detection.backend}: not one netctl can switch${why}`,
      )
    }
    return {
      kind: 'kubernetes',
      source,
      inventory,
      configured: detection.backend,
      kube: {cluster: source.cluster!, detection},
      close,
    }
  }
  const file = spec.kind === 'lab' ? await labInventoryFile(spec.name) : spec.file
  let record: LabRecord | undefined
  if (spec.kind === 'lab') record = await loadRecord(spec.name)
  else if (inventory.cluster.source === 'lab') record = await labOwning(inventory.cluster.name, file)
  const configured = record?.backend ?? inventory.cluster.backend
  if (!isConfiguredBackend(configured)) {
    throw new UsageError(`${file}: cluster.backend '${configured}' is not a backend netctl can switch from`)
  }
  return {
    kind: record ? 'lab' : 'inventory',
    source,
    inventoryFile: file,
    inventory,
    ...(record ? {record} : {}),
    configured,
    close,
  }
}

/** A lab's own inventory given with --inventory is that lab. */
async function labOwning(name: string, file: string): Promise<LabRecord | undefined> {
  if (!existsSync(recordPath(path.join(defaultStateRoot(), name)))) return undefined
  const record = await loadRecord(name).catch(() => undefined)
  return record && path.resolve(record.inventory) === path.resolve(file) ? record : undefined
}

/**
 * Record the new backend in a hand-written inventory, keeping its comments:
 * cluster.backend, and the annotations a node of that backend carries (the
 * VTEP MAC stays in netctl.dev/vtep-mac so it survives a backend without one).
 */
export async function recordInventoryBackend(
  file: string,
  type: ConfiguredBackend,
  facts: ClusterFacts,
): Promise<string[]> {
  const doc = parseDocument(await readFile(file, 'utf8'))
  doc.setIn(['cluster', 'backend'], type)
  const nodes = (doc.getIn(['nodes']) as {items?: unknown[]} | undefined)?.items ?? []
  nodes.forEach((_, i) => {
    const name = String(doc.getIn(['nodes', i, 'name']))
    const f = facts.nodes.find((n) => n.name === name)
    if (!f) return
    const set = (k: string, v: string): void => void doc.setIn(['nodes', i, 'annotations', k], v)
    set(VTEP_MAC_ANNOTATIONS.netctl, f.vtepMAC)
    if (type.startsWith('flannel-')) {
      const kind = type.slice('flannel-'.length)
      set('flannel.alpha.coreos.com/backend-type', kind)
      set(VTEP_MAC_ANNOTATIONS.flannel, kind === 'vxlan' ? JSON.stringify({VNI: 1, VtepMAC: f.vtepMAC}) : 'null')
    }
  })
  await writeFile(`${file}.tmp`, doc.toString({lineWidth: 0}))
  await rename(`${file}.tmp`, file)
  return [file]
}
