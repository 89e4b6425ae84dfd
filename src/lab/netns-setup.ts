import {readdirSync, readFileSync, statSync} from 'node:fs'
import {readdir, writeFile} from 'node:fs/promises'

import {LAB_SCRIPT_TIMEOUT_MS, QUICK_CHECK_TIMEOUT_MS} from '../defaults.js'
import {NetctlError} from '../errors.js'
import {type ExecResult, firstLine, run} from '../util/exec.js'
import type {NsScript} from './script.js'
import type {NetnsId} from './types.js'

export type {NetnsId} from './types.js'

/**
 * Names of all network namespaces on this machine: what `ip netns list` prints, which is the
 * entries of its run directory, read here directly (no process to start: this runs before every
 * `--lab` command reaches a node).
 */
export async function listNetns(): Promise<string[]> {
  try {
    return await readdir(NETNS_RUN_DIR)
  } catch {
    // no namespace was ever named on this machine
    return []
  }
}

export async function addNetns(name: string): Promise<void> {
  const r = await run('ip', ['netns', 'add', name])
  if (r.code !== 0) throw new NetctlError(`cannot create network namespace ${name}: ${firstLine(r.stderr)}`)
}

/** Run argv inside a namespace. */
export function execIn(
  netns: string,
  argv: string[],
  opts: {input?: string; timeoutMs?: number} = {},
): Promise<ExecResult> {
  return run('ip', ['netns', 'exec', netns, ...argv], opts)
}

/**
 * Write the script beside the lab's other files (a record of exactly what was
 * done) and run it in the namespace. Returns the warnings it printed.
 */
export async function runScript(netns: string, script: NsScript, file: string, what: string): Promise<string[]> {
  const text = script.toString()
  await writeFile(file, text, {mode: 0o644})
  const r = await execIn(netns, ['sh', '-e', file], {timeoutMs: LAB_SCRIPT_TIMEOUT_MS})
  if (r.code !== 0) {
    const why =
      firstLine(
        r.stderr
          .split('\n')
          .filter((l) => !/^Command failed/.test(l))
          .join('\n'),
      ) || `exit ${r.code}`
    throw new NetctlError(`${what} failed in ${netns}: ${why} (script: ${file})`)
  }
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('netctl-warning: '))
    .map((l) => l.slice('netctl-warning: '.length).trim())
}

export const NETNS_RUN_DIR = '/run/netns'

/** The identity of the namespace behind an nsfs file, or undefined when it cannot be read. */
export function netnsIdOf(file: string): NetnsId | undefined {
  try {
    const s = statSync(file)
    return {dev: s.dev, ino: s.ino}
  } catch {
    return undefined
  }
}

/** The identity of the namespace named `name` now (undefined: no such name). */
export function netnsId(name: string): NetnsId | undefined {
  return netnsIdOf(`${NETNS_RUN_DIR}/${name}`)
}

export function sameNetns(a: NetnsId | undefined, b: NetnsId | undefined): boolean {
  return a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino
}

/** A namespace name as it may be shown: anyone can name a namespace, control characters included. */
export function printableNetns(name: string): string {
  return name.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
}

export function formatNetnsId(id: NetnsId): string {
  return `${id.dev}:${id.ino}`
}

/**
 * Namespaces no lab ever owns: the machine's own (PID 1's; kthreadd's, a
 * kernel thread and so always in the initial namespace, where PID 1's cannot
 * be read) and the one netctl itself runs in.
 */
export function hostNetnsIds(): {root?: NetnsId; own?: NetnsId} {
  const root = netnsIdOf('/proc/1/ns/net') ?? netnsIdOf('/proc/2/ns/net')
  const own = netnsIdOf('/proc/self/ns/net')
  return {...(root ? {root} : {}), ...(own ? {own} : {})}
}

/**
 * PIDs of the processes living in each of the namespaces `ids`, found by
 * identity (every /proc/PID/ns/net that is one of them), so that they are
 * found also when the namespace's name is gone. netctl itself and PID 1 are
 * never in the answer. Keys are formatNetnsId().
 */
export function pidsByNetns(ids: readonly NetnsId[]): Map<string, number[]> {
  const wanted = new Set(ids.map(formatNetnsId))
  const out = new Map<string, number[]>()
  if (wanted.size === 0) return out
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return out
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue
    const pid = Number(e)
    if (pid <= 1 || pid === process.pid) continue
    const id = netnsIdOf(`/proc/${pid}/ns/net`)
    if (!id) continue
    const key = formatNetnsId(id)
    if (wanted.has(key)) out.set(key, [...(out.get(key) ?? []), pid])
  }
  return out
}

/**
 * The lab's mark inside each namespace it makes: the namespace's own name as
 * the alias of its lo (`ip link set lo alias NAME`, in the namespace's set-up
 * script). The kernel reuses the inode of a freed namespace for the next one
 * made, so once a namespace's name is gone its identity alone could be
 * another's; the mark says it is still the one the lab made.
 */
export function loMarkArgs(netns: string): string[] {
  return ['link', 'set', 'lo', 'up', 'alias', netns]
}

/** The alias of lo in the namespace process `pid` lives in ('' for none; undefined when it cannot be read), read-only: `nsenter --net ip link show lo`. */
export async function loAliasOf(pid: number): Promise<string | undefined> {
  const r = await run('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-j', 'link', 'show', 'dev', 'lo'], {
    timeoutMs: QUICK_CHECK_TIMEOUT_MS,
  })
  if (r.code !== 0) return undefined
  try {
    const [lo] = JSON.parse(r.stdout) as Array<{ifalias?: string}>
    return lo ? (lo.ifalias ?? '') : undefined
  } catch {
    return undefined
  }
}

/**
 * The processes living in the given namespaces now, each with its start time
 * and the name of the namespace: what `lab up` records of the processes it
 * started, so that `lab down` finds them again by PID and start time.
 */
export function processesIn(
  namespaces: ReadonlyMap<string, NetnsId>,
): Array<{pid: number; start: number; netns: string}> {
  const byId = new Map([...namespaces].map(([ns, id]) => [formatNetnsId(id), ns]))
  const out: Array<{pid: number; start: number; netns: string}> = []
  for (const [key, pids] of pidsByNetns([...namespaces.values()])) {
    for (const pid of pids) {
      const start = processStart(pid)
      if (start !== undefined) out.push({pid, start, netns: byId.get(key)!})
    }
  }
  return out.sort((a, b) => a.pid - b.pid)
}

/** When a process started (clock ticks since boot, /proc/PID/stat field 22): with the PID, it names one process, as PIDs are reused. */
export function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields[0] is field 3 (state); a zombie has finished
    if (fields[0] === 'Z') return undefined
    const start = Number(fields[19])
    return Number.isFinite(start) ? start : undefined
  } catch {
    return undefined
  }
}
