import {existsSync} from 'node:fs'
import {rm} from 'node:fs/promises'
import path from 'node:path'

import {mapLimit, run} from '../util/exec.js'
import {listNetns, netnsPids} from './netns.js'
import {defaultStateRoot, netnsPrefix, validateLabName} from './topology.js'

export interface TeardownResult {
  name: string
  namespaces: string[]
  processes: number[]
  stateDir?: string
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * Remove everything lab NAME made, trusting nothing it wrote down: every
 * namespace whose name starts with `NAME.`, every process living in one of
 * them (whatever started it), then the state directory. Safe to run after a
 * half-failed `up`, and twice.
 */
export async function teardownLab(name: string, stateRoot = defaultStateRoot()): Promise<TeardownResult> {
  validateLabName(name)
  const prefix = netnsPrefix(name)
  const namespaces = (await listNetns()).filter((n) => n.startsWith(prefix))
  const pidLists = await mapLimit(namespaces, 8, (ns) => netnsPids(ns))
  const processes = [...new Set(pidLists.flat())]
  for (const pid of processes) {
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      /* already gone */
    }
  }
  for (let i = 0; i < 30 && processes.some(alive); i++) await sleep(100)
  for (const pid of processes.filter(alive)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      /* already gone */
    }
  }
  // Pods first, then nodes, router and fabric: deleting a netns destroys its veth ends.
  const ordered = [...namespaces].sort((a, b) => b.split('.').length - a.split('.').length)
  await mapLimit(ordered, 8, (ns) => run('ip', ['netns', 'delete', ns]))
  const stateDir = path.join(stateRoot, name)
  let removedDir: string | undefined
  if (existsSync(stateDir)) {
    await rm(stateDir, {recursive: true, force: true})
    removedDir = stateDir
  }
  return {name, namespaces, processes, ...(removedDir ? {stateDir: removedDir} : {})}
}
