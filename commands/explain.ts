import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../src/base-command.js'
import {Ending} from '../src/errors.js'
import {explainAnswerJson, explainAnswerText} from '../src/render/explain.js'
import {runExplain} from '../src/services/explain.js'

export default class Explain extends BaseCommand {
  static override summary =
    'Explain a finding code or a trace disposition: what it means, how to confirm it, how to fix it.'
  static override description = `Every finding netctl reports carries a stable code (FDB_MISSING, RP_FILTER_ASYMMETRIC, BGP_SESSION_DOWN, ...), and every trace ends in a disposition (DELIVERED, FDB_MISS, DENIED, ...). This prints what one of them means, what you would see, the commands that confirm it on a node, and the fix, with <placeholders> where a real finding fills in the node's values.

Codes are case-insensitive. --list shows every code with its area and default severity, and every disposition.`
  static override examples = [
    {
      description: 'What a missing vxlan FDB entry means and how to fix it',
      command: '<%= config.bin %> explain FDB_MISSING',
    },
    {description: 'A trace disposition', command: '<%= config.bin %> explain fdb_miss'},
    {description: 'Every finding code and disposition', command: '<%= config.bin %> explain --list'},
    {description: 'One entry as JSON', command: '<%= config.bin %> explain RP_FILTER_ASYMMETRIC --json'},
  ]
  static override enableJsonFlag = true
  static override args = {
    code: Args.string({description: 'A finding code or a trace disposition.', required: false}),
  }
  static override flags = {
    list: Flags.boolean({description: 'List every finding code and trace disposition.', default: false}),
  }

  async run(): Promise<Ending> {
    const {args, flags} = await this.parse(Explain)
    const answer = runExplain({code: args.code, list: flags.list})
    if (!this.jsonEnabled()) this.log(explainAnswerText(answer))
    return new Ending(explainAnswerJson(answer))
  }
}
