import {NetctlError} from '../errors.js'

/** Resolve after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export interface PollOptions {
  /** stop at this time (a Date.now() value): one deadline shared by several polls */
  deadline?: number
  /** stop this long after the first attempt (when no deadline is given) */
  timeoutMs?: number
  /** pause between attempts; never past the deadline */
  intervalMs: number
  /**
   * What the error says when time runs out (a NetctlError); a function is asked
   * only then, so it may read what the last attempt left. Without a reason,
   * pollUntil returns undefined instead and the caller decides.
   */
  reason?: string | (() => string | Promise<string>)
  /** stop early (returning undefined) once this is aborted */
  abort?: {readonly aborted: boolean}
}

/**
 * Call `attempt` until it returns a value (anything but undefined), pausing
 * `intervalMs` between calls. It is always called once, and once more at the
 * deadline if the pause reaches it. An error `attempt` throws ends the poll.
 */
export function pollUntil<T>(
  attempt: () => T | undefined | Promise<T | undefined>,
  opts: PollOptions & {reason: NonNullable<PollOptions['reason']>},
): Promise<T>
export function pollUntil<T>(
  attempt: () => T | undefined | Promise<T | undefined>,
  opts: PollOptions,
): Promise<T | undefined>
export async function pollUntil<T>(
  attempt: () => T | undefined | Promise<T | undefined>,
  opts: PollOptions,
): Promise<T | undefined> {
  const deadline = opts.deadline ?? Date.now() + (opts.timeoutMs ?? 0)
  for (;;) {
    const v = await attempt()
    if (v !== undefined) return v
    if (opts.abort?.aborted) return undefined
    const left = deadline - Date.now()
    if (left <= 0) {
      if (opts.reason === undefined) return undefined
      throw new NetctlError(typeof opts.reason === 'string' ? opts.reason : await opts.reason())
    }
    await sleep(Math.min(opts.intervalMs, left))
  }
}

/**
 * `p`, or `fallback` if `p` has not settled within `ms`: a wait that must not
 * hold the run (a transport that never answers, a close that hangs).
 */
export async function within<T, F>(p: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms)
  })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}
