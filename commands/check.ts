import {Flags} from '@oclif/core'

import {countFindings, runChecks} from '../src/analyze/checks/index.js'
import {BaseCommand} from '../src/base-command.js'
import {labInventoryFile, loadInventory} from '../src/cluster/inventory.js'
import {collectInventory, DEFAULT_PARALLEL, DEFAULT_TIMEOUT_MS} from '../src/collect/collect.js'
import {ExitCode, UsageError} from '../src/errors.js'
import {loadSnapshot, type Snapshot} from '../src/model/snapshot.js'
import {checkJson, checkResult, type CheckResult, checkText} from '../src/render/check.js'
import {createTransport, type TransportChoice} from '../src/transport/index.js'
import {closest} from '../src/util/edit-distance.js'

export default class Check extends BaseCommand {
  static override summary = 'Check every node for inconsistent dataplane state: overlay, MTU, host, routing, BGP, addressing, CNI.'
  static override description = `Reads the state of every node (as netctl collect does, or from a snapshot file) and reports each fault it finds with the lines that prove it and the fix: a vxlan FDB entry or neighbour missing or stale, a VTEP MAC that is not the peer's, a tunnel device down, MTUs without room for encapsulation, forwarding off, a FORWARD policy or rule dropping pod traffic, a route missing or via the wrong next hop, BGP sessions down, podCIDRs clashing, two CNI configs on a node, ...

Each finding has a code; netctl explain CODE says what it means. --node limits the report to findings about those nodes (every node is still read: peers' state is part of the comparison).

Exit codes: 0 no error findings (warnings and info may be reported); 1 at least one error finding; 3 no node could be collected; 2 usage errors.`
  static override examples = [
    {description: 'Check a lab', command: '<%= config.bin %> check --lab demo'},
    {description: 'Check a saved snapshot, findings about node2 only, as JSON', command: '<%= config.bin %> check --snapshot snap.json --node node2 --json'},
    {description: 'Check the nodes of an inventory over ssh', command: '<%= config.bin %> check --inventory cluster.yaml'},
  ]
  static override enableJsonFlag = true
  static override flags = {
    lab: Flags.string({description: 'Check the lab of this name.', exclusive: ['inventory', 'snapshot'], helpValue: 'NAME'}),
    inventory: Flags.string({char: 'i', description: 'Check the nodes of this inventory file.', exclusive: ['lab', 'snapshot'], helpValue: 'FILE'}),
    snapshot: Flags.string({char: 's', description: 'Check a snapshot written by netctl collect instead of reading the nodes.', exclusive: ['lab', 'inventory'], helpValue: 'FILE'}),
    node: Flags.string({description: 'Report only findings about this node (repeatable).', multiple: true, helpValue: 'NAME'}),
    parallel: Flags.integer({description: 'Nodes read at the same time.', default: DEFAULT_PARALLEL, min: 1, max: 256}),
    timeout: Flags.integer({description: 'Seconds each node may take before it counts as unreachable.', default: DEFAULT_TIMEOUT_MS / 1000, min: 1, max: 3600}),
    transport: Flags.string({description: 'How to reach nodes the inventory gives both ways in: auto takes the netns.', options: ['auto', 'netns', 'ssh'], default: 'auto'}),
  }

  async run(): Promise<CheckResult> {
    const {flags} = await this.parse(Check)
    if (!flags.lab && !flags.inventory && !flags.snapshot) throw new UsageError('say what to check: --lab NAME, --inventory FILE or --snapshot FILE')
    const {snapshot, source} = await this.snapshotOf(flags)
    const known = snapshot.nodes.map((n) => n.name)
    for (const n of flags.node ?? []) {
      if (!known.includes(n)) {
        const guess = closest(n, known)
        throw new UsageError(`no node '${n}' in ${snapshot.cluster.name}${guess ? `: did you mean ${guess}?` : ''} (nodes: ${known.join(', ')})`)
      }
    }
    const nodes = flags.node?.length ? [...new Set(flags.node)] : known
    const findings = runChecks(snapshot, flags.node?.length ? {nodes} : {})
    const result = checkResult(snapshot, source, nodes, findings, countFindings(findings))

    if (!this.jsonEnabled()) this.log(checkText(result, known.length))
    const exit = result.collected === 0 ? ExitCode.UNREACHABLE : result.counts.error > 0 ? ExitCode.FAULT : ExitCode.OK
    if (exit !== ExitCode.OK) {
      if (this.jsonEnabled()) this.logJson(checkJson(result))
      this.exit(exit)
    }
    return checkJson(result)
  }

  private async snapshotOf(flags: {lab?: string; inventory?: string; snapshot?: string; parallel: number; timeout: number; transport: string}): Promise<{snapshot: Snapshot; source: CheckResult['source']}> {
    if (flags.snapshot) return {snapshot: await loadSnapshot(flags.snapshot), source: {kind: 'snapshot', name: flags.snapshot}}
    const file = flags.lab ? await labInventoryFile(flags.lab) : flags.inventory!
    const inventory = await loadInventory(file)
    const snapshot = await collectInventory(inventory, {
      parallel: flags.parallel,
      timeoutMs: flags.timeout * 1000,
      version: this.config.version,
      transportFactory: (node) => createTransport(node, flags.transport as TransportChoice),
    })
    return {snapshot, source: flags.lab ? {kind: 'lab', name: flags.lab} : {kind: 'inventory', name: file}}
  }
}
