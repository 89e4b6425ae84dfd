import {Flags} from '@oclif/core'

import {BaseCommand} from '../../src/base-command.js'
import {Ending} from '../../src/errors.js'
import {labNameFlag} from '../../src/flags.js'
import {labDownText, NO_LABS_TO_REMOVE} from '../../src/render/lab.js'
import {labDown} from '../../src/services/lab.js'

export default class LabDown extends BaseCommand {
  static override summary = 'Remove a lab: its namespaces, processes and files.'
  static override description = `Removes every network namespace whose name starts with NAME., every process living in one of them (BIRD, sshd, forwarders, whatever started it) or in a namespace the lab made whose name has been deleted, and the lab's state directory. Works after a half-failed 'lab up' and is safe to run twice.

A name under /run/netns can point at any namespace, the machine's own included, so a name proves nothing: lab down touches a namespace only when it is the one the lab recorded (device and inode) when it made it, or, for a name the lab has no record of, when no process lives in it; it never touches the machine's own namespace or its own. When any name of the lab points elsewhere, it changes nothing and exits 4. With --all, it removes every other lab and then exits 4 naming the ones it refused.`
  static override examples = [
    {description: 'Remove the lab named demo', command: '<%= config.bin %> lab down --lab demo'},
    {description: 'Remove every lab on this machine', command: '<%= config.bin %> lab down --all'},
  ]
  static override enableJsonFlag = true
  static override flags = {
    lab: labNameFlag,
    all: Flags.boolean({description: 'Remove every lab listed by `netctl lab list`.', default: false}),
  }

  async run(): Promise<Ending> {
    const {flags} = await this.parse(LabDown)
    const json = this.jsonEnabled()
    const {result, none} = await labDown({
      lab: flags.lab,
      all: flags.all,
      removed: json ? undefined : (r) => this.log(labDownText(r)),
    })
    if (none && !json) this.log(NO_LABS_TO_REMOVE)
    return new Ending(result)
  }
}
