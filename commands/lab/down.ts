import {Flags} from '@oclif/core'

import {BaseCommand} from '../../src/base-command.js'
import {labNameFlag} from '../../src/flags.js'
import {labPreflight} from '../../src/lab/preflight.js'
import {teardownLab} from '../../src/lab/teardown.js'
import {labDownText} from '../../src/render/lab.js'

export default class LabDown extends BaseCommand {
  static override summary = 'Remove a lab: its namespaces, processes and files.'
  static override description = `Removes every network namespace whose name starts with NAME., every process living in one of them (BIRD, sshd, forwarders, whatever started it), and the lab's state directory. Works after a half-failed 'lab up' and is safe to run twice.`
  static override examples = [
    {description: 'Remove the lab named demo', command: '<%= config.bin %> lab down --name demo'},
    {description: 'Remove every lab on this machine', command: '<%= config.bin %> lab down --all'},
  ]
  static override enableJsonFlag = true
  static override flags = {
    name: labNameFlag,
    all: Flags.boolean({description: 'Remove every lab listed by `netctl lab list`.', default: false}),
  }

  async run(): Promise<object> {
    const {flags} = await this.parse(LabDown)
    await labPreflight({backend: 'flannel-vxlan', ssh: false})
    const names = flags.all ? (await import('../../src/lab/list.js').then((m) => m.listLabs())).map((l) => l.name) : [flags.name]
    const results = []
    for (const name of names) {
      const r = await teardownLab(name)
      if (!this.jsonEnabled()) this.log(labDownText(r))
      results.push(r)
    }
    if (flags.all && names.length === 0 && !this.jsonEnabled()) this.log('no labs to remove')
    return flags.all ? {removed: results} : results[0]!
  }
}
