import {writeFile} from 'node:fs/promises'

import {NetctlError} from '../errors.js'
import {type ExecResult, firstLine, run} from '../util/exec.js'
import type {NsScript} from './script.js'

/** Names of all network namespaces on this machine (`ip netns list`). */
export async function listNetns(): Promise<string[]> {
  const r = await run('ip', ['-j', 'netns', 'list'])
  if (r.code !== 0 || r.stdout.trim() === '') return []
  try {
    return (JSON.parse(r.stdout) as Array<{name: string}>).map((n) => n.name)
  } catch {
    return r.stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean)
  }
}

export async function addNetns(name: string): Promise<void> {
  const r = await run('ip', ['netns', 'add', name])
  if (r.code !== 0) throw new NetctlError(`cannot create network namespace ${name}: ${firstLine(r.stderr)}`)
}

/** Run argv inside a namespace. */
export function execIn(netns: string, argv: string[], opts: {input?: string; timeoutMs?: number} = {}): Promise<ExecResult> {
  return run('ip', ['netns', 'exec', netns, ...argv], opts)
}

/**
 * Write the script beside the lab's other files (a record of exactly what was
 * done) and run it in the namespace. Returns the warnings it printed.
 */
export async function runScript(netns: string, script: NsScript, file: string, what: string): Promise<string[]> {
  const text = script.toString()
  await writeFile(file, text, {mode: 0o644})
  const r = await execIn(netns, ['sh', '-e', file], {timeoutMs: 120_000})
  if (r.code !== 0) {
    const why = firstLine(r.stderr.split('\n').filter((l) => !/^Command failed/.test(l)).join('\n')) || `exit ${r.code}`
    throw new NetctlError(`${what} failed in ${netns}: ${why} (script: ${file})`)
  }
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('netctl-warning: '))
    .map((l) => l.slice('netctl-warning: '.length).trim())
}

/** PIDs of processes whose network namespace is `netns` (`ip netns pids`). */
export async function netnsPids(netns: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', netns])
  if (r.code !== 0) return []
  return r.stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((p) => Number.isInteger(p) && p > 1 && p !== process.pid)
}
