import {Flags} from '@oclif/core'

import {BaseCommand} from '../../src/base-command.js'
import {Ending} from '../../src/errors.js'
import {labNameFlag} from '../../src/flags.js'
import {labStatusText} from '../../src/render/lab.js'
import {runLabStatus} from '../../src/services/lab.js'

export default class LabStatus extends BaseCommand {
  static override summary = 'Show a lab: nodes, pods, BGP sessions, and whether pods reach each other.'
  static override description = `The status is the lab's real state, the same one lab list shows: up (every namespace the lab made is there), degraded (a namespace is gone, or its name points at a namespace the lab did not make: they are named), creating (a lab up is still building it) or failed (its lab up failed or died).

Reachability is checked with real pings from inside pod namespaces: by default one pod per node to one pod on every other node, plus a same-node pair on each node; --all-pairs pings every pod pair. Pods whose namespace is not the lab's are left out. Exits 1 when the lab is not up, a pair is unreachable or a BGP session is not Established.`
  static override examples = [
    {description: 'Status of the lab named demo', command: '<%= config.bin %> lab status --lab demo'},
    {description: 'Without pinging', command: '<%= config.bin %> lab status --lab demo --no-ping'},
    {description: 'Every pod pair, as JSON', command: '<%= config.bin %> lab status --lab demo --all-pairs --json'},
  ]
  static override enableJsonFlag = true
  static override flags = {
    lab: labNameFlag,
    ping: Flags.boolean({description: 'Check pod-to-pod reachability with ping.', default: true, allowNo: true}),
    'all-pairs': Flags.boolean({
      description: 'Ping every ordered pod pair, not one pair per node pair.',
      default: false,
    }),
  }

  async run(): Promise<Ending> {
    const {flags} = await this.parse(LabStatus)
    const {status, verdict} = await runLabStatus({lab: flags.lab, ping: flags.ping, allPairs: flags['all-pairs']})
    if (!this.jsonEnabled()) this.log(labStatusText(status))
    return new Ending(status, verdict)
  }
}
