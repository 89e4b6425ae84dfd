import {BaseCommand} from '../../../src/base-command.js'
import {Ending} from '../../../src/errors.js'
import {labFlag} from '../../../src/flags.js'
import {listLabPolicies} from '../../../src/lab/policy.js'
import {labPolicyText} from '../../../src/render/lab.js'

export default class LabPolicyList extends BaseCommand {
  static override summary = "List a lab's NetworkPolicies."
  static override examples = ['<%= config.bin %> lab policy list --lab pol --json']
  static override enableJsonFlag = true
  static override flags = {
    lab: labFlag,
  }

  async run(): Promise<Ending> {
    const {flags} = await this.parse(LabPolicyList)
    const result = await listLabPolicies(flags.lab)
    if (!this.jsonEnabled()) this.log(labPolicyText(result))
    return new Ending(result)
  }
}
