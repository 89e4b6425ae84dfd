import {existsSync} from 'node:fs'

import {spawnCollect} from '../util/exec.js'
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
    if (!existsSync(`${NETNS_RUN_DIR}/${this.netns}`))
      throw new TransportError('no such network namespace', 'unreachable')
    try {
      const how = {
        ...(opts.stdin !== undefined ? {input: opts.stdin} : {}),
        ...(opts.timeoutMs !== undefined ? {timeoutMs: opts.timeoutMs} : {}),
        group: true,
      }
      return await spawnCollect('ip', ['netns', 'exec', this.netns, 'sh', '-c', script, 'netctl-probe'], how)
    } catch (error) {
      const e = error as NodeJS.ErrnoException
      throw new TransportError(
        e.code === 'ENOENT' ? 'cannot run ip: not installed' : `cannot run ip: ${e.message}`,
        'config',
      )
    }
  }

  async close(): Promise<void> {
    /* nothing is held open between calls */
  }
}
