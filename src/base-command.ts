import {Command, Errors, Flags, Interfaces} from '@oclif/core'

import {classify, ExitCode, type ExitCodeValue, NetctlError, UsageError} from './errors.js'
import {printable} from './render/color.js'
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

  /**
   * The one way a command ends with a code: an error goes through the table in
   * src/errors.ts (`classify`); a result that means a non-zero exit comes back
   * from run() as an Ending, and here its code is set (and its line written).
   */
  protected override async _run<T>(): Promise<T> {
    const result = await super._run<T>()
    if (result instanceof Ending) {
      if (result.why !== undefined && !this.jsonEnabled()) process.stderr.write(`netctl: ${printable(firstLine(result.why))}\n`)
      if (result.exit !== ExitCode.OK) process.exitCode = result.exit
    }
    return result
  }

  /** With --json, an Ending prints its data, not itself. */
  protected override toSuccessJson(result: unknown): any {
    return super.toSuccessJson(result instanceof Ending ? result.json : result)
  }

  protected override async catch(err: Error & {oclif?: {exit?: number}; parse?: unknown}): Promise<unknown> {
    // oclif's own exits (this.exit, --help, --version) pass through untouched.
    if (err instanceof Errors.ExitError || err.oclif?.exit === 0) throw err
    const {errorClass, code, exit} = classify(err)
    const message = firstLine(err.message ?? String(err))
    if (this.jsonEnabled()) {
      this.logJson(errorJson(code, message, exit))
    } else {
      process.stderr.write(`netctl: ${printable(message)}\n`)
      // the help is for flag and argument mistakes; a bad kubeconfig (also exit 2) is not one, nor a line that says all there is
      const argumentProblem = err instanceof UsageError ? err.hint : errorClass === 'usage' && !(err instanceof NetctlError)
      if (argumentProblem && this.id) process.stderr.write(`See 'netctl ${this.id.replace(/:/g, ' ')} --help'.\n`)
      if (this.debugEnabled() && err.stack) process.stderr.write(`${err.stack}\n`)
    }
    return this.exit(exit)
  }
}

/**
 * What run() returns when its result means more than "ok": the data (printed
 * as with any result, and with --json as the JSON), the exit code the result
 * means, and one line for stderr (text output only) saying why it is not 0.
 */
export class Ending<T = unknown> {
  constructor(
    readonly json: T,
    readonly exit: ExitCodeValue,
    readonly why?: string,
  ) {}
}

/** The JSON error object every --json error prints (the command's own or an unknown command's). */
export function errorJson(code: string, message: string, exitCode: number): {error: {code: string; message: string; exitCode: number}} {
  return {error: {code, message, exitCode}}
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
