import {Command, Errors, Flags, Interfaces} from '@oclif/core'

import {classify, Ending, ExitCode, NetctlError, UsageError} from './errors.js'
import {outputFlag, outputFromArgv, STRUCTURED_FORMATS} from './flags.js'
import {printable} from './render/color.js'
import {loadTextLayout} from './render/width.js'
import {firstLine} from './util/exec.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- oclif's own FlagOutput shape, not exported
type FlagMap = {[name: string]: any}

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>

/**
 * Every netctl command: errors become one line (or a JSON error object with
 * --json) and the exit code docs/design.md fixes; a stack trace only with --debug.
 */
export abstract class BaseCommand extends Command {
  static override baseFlags = {
    debug: Flags.boolean({description: 'Show stack traces and the commands netctl runs.', helpGroup: 'GLOBAL'}),
    // every command prints a result, so every command takes -o (a command with more formats, e.g. trace's graphs, redefines it)
    output: outputFlag(),
  }

  /** Every flag or argument problem is a usage error (exit 2) in one line. */
  protected override async parse<F extends FlagMap, B extends FlagMap, A extends {[name: string]: unknown}>(
    options?: Interfaces.Input<F, B, A>,
    argv?: string[],
  ): Promise<Interfaces.ParserOutput<F, B, A>> {
    let parsed: Interfaces.ParserOutput<F, B, A>
    try {
      parsed = await super.parse<F, B, A>(options, argv)
    } catch (error) {
      throw new UsageError(this.labNameHint(usageMessage(error as Error)))
    }
    const output = (parsed.flags as FlagMap).output
    // the command's own -o (trace's graphs; collect's, which also takes an old FILE) or the base one
    const formats: readonly string[] | undefined = (
      (this.ctor.flags as FlagMap | undefined)?.output ?? BaseCommand.baseFlags.output
    ).options
    if (
      (parsed.flags as FlagMap).json &&
      typeof output === 'string' &&
      output !== 'text' &&
      output !== 'json' &&
      formats?.includes(output)
    ) {
      throw new UsageError(`--json and -o ${output} ask for two outputs: give one`)
    }
    return parsed
  }

  /** `lab up -n demo` was the old spelling of --name: say what it is now instead of only "nonexistent flag". */
  private labNameHint(message: string): string {
    if (!this.id?.startsWith('lab:') || !/^Nonexistent flags?: -n\b/.test(message)) return message
    return `${message}: the lab is --lab NAME (also --name); -n is a Kubernetes namespace, as in kubectl`
  }

  /** The -o FORMAT asked for (one the command knows, or any word before parsing). */
  protected outputFormat(): string | undefined {
    return outputFromArgv(this.argv)
  }

  /** the YAML library only when -o yaml asks for it (before oclif's init: its errors print as YAML too), not on every start */
  override async init(): Promise<void> {
    if (this.outputFormat() === 'yaml') yamlOf ??= (await import('./util/yaml.js')).yamlText
    // text is laid out at the terminal's width; JSON never is
    else if (!this.jsonEnabled()) await loadTextLayout()
    await super.init()
  }

  /** -o json and -o yaml are --json: the result and any error come out as that object, and the text renderers stay quiet. */
  override jsonEnabled(): boolean {
    if (!this.ctor.enableJsonFlag) return false
    return super.jsonEnabled() || STRUCTURED_FORMATS.includes(this.outputFormat() ?? '')
  }

  /** -o yaml: the very object --json prints (after JSON's own conversion), as YAML. */
  override logJson(json: unknown): void {
    if (this.outputFormat() === 'yaml' && !this.argv.includes('--json')) {
      process.stdout.write(yamlText(json))
      return
    }
    // oclif's own logJson cuts the text into tokens to colour them, one regular expression after
    // another, also when there is no theme to colour them with (the usual case): the same text at once
    if (this.config.theme?.json === undefined) {
      let text: string | undefined
      try {
        text = JSON.stringify(json, null, 2)
      } catch {
        // a cycle: oclif's stringify names it instead of throwing
      }
      if (text !== undefined) {
        console.log(text)
        return
      }
    }
    super.logJson(json)
  }

