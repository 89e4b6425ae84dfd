import {existsSync} from 'node:fs'
import {readFile, rename, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {parseDocument} from 'yaml'

import {labInventoryFile, loadInventory} from '../cluster/inventory.js'
import type {Inventory} from '../cluster/inventory-types.js'
import {UsageError} from '../errors.js'
import {loadRecord, recordPath} from '../lab/state.js'
import {defaultStateRoot} from '../lab/topology.js'
import type {LabRecord} from '../lab/types.js'
import {isConfiguredBackend} from './catalog.js'
import {VTEP_MAC_ANNOTATIONS} from './facts.js'
import type {ClusterFacts, ConfiguredBackend} from './types.js'

/** The cluster a `backend` command works on: a lab (netctl runs its daemons) or an inventory of real nodes. */
export interface BackendTarget {
  kind: 'lab' | 'inventory'
  inventoryFile: string
  inventory: Inventory
  record?: LabRecord
  configured: ConfiguredBackend
}

export async function resolveTarget(flags: {lab?: string | undefined; inventory?: string | undefined}): Promise<BackendTarget> {
  if (!flags.lab && !flags.inventory) throw new UsageError('say which cluster: --lab NAME or --inventory FILE')
  const file = flags.lab ? await labInventoryFile(flags.lab) : flags.inventory!
  const inventory = await loadInventory(file)
  let record: LabRecord | undefined
  if (flags.lab) record = await loadRecord(flags.lab)
  else if (inventory.cluster.source === 'lab') record = await labOwning(inventory.cluster.name, file)
  const configured = record?.backend ?? inventory.cluster.backend
  if (!isConfiguredBackend(configured)) {
    throw new UsageError(`${file}: cluster.backend '${configured}' is not a backend netctl can switch from`)
  }
  return {kind: record ? 'lab' : 'inventory', inventoryFile: file, inventory, ...(record ? {record} : {}), configured}
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
export async function recordInventoryBackend(file: string, type: ConfiguredBackend, facts: ClusterFacts): Promise<string[]> {
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
