import {Flags} from '@oclif/core'

import {findingsAsTyped} from '../src/analyze/catalogue/as-typed.js'
import {countFindings, runChecks} from '../src/analyze/checks/index.js'
import {BaseCommand, Ending} from '../src/base-command.js'
import {type ClusterSource, openClusterSource, resolveSource, sourceFlagsGiven} from '../src/collect/source.js'
import {collectInventory} from '../src/collect/collect.js'
import {ExitCode, UsageError} from '../src/errors.js'
import {clusterSourceFlags, collectFlags, snapshotFlag} from '../src/flags.js'
import type {Snapshot} from '../src/model/snapshot.js'
import {readSnapshotFile} from '../src/model/snapshot-file.js'
import {checkJson, checkText} from '../src/render/check.js'
import {checkResult, type CheckResult} from '../src/services/check-result.js'
import {closest} from '../src/util/edit-distance.js'

export default class Check extends BaseCommand {
  static override summary = 'Check every node for inconsistent dataplane state: overlay, MTU, host, routing, BGP, addressing, CNI, Services.'
  static override description = `Reads the state of every node (as netctl collect does, or from a snapshot file) and reports each fault it finds with the lines that prove it and the fix: a vxlan FDB entry or neighbour missing or stale, a VTEP MAC that is not the peer's, a tunnel device down, MTUs without room for encapsulation, forwarding off, a FORWARD policy or rule dropping pod traffic, a route missing or via the wrong next hop, BGP sessions down, podCIDRs clashing, two CNI configs on a node, kube-proxy's rules out of date with the EndpointSlices, a stale conntrack entry of a Service flow, ...

The cluster is a lab (--lab), an inventory file (--inventory), or else the Kubernetes cluster of the kubeconfig, found as kubectl finds it (--kubeconfig, $KUBECONFIG, ~/.kube/config, --context, or the pod's service account), its nodes reached through a privileged debug pod each (--via debug-pod, the default; deleted at the end, also on error and Ctrl-C) or over SSH (--via ssh). From Kubernetes the NetworkPolicies are read too: each one that selects pods while the CNI does not enforce policies (plain flannel; Calico and Canal do) is a POLICY_UNENFORCED warning.

Each finding has a code; netctl explain CODE says what it means. --node limits the report to findings about those nodes (every node is still read: peers' state is part of the comparison).

Exit codes: 0 no error findings (warnings and info may be reported); 1 at least one error finding; 3 no node could be collected; 2 usage errors.`
  static override examples = [
    {description: 'Check the Kubernetes cluster of the current kubeconfig context, through debug pods', command: '<%= config.bin %> check'},
    {description: 'Another kubeconfig and context, nodes over SSH', command: '<%= config.bin %> check --kubeconfig ~/.kube/prod.yaml --context prod --via ssh --ssh-user admin'},
    {description: 'Check a lab', command: '<%= config.bin %> check --lab demo'},
    {description: 'Check a saved snapshot, findings about node2 only, as JSON', command: '<%= config.bin %> check --snapshot snap.json --node node2 --json'},
    {description: 'Check the nodes of an inventory over ssh', command: '<%= config.bin %> check --inventory cluster.yaml'},
  ]
  static override enableJsonFlag = true
  static override flags = {
    snapshot: snapshotFlag('Check a snapshot written by netctl collect instead of reading the nodes (-s, its old spelling, still works).', ['s']),
    ...clusterSourceFlags,
    node: Flags.string({description: 'Report only findings about this node (repeatable).', multiple: true, helpValue: 'NAME'}),
    ...collectFlags,
  }

  async run(): Promise<Ending<CheckResult>> {
    const {flags} = await this.parse(Check)
    const cluster = sourceFlagsGiven(flags)
    if (flags.snapshot !== undefined && cluster.length > 0) throw new UsageError(`--snapshot and ${cluster[0]} both say what to check: give one`)
    if (flags.snapshot !== undefined) return this.check(await readSnapshotFile(flags.snapshot), {kind: 'snapshot', name: flags.snapshot}, flags)
    const source = await openClusterSource(resolveSource(flags), {orElse: ['a snapshot (--snapshot FILE)']})
    try {
      // a mistyped --node is a usage error before any node is read (or any debug pod made)
      knownNodes(flags.node, source.inventory.nodes.map((n) => n.name), source.inventory.cluster.name)
      return await this.check(await this.collect(source, flags), sourceOf(source), flags)
    } finally {
      // debug pods deleted, SSH connections closed: also when the check failed
      await source.close()
    }
  }

  private async check(snapshot: Snapshot, source: CheckResult['source'], flags: {node?: string[]}): Promise<Ending<CheckResult>> {
    const known = snapshot.nodes.map((n) => n.name)
    knownNodes(flags.node, known, snapshot.cluster.name)
    const nodes = flags.node?.length ? [...new Set(flags.node)] : known
    // fixes as typed here: a lab node's through ip netns exec, no kubectl without Kubernetes
    const findings = findingsAsTyped(runChecks(snapshot, flags.node?.length ? {nodes} : {}), snapshot)
    const result = checkResult(snapshot, source, nodes, findings, countFindings(findings))

    if (!this.jsonEnabled()) this.log(checkText(result, known.length))
    const exit = result.collected === 0 ? ExitCode.UNREACHABLE : result.counts.error > 0 ? ExitCode.FAULT : ExitCode.OK
    return new Ending(checkJson(result), exit)
  }

  private collect(source: ClusterSource, flags: {parallel: number; timeout: number}): Promise<Snapshot> {
    return collectInventory(source.inventory, {
      parallel: flags.parallel,
      timeoutMs: flags.timeout * 1000,
      version: this.config.version,
      transportFactory: (node) => source.transportFor(node),
      ...(source.networkPolicies ? {networkPolicies: source.networkPolicies} : {}),
    })
  }
}

/** Every --node is a node of the cluster, or a one-line usage error with a suggestion. */
function knownNodes(asked: string[] | undefined, known: string[], cluster: string): void {
  for (const n of asked ?? []) {
    if (known.includes(n)) continue
    const guess = closest(n, known)
    throw new UsageError(`no node '${n}' in ${cluster}${guess ? `: did you mean ${guess}?` : ''} (nodes: ${known.join(', ')})`)
  }
}

/** What the report says it checked: the lab, the inventory file, or the Kubernetes context. */
function sourceOf(source: ClusterSource): CheckResult['source'] {
  const {spec} = source
  if (spec.kind === 'lab') return {kind: 'lab', name: spec.name}
  if (spec.kind === 'inventory') return {kind: 'inventory', name: spec.file}
  return {kind: 'kubernetes', name: source.kube?.context ?? source.inventory.cluster.name}
}