  protected debugEnabled(): boolean {
    return this.argv.includes('--debug') || process.env.NETCTL_DEBUG === '1'
  }

  /** Every command's run() returns an Ending: the data, and the outcome that sets the exit code (0 for 'ok'). */
  abstract override run(): Promise<Ending>

  /**
   * The one way a command ends with a code: run() returns an Ending, and a
   * thrown error becomes one in catch() (through the table in src/errors.ts,
   * `classify`); both end in end().
   */
  protected override async _run<T>(): Promise<T> {
    const result = await super._run<T>()
    if (result instanceof Ending) {
      if (result.why !== undefined && !this.jsonEnabled())
        process.stderr.write(`netctl: ${printable(firstLine(result.why))}\n`)
      this.end(result)
    }
    return result
  }

  /**
   * The exit code, set and not forced (process.exitCode, never process.exit):
   * a large result still on its way down a pipe is written whole.
   */
  private end(ending: Ending): void {
    if (ending.exit !== ExitCode.OK) process.exitCode = ending.exit
  }

  /** With --json, an Ending prints its data, not itself. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- oclif's signature
  protected override toSuccessJson(result: unknown): any {
    return super.toSuccessJson(result instanceof Ending ? result.json : result)
  }

  protected override async catch(err: Error & {oclif?: {exit?: number}; parse?: unknown}): Promise<unknown> {
    // oclif's own exits (--help, --version) pass through untouched.
    if (err instanceof Errors.ExitError || err.oclif?.exit === 0) throw err
    const {errorClass, code, exit} = classify(err)
    const message = firstLine(err.message ?? String(err))
    const ending = new Ending(errorJson(code, message, exit), {outcome: errorClass, why: message})
    if (this.jsonEnabled()) {
      this.logJson(ending.json)
    } else {
      process.stderr.write(`netctl: ${printable(message)}\n`)
      // the help is for flag and argument mistakes; a bad kubeconfig (also exit 2) is not one, nor a line that says all there is
      const argumentProblem =
        err instanceof UsageError ? err.hint : errorClass === 'usage' && !(err instanceof NetctlError)
      if (argumentProblem && this.id) process.stderr.write(`See 'netctl ${this.id.replace(/:/g, ' ')} --help'.\n`)
      if (this.debugEnabled() && err.stack) process.stderr.write(`${err.stack}\n`)
    }
    this.end(ending)
    return undefined
  }
}

/** The JSON error object every --json error prints (the command's own or an unknown command's). */
export function errorJson(
  code: string,
  message: string,
  exitCode: number,
): {error: {code: string; message: string; exitCode: number}} {
  return {error: {code, message, exitCode}}
}

/** src/util/yaml.ts's writer, once a command with -o yaml has loaded it (init). */
let yamlOf: typeof import('./util/yaml.js').yamlText | undefined

/** The JSON object as YAML: JSON's conversion first (toJSON, undefined dropped), no anchors, no folded lines. */
export function yamlText(json: unknown): string {
  if (!yamlOf) throw new Error('-o yaml: the YAML writer was not loaded (BaseCommand.init loads it)')
  return yamlOf(json, {plainJson: true})
}

/** oclif's parse messages span lines ("Parsing --nodes\n\tExpected ..."); fold them into one. */
export function usageMessage(err: Error): string {
  const all = (err.message ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^See more help/.test(l))
  // oclif's framing around the flag rules it checks (exclusive, dependsOn, relationships): the rules' own lines say it all, one after the other
  const rules = /^The following errors? occurred:$/.test(all[0] ?? '')
  const lines = rules ? all.slice(1) : all
  const [first = 'invalid arguments', ...rest] = lines
  const head = first.replace(/^Parsing (--\S+)\s*$/, '$1:')
  return [head, ...rest]
    .join(rules ? '; ' : ' ')
    .replace(/\s+/g, ' ')
    .trim()
}
