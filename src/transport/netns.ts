import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'

import {type ExecOptions, type Transport, TransportError, type TransportResult} from './types.js'

/** Where `ip netns` keeps named namespaces. */
export const NETNS_RUN_DIR = '/run/netns'

/** A netns name `ip netns exec` can take: no path separator, not `.` or `..`, no NUL. */
export function validNetnsName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0')
}

/**
 * A lab node: the script runs as `ip netns exec NETNS sh -c SCRIPT`, with argv
 * handed to the kernel as is (no shell in between), so the script is data.
 * `ip netns exec` also remounts /sys for the namespace, so /sys/class/net shows
 * the node's own devices.
 */
export class NetnsTransport implements Transport {
  readonly target: string

  constructor(readonly netns: string) {
    this.target = `netns ${netns}`
  }

  async exec(script: string, opts: ExecOptions = {}): Promise<TransportResult> {
    // messages follow the target ("netns NAME: ..."), so they do not repeat the name
    if (!validNetnsName(this.netns)) throw new TransportError('not a valid network namespace name', 'config')
    if (!existsSync(`${NETNS_RUN_DIR}/${this.netns}`)) throw new TransportError('no such network namespace', 'unreachable')
    return runGroup('ip', ['netns', 'exec', this.netns, 'sh', '-c', script, 'netctl-probe'], opts)
  }

  async close(): Promise<void> {
    /* nothing is held open between calls */
  }
}

/**
 * Run a program in a process group of its own. On timeout the whole group is
 * killed, so a stuck grandchild (a tool the script started) cannot hold the
 * output pipe open: the caller gets what was printed so far, at once.
 */
function runGroup(cmd: string, args: string[], opts: ExecOptions): Promise<TransportResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {stdio: ['pipe', 'pipe', 'pipe'], detached: true})
    const out: Buffer[] = []
    const err: Buffer[] = []
    let timedOut = false
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
      } catch {
        /* already gone */
      }
    }
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true
            killGroup()
          }, opts.timeoutMs)
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer)
      reject(new TransportError(e.code === 'ENOENT' ? `cannot run ${cmd}: not installed` : `cannot run ${cmd}: ${e.message}`, 'config'))
    })
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        code: code ?? (signal ? 128 + 9 : 1),
        ...(timedOut ? {timedOut: true} : {}),
      })
    })
    child.stdin.on('error', () => {
      /* the script may exit before reading its input */
    })
    child.stdin.end(opts.stdin ?? '')
  })
}
