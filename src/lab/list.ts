import {existsSync} from 'node:fs'

import type {LabListEntry} from '../render/lab.js'
import {listNetns} from './netns.js'
import {labNamesOnDisk, loadRecord} from './state.js'
import {defaultStateRoot, LAB_NAME_RE} from './topology.js'

/**
 * Labs on this machine: those with a record, and also namespaces that look like
 * a lab's but have no record (left by a crash), so that nothing is hidden.
 */
export async function listLabs(stateRoot = defaultStateRoot()): Promise<LabListEntry[]> {
  const namespaces = await listNetns()
  const count = (name: string): number => namespaces.filter((n) => n.startsWith(`${name}.`)).length
  const entries: LabListEntry[] = []
  for (const name of await labNamesOnDisk(stateRoot)) {
    if (!LAB_NAME_RE.test(name)) continue
    try {
      const r = await loadRecord(name, stateRoot)
      const n = count(name)
      const status = r.status === 'up' && n < 1 + r.nodes.length + r.pods.length ? 'degraded' : r.status
      entries.push({name, backend: r.backend, topology: r.topology, nodes: r.nodes.length, pods: r.pods.length, status, namespaces: n, createdAt: r.createdAt})
    } catch {
      if (existsSync(`${stateRoot}/${name}`)) entries.push({name, status: 'no record', namespaces: count(name)})
    }
  }
  const known = new Set(entries.map((e) => e.name))
  const orphans = new Set(namespaces.filter((n) => n.endsWith('.fabric')).map((n) => n.slice(0, -'.fabric'.length)))
  for (const name of orphans) if (!known.has(name) && LAB_NAME_RE.test(name)) entries.push({name, status: 'orphaned (no record)', namespaces: count(name)})
  return entries.sort((a, b) => a.name.localeCompare(b.name))
}
