import {Flags} from '@oclif/core'

import {BaseCommand} from '../src/base-command.js'
import {Ending} from '../src/errors.js'
import {clusterSourceFlags, collectFlags, snapshotFlag, SOURCE_FLAG_NAMES} from '../src/flags.js'
import {checkJson, checkText} from '../src/render/check.js'
import {runCheck} from '../src/services/check.js'
import type {CheckResult} from '../src/services/check-result.js'

export default class Check extends BaseCommand {
  static override summary =
    'Check every node for inconsistent dataplane state: overlay, MTU, host, routing, BGP, addressing, CNI, Services.'
  static override description = `Reads the state of every node (as netctl collect does, or from a snapshot file) and reports each fault it finds with the lines that prove it and the fix: a vxlan FDB entry or neighbour missing or stale, a VTEP MAC that is not the peer's, a tunnel device down, MTUs without room for encapsulation, forwarding off, a FORWARD policy or rule dropping pod traffic, a route missing or via the wrong next hop, BGP sessions down, podCIDRs clashing, two CNI configs on a node, kube-proxy's rules out of date with the EndpointSlices, a stale conntrack entry of a Service flow, ...

The cluster is a lab (--lab), an inventory file (--inventory), or else the Kubernetes cluster of the kubeconfig, found as kubectl finds it (--kubeconfig, $KUBECONFIG, ~/.kube/config, --context, or the pod's service account), its nodes reached through a privileged debug pod each (--via debug-pod, the default; deleted at the end, also on error and Ctrl-C) or over SSH (--via ssh). From Kubernetes the NetworkPolicies are read too: each one that selects pods while the CNI does not enforce policies (plain flannel; Calico and Canal do) is a POLICY_UNENFORCED warning.

Each finding has a code; netctl explain CODE says what it means. --node limits the report to findings about those nodes (every node is still read: peers' state is part of the comparison).

Exit codes: 0 no error findings (warnings and info may be reported); 1 at least one error finding; 3 no node could be collected; 2 usage errors.`
  static override examples = [
    {
      description: 'Check the Kubernetes cluster of the current kubeconfig context, through debug pods',
      command: '<%= config.bin %> check',
    },
    {
      description: 'Another kubeconfig and context, nodes over SSH',
      command: '<%= config.bin %> check --kubeconfig ~/.kube/prod.yaml --context prod --via ssh --ssh-user admin',
    },
    {description: 'Check a lab', command: '<%= config.bin %> check --lab demo'},
    {
      description: 'Check a saved snapshot, findings about node2 only, as JSON',
      command: '<%= config.bin %> check --snapshot snap.json --node node2 --json',
    },
    {
      description: 'Check the nodes of an inventory over ssh',
      command: '<%= config.bin %> check --inventory cluster.yaml',
    },
  ]
  static override enableJsonFlag = true
  static override flags = {
    snapshot: snapshotFlag(
      'Check a snapshot written by netctl collect instead of reading the nodes (-s, its old spelling, still works).',
      ['s'],
      {exclusive: SOURCE_FLAG_NAMES},
    ),
    ...clusterSourceFlags,
    node: Flags.string({
      description: 'Report only findings about this node (repeatable).',
      multiple: true,
      helpValue: 'NAME',
    }),
    ...collectFlags,
  }

  async run(): Promise<Ending<CheckResult>> {
    const {flags} = await this.parse(Check)
    const {result, allNodes, verdict} = await runCheck({
      snapshot: flags.snapshot,
      source: flags,
      nodes: flags.node,
      parallel: flags.parallel,
      timeoutMs: flags.timeout * 1000,
      version: this.config.version,
    })
    if (!this.jsonEnabled()) this.log(checkText(result, allNodes))
    return new Ending(checkJson(result), verdict)
  }
}
