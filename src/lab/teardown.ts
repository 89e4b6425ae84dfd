import {existsSync} from 'node:fs'
import {rm} from 'node:fs/promises'
import path from 'node:path'

import {NetctlError} from '../errors.js'
import {mapLimit, run} from '../util/exec.js'
import {pollUntil} from '../util/wait.js'
import {
  formatNetnsId,
  hostNetnsIds,
  loAliasOf,
  pidsByNetns,
  printableNetns,
  processStart,
  sameNetns,
} from './netns-setup.js'
import {loadRecord, presentNetns} from './state.js'
import {defaultStateRoot, netnsPrefix, validateLabName} from './topology.js'
import type {LabRecord, NetnsId} from './types.js'

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

/** A namespace name of a lab, judged: whether it is the lab's to remove, and if not, why. */
export interface NetnsVerdict {
  ns: string
  /** the namespace behind the name now (absent: the name vanished, or is not a namespace) */
  id?: NetnsId
  /** why lab down will not touch it; absent when it may */
  refused?: string
}

export interface HostNetns {
  root?: NetnsId
  own?: NetnsId
}

/**
 * Whether each of a lab's namespace names is the lab's to remove. A name under
 * /run/netns can point at any namespace, the machine's own included, so the
 * name proves nothing: a namespace is the lab's when its identity is the one
 * the lab recorded when it made it. A name the record does not know (no
 * record, a record of an older netctl, or an `up` killed between making a
 * namespace and writing it down) may go only while no process lives in it,
 * since removing an empty namespace's name signals nobody. Never the
 * machine's namespace or netctl's own, whatever the record says. `marks`
 * holds the lo alias of each namespace with processes in it (loMarkArgs).
 */
export function judgeLabNetns(
  lab: string,
  record: Pick<LabRecord, 'netnsIds'> | undefined,
  names: ReadonlyMap<string, NetnsId | undefined>,
  pids: ReadonlyMap<string, number[]>,
  host: HostNetns,
  marks: ReadonlyMap<string, string | undefined> = new Map(),
): NetnsVerdict[] {
  return [...names].map(([ns, id]): NetnsVerdict => {
    if (!id) return {ns}
    const v = (refused: string): NetnsVerdict => ({ns, id, refused})
    if (sameNetns(id, host.root)) return v("is the machine's own (root) network namespace")
    if (sameNetns(id, host.own)) return v('is the network namespace netctl itself runs in')
    const recorded = record?.netnsIds?.[ns]
    const inside = pids.get(formatNetnsId(id)) ?? []
    if (recorded) {
      if (!sameNetns(recorded, id))
        return v(
          `is not the namespace lab ${lab} made (it is ${formatNetnsId(id)}, the lab made ${formatNetnsId(recorded)})`,
        )
      // the inode of a freed namespace goes to the next one made: where processes are to be signalled, the lab's mark must be there too
      if (inside.length > 0) {
        const mark = marks.get(formatNetnsId(id))
        if (mark === undefined)
          return v(`has the inode lab ${lab} recorded, but its lo could not be read to check the lab's mark (nsenter)`)
        if (mark !== ns)
          return v(
            `has the inode lab ${lab} recorded but not its mark (lo alias ${JSON.stringify(mark)}): another namespace has that inode now`,
          )
      }
      return {ns, id}
    }
    return inside.length
      ? v(
          `is not recorded as made by lab ${lab}, and ${inside.length} process${inside.length === 1 ? '' : 'es'} live${inside.length === 1 ? 's' : ''} in it`,
        )
      : {ns, id}
  })
}

/** The record of a lab, or undefined when it has none (or none that can be read): then no namespace is known to be its. */
async function recordIfAny(name: string, stateRoot: string): Promise<LabRecord | undefined> {
  try {
    return await loadRecord(name, stateRoot)
  } catch {
    return undefined
  }
}

/**
 * The processes `lab up` recorded that are still those processes (same PID,
 * same start time) and still live in the namespace they were started in, as
 * its mark (the lo alias) says. A namespace's name can be deleted and the
 * identity the lab recorded for it handed to another namespace; a process
 * the lab started is the lab's wherever its namespace's name went.
 */
