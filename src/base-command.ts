import {Command, Errors, Flags, Interfaces} from '@oclif/core'

import {ExitCode, NetctlError, UsageError} from './errors.js'
import {firstLine} from './util/exec.js'

type FlagMap = {[name: string]: any} // oclif's own FlagOutput shape, not exported

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>

/**
 * Every netctl command: errors become one line (or a JSON error object with
 * --json) and the exit code DESIGN.md fixes; a stack trace only with --debug.
 */
export abstract class BaseCommand extends Command {
  static override baseFlags = {
    debug: Flags.boolean({description: 'Show stack traces and the commands netctl runs.', helpGroup: 'GLOBAL'}),
  }

  /** Every flag or argument problem is a usage error (exit 2) in one line. */
  protected override async parse<F extends FlagMap, B extends FlagMap, A extends {[name: string]: unknown}>(
    options?: Interfaces.Input<F, B, A>,
    argv?: string[],
  ): Promise<Interfaces.ParserOutput<F, B, A>> {
    try {
      return await super.parse<F, B, A>(options, argv)
    } catch (error) {
      throw new UsageError(usageMessage(error as Error))
    }
  }

  protected debugEnabled(): boolean {
    return this.argv.includes('--debug') || process.env.NETCTL_DEBUG === '1'
  }

  protected override async catch(err: Error & {oclif?: {exit?: number}; parse?: unknown}): Promise<unknown> {
    // oclif's own exits (this.exit, --help, --version) pass through untouched.
    if (err instanceof Errors.ExitError || err.oclif?.exit === 0) throw err
    const exit: number =
      err instanceof NetctlError ? err.exitCode : err instanceof Errors.CLIError && (err as {parse?: unknown}).parse !== undefined ? ExitCode.USAGE : ExitCode.FAULT
    const message = firstLine(err.message ?? String(err))
    if (this.jsonEnabled()) {
      const code = err instanceof NetctlError ? err.code : exit === ExitCode.USAGE ? 'USAGE' : 'ERROR'
      this.logJson({error: {code, message, exitCode: exit}})
    } else {
      process.stderr.write(`netctl: ${message}\n`)
      // the help is for flag and argument mistakes; a bad kubeconfig (also exit 2) is not one, nor a line that says all there is
      const argumentProblem = (err instanceof UsageError && err.hint) || (!(err instanceof NetctlError) && exit === ExitCode.USAGE)
      if (argumentProblem && this.id) process.stderr.write(`See 'netctl ${this.id.replace(/:/g, ' ')} --help'.\n`)
      if (this.debugEnabled() && err.stack) process.stderr.write(`${err.stack}\n`)
    }
    return this.exit(exit)
  }
}

/** oclif's parse messages span lines ("Parsing --nodes\n\tExpected ..."); fold them into one. */
export function usageMessage(err: Error): string {
  const lines = (err.message ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^See more help/.test(l))
  const [first = 'invalid arguments', ...rest] = lines
  const head = first.replace(/^Parsing (--\S+)\s*$/, '$1:')
  return [head, ...rest].join(' ').replace(/\s+/g, ' ').trim()
}
