import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../src/base-command.js'
import {Ending} from '../src/errors.js'
import {diffJson, diffText} from '../src/render/diff.js'
import {type DiffResult, diffSnapshotFiles} from '../src/services/diff.js'

export default class Diff extends BaseCommand {
  static override summary = 'Show what changed between two snapshots: per node, in the lines the tools print.'
  static override description = `Compares two snapshots written by netctl collect (BEFORE and AFTER, e.g. one from before an incident or a change and one from now) and prints, per node, the lines only one of them has, as the tools print them: ip -d link, ip addr, ip route show table all, ip rule, ip neigh, bridge fdb, sysctl, iptables-save (per table, a chain's rules in order: a rule moved is removed and added), nft list table, ipset save, birdc show protocols and routes, flannel's subnet.env, the CNI config files, ethtool -k and the agents running; the same for each pod's network namespace. Before the nodes: nodes and pods added or gone, and the cluster's objects that changed (nodes' addresses, podCIDRs, annotations and labels; pods; Services and their endpoints; NetworkPolicies; namespaces).

What changes by itself is left out unless --all: packet and byte counters (iptables, nft, ipset), conntrack, a learned neighbour that only ages (REACHABLE, STALE, DELAY and PROBE count as one state), learned bridge FDB entries, and process ids. A neighbour that appears, or turns FAILED or PERMANENT, is a change.

Output: a unified-diff-like text (- only in BEFORE, + only in AFTER), JSON (-o json or --json; schemas/diff.schema.json), or the same object as YAML (-o yaml).

Exit codes: 0 the snapshots were compared (changed or not: a change is not a fault); 2 usage errors (a file that is not a snapshot, a --node in neither).`
  static override examples = [
    {
      description: 'What changed on the cluster since this morning',
      command: '<%= config.bin %> collect --output-file now.json && <%= config.bin %> diff morning.json now.json',
    },
    {
      description: 'Only node2, counters and neighbour ageing included',
      command: '<%= config.bin %> diff before.json after.json --node node2 --all',
    },
    {description: 'As JSON, for a script', command: '<%= config.bin %> diff before.json after.json -o json'},
  ]
  static override enableJsonFlag = true
  static override args = {
    before: Args.string({description: 'The earlier snapshot (a file netctl collect wrote).', required: true}),
    after: Args.string({description: 'The later snapshot.', required: true}),
  }
  static override flags = {
    node: Flags.string({
      description: 'Show only this node (repeatable); the cluster objects are still compared.',
      multiple: true,
      helpValue: 'NAME',
    }),
    all: Flags.boolean({
      description: 'Compare what changes by itself too: counters, conntrack, neighbour and FDB ageing, process ids.',
      default: false,
    }),
  }

  async run(): Promise<Ending<DiffResult>> {
    const {args, flags} = await this.parse(Diff)
    const result = await diffSnapshotFiles(args.before, args.after, {
      all: flags.all,
      ...(flags.node ? {nodes: flags.node} : {}),
    })
    if (!this.jsonEnabled()) this.log(diffText(result))
    // a change is not a fault: the snapshots were compared
    return new Ending(diffJson(result))
  }
}
