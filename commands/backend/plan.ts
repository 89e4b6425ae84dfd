import {Args} from '@oclif/core'

import {BaseCommand} from '../../src/base-command.js'
import {BACKEND_TYPES, type BackendType} from '../../src/backend/plan/types.js'
import {planBackend} from '../../src/backend/service.js'
import {resolveTarget} from '../../src/backend/target.js'
import {Ending} from '../../src/errors.js'
import {clusterFlags} from '../../src/flags.js'
import {planJson, planText} from '../../src/render/backend.js'
import {planVerdict} from '../../src/services/outcome.js'

export default class BackendPlan extends BaseCommand {
  static override summary = 'Show what switching to another overlay backend would change on every node, and whether it may.'
  static override description = `Read-only. Collects every node, computes the target backend's kernel state from the node facts (InternalIP, podCIDR, VTEP MAC), and prints per node the lines that would be removed and added, as ip route / ip neigh / bridge fdb / ip link print them, with the daemons stopped, started or reconfigured, the MTU impact, and the preflight: every node reachable, the same CNI, a kernel that can make the devices, and for host-gw and calico-bgp every node pair L2-adjacent (HOSTGW_NOT_L2_ADJACENT otherwise).

In a Kubernetes cluster the plan also names the objects the switch writes: flannel's ConfigMap (net-conf.json Backend.Type, every other field kept) and the DaemonSet restarted, or Calico's IPPools (ipipMode, vxlanMode). Route reflection (calico-rr) and a change of CNI are refused there.

Exit codes: 0 the switch may go ahead (or there is nothing to do); 4 preflight would refuse it; 2 usage errors.`
  static override examples = [
    {description: 'What host-gw would change in a lab', command: '<%= config.bin %> backend plan flannel-host-gw --lab demo'},
    {description: 'The same as JSON (schemas/backend-plan.schema.json)', command: '<%= config.bin %> backend plan flannel-host-gw --lab demo --json'},
    {description: 'What host-gw would change in the Kubernetes cluster of context prod', command: '<%= config.bin %> backend plan flannel-host-gw --context prod'},
  ]
  static override args = {
    type: Args.string({description: 'Backend to switch to.', required: true, options: [...BACKEND_TYPES]}),
  }
  static override enableJsonFlag = true
  static override flags = {...clusterFlags}

  async run(): Promise<Ending> {
    const {args, flags} = await this.parse(BackendPlan)
    const target = await resolveTarget(flags)
    try {
      const planned = await planBackend(target, args.type as BackendType, {version: this.config.version, timeoutMs: flags.timeout * 1000})
      if (!this.jsonEnabled()) this.log(planText(planned.plan, planned.preflight, planned.kubeChange))
      return new Ending(planJson(planned), planVerdict(planned))
    } finally {
      await target.close()
    }
  }
}
