import {BATCH_TIMEOUT_MS} from '../../defaults.js'
import type {Transport} from '../../transport/types.js'
import {firstLine} from '../../util/exec.js'

/**
 * Run `ip -batch` / `bridge -batch` lines on a node through its transport, as
 * one sh script. Every token of a batch line must be a plain word (names and
 * addresses from the cluster are checked, never quoted into a shell).
 */

const TOKEN = /^[A-Za-z0-9_.:/@+-]+$/

export function checkBatchLine(line: string): string {
  for (const t of line.split(' '))
    if (!TOKEN.test(t)) throw new Error(`unsafe token in batch line: ${JSON.stringify(t)}`)
  return line
}

/** Errors that mean "already gone": harmless when removing. */
const GONE =
  /No such process|Cannot find device|No such file or directory|does not exist|Cannot assign requested address/i

export function batchScript(ip: string[], bridge: string[], force: boolean): string {
  const f = force ? ' -force' : ''
  const parts = ['set -e', 'PATH=$PATH:/usr/sbin:/sbin; export PATH']
  // with -force every line runs and the script goes on, so the caller sees every error
  if (force) parts[0] = 'set +e'
  // a marker on stderr says which batch a "Command failed -:N" belongs to
  if (ip.length > 0)
    parts.push(
      `echo netctl-batch ip >&2\nip${f} -batch - <<'NETCTL_EOF'\n${ip.map(checkBatchLine).join('\n')}\nNETCTL_EOF`,
    )
  if (bridge.length > 0)
    parts.push(
      `echo netctl-batch bridge >&2\nbridge${f} -batch - <<'NETCTL_EOF'\n${bridge.map(checkBatchLine).join('\n')}\nNETCTL_EOF`,
    )
  return `${parts.join('\n')}\n`
}

/** An exit status with nothing said: above 128 the shell or a command in it was killed by a signal. */
function exitText(which: string, code: number): string {
  return `${which} -batch ended with status ${code}${code > 128 ? ' (killed by a signal)' : ''}`
}

export class BatchError extends Error {
  constructor(
    readonly node: string,
    message: string,
  ) {
    super(message)
    this.name = 'BatchError'
  }
}

/** A line the kernel refused, with its words. */
export interface RefusedLine {
  line: string
  error: string
}

/**
 * With -force each failing line prints its error, then `Command failed -:N`;
 * the `netctl-batch` markers say which batch N counts in.
 */
function refusedLines(stderr: string, ip: string[], bridge: string[]): RefusedLine[] {
  const out: RefusedLine[] = []
  let lines = ip
  let said: string[] = []
  for (const raw of stderr.split('\n')) {
    const l = raw.trim()
    if (l === 'netctl-batch ip' || l === 'netctl-batch bridge') {
      lines = l.endsWith('ip') ? ip : bridge
      said = []
      continue
    }
    const failed = /^Command failed -:(\d+)/.exec(l)
    if (failed) {
      const line = lines[Number(failed[1]) - 1]
      if (line !== undefined) out.push({line, error: said.join(' ') || 'failed'})
      said = []
    } else if (l !== '') said.push(l)
  }
  return out
}

/**
 * Run the lines; throw BatchError with the kernel's own words when they fail.
 * With `force`, errors that only say "already gone" are not failures. With
 * `refusable` (a forced switch: the lines the what-if predicts the kernel
 * refuses), every line runs and those lines may fail: their refusals are
 * returned; any other failure throws.
 */
export async function runBatch(
  node: string,
  transport: Transport,
  ip: string[],
  bridge: string[],
  opts: {force?: boolean; timeoutMs?: number; refusable?: ReadonlySet<string>} = {},
): Promise<RefusedLine[]> {
  if (ip.length === 0 && bridge.length === 0) return []
  const refusable = opts.refusable && opts.refusable.size > 0 ? opts.refusable : undefined
  const force = opts.force === true || refusable !== undefined
  const r = await transport.exec(batchScript(ip, bridge, force), {timeoutMs: opts.timeoutMs ?? BATCH_TIMEOUT_MS})
  if (r.timedOut) throw new BatchError(node, `${transport.target}: ip -batch timed out`)
  if (refusable) {
    const refused = refusedLines(r.stderr, ip, bridge)
    const unexpected = refused.find((x) => !refusable.has(x.line))
    if (unexpected)
      throw new BatchError(
        node,
        `${transport.target}: ${unexpected.error} (${ip.includes(unexpected.line) ? 'ip' : 'bridge'} -batch: ${unexpected.line})`,
      )
    if (r.code > 128)
      throw new BatchError(node, `${transport.target}: ${exitText(ip.length > 0 ? 'ip' : 'bridge', r.code)}`)
    return refused
  }
  const errors = r.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^Command failed/.test(l) && !/^netctl-batch /.test(l))
  if (force) {
    const real = errors.filter((l) => !GONE.test(l))
    if (real.length > 0) throw new BatchError(node, `${transport.target}: ${real[0]}`)
    // -force goes on past errors, not past a signal: the lines after it never ran
    if (r.code > 128)
      throw new BatchError(node, `${transport.target}: ${exitText(ip.length > 0 ? 'ip' : 'bridge', r.code)}`)
    return []
  }
  if (r.code !== 0) {
    const failed = /Command failed -:(\d+)/.exec(r.stderr)
    const which =
      r.stderr.lastIndexOf('netctl-batch bridge') > r.stderr.lastIndexOf('netctl-batch ip') ? 'bridge' : 'ip'
    const line = failed ? (which === 'ip' ? ip : bridge)[Number(failed[1]) - 1] : undefined
    const at = line ? ` (${which} -batch: ${line})` : ''
    // a batch killed by a signal says nothing: its exit status is all there is
    throw new BatchError(
      node,
      `${transport.target}: ${errors[0] || firstLine(r.stdout) || exitText(which, r.code)}${at}`,
    )
  }
  return []
}
