import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../src/base-command.js'
import {Ending} from '../src/errors.js'
import {
  clusterSourceFlags,
  collectFlags,
  OUTPUT_FORMATS,
  outputFlag,
  snapshotFlag,
  sourceFlagsGiven,
} from '../src/flags.js'
import {matrixDiffText, matrixHtml, matrixSvg, matrixText} from '../src/render/matrix.js'
import {runMatrix} from '../src/services/matrix.js'

/** matrix's formats: kubectl's, and the heat map */
const FORMATS = [...OUTPUT_FORMATS, 'svg', 'html'] as const

export default class Matrix extends BaseCommand {
  static override summary =
    'Walk every node pair (one pod per node) and show which reach each other: a grid, a heat map, or what changed between two snapshots.'
  static override description = `The trace walk (netctl trace) for every pair of nodes, from one pod on each (the first by name that is not host-network) to one pod on the other, request and reply (an ICMP echo): each cell is the walk's disposition, DELIVERED only when the reply came back too. With --all-pods every pod pair is walked. With --services every TCP and UDP port of every Service with a ClusterIP is a column too: the Service trace (netctl trace POD svc/NS/NAME --port PORT) from each row's pod, which walks every endpoint kube-proxy's rules send to; the cell is DELIVERED when every one is reached both ways, partial when some are ("2 of 3 endpoints", and which were not, and why), else the first failing endpoint's disposition.

Text: up to 50 nodes a grid, one character per pair (rows: from, columns: to; . delivered, a letter per disposition, the legend below), then the failing pairs grouped by cause (the disposition, which way failed, the node where the walk stopped, the findings); beyond 50 only the groups. Service columns follow after a gap, lower case for a partial cell. -o svg is a heat map (a square per pair, coloured by disposition, failing squares crossed, the cause as a tooltip; a partial Service square has a green band as high as the share of endpoints reached, and a single stroke); -o html the same in a page with the legend and the groups. -o json: schemas/matrix.schema.json.

With two snapshots, BEFORE and AFTER (files netctl collect wrote), only the pairs whose disposition changed are shown, each with what changed (as netctl diff prints it) on the nodes its walks cross, before or after.

Where one state comes from: --snapshot FILE, a lab (--lab NAME), an inventory file (--inventory FILE), or else the Kubernetes cluster of the kubeconfig (every node is read, as netctl collect does).

Exit codes: 0 every pair (and Service cell) delivered (with two snapshots: no pair that was delivered fails now, no Service cell reaches fewer endpoints); 1 a pair or a Service cell fails (or now fails); 2 usage errors; 3 no node could be collected.`
  static override examples = [
    {description: 'Every node pair of a lab', command: '<%= config.bin %> matrix --lab demo'},
    {
      description: 'Every pod pair of a saved snapshot, as a heat map to open in a browser',
      command: '<%= config.bin %> matrix --snapshot snap.json --all-pods -o html > matrix.html',
    },
    {
      description: 'Every Service from one pod per node: how many of its endpoints each reaches',
      command: '<%= config.bin %> matrix --lab demo --services',
    },
    {
      description: 'Which pairs a change broke or mended, and the state that explains each',
      command: '<%= config.bin %> matrix before.json after.json',
    },
  ]
  static override enableJsonFlag = true
  static override args = {
    before: Args.string({description: 'With AFTER: the earlier snapshot; only changed pairs are shown.'}),
    after: Args.string({description: 'The later snapshot.'}),
  }
  static override flags = {
    'all-pods': Flags.boolean({description: 'Walk every pod pair, not one pod per node.', default: false}),
    services: Flags.boolean({
      description: "A column per Service port: how many of the Service's endpoints each row's pod reaches.",
      default: false,
    }),
    output: outputFlag(FORMATS, '; svg and html draw a heat map'),
    snapshot: snapshotFlag('The matrix of a snapshot written by netctl collect (no cluster is read).'),
    ...clusterSourceFlags,
    ...collectFlags,
  }

  async run(): Promise<Ending> {
    const {args, flags} = await this.parse(Matrix)
    const format = this.jsonEnabled() ? 'json' : flags.output
    const answer = await runMatrix({
      before: args.before,
      after: args.after,
      snapshot: flags.snapshot,
      source: flags,
      clusterFlags: sourceFlagsGiven(flags),
      format,
      allPods: flags['all-pods'],
      services: flags.services,
      version: this.config.version,
      parallel: flags.parallel,
      timeoutMs: flags.timeout * 1000,
    })
    if (answer.kind === 'diff') {
      if (format === 'text') this.log(matrixDiffText(answer.diff))
      return new Ending(answer.diff, answer.verdict)
    }
    if (format === 'text') this.log(matrixText(answer.matrix))
    else if (format === 'svg') this.log(matrixSvg(answer.matrix))
    else if (format === 'html') this.log(matrixHtml(answer.matrix))
    return new Ending(answer.matrix, answer.verdict)
  }
}
