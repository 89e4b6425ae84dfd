import {Flags} from '@oclif/core'

import {BaseCommand} from '../../src/base-command.js'
import {Ending} from '../../src/errors.js'
import {labListText} from '../../src/render/lab.js'
import {runLabList} from '../../src/services/lab.js'

export default class LabList extends BaseCommand {
  static override summary = 'List the labs on this machine.'
  static override description =
    'Shows every lab with a record, and any namespaces that look like a lab but have none (left behind by a crash; remove them with lab down --lab NAME). --lab NAME shows only that lab, as every lab command takes it.'
  static override examples = [
    '<%= config.bin %> lab list',
    '<%= config.bin %> lab list --json',
    '<%= config.bin %> lab list --lab demo -o yaml',
  ]
  static override enableJsonFlag = true
  static override flags = {
    lab: Flags.string({aliases: ['name'], description: 'Only the lab of this name (also --name).', helpValue: 'NAME'}),
  }

  async run(): Promise<Ending> {
    const {flags} = await this.parse(LabList)
    const result = await runLabList({lab: flags.lab})
    if (!this.jsonEnabled()) this.log(labListText(result.labs))
    return new Ending(result)
  }
}
