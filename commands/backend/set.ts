import {Args, Flags} from '@oclif/core'

import {BACKEND_TYPES, type BackendType} from '../../src/backend/plan/types.js'
import {BaseCommand} from '../../src/base-command.js'
import {ROLLOUT_TIMEOUT_MS} from '../../src/defaults.js'
import {Ending} from '../../src/errors.js'
import {clusterFlags, lockTimeoutFlag} from '../../src/flags.js'
import {askConfirm, planText, progressLine, setJson, setText} from '../../src/render/backend.js'
import {runBackendSet} from '../../src/services/backend.js'

export default class BackendSet extends BaseCommand {
  static override summary =
    'Switch the overlay backend of every node: plan, preflight, apply, verify, roll back on failure.'
  static override description = `Shows the plan (see backend plan), asks for confirmation on a terminal unless --yes, then applies it node by node with ip -batch / bridge -batch through each node's transport, stops and starts the backend daemons (in a lab: the udp forwarder and socat, BIRD), and verifies: every node re-collected holds the new backend's state and none of the old one's, BGP sessions are Established, netctl trace delivers between pods on every node pair, and those pods answer real pings (in a lab from the namespaces netctl made; elsewhere from inside each pod's namespace on its node, through the node's transport, with the node's own nsenter and ping). If any node fails, verification fails, or Ctrl-C / SIGTERM arrives, every touched node is put back to its snapshot from before (exit 4). Setting the current backend changes nothing.

In a Kubernetes cluster the CNI does the switch: netctl patches flannel's ConfigMap (net-conf.json Backend.Type; every other field is kept) and restarts its DaemonSet, waiting for the rollout (--rollout-timeout), or patches Calico's IPPools (ipipMode, vxlanMode), which Felix and BIRD follow live. Once every node holds the new state, netctl removes what the old backend leaves behind (flanneld never deletes flannel.1) through the node transports (debug pods or SSH), then verifies as above with netctl trace. On any failure the objects are written back as they were, the DaemonSet restarted again, and the old state verified.

One change at a time per cluster: before planning, set takes the cluster's change lock — change.lock in a lab's state directory, FILE.lock beside an inventory file, the Lease netctl-change (coordination.k8s.io/v1) in the CNI's namespace of a Kubernetes cluster, renewed while held — and keeps it through verify or rollback. A second run is refused at once with who holds it and since when (exit 4), or with --lock-timeout waits that long and then plans afresh. A lock left by a netctl that died on this host is taken over, saying so; so is a Lease not renewed within its duration (30 s). --dry-run takes no lock.

Before anything is touched, set runs the what-if (see backend plan --what-if): the plan applied to the snapshot just collected, every pod pair walked before and after, with a plain ping and with a full-size packet (the source pod's MTU, DF set). A switch that would break pairs — host-gw across a router (routes the kernel refuses), a new overhead the pods' MTU does not fit — is refused (exit 4) with one line saying how many pairs break and why, and the pairs in the JSON (plan.whatIf); no node is touched. --force switches anyway: the routes the kernel is predicted to refuse may fail, and verification accepts exactly the predicted broken pairs (any other failure still rolls back).

Pods keep their interface MTU until they are recreated, as on a real cluster; the plan says what that means, and the what-if which pairs it breaks.

Exit codes: 0 applied (or nothing to do, or --dry-run); 4 refused by preflight, by the what-if (without --force) or by another run's lock, declined at the prompt, or rolled back; 2 usage errors, including no --yes without a terminal to ask on.`
  static override examples = [
    {
      description: 'Switch a lab to host-gw, asking first',
      command: '<%= config.bin %> backend set flannel-host-gw --lab demo',
    },
    {
      description: 'Without asking (scripts, CI)',
      command: '<%= config.bin %> backend set flannel-vxlan --lab demo --yes',
    },
    {
      description: 'Wait up to 5 minutes for a change another user is making',
      command: '<%= config.bin %> backend set flannel-vxlan --lab demo --yes --lock-timeout 5m',
    },
    {description: 'Plan and preflight only', command: '<%= config.bin %> backend set calico-vxlan --lab cal --dry-run'},
    {
      description:
        'Switch although the what-if predicts broken pairs (host-gw across a router): they break as predicted',
      command: '<%= config.bin %> backend set flannel-host-gw --lab routed --yes --force',
    },
    {
      description: 'A Kubernetes cluster: patch kube-flannel-cfg, restart flannel, verify every node',
      command: '<%= config.bin %> backend set flannel-host-gw --context prod --yes',
    },
    {
      description: 'Calico: switch the IPPools to VXLAN',
      command: '<%= config.bin %> backend set calico-vxlan --kubeconfig ~/.kube/lab.yaml --yes',
    },
  ]
  static override args = {
    type: Args.string({description: 'Backend to switch to.', required: true, options: [...BACKEND_TYPES]}),
  }
  static override enableJsonFlag = true
  static override flags = {
    ...clusterFlags,
    yes: Flags.boolean({char: 'y', description: 'Apply without asking.', default: false}),
    'dry-run': Flags.boolean({description: 'Plan and preflight only; change nothing.', default: false}),
    force: Flags.boolean({
      description:
        'Switch even when the what-if predicts node pairs that would stop reaching each other, or full-size packets that would die (and past HOSTGW_NOT_L2_ADJACENT); verification then accepts exactly the predicted breaks.',
      default: false,
    }),
    'lock-timeout': lockTimeoutFlag,
    'rollout-timeout': Flags.integer({
      description: "Kubernetes: seconds the CNI's DaemonSet may take to roll out after its restart.",
      default: ROLLOUT_TIMEOUT_MS / 1000,
      min: 1,
      max: 3600,
      helpGroup: 'KUBERNETES',
    }),
  }

  async run(): Promise<Ending> {
    const {args, flags} = await this.parse(BackendSet)
    const json = this.jsonEnabled()
    const {result, shown, verdict} = await runBackendSet({
      source: flags,
      to: args.type as BackendType,
      yes: flags.yes,
      dryRun: flags['dry-run'],
      force: flags.force,
      lockTimeoutMs: flags['lock-timeout'],
      timeoutMs: flags.timeout * 1000,
      rolloutTimeoutMs: flags['rollout-timeout'] * 1000,
      version: this.config.version,
      terminal: process.stdin.isTTY === true && process.stderr.isTTY === true,
      progress: json ? undefined : progressLine,
      show: json ? undefined : (planned) => this.log(planText(planned.plan, planned.preflight, planned.kubeChange)),
      ask: askConfirm,
    })
    if (!json) this.log(setText(result, {plan: !shown}))
    return new Ending(setJson(result), verdict)
  }
}
