import {BaseCommand} from '../../src/base-command.js'
import {listLabs} from '../../src/lab/list.js'
import {labListText} from '../../src/render/lab.js'

export default class LabList extends BaseCommand {
  static override summary = 'List the labs on this machine.'
  static override description = 'Shows every lab with a record, and any namespaces that look like a lab but have none (left behind by a crash; remove them with lab down --name).'
  static override examples = ['<%= config.bin %> lab list', '<%= config.bin %> lab list --json']
  static override enableJsonFlag = true

  async run(): Promise<object> {
    await this.parse(LabList)
    const labs = await listLabs()
    if (!this.jsonEnabled()) this.log(labListText(labs))
    return {labs}
  }
}
