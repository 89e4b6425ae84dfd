/** Exit codes fixed by DESIGN.md; the same with --json. */
export const ExitCode = {
  OK: 0,
  FAULT: 1,
  USAGE: 2,
  UNREACHABLE: 3,
  REFUSED: 4,
} as const
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

/** An error meant for the user: one line, and the exit code that goes with it. */
export class NetctlError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue = ExitCode.FAULT,
    readonly code = 'ERROR',
  ) {
    super(message)
    this.name = 'NetctlError'
  }
}

export class UsageError extends NetctlError {
  /** `hint: false` when the line says all there is (no "See --help" after it) */
  constructor(
    message: string,
    readonly hint = true,
  ) {
    super(message, ExitCode.USAGE, 'USAGE')
    this.name = 'UsageError'
  }
}
