import {Flags} from '@oclif/core'

import {BaseCommand} from '../src/base-command.js'
import {Ending} from '../src/errors.js'
import {clusterSourceFlags, collectFlags, OUTPUT_FORMATS} from '../src/flags.js'
import {noticeLine} from '../src/render/collect.js'
import {runCollect} from '../src/services/collect.js'

export default class Collect extends BaseCommand {
  static override summary = 'Read the dataplane state of every node into a snapshot file.'
  static override description = `Runs one read-only probe on every node (one round trip each, --parallel at a time, --timeout seconds per node): links, addresses, routes and rules, neighbours, bridge FDB, sysctls, iptables and nftables, ipsets, conntrack counters and (up to 2000) entries of Service flows, BIRD sessions and routes, flannel's subnet.env, CNI config and plugins, tunnel offloads, daemons, and every pod's namespace. The snapshot (JSON, schemas/snapshot.schema.json) goes to stdout, or to --output-file FILE; other commands read it with --snapshot FILE.

The cluster is a lab (--lab), an inventory file (--inventory), or else the Kubernetes cluster of the kubeconfig, found as kubectl finds it (--kubeconfig, $KUBECONFIG, ~/.kube/config, --context, or the pod's service account). Kubernetes nodes are reached through a privileged debug pod per node (--via debug-pod, the default: made when the node is first probed, deleted at the end, also on error and Ctrl-C) or over SSH (--via ssh); pods are found on their node through the container runtime (crictl). The snapshot then also holds the detected backend and the cluster's NetworkPolicies.

A node that cannot be reached, or answers too late or with nonsense, is recorded in the snapshot's errors as NODE_UNREACHABLE; a node whose probe failed in part (a tool error, a vanished pod) keeps what was read and is recorded as COLLECTION_PARTIAL.

--output-file FILE is replaced whole, and only when at least one node was collected: the snapshot is written to a temporary file beside it and renamed over it, so a run that reaches no node (or fails, or is interrupted) leaves an earlier snapshot in FILE as it was.

-o is the output format, as in kubectl: text (the default: the snapshot JSON on stdout, nothing with --output-file), json or yaml (the snapshot, or with --output-file a summary of what was written; -o json is --json). -o FILE, the old spelling of --output-file, still works when FILE is not a format, and says so on stderr.

Exit codes: 0 when every node was collected (a node collected in part is in the snapshot's errors as COLLECTION_PARTIAL: a collection is not a diagnosis); 3 when a node could not be collected (one line on stderr names it and why, e.g. its host key changed; the others are still written) or the API server cannot be reached; 2 for usage errors and for an --output-file FILE that cannot be written (checked before any node is read).`
  static override examples = [
    {description: 'Collect a lab into a file', command: '<%= config.bin %> collect --lab demo --output-file demo.json'},
    {
      description: 'Collect the nodes of an inventory, 8 at a time, 10 s each',
      command: '<%= config.bin %> collect --inventory cluster.yaml --parallel 8 --timeout 10 > snap.json',
    },
    {
      description: 'Collect the Kubernetes cluster of the current kubeconfig context, through debug pods',
      command: '<%= config.bin %> collect --output-file cluster.json',
    },
    {
      description: 'Another context, debug pods from a mirror in their own namespace',
      command:
        '<%= config.bin %> collect --context prod --debug-image registry.example.net/netshoot:v0.13 --debug-namespace netctl --output-file prod.json',
    },
    {
      description: 'Kubernetes nodes over SSH, by name through a bastion',
      command:
        "<%= config.bin %> collect --kubeconfig ~/.kube/prod.yaml --via ssh --ssh-host-template '{name}.prod.example.net' --ssh-user admin --ssh-jump bastion.example.net --output-file prod.json",
    },
  ]
  static override enableJsonFlag = true
  static override flags = {
    ...clusterSourceFlags,
    // no options list: -o FILE (not a format) is the old spelling of --output-file and must still parse
    output: Flags.string({
      char: 'o',
      description:
        'Output format: text (the snapshot JSON), json, yaml (-o FILE, the old spelling of --output-file, still works).',
      helpValue: 'FORMAT',
      helpGroup: 'GLOBAL',
    }),
    'output-file': Flags.string({
      description:
        'Write the snapshot to this file instead of stdout (kubectl names its output files --output-*; -o is the format).',
      helpValue: 'FILE',
    }),
    ...collectFlags,
  }

  async run(): Promise<Ending> {
    const {flags} = await this.parse(Collect)
    const json = this.jsonEnabled()
    // Live progress only for a person watching a terminal; piped, nothing but the result.
    const ui = !json && process.stderr.isTTY === true ? await import('../src/render/collect-progress.js') : undefined
    const {result, verdict} = await runCollect({
      source: flags,
      output: flags.output,
      outputFile: flags['output-file'],
      formats: OUTPUT_FORMATS,
      parallel: flags.parallel,
      timeoutMs: flags.timeout * 1000,
      version: this.config.version,
      // without a file the snapshot is the output (with --json it is the returned result)
      stream: json ? undefined : process.stdout,
      display: ui?.collectProgressDisplay,
      notice: json ? undefined : noticeLine,
    })
    return new Ending(result, verdict)
  }
}