async function startedByLab(record: Pick<LabRecord, 'processes'> | undefined): Promise<number[]> {
  const same = (record?.processes ?? []).filter((p) => p.pid !== process.pid && processStart(p.pid) === p.start)
  const marked = await mapLimit(same, 8, async (p) => ((await loAliasOf(p.pid)) === p.netns ? p.pid : undefined))
  return marked.filter((pid): pid is number => pid !== undefined)
}

/** The namespace names of lab NAME now, and what stands behind each. */
export function labNames(
  name: string,
  present: ReadonlyMap<string, NetnsId | undefined>,
): Map<string, NetnsId | undefined> {
  const prefix = netnsPrefix(name)
  return new Map([...present].filter(([ns]) => ns.startsWith(prefix)))
}

/**
 * Remove everything lab NAME made, trusting neither names nor what it wrote
 * down alone: every namespace whose name starts with `NAME.` and is the
 * namespace the lab recorded when it made it (judgeLabNetns), every process
 * living in one of them (whatever started it) or in a namespace the lab made
 * whose name has since been deleted (found by its identity, and still
 * carrying the lab's mark on its lo: see loMarkArgs), then the state
 * directory. When any name of the lab points at a namespace that is not the
 * lab's, nothing is changed and the teardown is refused (exit 4). Safe to run
 * after a half-failed `up`, and twice.
 */
export async function teardownLab(name: string, stateRoot = defaultStateRoot()): Promise<TeardownResult> {
  validateLabName(name)
  const record = await recordIfAny(name, stateRoot)
  const present = await presentNetns()
  const names = labNames(name, present)
  const host = hostNetnsIds()
  // the lab's own namespaces whose name is gone still hold its processes as long as any live there
  const nameless = Object.entries(record?.netnsIds ?? {}).filter(
    ([ns, id]) => !present.has(ns) && !sameNetns(id, host.root) && !sameNetns(id, host.own),
  )
  const pids = pidsByNetns([
    ...[...names.values()].filter((id): id is NetnsId => id !== undefined),
    ...nameless.map(([, id]) => id),
  ])
  // ...but the kernel gives a freed namespace's inode to the next one made: a namespace is the lab's only while it carries the lab's mark
  const markOf = async (inside: number[]): Promise<string | undefined> => {
    // through any process still living there: the first may have just exited
    for (const pid of inside.slice(0, 3)) {
      const mark = await loAliasOf(pid)
      if (mark !== undefined) return mark
    }
    return undefined
  }
  const marks = new Map(await mapLimit([...pids], 8, async ([key, inside]) => [key, await markOf(inside)] as const))
  const held = nameless
    .filter(([ns, id]) => (pids.get(formatNetnsId(id))?.length ?? 0) > 0 && marks.get(formatNetnsId(id)) === ns)
    .map(([, id]) => id)
  // the processes lab up started, still the same processes (PID and start time) and still in a namespace with the lab's mark
  const started = await startedByLab(record)
  const verdicts = judgeLabNetns(name, record, names, pids, host, marks)
  const refused = verdicts.filter((v) => v.refused)
  if (refused.length > 0) {
    const [first] = refused
    const more = refused.length > 1 ? ` (and ${refused.length - 1} more)` : ''
    throw new NetctlError(
      `refusing to remove lab ${name}: ${printableNetns(first!.ns)} ${first!.refused}${more}; nothing was changed`,
      'refused',
      'REFUSED',
    )
  }
  const namespaces = verdicts.map((v) => v.ns)
  const ids = [...verdicts.flatMap((v) => (v.id ? [v.id] : [])), ...held]
  const processes = [...new Set([...ids.flatMap((id) => pids.get(formatNetnsId(id)) ?? []), ...started])]
  for (const pid of processes) {
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      /* already gone */
    }
  }
  // 3 s to leave on SIGTERM, then SIGKILL
  await pollUntil(() => (processes.some(alive) ? undefined : true), {timeoutMs: 3000, intervalMs: 100})
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
