import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../../src/base-command.js'
import {labFlag} from '../../../src/flags.js'
import {deleteLabPolicy} from '../../../src/lab/policy.js'
import {labPolicyText} from '../../../src/render/lab.js'

export default class LabPolicyDelete extends BaseCommand {
  static override summary = 'Remove a NetworkPolicy from a lab.'
  static override examples = ['<%= config.bin %> lab policy delete allow-web -n default --lab pol']
  static override enableJsonFlag = true
  static override args = {name: Args.string({description: 'The NetworkPolicy name.', required: true})}
  static override flags = {
    namespace: Flags.string({char: 'n', description: 'Its namespace.', default: 'default'}),
    lab: labFlag,
  }

  async run(): Promise<object> {
    const {args, flags} = await this.parse(LabPolicyDelete)
    const result = await deleteLabPolicy(flags.lab, args.name, flags.namespace)
    if (!this.jsonEnabled()) this.log(labPolicyText(result))
    return result
  }
}
