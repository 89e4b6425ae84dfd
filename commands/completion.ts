import {Args} from '@oclif/core'

import {BaseCommand} from '../src/base-command.js'
import {Ending, UsageError} from '../src/errors.js'
import {type CompletionCommand, fishCompletion} from '../src/render/completion-fish.js'

export default class Completion extends BaseCommand {
  static override summary = 'Print the shell completion script for fish, as kubectl completion does.'
  static override description = `Completes commands, topics, flags and their values, made from this netctl's own commands. For bash and zsh, netctl autocomplete bash|zsh sets completion up (from @oclif/plugin-autocomplete).`
  static override examples = [
    {description: 'Completion in the current fish session', command: '<%= config.bin %> completion fish | source'},
    {
      description: 'Completion in every fish session',
      command: '<%= config.bin %> completion fish > ~/.config/fish/completions/<%= config.bin %>.fish',
    },
  ]
  static override enableJsonFlag = true
  static override args = {
    shell: Args.string({description: 'The shell: fish.', required: true}),
  }

  async run(): Promise<Ending<{shell: string; script: string}>> {
    const {args} = await this.parse(Completion)
    if (args.shell === 'bash' || args.shell === 'zsh')
      throw new UsageError(`${args.shell}: netctl autocomplete ${args.shell} sets up completion for it`)
    if (args.shell !== 'fish')
      throw new UsageError(
        `no completion for the shell '${args.shell}': fish here; bash and zsh with netctl autocomplete`,
      )
    const script = fishCompletion(
      this.config.bin,
      this.config.commands as unknown as CompletionCommand[],
      this.config.topics,
    )
    if (!this.jsonEnabled()) process.stdout.write(script)
    return new Ending({shell: args.shell, script})
  }
}
