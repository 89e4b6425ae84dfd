import {Flags} from '@oclif/core'

import {BaseCommand} from '../../src/base-command.js'
import {Ending} from '../../src/errors.js'
import {labNameFlag} from '../../src/flags.js'
import {
  HOST_PROFILES,
  type HostProfile,
  LAB_AGENT_DEFAULTS,
  PROXY_MODES,
  type ProxyMode,
} from '../../src/lab/agents/defaults.js'
import {parseNamespaceLabels, parsePodLabels, parsePodNamespaces, parsePodPorts} from '../../src/lab/topology.js'
import {LAB_BACKENDS, LAB_TOPOLOGIES, type LabBackendName, type LabTopology} from '../../src/lab/types.js'
import {labUpProgressLine, labUpText} from '../../src/render/lab.js'
import {runLabUp} from '../../src/services/lab.js'

export default class LabUp extends BaseCommand {
  static override summary = 'Build a real multi-node cluster dataplane in network namespaces.'
  static override description = `Creates, on this machine, a fabric namespace with the underlay bridge(s), one namespace per node and one per pod, veth pairs between them, and the chosen backend's real kernel state: flannel.1 with its routes, PERMANENT neighbours and FDB entries; host-gw routes; flannel0 with a UDP forwarder; Calico cali veths, proxy ARP and BIRD sessions; vxlan.calico.

Nothing is added to the root namespace. The lab writes an inventory file that other commands take with --inventory (or --lab NAME). Needs root.

Topologies: flat puts every node on one L2 segment; routed splits them over two subnets joined by a router namespace, so that host-gw really fails across the L3 hop.

Exit codes: 0 the lab is up; 2 a lab of that name exists already (lab down --lab NAME first), a bad flag, or this machine cannot build it (not root, a program missing: the line names the package); 1 a step failed on the way (what was made is removed again).`
  static override examples = [
    {description: 'A 3-node Flannel vxlan lab named demo', command: '<%= config.bin %> lab up --lab demo --nodes 3'},
    {
      description: 'Calico with BIRD route reflectors, as JSON',
      command: '<%= config.bin %> lab up --lab rr --nodes 5 --backend calico-rr --route-reflectors 2 --json',
    },
    {
      description: 'host-gw across a router: see the kernel refuse it',
      command: '<%= config.bin %> lab up --lab l3 --backend flannel-host-gw --topology routed',
    },
    {
      description: 'With sshd on every node, reachable through ip netns exec + nc',
      command: '<%= config.bin %> lab up --lab ssh --ssh',
    },
    {
      description: 'Pods labelled for NetworkPolicies (each has app=<pod name> already)',
      command:
        "<%= config.bin %> lab up --lab pol --backend calico-bgp --pod-labels 'pod-node1-1:role=db' --pod-labels '*:team=blue'",
    },
    {
      description: 'Pods in two namespaces, one labelled, with a named port',
      command:
        "<%= config.bin %> lab up --lab ns --backend calico-vxlan --pod-namespace '*:shop' --pod-namespace 'pod-node2-1:db' --namespace-labels 'shop:team=web' --pod-ports '*:http=8080'",
    },
    {
      description: "A node as found in the wild: kube-proxy's iptables rules, flanneld's, Docker's FORWARD DROP",
      command: '<%= config.bin %> lab up --lab real --proxy-mode iptables --host-profile docker',
    },
  ]
  static override enableJsonFlag = true
  static override flags = {
    lab: labNameFlag,
    nodes: Flags.integer({description: 'Number of nodes (2..50).', default: 3, min: 2, max: 50}),
    'pods-per-node': Flags.integer({description: 'Pods on each node.', default: 2, min: 0, max: 20}),
    backend: Flags.string({description: 'Overlay backend.', options: [...LAB_BACKENDS], default: 'flannel-vxlan'}),
    topology: Flags.string({
      description: 'Underlay: one L2 segment (flat) or two subnets behind a router (routed).',
      options: [...LAB_TOPOLOGIES],
      default: 'flat',
    }),
    'route-reflectors': Flags.integer({
      description: 'With --backend calico-rr: how many nodes are BGP route reflectors.',
      default: 1,
    }),
    ssh: Flags.boolean({
      description: 'Start a key-only sshd in every node and write an ssh config that reaches them.',
      default: false,
    }),
    'proxy-mode': Flags.string({
      description:
        "kube-proxy's mode on every node, with the lab's Services (cluster DNS, a NodePort, one without endpoints) and the CNI agent's rules (flanneld's or Felix's); none: no kube-proxy, no Services, no agent rules.",
      options: [...PROXY_MODES],
      default: LAB_AGENT_DEFAULTS.proxyMode,
    }),
    'host-profile': Flags.string({
      description:
        "What the node's distribution adds: plain (nothing), docker (rp_filter 2, Docker's chains, FORWARD policy DROP), firewalld (rp_filter 1, firewalld's inet table), ufw (rp_filter 1, ufw's chains, INPUT and FORWARD policy DROP).",
      options: [...HOST_PROFILES],
      default: LAB_AGENT_DEFAULTS.hostProfile,
    }),
    'pod-labels': Flags.string({
      description:
        'Labels for a pod beside its app=<pod name>, for NetworkPolicies to select: POD:KEY=VALUE[,KEY=VALUE] (repeatable; POD * is every pod).',
      multiple: true,
      default: [],
    }),
    'pod-namespace': Flags.string({
      description:
        'The Kubernetes namespace of a pod (default: default): POD:NAMESPACE (repeatable; POD * is every pod).',
      multiple: true,
      default: [],
    }),
    'namespace-labels': Flags.string({
      description:
        'Labels of a namespace, for namespaceSelectors (each has kubernetes.io/metadata.name=<name> already): NAMESPACE:KEY=VALUE[,KEY=VALUE] (repeatable).',
      multiple: true,
      default: [],
    }),
    'pod-ports': Flags.string({
      description:
        "A pod's container ports, which a NetworkPolicy can name: POD:NAME=PORT[/TCP|UDP|SCTP][,...] (repeatable; POD * is every pod).",
      multiple: true,
      default: [],
    }),
  }

  async run(): Promise<Ending> {
    const {flags} = await this.parse(LabUp)
    const result = await runLabUp({
      name: flags.lab,
      nodes: flags.nodes,
      podsPerNode: flags['pods-per-node'],
      backend: flags.backend as LabBackendName,
      topology: flags.topology as LabTopology,
      routeReflectors: flags['route-reflectors'],
      ssh: flags.ssh,
      proxyMode: flags['proxy-mode'] as ProxyMode,
      hostProfile: flags['host-profile'] as HostProfile,
      podLabels: parsePodLabels(flags['pod-labels']),
      podNamespaces: parsePodNamespaces(flags['pod-namespace']),
      namespaceLabels: parseNamespaceLabels(flags['namespace-labels']),
      podPorts: parsePodPorts(flags['pod-ports']),
      // the steps only for a person watching a terminal; piped, nothing but the result
      progress: !this.jsonEnabled() && process.stderr.isTTY ? labUpProgressLine : undefined,
    })
    if (!this.jsonEnabled()) this.log(labUpText(result))
    return new Ending(result)
  }
}
