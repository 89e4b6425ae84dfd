import {existsSync} from 'node:fs'

import {hostNetnsIds, pidsByNetns, printableNetns} from './netns-setup.js'
import {labHealth, labNamesOnDisk, loadRecord, presentNetns} from './state.js'
import {judgeLabNetns, labNames} from './teardown.js'
import {defaultStateRoot, LAB_NAME_RE} from './topology.js'
import type {NetnsId} from './types.js'

/** A lab as `netctl lab list` shows it. */
export interface LabListEntry {
  name: string
  backend?: string
  topology?: string
  nodes?: number
  pods?: number
  status: string
  /** why the status is not up */
  reason?: string
  namespaces: number
  createdAt?: string
}

/**
 * Labs on this machine: those with a record, in the state labHealth() finds
 * them in, and also namespaces that look like a lab's but have no record (left
 * by a crash), so that nothing is hidden. Such an orphan whose names point at
 * namespaces `lab down` would refuse to touch (the machine's own, or one with
 * processes no lab recorded) is listed as refused, with the reason.
 */
export async function listLabs(stateRoot = defaultStateRoot()): Promise<LabListEntry[]> {
  const present = await presentNetns()
  const count = (name: string): number => labNames(name, present).size
  const entries: LabListEntry[] = []
  for (const name of await labNamesOnDisk(stateRoot)) {
    if (!LAB_NAME_RE.test(name)) continue
    try {
      const r = await loadRecord(name, stateRoot)
      const health = labHealth(r, present)
      entries.push({
        name,
        backend: r.backend,
        topology: r.topology,
        nodes: r.nodes.length,
        pods: r.pods.length,
        status: health.state,
        ...(health.reason ? {reason: health.reason} : {}),
        namespaces: count(name),
        createdAt: r.createdAt,
      })
    } catch {
      if (existsSync(`${stateRoot}/${name}`)) entries.push({name, status: 'no record', namespaces: count(name)})
    }
  }
  const known = new Set(entries.map((e) => e.name))
  const orphans = [
    ...new Set([...present.keys()].filter((n) => n.endsWith('.fabric')).map((n) => n.slice(0, -'.fabric'.length))),
  ].filter((name) => !known.has(name) && LAB_NAME_RE.test(name))
  if (orphans.length > 0) {
    const host = hostNetnsIds()
    const pids = pidsByNetns([...present.values()].filter((id): id is NetnsId => id !== undefined))
    for (const name of orphans) {
      const refused = judgeLabNetns(name, undefined, labNames(name, present), pids, host).find((v) => v.refused)
      entries.push({
        name,
        status: refused ? 'refused' : 'orphaned (no record)',
        ...(refused ? {reason: `${printableNetns(refused.ns)} ${refused.refused}: lab down will not touch it`} : {}),
        namespaces: count(name),
      })
    }
  }
  return entries.sort((a, b) => a.name.localeCompare(b.name))
}
