import {Args, Flags} from '@oclif/core'

import {DEFAULT_TRACE_SIZE, type TraceQuery} from '../src/analyze/trace/api.js'
import {BaseCommand} from '../src/base-command.js'
import {Ending, UsageError} from '../src/errors.js'
import {
  clusterSourceFlags,
  collectFlags,
  OUTPUT_FORMATS,
  outputFlag,
  snapshotFlag,
  SOURCE_FLAG_NAMES,
} from '../src/flags.js'
import type {Protocol} from '../src/model/trace.js'
import {traceJson, traceRoundsLine, traceText} from '../src/render/trace.js'
import {runTrace} from '../src/services/trace.js'

/** --port: a number (1-65535) or a Service port's name; oclif names the flag before a refusal */
const portFlag = Flags.custom<number | string>({
  parse: async (text) => {
    if (!/^\d+$/.test(text)) return text
    const n = Number(text)
    if (n < 1 || n > 65535) throw new UsageError(`${text}: a port is 1 to 65535`)
    return n
  },
})

/** trace's formats: kubectl's, and the path as a graph */
const FORMATS = [...OUTPUT_FORMATS, 'mermaid', 'dot'] as const

export default class Trace extends BaseCommand {
  static override summary =
    'Trace a packet from one pod (or node) to another, hop by hop, and say where and why it stops.'
  static override description = `Walks the packet through the cluster's real dataplane state: the source pod's routes, the veth into the node, the bridge, the node's route to the destination's podCIDR, the neighbour and FDB entries that lead into the tunnel, the encapsulation, the underlay, the receiver's decapsulation, and on to the destination pod. Then it walks the reply back. Every hop shows the exact route, neighbour, FDB entry, firewall rule or sysctl behind its decision, and the walk ends in one disposition: DELIVERED, NO_ROUTE, BLACKHOLE, NEIGHBOR_UNRESOLVED, FDB_MISS, DECAP_REJECTED, DENIED, FORWARDING_DISABLED, RP_FILTER_DROP, MTU_EXCEEDED, LOOP or INSUFFICIENT_INFO (netctl explain DISPOSITION says what each means). Faults along the way come with their fix.

--probe then checks the walk against one real packet: confirmed when they agree (a DENIED walk with the counter of the dropping rule); UNDERLAY_DROP (a finding naming the two node addresses and the encapsulation to open, or the MTU when the same ping passes small) when the packet left one node's uplink and never reached the next node's, or the uplink dropped it on its way out; MODEL_DISAGREES when they part elsewhere, or a drop rule on the path counted the packets a delivering walk lost. A node without ping, nc or nsenter is a note, not a failure; --timeout bounds each exec.

SRC and DST are a pod (NAME, NAMESPACE/NAME or its IP) or a node (its name or InternalIP). With -n a bare NAME is a pod of that namespace, as kubectl reads it (in a Kubernetes cluster without -n, of the context's); -n goes with --lab, --inventory and --snapshot too.

DST can be a Service: svc/NAME (in the -n namespace), svc/NAMESPACE/NAME, a ClusterIP, NODE:NODEPORT or NODEIP:NODEPORT, one of its external IPs or its load balancer's IP (IP or IP:PORT), dns (the cluster DNS, UDP 53), or NAME.NAMESPACE.svc[.cluster.local] (NAME.NAMESPACE too, as a pod's resolver completes it, when no pod or node has that name); --port takes the Service port's number or name, the protocol is the port's. The trace shows kube-proxy's translation (the rule and the node), lists every endpoint with its share of connections, walks each there and back (--endpoint IP|POD walks one), and is DELIVERED only when every endpoint is reached.

Where the state comes from: --snapshot FILE (a saved netctl collect), a lab (--lab NAME), an inventory file (--inventory FILE), or else the Kubernetes cluster of the kubeconfig, found as kubectl finds it (--kubeconfig, $KUBECONFIG, ~/.kube/config, --context, or the pod's service account), its nodes reached through a privileged debug pod each (--via debug-pod, the default; deleted at the end, also on error and Ctrl-C) or over SSH (--via ssh). Live, netctl reads only the nodes it needs: SRC's and DST's first, then any node the walk passes through.

NetworkPolicies (Kubernetes) that select DST for Ingress or SRC for Egress are reported as POLICY_UNENFORCED when the CNI does not enforce them (plain flannel; Calico and Canal do).

Output: text (default), JSON (-o json or --json; schemas/trace.schema.json), the same object as YAML (-o yaml), or a graph: -o mermaid (paste into Markdown) or -o dot (pipe into graphviz).

Exit codes: 0 delivered both ways with no error finding; 1 anything else (the output says what and where); 2 usage errors (an unknown pod, a bad flag); 3 SRC's node could not be reached.`
  static override examples = [
    {
      description: 'Trace between two pods of the current kubeconfig context, in namespace shop',
      command: '<%= config.bin %> trace -n shop web-7d4b9c-x2x8q db-0',
    },
    {
      description: 'Pods of two namespaces, another context, nodes over SSH',
      command: '<%= config.bin %> trace shop/web-7d4b9c-x2x8q payments/api-0 --context prod --via ssh --ssh-user admin',
    },
    {
      description: 'Trace between two pods of a lab',
      command: '<%= config.bin %> trace pod-node1-1 pod-node3-2 --lab demo',
    },
    {
      description: 'A TCP connection to port 8080 of a pod given by IP, on nodes listed in an inventory',
      command: '<%= config.bin %> trace default/web 10.244.3.7 --inventory cluster.yaml --protocol tcp --port 8080',
    },
    {
      description: 'From a saved snapshot, drawn as a Mermaid flowchart',
      command: '<%= config.bin %> trace web db --snapshot snap.json -o mermaid',
    },
    {
      description: 'To a Service: every endpoint kube-proxy sends to, walked there and back',
      command: '<%= config.bin %> trace pod-node1-2 svc/default/web --lab demo',
    },
    {
      description: 'The cluster DNS (UDP 53) from a pod of namespace shop',
      command: '<%= config.bin %> trace -n shop web-7d4b9c-x2x8q dns',
    },
    {
      description: 'A NodePort of node2 from a pod of a lab',
      command: '<%= config.bin %> trace pod-node1-2 node2:30080 --lab demo',
    },
    {
      description: 'Would a full-size packet with DF set fit through the overlay?',
      command: '<%= config.bin %> trace pod-node1-1 pod-node3-2 --lab demo --size 1500 --df',
    },
    {
      description:
        'Confirm the walk with real packets, and find a drop in the network between the nodes (UNDERLAY_DROP)',
      command: '<%= config.bin %> trace pod-node1-1 pod-node2-1 --lab demo --probe',
    },
  ]
  static override enableJsonFlag = true
  static override args = {
    src: Args.string({
      description: 'Where the packet starts: a pod (NAME, NAMESPACE/NAME, IP) or a node (name, IP).',
      required: true,
    }),
    dst: Args.string({
      description:
        'Where it is going: a pod or a node, as SRC, or a Service (svc/[NAMESPACE/]NAME, a ClusterIP, NODE:NODEPORT, an external or load-balancer IP[:PORT], dns, NAME.NAMESPACE[.svc]).',
      required: true,
    }),
  }
  static override flags = {
    protocol: Flags.string({
      char: 'p',
      description:
        "The packet: an ICMP echo, a TCP SYN or a UDP datagram (default: icmp; to a Service, its port's protocol).",
      options: ['icmp', 'tcp', 'udp'],
    }),
    port: portFlag({
      description: 'Destination port (with --protocol tcp or udp); to a Service, its port by number or name.',
      helpValue: 'PORT|NAME',
    }),
    endpoint: Flags.string({
      description:
        'To a Service: walk only this endpoint (its IP, or its pod as NAME or NAMESPACE/NAME); default: every endpoint.',
      helpValue: 'IP|POD',
    }),
    size: Flags.integer({
      description: 'Bytes of the IP packet the source sends (84: a plain ping).',
      default: DEFAULT_TRACE_SIZE,
      min: 28,
      max: 65535,
      helpValue: 'BYTES',
    }),
    df: Flags.boolean({
      description: "Set Don't Fragment: a packet too big for a link is dropped (MTU_EXCEEDED) instead of fragmented.",
      default: false,
    }),
    probe: Flags.boolean({
      description:
        "After the walk, send the trace's packet for real from inside SRC's network namespace (through its node's transport) and read on every node the walk crosses, before and after: the interface counters (ip -s -j link, less the IPv6 multicast each received: /proc/net/dev_snmp6), the counters of the iptables/nft rules the walk used there (iptables-save -c, nft -j list ruleset), and after the send the flow's conntrack entries (conntrack -L). It sends 3 ICMP echoes (ping -c 3, payload pattern 6e657463746c, --size and --df as given), or 3 TCP connects (nc -z) or 3 UDP datagrams (nc -u) to --port; a lost DF ping over 84 bytes is sent again at 84 (3 echoes) to tell an MTU. Nothing else is sent and nothing is changed on any node. Live sources only (not with --snapshot).",
      default: false,
    }),
    output: outputFlag(FORMATS, '; mermaid and dot draw the path as a graph'),
    snapshot: snapshotFlag('Trace over a snapshot written by netctl collect (no cluster is read).', [], {
      // -n names the namespace of SRC and DST, which a snapshot has too
      exclusive: SOURCE_FLAG_NAMES.filter((n) => n !== 'namespace'),
    }),
    ...clusterSourceFlags,
    ...collectFlags,
  }

