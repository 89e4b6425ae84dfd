import {Args, Flags} from '@oclif/core'

import {BACKEND_TYPES, type BackendType} from '../../src/backend/plan/types.js'
import {BaseCommand} from '../../src/base-command.js'
import {Ending} from '../../src/errors.js'
import {clusterFlags} from '../../src/flags.js'
import {planJson, planText, whatIfText} from '../../src/render/backend.js'
import {runBackendPlan} from '../../src/services/backend.js'

export default class BackendPlan extends BaseCommand {
  static override summary =
    'Show what switching to another overlay backend would change on every node, and whether it may.'
  static override description = `Read-only. Collects every node, computes the target backend's kernel state from the node facts (InternalIP, podCIDR, VTEP MAC), and prints per node the lines that would be removed and added, as ip route / ip neigh / bridge fdb / ip link print them, with the daemons stopped, started or reconfigured, the MTU impact, and the preflight: every node reachable, the same CNI, a kernel that can make the devices, and for host-gw and calico-bgp every node pair L2-adjacent (HOSTGW_NOT_L2_ADJACENT otherwise).

In a Kubernetes cluster the plan also names the objects the switch writes: flannel's ConfigMap (net-conf.json Backend.Type, every other field kept) and the DaemonSet restarted, or Calico's IPPools (ipipMode, vxlanMode). Route reflection (calico-rr) and a change of CNI are refused there.

--what-if applies the plan's per-node state to the collected snapshot (pure: no node is touched; a route through a gateway on no connected subnet is refused as the kernel refuses it) and shows the reachability matrix before → after: only the node pairs whose disposition changes, each with the state that changes it (as netctl matrix BEFORE AFTER shows it).

Exit codes: 0 the switch may go ahead (or there is nothing to do); 4 preflight would refuse it; 2 usage errors.`
  static override examples = [
    {
      description: 'What host-gw would change in a lab',
      command: '<%= config.bin %> backend plan flannel-host-gw --lab demo',
    },
    {
      description: 'The same as JSON (schemas/backend-plan.schema.json)',
      command: '<%= config.bin %> backend plan flannel-host-gw --lab demo --json',
    },
    {
      description: 'Which pod pairs host-gw would break in a lab, and why, before anything is applied',
      command: '<%= config.bin %> backend plan flannel-host-gw --lab demo --what-if',
    },
    {
      description: 'What host-gw would change in the Kubernetes cluster of context prod',
      command: '<%= config.bin %> backend plan flannel-host-gw --context prod',
    },
  ]
  static override args = {
    type: Args.string({description: 'Backend to switch to.', required: true, options: [...BACKEND_TYPES]}),
  }
  static override enableJsonFlag = true
  static override flags = {
    ...clusterFlags,
    'what-if': Flags.boolean({
      description:
        'Also apply the plan to the collected state (no node touched) and show which node pairs would stop (or start) reaching each other, and why.',
      default: false,
    }),
  }

  async run(): Promise<Ending> {
    const {args, flags} = await this.parse(BackendPlan)
    const {planned, predicted, verdict} = await runBackendPlan({
      source: flags,
      to: args.type as BackendType,
      whatIf: flags['what-if'],
      timeoutMs: flags.timeout * 1000,
      version: this.config.version,
    })
    if (!this.jsonEnabled()) this.log(planText(planned.plan, planned.preflight, planned.kubeChange))
    if (predicted && !this.jsonEnabled()) this.log(`\n${whatIfText(predicted, planned.plan.to)}`)
    return new Ending(planJson(planned, predicted), verdict)
  }
}
