import {existsSync} from 'node:fs'

import {run} from '../util/exec.js'
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
    const r = await run('ip', ['netns', 'exec', this.netns, 'sh', '-c', script, 'netctl-probe'], {
      ...(opts.timeoutMs === undefined ? {} : {timeoutMs: opts.timeoutMs}),
      ...(opts.stdin === undefined ? {} : {input: opts.stdin}),
    })
    if (r.code === 127 && /command not found/.test(r.stderr)) throw new TransportError(`cannot run ip: ${r.stderr.trim()}`, 'config')
    return {stdout: r.stdout, stderr: r.stderr, code: r.code, ...(r.timedOut ? {timedOut: true} : {})}
  }

  async close(): Promise<void> {
    /* nothing is held open between calls */
  }
}