  async run(): Promise<Ending> {
    const {args, flags} = await this.parse(Trace)
    const format = this.jsonEnabled() ? 'json' : flags.output
    const query: TraceQuery = {
      src: args.src,
      dst: args.dst,
      ...(flags.protocol === undefined ? {} : {protocol: flags.protocol as Protocol}),
      ...(flags.port === undefined ? {} : {port: flags.port}),
      ...(flags.endpoint === undefined ? {} : {endpoint: flags.endpoint}),
      ...(flags.namespace === undefined ? {} : {namespace: flags.namespace}),
      size: flags.size,
      df: flags.df,
    }
    // Live progress only for a person watching a terminal (one with a width: a bare pty reports 0 columns); piped, nothing but the result.
    const terminal = process.stderr.isTTY === true && (process.stderr.columns ?? 0) > 0
    const ui =
      flags.snapshot === undefined && !this.jsonEnabled() && terminal
        ? await import('../src/render/trace-progress.js')
        : undefined
    const run = await runTrace({
      query,
      snapshot: flags.snapshot,
      source: flags,
      parallel: flags.parallel,
      timeoutMs: flags.timeout * 1000,
      version: this.config.version,
      probe: flags.probe,
      display: ui?.traceProgressDisplay(query),
    })
    if (this.debugEnabled() && flags.snapshot === undefined)
      process.stderr.write(`${traceRoundsLine(run.rounds, run.snapshot)}\n`)

    if (format === 'text') this.log(traceText(run.trace))
    // the graphs' renderer only when a graph is asked for (every module loaded is start-up time)
    else if (format === 'mermaid') this.log((await import('../src/render/trace-graph.js')).traceMermaid(run.trace))
    else if (format === 'dot') this.log((await import('../src/render/trace-graph.js')).traceDot(run.trace))
    return new Ending(traceJson(run.trace), {outcome: run.outcome})
  }
}
