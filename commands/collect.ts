import {writeFile} from 'node:fs/promises'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../src/base-command.js'
import {labInventoryFile, loadInventory} from '../src/cluster/inventory.js'
import {collectInventory, DEFAULT_PARALLEL, DEFAULT_TIMEOUT_MS} from '../src/collect/collect.js'
import {ExitCode, UsageError} from '../src/errors.js'
import {collectFooter, collectSummary, nothingCollectedLine, snapshotJson} from '../src/render/collect.js'
import {createTransport, type TransportChoice} from '../src/transport/index.js'

export default class Collect extends BaseCommand {
  static override summary = 'Read the dataplane state of every node into a snapshot file.'
  static override description = `Runs one read-only probe on every node (one round trip each, --parallel at a time, --timeout seconds per node): links, addresses, routes and rules, neighbours, bridge FDB, sysctls, iptables and nftables, BIRD sessions and routes, flannel's subnet.env, CNI config and plugins, tunnel offloads, daemons, and every pod's namespace. The snapshot (JSON, schemas/snapshot.schema.json) goes to stdout, or to -o FILE; other commands read it with --snapshot FILE.

A node that cannot be reached, or answers too late or with nonsense, is recorded in the snapshot's errors as NODE_UNREACHABLE; a node whose probe failed in part (a tool error, a vanished pod) keeps what was read and is recorded as COLLECTION_PARTIAL.

Exit codes: 0 when at least one node was collected (a collection is not a diagnosis: missing nodes are in the snapshot's errors); 3 when no node could be collected (the snapshot is still written); 2 for usage errors.`
  static override examples = [
    {description: 'Collect a lab into a file', command: '<%= config.bin %> collect --lab demo -o demo.json'},
    {description: 'Collect the nodes of an inventory, 8 at a time, 10 s each', command: '<%= config.bin %> collect --inventory cluster.yaml --parallel 8 --timeout 10 > snap.json'},
  ]
  static override enableJsonFlag = true
  static override flags = {
    lab: Flags.string({description: 'Collect the lab of this name (its inventory).', exclusive: ['inventory'], helpValue: 'NAME'}),
    inventory: Flags.string({char: 'i', description: 'Collect the nodes of this inventory file (see docs/inventory.md).', exclusive: ['lab'], helpValue: 'FILE'}),
    output: Flags.string({char: 'o', description: 'Write the snapshot here instead of stdout.', helpValue: 'FILE'}),
    parallel: Flags.integer({description: 'Nodes probed at the same time.', default: DEFAULT_PARALLEL, min: 1, max: 256}),
    timeout: Flags.integer({description: 'Seconds each node may take before it counts as unreachable.', default: DEFAULT_TIMEOUT_MS / 1000, min: 1, max: 3600}),
    transport: Flags.string({
      description: 'How to reach nodes the inventory gives both ways in (a lab with --ssh): auto takes the netns.',
      options: ['auto', 'netns', 'ssh'],
      default: 'auto',
    }),
  }

  async run(): Promise<object> {
    const {flags} = await this.parse(Collect)
    if (!flags.lab && !flags.inventory) throw new UsageError('say which cluster to collect: --lab NAME or --inventory FILE')
    const file = flags.lab ? await labInventoryFile(flags.lab) : flags.inventory!
    const inventory = await loadInventory(file)

    // Live progress only for a person watching a terminal; piped, nothing but the result.
    const live = !this.jsonEnabled() && process.stderr.isTTY === true
    const progress = live
      ? (await import('../src/render/collect-progress.js')).renderCollectProgress(
          `collecting ${inventory.nodes.length} nodes of ${inventory.cluster.name} (${inventory.cluster.backend}), ${flags.parallel} at a time`,
          inventory.nodes.map((n) => n.name),
        )
      : undefined
    const snapshot = await collectInventory(inventory, {
      parallel: flags.parallel,
      timeoutMs: flags.timeout * 1000,
      version: this.config.version,
      transportFactory: (node) => createTransport(node, flags.transport as TransportChoice),
      ...(progress ? {onProgress: progress.update} : {}),
    })
    progress?.finish(collectFooter(snapshot, flags.output))

    if (flags.output) await writeFile(flags.output, snapshotJson(snapshot))
    else if (!this.jsonEnabled()) process.stdout.write(snapshotJson(snapshot))
    const result = flags.output ? collectSummary(snapshot, flags.output) : snapshot

    if (Object.keys(snapshot.nodeStates).length === 0) {
      // written all the same: the errors say why each node failed
      if (this.jsonEnabled()) this.logJson(result)
      else process.stderr.write(`netctl: ${nothingCollectedLine(snapshot)}\n`)
      this.exit(ExitCode.UNREACHABLE)
    }
    return result
  }
}
