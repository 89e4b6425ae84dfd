/** Exit codes fixed by docs/design.md; the same with --json. */
export const ExitCode = {
  OK: 0,
  FAULT: 1,
  USAGE: 2,
  UNREACHABLE: 3,
  REFUSED: 4,
} as const
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

/**
 * The one table of how a run can end badly: each class of error, the exit code
 * it ends with (text or --json alike), the JSON error code it carries unless
 * the error names a more precise one, and when it applies. The README's "Exit
 * codes" section is this table; test/commands/exit-codes.test.ts runs a command
 * for every row.
 */
export const ERROR_CLASSES = {
  fault: {
    exit: ExitCode.FAULT,
    code: 'FAULT',
    when: 'a diagnosis found a fault: a trace not delivered, an error finding, backend drift, a lab pair that does not ping',
  },
  failed: {
    exit: ExitCode.FAULT,
    code: 'ERROR',
    when: 'a step failed on the way (the kernel refused part of lab up, a rollout timed out) or netctl itself failed',
  },
  usage: {
    exit: ExitCode.USAGE,
    code: 'USAGE',
    when: 'what was asked is wrong: an unknown command, flag or argument, a pod or node not in the cluster, a file that is not what it should be (inventory, snapshot, kubeconfig), a lab name already taken, a trace between IPv4 and IPv6',
  },
  environment: {
    exit: ExitCode.USAGE,
    code: 'ENVIRONMENT',
    when: 'this machine cannot do what was asked: not root, a program missing, an output file that cannot be written',
  },
  unreachable: {
    exit: ExitCode.UNREACHABLE,
    code: 'UNREACHABLE',
    when: 'the cluster or a node could not be reached or read: no answer, a refused login, a changed or unknown host key',
  },
  refused: {
    exit: ExitCode.REFUSED,
    code: 'REFUSED',
    when: 'a change was refused by preflight, declined, or rolled back',
  },
} as const satisfies Record<string, {exit: ExitCodeValue; code: string; when: string}>
export type ErrorClass = keyof typeof ERROR_CLASSES

/** How a run ended: ok, or the row of the table its result falls in (a fault found, a node not read, a change refused). */
export type Outcome = 'ok' | ErrorClass

/** The exit code of an outcome: 0, or its row's. */
export function exitOf(outcome: Outcome): ExitCodeValue {
  return outcome === 'ok' ? ExitCode.OK : ERROR_CLASSES[outcome].exit
}

/** An outcome and, when it is not ok, one line saying why (for stderr, text output only). */
export interface Verdict {
  outcome: Outcome
  why?: string | undefined
}

/**
 * What a command's run() returns: the data (printed as any result, and with
 * --json as the JSON) and the verdict on it. BaseCommand turns the outcome
 * into the exit code through the table above, as it does a thrown error.
 */
export class Ending<T = unknown> {
  readonly outcome: Outcome
  readonly why: string | undefined
  constructor(
    readonly json: T,
    verdict: Verdict = {outcome: 'ok'},
  ) {
    this.outcome = verdict.outcome
    this.why = verdict.why
  }

  get exit(): ExitCodeValue {
    return exitOf(this.outcome)
  }
}

/** An error meant for the user: one line, and the class (so the exit code) that goes with it. */
export class NetctlError extends Error {
  readonly code: string
  constructor(
    message: string,
    readonly errorClass: ErrorClass = 'failed',
    /** a more precise JSON error code than the class's own */
    code?: string,
  ) {
    super(message)
    this.name = 'NetctlError'
    this.code = code ?? ERROR_CLASSES[errorClass].code
  }

  get exitCode(): ExitCodeValue {
    return ERROR_CLASSES[this.errorClass].exit
  }
}

export class UsageError extends NetctlError {
  /** `hint: false` when the line says all there is (no "See --help" after it) */
  constructor(
    message: string,
    readonly hint = true,
  ) {
    super(message, 'usage')
    this.name = 'UsageError'
  }
}

/** This machine lacks what the command needs (root, a program, a writable path): exit 2, JSON code ENVIRONMENT. */
export class EnvironmentError extends NetctlError {
  constructor(message: string, code?: string) {
    super(message, 'environment', code)
    this.name = 'EnvironmentError'
  }
}

/** System calls that fail because of this machine, not the cluster nor a bug: a path missing or not writable, no permission, a full disk. */
const ENVIRONMENT_ERRNO = new Set([
  'ENOENT',
  'ENOTDIR',
  'EISDIR',
  'EACCES',
  'EPERM',
  'EROFS',
  'ENOSPC',
  'EDQUOT',
  'EMFILE',
  'ENFILE',
])

/** Transport refusals (src/transport TransportError.reason): a broken ssh config is the user's; every other reason means the node was not reached. */
const TRANSPORT_USAGE_REASONS = new Set(['config'])

/**
 * The row of the table any error thrown out of a command belongs to, and its JSON code.
 * NetctlError says its class; oclif's flag and argument errors are usage; a
 * TransportError that escapes is unreachable (its config reason: usage); a
 * failed system call on a local path is environment; anything else failed.
 */
export function classify(err: unknown): {errorClass: ErrorClass; code: string; exit: ExitCodeValue} {
  const of = (errorClass: ErrorClass, code: string = ERROR_CLASSES[errorClass].code) => ({
    errorClass,
    code,
    exit: ERROR_CLASSES[errorClass].exit,
  })
  if (err instanceof NetctlError) return of(err.errorClass, err.code)
  const e = err as
    {name?: string; reason?: string; code?: unknown; syscall?: unknown; parse?: unknown; oclif?: unknown} | undefined
  if (e?.parse !== undefined && e?.oclif !== undefined) return of('usage')
  if (e?.name === 'TransportError') return of(TRANSPORT_USAGE_REASONS.has(String(e.reason)) ? 'usage' : 'unreachable')
  if (typeof e?.syscall === 'string' && typeof e.code === 'string' && ENVIRONMENT_ERRNO.has(e.code))
    return of('environment')
  return of('failed')
}
