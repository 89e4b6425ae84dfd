/**
 * The lab's own responder (src/lab/responder.ts, built) as a test's listener in a pod: it answers
 * every connection to its TCP ports and every datagram to its UDP ports with the name it was given,
 * however many arrive together, so an answer that does not come is the network's doing (a policy's
 * drop), never the listener's. socat's fork mode, which the policy tests listened with before, loses
 * answers (docs/lab.md, "The lab's Services").
 *
 * Each responder is a child of the test's process: `ip netns exec` execs setpriv, which execs Node,
 * so the child's PID is the responder's. It is stopped through its ChildProcess handle, by that PID
 * and only while Node has not reaped it (so never a PID since given to another process), in the
 * suite's afterAll, which runs also when a test or the set-up failed; its parent-death signal is
 * SIGTERM, so it does not outlive the test's process either when that dies without its afterAll.
 * `lab down` would stop it too (it stops every process in the lab's namespaces).
 */
import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import path from 'node:path'

import {afterAll} from 'vitest'

import type {ResponderPort} from '../../src/lab/responder.js'
import {sleep} from '../../src/util/wait.js'
import {REPO} from './cli.js'
import {nsExec} from './lab.js'

export type {ResponderPort} from '../../src/lab/responder.js'

export const RESPONDER = path.join(REPO, 'dist/src/lab/responder.js')

/** How long a responder may take to listen on its ports (Node starting on a loaded machine). */
const READY_MS = 10_000
/** How long a responder has to leave on SIGTERM before SIGKILL. */
const STOP_MS = 3000

interface Started {
  child: ChildProcess
  /** resolves once the process has exited and Node has reaped it */
  exited: Promise<void>
  stderr: () => string
}

const running = (s: Started): boolean => s.child.exitCode === null && s.child.signalCode === null

/** Whether `ss -Hltunp` (in the responder's namespace) shows every port listened on by that PID. */
export function listensOn(ss: string, pid: number, ports: readonly ResponderPort[]): boolean {
  const sockets = ss
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 7 && f.slice(6).join(' ').includes(`pid=${pid},`))
    .map((f) => `${f[0]} ${f[4]!.replace(/^.*:/, '')}`)
  return ports.every((p) => sockets.includes(`${p.protocol} ${p.port}`))
}

async function stop(s: Started): Promise<void> {
  if (!running(s)) return
  s.child.kill('SIGTERM')
  if (await Promise.race([s.exited.then(() => true), sleep(STOP_MS).then(() => false)])) return
  s.child.kill('SIGKILL')
  await s.exited
}

export interface Responders {
  /**
   * Start one responder in `netns` answering `name` on `ports`; resolves with its PID once it
   * listens on every one of them, rejects (the responder stopped) when it cannot.
   */
  start(netns: string, name: string, ports: readonly ResponderPort[]): Promise<number>
}

/**
 * Responders for the tests of a describe block (call it in the block, after useLab): every one
 * started is stopped after the block's tests, also when one of them or the set-up failed.
 */
export function useResponders(): Responders {
  const started: Started[] = []
  let stopped = false
  afterAll(async () => {
    stopped = true
    await Promise.all(started.map(stop))
  })
  return {
    async start(netns, name, ports) {
      if (!existsSync(RESPONDER)) throw new Error(`${RESPONDER} is missing: run 'npm run build'`)
      if (stopped) throw new Error('the responders of this block have been stopped')
      const argv = [
        'netns',
        'exec',
        netns,
        'setpriv',
        '--pdeathsig',
        'TERM',
        process.execPath,
        RESPONDER,
        name,
        ...ports.map((p) => `${p.port}/${p.protocol}`),
      ]
      const child = spawn('ip', argv, {stdio: ['ignore', 'ignore', 'pipe']})
      const err: Buffer[] = []
      child.stderr!.on('data', (b: Buffer) => err.push(b))
      const s: Started = {
        child,
        exited: new Promise((resolve) => {
          child.once('exit', () => resolve())
          // a spawn that failed emits no exit
          child.once('error', () => resolve())
        }),
        stderr: () => Buffer.concat(err).toString('utf8').trim(),
      }
      started.push(s)
      const what = `the responder ${name} in ${netns} (${argv.slice(-ports.length).join(' ')})`
      const deadline = Date.now() + READY_MS
      for (;;) {
        if (!running(s) || child.pid === undefined)
          throw new Error(`${what} exited before it listened: ${s.stderr() || `exit ${child.exitCode}`}`)
        const ss = await nsExec(netns, ['ss', '-Hltunp'])
        if (listensOn(ss.stdout, child.pid, ports)) return child.pid
        if (Date.now() > deadline) {
          await stop(s)
          throw new Error(`${what} is not listening after ${READY_MS / 1000} s: ${s.stderr()}\n${ss.stdout}`)
        }
        await sleep(50)
      }
    },
  }
}
