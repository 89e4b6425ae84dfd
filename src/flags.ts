import {Flags} from '@oclif/core'

import {DEFAULT_DEBUG_IMAGE, DEFAULT_PARALLEL, DEFAULT_TIMEOUT_MS} from './defaults.js'
import {durationMs} from './util/duration.js'

/**
 * --lab NAME for lab commands (--name, its old spelling, still works): one lab
 * per name; every namespace of it is called NAME.*. No -n: as in kubectl, -n
 * is a Kubernetes namespace and nothing else.
 */
export const labNameFlag = Flags.string({
  description: 'Name of the lab (also --name); every namespace it makes is called NAME.<something>.',
  aliases: ['name'],
  default: 'netctl',
  helpValue: 'NAME',
})

/** --lab NAME for commands that work in one existing lab (lab policy ...). */
export const labFlag = Flags.string({description: 'The lab.', default: 'netctl', helpValue: 'NAME'})

/** The formats every command prints its result in, as kubectl's -o: text for a person, json and yaml (the same object) for a program. */
export const OUTPUT_FORMATS = ['text', 'json', 'yaml'] as const
/** Formats printed from the result object (logJson) rather than by the command's text renderer. */
export const STRUCTURED_FORMATS: readonly string[] = ['json', 'yaml']

/** -o/--output FORMAT, as kubectl's; --json stays as the same thing as -o json. */
export function outputFlag(formats: readonly string[] = OUTPUT_FORMATS, extra = '') {
  return Flags.string({
    char: 'o',
    description: `Output format: ${formats.join(', ')} (--json is -o json; -o yaml is the same object as YAML)${extra}.`,
    options: [...formats],
    default: 'text',
    helpValue: 'FORMAT',
    helpGroup: 'GLOBAL',
  })
}

/**
 * `-o json`, `-ojson`, `-o=json`, `--output json`, `--output=json` before any `--`:
 * the last one given, read from argv because the format must be known before
 * (and without) a successful parse, so that usage errors come out as JSON/YAML too.
 */
export function outputFromArgv(argv: string[]): string | undefined {
  let found: string | undefined
  for (let i = 0; i < argv.length && argv[i] !== '--'; i++) {
    const a = argv[i]!
    if (a === '-o' || a === '--output') found = argv[i + 1]
    else if (a.startsWith('--output=')) found = a.slice('--output='.length)
    else if (/^-o[^-]/.test(a)) found = a.slice(2).replace(/^=/, '')
  }
  return found
}

/**
 * --snapshot FILE: the input file of commands that can work on a saved
 * snapshot. -f/--filename as kubectl names the file a command reads.
 */
export const snapshotFlag = (description: string, oldChars: Array<'s'> = [], rules: {exclusive?: string[]} = {}) =>
  Flags.string({
    char: 'f',
    charAliases: oldChars,
    aliases: ['filename'],
    description: `${description} Also -f/--filename.`,
    helpValue: 'FILE',
    helpGroup: 'CLUSTER',
    ...rules,
  })

/**
 * How to reach a Kubernetes cluster, with kubectl's names and precedence:
 * --kubeconfig, else $KUBECONFIG (several files merged), else ~/.kube/config,
 * else the pod's service account when netctl runs in a pod.
 */
export const kubeFlags = {
  kubeconfig: Flags.string({
    description:
      'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the in-cluster service account).',
    helpGroup: 'KUBERNETES',
  }),
  context: Flags.string({
    description: 'The kubeconfig context to use (default: its current-context).',
    helpGroup: 'KUBERNETES',
  }),
  namespace: Flags.string({
    char: 'n',
    description: "Namespace (default: the context's namespace, else default).",
    helpGroup: 'KUBERNETES',
  }),
}

/** --via debug-pod: the debug pod's image and namespace. */
export const debugPodFlags = {
  'debug-image': Flags.string({
    aliases: ['image'],
    description: `Image of the debug pod, also --image (needs nsenter and sh; default ${DEFAULT_DEBUG_IMAGE}).`,
    helpGroup: 'DEBUG POD',
  }),
  'debug-namespace': Flags.string({
    description: "Namespace the debug pods go in (default: the context's namespace).",
    helpGroup: 'DEBUG POD',
  }),
}

