import {spawn} from 'node:child_process'

import {NetctlError} from '../errors.js'

export interface ExecResult {
  stdout: string
  stderr: string
  code: number
  /** Set when the process was killed because it ran past its timeout. */
  timedOut?: boolean
}

export interface ExecOptions {
  input?: string
  timeoutMs?: number
  env?: NodeJS.ProcessEnv
  /**
   * Run in a process group of its own and kill the whole group on timeout, so
   * a stuck grandchild (a tool a script started) cannot hold the output pipe
   * open: the caller gets what was printed so far, at once.
   */
  group?: boolean
}

/**
 * Spawn a program without a shell (argv is passed as is), feed it its input,
 * collect its output, and kill it (or its group) with SIGKILL if it runs past
 * its timeout. Rejects with the spawn error when the program cannot start.
 */
export function spawnCollect(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      ...(opts.group ? {detached: true} : {}),
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let timedOut = false
    const kill = (): void => {
      if (!opts.group) {
        child.kill('SIGKILL')
        return
      }
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
            kill()
          }, opts.timeoutMs)
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        code: code ?? (signal ? 128 + 9 : 1),
        ...(timedOut ? {timedOut} : {}),
      })
    })
    child.stdin.on('error', () => {
      /* the program may exit before reading its input */
    })
    child.stdin.end(opts.input ?? '')
  })
}

/** Run a program without a shell and collect its output; one that cannot start ends with code 127, as in a shell. */
export async function run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  try {
    return await spawnCollect(cmd, args, opts)
  } catch (error) {
    const e = error as NodeJS.ErrnoException
    return {stdout: '', stderr: e.code === 'ENOENT' ? `${cmd}: command not found` : e.message, code: 127}
  }
}

/** Like run(), but a non-zero exit becomes a NetctlError naming what failed. */
export async function runOk(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) {
    const why = firstLine(r.stderr) || firstLine(r.stdout) || `exit code ${r.code}`
    throw new NetctlError(`${[cmd, ...args].join(' ').slice(0, 120)}: ${r.timedOut ? 'timed out' : why}`)
  }
  return r
}

export function firstLine(s: string): string {
  return (
    s
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '') ?? ''
  )
}

/** Map over items with at most `limit` promises in flight; results keep input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i] as T, i)
    }
  }
  await Promise.all(Array.from({length: Math.max(1, Math.min(limit, items.length))}, worker))
  return results
}
