import {Flags} from '@oclif/core'

import {BaseCommand} from '../../../src/base-command.js'
import {Ending} from '../../../src/errors.js'
import {labFlag, lockTimeoutFlag} from '../../../src/flags.js'
import {progressLine} from '../../../src/render/backend.js'
import {labPolicyText} from '../../../src/render/lab.js'
import {applyLabPolicies} from '../../../src/services/lab-policy.js'
import {readUserFile} from '../../../src/util/files.js'

export default class LabPolicyApply extends BaseCommand {
  static override summary = 'Record NetworkPolicies in a lab, as kubectl apply -f would in a cluster.'
  static override description = `Reads one or more networking.k8s.io/v1 NetworkPolicy documents (YAML with ---, JSON, or a List) and creates or replaces each by namespace/name (metadata.namespace defaults to default). The lab's record and inventory carry them, so collect, trace and check see them: on a Calico lab trace judges them (POLICY_DENY), on a flannel lab they stay unenforced, as on a real flannel cluster (POLICY_UNENFORCED). On a Calico lab with the agents' rules (--proxy-mode iptables|nftables) they are also programmed into every selecting node's iptables as Felix does (cali-pi-/cali-po- policy chains jumped to from the pods' cali-tw-/cali-fw- chains), so the kernel enforces them.

One change at a time: apply takes the lab's change lock (as backend set does); while another run holds it, apply is refused with the holder (exit 4), or waits up to --lock-timeout.`
  static override examples = [
    {
      description: 'Deny all ingress in default, then let pod-node1-1 reach pod-node2-1 on TCP 80',
      command: '<%= config.bin %> lab policy apply -f policies.yaml --lab pol',
    },
  ]
  static override enableJsonFlag = true
  static override flags = {
    filename: Flags.string({
      char: 'f',
      description: 'File with NetworkPolicy documents (YAML or JSON).',
      required: true,
      helpValue: 'FILE',
    }),
    lab: labFlag,
    'lock-timeout': lockTimeoutFlag,
  }

  async run(): Promise<Ending> {
    const {flags} = await this.parse(LabPolicyApply)
    const result = await applyLabPolicies(flags.lab, await readUserFile(flags.filename), flags.filename, {
      lockTimeoutMs: flags['lock-timeout'],
      say: progressLine,
    })
    if (!this.jsonEnabled()) this.log(labPolicyText(result))
    return new Ending(result)
  }
}
