import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../../src/base-command.js'
import {Ending} from '../../../src/errors.js'
import {labFlag, lockTimeoutFlag} from '../../../src/flags.js'
import {progressLine} from '../../../src/render/backend.js'
import {labPolicyText} from '../../../src/render/lab.js'
import {deleteLabPolicy} from '../../../src/services/lab-policy.js'

export default class LabPolicyDelete extends BaseCommand {
  static override summary = 'Remove a NetworkPolicy from a lab.'
  static override examples = ['<%= config.bin %> lab policy delete allow-web -n default --lab pol']
  static override enableJsonFlag = true
  static override args = {name: Args.string({description: 'The NetworkPolicy name.', required: true})}
  static override flags = {
    namespace: Flags.string({char: 'n', description: 'Its namespace.', default: 'default'}),
    lab: labFlag,
    'lock-timeout': lockTimeoutFlag,
  }

  async run(): Promise<Ending> {
    const {args, flags} = await this.parse(LabPolicyDelete)
    const result = await deleteLabPolicy(flags.lab, args.name, flags.namespace, {
      lockTimeoutMs: flags['lock-timeout'],
      say: progressLine,
    })
    if (!this.jsonEnabled()) this.log(labPolicyText(result))
    return new Ending(result)
  }
}
