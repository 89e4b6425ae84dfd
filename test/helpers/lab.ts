import {afterAll, beforeAll, describe} from 'vitest'

import {run} from '../../src/util/exec.js'
import {netctl, netctlJson} from './cli.js'

/**
 * Lab tests need root (they create network namespaces). In CI (CI=true, root)
 * they always run; elsewhere they are skipped with a printed reason.
 */
export function labSkipReason(): string | undefined {
  const root = typeof process.getuid === 'function' && process.getuid() === 0
  if (root) return undefined
  if (process.env.CI) throw new Error('lab tests must run in CI, and CI must run as root')
  return 'lab tests need root (they create network namespaces); run the suite with sudo to include them'
}

export const describeLab = (name: string, fn: () => void): void => {
  const reason = labSkipReason()
  if (reason) {
    console.log(`skipping "${name}": ${reason}`)
    describe.skip(name, fn)
  } else {
    describe(name, fn)
  }
}

let counter = 0
/**
 * A lab name unique to this run and this test file: parallel runs never
 * collide. NETCTL_TEST_LAB_PREFIX goes in front (a developer's own prefix on a shared machine).
 * `maxLength`: what the name may take (a command that makes labs NAME-<something> needs room
 * for the suffix). The prefix says whose the lab is and the tag makes it unique, so the test's
 * word gives way first.
 */
export function uniqueLabName(word: string, maxLength = 24): string {
  counter += 1
  const prefix = process.env.NETCTL_TEST_LAB_PREFIX ?? ''
  const tag = `${process.pid.toString(36)}${Date.now().toString(36).slice(-3)}${counter}`
  const room = maxLength - prefix.length - tag.length - 1
  const name = (room > 0 ? `${prefix}${word.slice(0, room)}-${tag}` : `${prefix}${tag}`).replace(/-+/g, '-')
  if (name.length > maxLength)
    throw new Error(
      `NETCTL_TEST_LAB_PREFIX '${prefix}' leaves no room for a unique lab name of ${maxLength} characters`,
    )
  return name
}

export interface LabUp {
  name: string
  backend: string
  topology: string
  inventory: string
  stateDir: string
  nodes: Array<{
    name: string
    netns: string
    ip: string
    podCIDR: string
    vtepMAC: string
    subnet: string
    routeReflector?: boolean
  }>
  pods: Array<{name: string; namespace: string; node: string; netns: string; ip: string}>
  warnings: string[]
}

/**
 * Bring a lab up before the tests of a describe block and always take it down
 * after them, also when a test or the set-up itself fails.
 */
export function useLab(prefix: string, args: string[]): {get: () => LabUp} {
  const name = uniqueLabName(prefix)
  let lab: LabUp | undefined
  beforeAll(async () => {
    const r = await netctlJson<LabUp>(['lab', 'up', '--name', name, ...args])
    if (r.code !== 0) throw new Error(`lab up ${name} failed (exit ${r.code}): ${JSON.stringify(r.json)} ${r.stderr}`)
    lab = r.json
  })
  afterAll(async () => {
    await netctl(['lab', 'down', '--name', name])
  })
  return {
    get: () => {
      if (!lab) throw new Error(`lab ${name} is not up`)
      return lab
    },
  }
}

/** A lab's first two nodes and a pod on each: the pair most lab tests send between. */
export function twoNodePods(l: LabUp): {
  n1: LabUp['nodes'][number]
  n2: LabUp['nodes'][number]
  p1: LabUp['pods'][number]
  p2: LabUp['pods'][number]
} {
  const [n1, n2] = l.nodes
  if (!n1 || !n2) throw new Error(`lab ${l.name} has fewer than two nodes`)
  const on = (n: {name: string}) => {
    const p = l.pods.find((x) => x.node === n.name)
    if (!p) throw new Error(`lab ${l.name} has no pod on ${n.name}`)
    return p
  }
  return {n1, n2, p1: on(n1), p2: on(n2)}
}

/** Run a command inside a namespace. */
export function nsExec(netns: string, argv: string[], timeoutMs = 15_000) {
  return run('ip', ['netns', 'exec', netns, ...argv], {timeoutMs})
}

/** Run a command inside a namespace as an operator would, failing loudly: its stdout, or an error naming it. */
export async function nsRun(netns: string, ...argv: string[]): Promise<string> {
  const r = await nsExec(netns, argv)
  if (r.code !== 0) throw new Error(`${argv.join(' ')} in ${netns}: ${r.stderr.trim()}`)
  return r.stdout
}

/** One ping from a namespace; true when a reply came back. */
export async function ping(netns: string, ip: string, timeoutSec = 2): Promise<boolean> {
  const r = await nsExec(netns, ['ping', '-n', '-q', '-c', '1', '-W', String(timeoutSec), ip], (timeoutSec + 5) * 1000)
  return r.code === 0
}

/** `ip -j ...` inside a namespace, parsed. */
export async function ipJson<T = any>(netns: string, args: string[]): Promise<T> {
  const r = await run('ip', ['-n', netns, '-j', ...args])
  if (r.code !== 0) throw new Error(`ip -n ${netns} -j ${args.join(' ')}: ${r.stderr}`)
  return JSON.parse(r.stdout || '[]') as T
}
