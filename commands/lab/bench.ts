import {Flags} from '@oclif/core'

import {BaseCommand} from '../../src/base-command.js'
import {Ending} from '../../src/errors.js'
import {parseBackendList} from '../../src/lab/bench.js'
import {benchInterruptedLine, benchJson, benchProgressLine, benchText} from '../../src/render/bench.js'
import {runLabBench} from '../../src/services/lab.js'

export default class LabBench extends BaseCommand {
  static override summary = 'Measure pod-to-pod throughput and latency of each backend, side by side.'
  static override description = `For each backend in turn, builds a small lab (2 nodes, 2 pods per node, flat underlay) named NAME-<backend>, waits until its pods reach each other, and measures from inside pod namespaces: TCP throughput with iperf3 (a one-off server in the destination pod, bound to its IP) and latency with ping (-i 0.01, root only), for a same-node pod pair (the baseline) and a cross-node pair, taking turns for --rounds rounds and keeping each pair's median round. It also reads the pod MTU and probes the path MTU with DF pings. Each lab is torn down afterwards, also on failure and on Ctrl-C.

The table shows the cross-node numbers and their ratio to the same-node pair of the same lab. Everything runs on one machine: the numbers measure the CPU cost of encapsulation and forwarding, not a real wire. A backend whose lab cannot be built gets a "failed:" row and the run goes on; the exit code is then 1.`
  static override examples = [
    {description: 'Every backend this machine can build', command: '<%= config.bin %> lab bench'},
    {
      description: 'Two backends, 1-second iperf3 tests',
      command: '<%= config.bin %> lab bench --backends flannel-vxlan,flannel-host-gw --seconds 1',
    },
    {description: 'As JSON, labs named mine-f-vxlan, ...', command: '<%= config.bin %> lab bench --lab mine --json'},
  ]
  static override enableJsonFlag = true
  static override flags = {
    backends: Flags.custom({parse: async (text: string) => parseBackendList(text)})({
      description: 'Comma-separated backends to measure (default: every backend whose programs are installed here).',
    }),
    seconds: Flags.integer({description: 'Length of each iperf3 test, in seconds.', default: 3, min: 1, max: 60}),
    'ping-count': Flags.integer({description: 'Pings per pod pair (10 ms apart).', default: 100, min: 1, max: 10_000}),
    rounds: Flags.integer({
      description: 'Rounds per pod pair, same-node and cross-node taking turns; each pair reports its median round.',
      default: 3,
      min: 1,
      max: 20,
    }),
    lab: Flags.string({
      aliases: ['name'],
      description: "Base name of the labs (also --name): each backend's lab is NAME-<backend> (e.g. bench-f-vxlan).",
      default: 'bench',
      helpValue: 'NAME',
    }),
  }

  async run(): Promise<Ending> {
    const {flags} = await this.parse(LabBench)
    const json = this.jsonEnabled()
    const {report, verdict} = await runLabBench({
      name: flags.lab,
      seconds: flags.seconds,
      pingCount: flags['ping-count'],
      rounds: flags.rounds,
      ...(flags.backends ? {backends: flags.backends} : {}),
      // the steps only for a person watching a terminal; piped, nothing but the result
      ...(!json && process.stderr.isTTY ? {progress: benchProgressLine} : {}),
      interrupted: benchInterruptedLine,
    })
    if (!json) this.log(benchText(report))
    return new Ending(benchJson(report), verdict)
  }
}
