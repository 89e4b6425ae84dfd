import {existsSync} from 'node:fs'
import {mkdir, readdir, readFile, rename, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {NetctlError, UsageError} from '../errors.js'
import {listNetns, netnsId, processStart, sameNetns} from './netns-setup.js'
import {defaultStateRoot, labNetnsNames, validateLabName} from './topology.js'
import type {LabRecord, NetnsId} from './types.js'

export function recordPath(stateDir: string): string {
  return path.join(stateDir, 'lab.json')
}

let tmpCounter = 0

export async function saveRecord(record: LabRecord): Promise<void> {
  await mkdir(record.stateDir, {recursive: true})
  const file = recordPath(record.stateDir)
  // a temporary file of its own: two saves at once never mix their bytes
  const tmp = `${file}.${process.pid}.${(tmpCounter += 1)}.tmp`
  await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`)
  await rename(tmp, file)
}

export async function loadRecord(name: string, stateRoot = defaultStateRoot()): Promise<LabRecord> {
  validateLabName(name)
  const file = recordPath(path.join(stateRoot, name))
  if (!existsSync(file)) throw new UsageError(`no lab named '${name}' (see netctl lab list)`)
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LabRecord
  } catch (error) {
    throw new NetctlError(`lab '${name}' has an unreadable record ${file}: ${(error as Error).message}`)
  }
}

/** Names of labs with a state directory under the root. */
export async function labNamesOnDisk(stateRoot = defaultStateRoot()): Promise<string[]> {
  if (!existsSync(stateRoot)) return []
  const entries = await readdir(stateRoot, {withFileTypes: true})
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort()
}

/**
 * A lab's state as it really is, not as its record last said: up (every
 * namespace it made is there), degraded (some are gone, or their name now
 * points at a namespace the lab did not make), creating (a `lab up` is still
 * building it), failed (its `lab up` failed, or died before finishing).
 */
export type LabState = 'creating' | 'up' | 'degraded' | 'failed'

export interface LabHealth {
  state: LabState
  /** namespaces of the lab's plan whose name is not there (while creating or failed, also those not made yet) */
  missing: string[]
  /** names of the lab's namespaces that now point at another namespace */
  foreign: string[]
  /** why the state is not up, in a few words */
  reason?: string
}

/** Every namespace name on the machine and the namespace behind it now (undefined: it vanished while we looked). */
export async function presentNetns(): Promise<Map<string, NetnsId | undefined>> {
  return new Map((await listNetns()).map((name) => [name, netnsId(name)]))
}

/**
 * The one place a lab's state is decided; `lab status` and `lab list` both
 * show this. `present` is presentNetns().
 */
export function labHealth(record: LabRecord, present: ReadonlyMap<string, NetnsId | undefined>): LabHealth {
  const missing: string[] = []
  const foreign: string[] = []
  for (const ns of labNetnsNames(record)) {
    if (!present.has(ns)) missing.push(ns)
    else if (record.netnsIds?.[ns] && !sameNetns(record.netnsIds[ns], present.get(ns))) foreign.push(ns)
  }
  if (record.status === 'failed') return {state: 'failed', missing, foreign, reason: 'lab up failed'}
  if (record.status === 'creating') {
    const owner = record.owner
    // PIDs are reused: the start time says whether it is still the same process
    if (owner && processStart(owner.pid) !== owner.start) {
      return {state: 'failed', missing, foreign, reason: `its lab up (pid ${owner.pid}) ended before the lab was up`}
    }
    return {
      state: 'creating',
      missing,
      foreign,
      reason: owner ? `lab up (pid ${owner.pid}) is still building it` : 'lab up is still building it',
    }
  }
  if (missing.length === 0 && foreign.length === 0) return {state: 'up', missing, foreign}
  const parts = [
    ...(missing.length ? [`missing ${missing.join(', ')}`] : []),
    ...(foreign.length ? [`not the lab's own namespace: ${foreign.join(', ')}`] : []),
  ]
  return {state: 'degraded', missing, foreign, reason: parts.join('; ')}
}
