import {Flags} from '@oclif/core'

import {BaseCommand} from '../../../src/base-command.js'
import {Ending} from '../../../src/errors.js'
import {labFlag, lockTimeoutFlag} from '../../../src/flags.js'
import {progressLine} from '../../../src/render/backend.js'
import {labKubeProxySyncText} from '../../../src/render/lab-kube-proxy.js'
import {syncLabKubeProxy} from '../../../src/services/lab-kube-proxy.js'

export default class LabKubeProxySync extends BaseCommand {
  static override summary = "Rewrite a lab node's kube-proxy rules from the lab's Services, as kube-proxy's sync does."
  static override description = `A lab has no kube-proxy process to restart: this is what a restarted kube-proxy's first full sync does to a node. In the lab's proxy mode (--proxy-mode of lab up), from the lab's Services and EndpointSlices: iptables mode ensures kube-proxy's jumps from the built-in chains (left where they are, put back where missing), rewrites its own chains (KUBE-SERVICES, KUBE-SVC-*, KUBE-SEP-*, KUBE-NODEPORTS, ...) with iptables-restore --noflush, and deletes Service chains no Service owns; nftables mode replaces table ip kube-proxy in one transaction. Nothing else on the node is touched (flanneld's, Felix's, the host's rules). It is the fix trace and check print on a lab for SERVICE_RULES_STALE and KUBE_PROXY_MISSING.

One change at a time: it takes the lab's change lock (as backend set and lab policy do); while another run holds it, it is refused with the holder (exit 4), or waits up to --lock-timeout.`
  static override examples = [
    {
      description: "node1's Service rules flushed by hand: put them back",
      command: '<%= config.bin %> lab kube-proxy sync --lab demo --node node1',
    },
    {description: 'Every node of the lab', command: '<%= config.bin %> lab kube-proxy sync --lab demo'},
  ]
  static override enableJsonFlag = true
  static override flags = {
    lab: labFlag,
    node: Flags.string({
      description: 'The node to sync (repeatable; default: every node).',
      multiple: true,
      default: [],
      helpValue: 'NODE',
    }),
    'lock-timeout': lockTimeoutFlag,
  }

  async run(): Promise<Ending> {
    const {flags} = await this.parse(LabKubeProxySync)
    const result = await syncLabKubeProxy(flags.lab, flags.node, {
      lockTimeoutMs: flags['lock-timeout'],
      say: progressLine,
    })
    if (!this.jsonEnabled()) this.log(labKubeProxySyncText(result))
    return new Ending(result)
  }
}
