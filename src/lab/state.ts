import {existsSync} from 'node:fs'
import {mkdir, readdir, readFile, rename, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {NetctlError, UsageError} from '../errors.js'
import {defaultStateRoot, validateLabName} from './topology.js'
import type {LabRecord} from './types.js'

export function recordPath(stateDir: string): string {
  return path.join(stateDir, 'lab.json')
}

export async function saveRecord(record: LabRecord): Promise<void> {
  await mkdir(record.stateDir, {recursive: true})
  const file = recordPath(record.stateDir)
  await writeFile(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`)
  await rename(`${file}.tmp`, file)
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
  return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort()
}
