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
}

/** Run a program without a shell (argv is passed as is) and collect its output. */
export function run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env})
    const out: Buffer[] = []
    const err: Buffer[] = []
    let timedOut = false
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true
            child.kill('SIGKILL')
          }, opts.timeoutMs)
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer)
      resolve({stdout: '', stderr: e.code === 'ENOENT' ? `${cmd}: command not found` : e.message, code: 127})
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
  return s.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? ''
}

/** Map over items with at most `limit` promises in flight; results keep input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
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