/** --via ssh for Kubernetes nodes: where each node is and how to log in (the rest comes from ~/.ssh/config). */
export const nodeSshFlags = {
  'ssh-host-template': Flags.string({
    description:
      'SSH destination of each node: {name} is the node name, {ip} its InternalIP, e.g. {name}.example.net or an alias of ~/.ssh/config (default: the InternalIP).',
    helpValue: 'TEMPLATE',
    helpGroup: 'SSH',
  }),
  'ssh-user': Flags.string({
    description: 'SSH user on the nodes (default: the ssh config, else the local user).',
    helpGroup: 'SSH',
  }),
  'ssh-identity': Flags.string({
    description: 'Private key to log in with (default: the ssh config and the agent).',
    helpValue: 'FILE',
    helpGroup: 'SSH',
  }),
  'ssh-jump': Flags.string({
    description: 'Jump host(s) on the way, as ssh -J: [user@]host[:port][,...].',
    helpValue: 'HOST',
    helpGroup: 'SSH',
  }),
}

/**
 * -F FILE, as `ssh -F`: the one ssh config read for every node reached over
 * SSH (an inventory's, a lab's with --transport ssh, Kubernetes --via ssh),
 * instead of ~/.ssh/config and /etc/ssh/ssh_config.
 */
export const sshConfigFlag = Flags.string({
  char: 'F',
  description:
    'SSH config file to read instead of ~/.ssh/config and /etc/ssh/ssh_config, as ssh -F: for nodes reached over SSH (an inventory, a lab with --transport ssh, or Kubernetes nodes, which it sends --via ssh).',
  helpValue: 'FILE',
  helpGroup: 'SSH',
})

/**
 * Where a live command's cluster comes from (src/collect/source.ts): a lab
 * (--lab), an inventory file (--inventory), or else Kubernetes, reached as
 * kubectl would (--kubeconfig, $KUBECONFIG, --context, in-cluster), its nodes
 * through debug pods or SSH (--via).
 */
export const clusterSourceFlags = {
  lab: Flags.string({description: 'The lab of this name (its inventory).', helpValue: 'NAME', helpGroup: 'CLUSTER'}),
  inventory: Flags.string({
    char: 'i',
    description: 'The nodes of this inventory file (see docs/inventory.md).',
    helpValue: 'FILE',
    helpGroup: 'CLUSTER',
  }),
  transport: Flags.string({
    description:
      'With --lab or --inventory, how to reach nodes the inventory gives both ways in (a lab with --ssh); default auto, which takes the netns.',
    options: ['auto', 'netns', 'ssh'],
    helpGroup: 'CLUSTER',
  }),
  ...kubeFlags,
  via: Flags.string({
    description:
      'How to reach Kubernetes nodes: a privileged debug pod per node, or SSH (default: ssh when an --ssh-* flag is given, else debug-pod).',
    options: ['debug-pod', 'ssh'],
    helpGroup: 'KUBERNETES',
  }),
  ...debugPodFlags,
  ...nodeSshFlags,
  'ssh-config': sshConfigFlag,
}

/**
 * How a live command reads the nodes: how many at once and how long each may
 * take (src/defaults.ts); the same words in every command that collects.
 */
export const collectFlags = {
  parallel: Flags.integer({description: 'Nodes probed at the same time.', default: DEFAULT_PARALLEL, min: 1, max: 256}),
  timeout: Flags.integer({
    description:
      'Seconds each node may take before it counts as unreachable (with --via debug-pod, starting the pod counts in it).',
    default: DEFAULT_TIMEOUT_MS / 1000,
    min: 1,
    max: 3600,
  }),
}

/**
 * Which cluster `backend` works on: a lab, an inventory file, or else the
 * Kubernetes cluster of the kubeconfig (the clusterSourceFlags), and how long
 * each node may take.
 */
export const clusterFlags = {
  ...clusterSourceFlags,
  timeout: collectFlags.timeout,
}

/**
 * --lock-timeout DURATION for commands that take a cluster's change lock
 * (src/backend/act/lock.ts): how long to wait for another run's change; 0 refuses at once.
 * Parsed here, so that every such command gets milliseconds (or a usage error) from oclif.
 */
export const lockTimeoutFlag = Flags.custom<number>({
  description:
    "How long to wait for another run's change of this cluster to end, as kubectl durations: 0 (refuse at once), 30s, 5m.",
  default: 0,
  // help shows a falsy default not at all: say it as typed
  defaultHelp: async () => '0',
  helpValue: 'DURATION',
  parse: async (text) => durationMs(text),
})()

/** The names of clusterSourceFlags: a saved snapshot (--snapshot) excludes every one of them. */
export const SOURCE_FLAG_NAMES: string[] = Object.keys(clusterSourceFlags)

/** The source flags given, as --name, in the list's order: what a saved snapshot (or two) rules out. */
export function sourceFlagsGiven(flags: Readonly<Record<string, unknown>>): string[] {
  return SOURCE_FLAG_NAMES.filter((n) => flags[n] !== undefined).map((n) => `--${n}`)
}
