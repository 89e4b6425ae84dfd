import os from 'node:os'

/**
 * One signal policy for the whole process. Whatever must be undone when netctl
 * is interrupted — a backend switch to roll back, debug pods to delete,
 * ProxyCommands to end, a temporary file, a bench's labs — is pushed here when
 * it comes to exist and released when it is let go on the normal path.
 *
 * The first SIGINT, SIGTERM or SIGHUP runs what is held, newest first, each to
 * its end before the next: a switch pushed after the debug pods it works
 * through rolls back while they are still there. A second signal says on
 * stderr what is still running; a third exits at once (exit hooks still run).
 * With nothing held no listener is installed, so a signal does what it always
 * does.
 *
 * Once everything has run the process ends as its cleanups ask: by default it
 * dies of the signal, as it would have without them (a shell sees 130 / 143);
 * `exit` ends it with the status 128 + signal instead; `resume` lets the work
 * that was interrupted end on its own path (a switch reports its rollback).
 */

/** How the process ends once the stack has run: resume wins over exit, exit over dying. */
export type CleanupEnding = 'die' | 'exit' | 'resume'

export interface CleanupOptions {
  ending?: CleanupEnding
}

/** A held cleanup; release() when what it undoes was let go on the normal path. */
export interface CleanupHandle {
  release(): void
}

/** The part of `process` the stack uses: tests give it a fake. */
export interface SignalProcess {
  readonly pid: number
  on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown
  off(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown
  kill(pid: number, signal: NodeJS.Signals): unknown
  exit(code: number): never | void
  warn(line: string): void
}

export const CLEANUP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/** The exit status a shell reports for a death by `signal`. */
export function signalStatus(signal: NodeJS.Signals): number {
  return 128 + (os.constants.signals[signal] ?? 0)
}

interface Entry {
  what: () => string
  run: (signal: NodeJS.Signals) => void | Promise<void>
  ending: CleanupEnding
}

const RANK: Record<CleanupEnding, number> = {die: 0, exit: 1, resume: 2}

export class CleanupStack {
  private readonly entries: Entry[] = []
  private listening = false
  private signals = 0
  private running?: Entry
  private readonly listener = (signal: NodeJS.Signals): void => this.signal(signal)

  constructor(private readonly proc: SignalProcess) {}

  /**
   * Hold `run` until released; `what` says what it does ("deleting 3 debug
   * pods"), read when it is said, so it may change as the held thing does.
   */
  push(
    what: string | (() => string),
    run: (signal: NodeJS.Signals) => void | Promise<void>,
    opts: CleanupOptions = {},
  ): CleanupHandle {
    const entry: Entry = {what: typeof what === 'string' ? () => what : what, run, ending: opts.ending ?? 'die'}
    this.entries.push(entry)
    this.listen()
    return {
      release: () => {
        const i = this.entries.indexOf(entry)
        if (i >= 0) this.entries.splice(i, 1)
        this.unlistenWhenIdle()
      },
    }
  }

  /** What would run (or still runs), in the order it would: newest first. */
  held(): string[] {
    return [...(this.running ? [this.running] : []), ...[...this.entries].reverse()].map((e) => e.what())
  }

  /** A signal arrived (the listener; tests call it directly). */
  signal(signal: NodeJS.Signals): void {
    this.signals++
    if (this.signals === 1) {
      void this.unwind(signal)
      return
    }
    const held = this.held()
    if (this.signals === 2) {
      this.proc.warn(
        `netctl: ${signal} again: still ${held.length > 0 ? held.join('; then ') : 'finishing'}; once more to exit at once`,
      )
      return
    }
    this.proc.warn(
      `netctl: ${signal} a third time: exiting now${held.length > 0 ? `, not finished: ${held.join('; ')}` : ''}`,
    )
    this.proc.exit(signalStatus(signal))
  }

  private async unwind(signal: NodeJS.Signals): Promise<void> {
    let ending: CleanupEnding = 'die'
    // popped one at a time: a cleanup pushed while another runs (a pod made for a rollback) is run too
    for (let entry = this.entries.pop(); entry; entry = this.entries.pop()) {
      if (RANK[entry.ending] > RANK[ending]) ending = entry.ending
      this.running = entry
      try {
        await entry.run(signal)
      } catch (error) {
        this.proc.warn(`netctl: ${entry.what()}: ${String((error as Error)?.message ?? error).split('\n')[0]}`)
      }
      this.running = undefined
    }
    // resume: the interrupted work ends the process; the listeners stay, so that more signals are still counted
    if (ending === 'resume') return
    if (ending === 'exit') {
      this.proc.exit(signalStatus(signal))
      return
    }
    this.stopListening()
    this.proc.kill(this.proc.pid, signal)
  }

  private listen(): void {
    if (this.listening) return
    this.listening = true
    for (const s of CLEANUP_SIGNALS) this.proc.on(s, this.listener)
  }

  private unlistenWhenIdle(): void {
    // once a signal came, every further one is the stack's to count
    if (this.entries.length === 0 && this.signals === 0) this.stopListening()
  }

  private stopListening(): void {
    if (!this.listening) return
    this.listening = false
    for (const s of CLEANUP_SIGNALS) this.proc.off(s, this.listener)
  }
}

/** The process's one stack. */
export const cleanups = new CleanupStack({
  pid: process.pid,
  on: (s, l) => process.on(s, l),
  off: (s, l) => process.off(s, l),
  kill: (pid, s) => {
    process.kill(pid, s)
    // a listener outside this policy would keep the process alive: end it as the signal would have
    setTimeout(() => process.exit(signalStatus(s)), 1000).unref()
  },
  exit: (code) => process.exit(code),
  warn: (line) => void process.stderr.write(`${line}\n`),
})

/** Hold a cleanup on the process's stack until released. */
export function onInterrupt(
  what: string | (() => string),
  run: (signal: NodeJS.Signals) => void | Promise<void>,
  opts: CleanupOptions = {},
): CleanupHandle {
  return cleanups.push(what, run, opts)
}
