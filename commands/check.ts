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

--probe then sends one real packet per node pair, as trace --probe does, from one pod per node (the first by namespace/name whose network namespace its node shows) to the other node's pod, and reads the interface counters along the walk before and after: the matrix of which node pairs really carry pod traffic, each lost pair localised (last seen, first missing), UNDERLAY_DROP and MODEL_DISAGREES once per cause naming the pairs. Probes whose paths share a node run one after the other (the counters are shared); --parallel bounds the others, --timeout each exec.

Exit codes: 0 no error findings (warnings and info may be reported); 1 at least one error finding (or, with --probe, a pair whose packet was lost); 3 no node could be collected; 2 usage errors.`
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
      description: 'Check a lab, then send one ping per node pair and show which pairs really carry pod traffic',
      command: '<%= config.bin %> check --lab demo --probe',
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
    probe: Flags.boolean({
      description:
        "After the check, send one real packet per node pair from inside a pod of the source node (through its node's transport) to a pod of the other, and read the interface counters (ip -s -j link, less the IPv6 multicast each received: /proc/net/dev_snmp6) of every node its walk crosses before and after: 3 ICMP echoes of 84 bytes (ping -c 3, payload pattern 6e657463746c). Nothing else is sent and nothing is changed on any node. Live sources only (not with --snapshot).",
      default: false,
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
      probe: flags.probe,
    })
    if (!this.jsonEnabled()) this.log(checkText(result, allNodes))
    return new Ending(checkJson(result), verdict)
  }
}
