/**
 * Which cluster a live command works on, and how it reaches the nodes: the one
 * resolver every live command uses (collect, check, trace and backend).
 *
 *   flags (clusterSourceFlags) --resolveSource()--> SourceSpec --openClusterSource()--> ClusterSource
 *
 * A lab (--lab) or an inventory file (--inventory) gives the nodes and their
 * access (netns or ssh). Without either, the cluster is Kubernetes, found as
 * kubectl finds it (--kubeconfig, $KUBECONFIG, ~/.kube/config, --context, or
 * the pod's service account), and its nodes are reached --via debug-pod (a
 * privileged pod per node, made on first use, reused for the run, deleted by
 * close(), and on SIGINT/SIGTERM/SIGHUP by kube-debug.ts) or --via ssh.
 * Transports handed out live for the whole run: their own close() does
 * nothing, the source's close() ends them all.
 */
import {existsSync} from 'node:fs'

import type {Detection} from '../cluster/detect.js'
import type {KubeCluster} from '../cluster/kube.js'
import type {KubeConnectOptions} from '../cluster/kube-config.js'
import type {KubeNetworkPolicy} from '../cluster/kube-types.js'
import {TRANSPORT_CLOSE_BOUND_MS} from '../defaults.js'
import {UsageError} from '../errors.js'
import type {Inventory, InventoryNode} from '../model/inventory.js'
import type {Transport, TransportChoice} from '../transport/index.js'
import {TransportError} from '../transport/types.js'
import {within} from '../util/wait.js'

/** The parsed flags of clusterSourceFlags (src/flags.ts); every field optional. */
export interface SourceFlags {
  lab?: string
  inventory?: string
  transport?: string
  kubeconfig?: string
  context?: string
  namespace?: string
  via?: string
  'debug-image'?: string
  'debug-namespace'?: string
  'ssh-host-template'?: string
  'ssh-user'?: string
  'ssh-identity'?: string
  'ssh-jump'?: string
  'ssh-config'?: string
}

export interface NodeSshOptions {
  /** {name} and {ip} are replaced per node; default "{ip}" */
  hostTemplate: string
  user?: string
  identityFile?: string
  jump?: string
  /** like ssh -F: the only ssh config read */
  configFile?: string
}

export type SourceSpec =
  | {kind: 'lab'; name: string; transport: TransportChoice; sshConfig?: string}
  | {kind: 'inventory'; file: string; transport: TransportChoice; sshConfig?: string}
  | {kind: 'kubernetes'; kube: KubeConnectOptions; via: 'debug-pod'; debugPod: {image?: string; namespace?: string}}
  | {kind: 'kubernetes'; kube: KubeConnectOptions; via: 'ssh'; ssh: NodeSshOptions}

export interface ClusterSource {
  spec: SourceSpec
  inventory: Inventory
  /** Kubernetes: the CNI and backend found, and every NetworkPolicy */
  detection?: Detection
  networkPolicies?: KubeNetworkPolicy[]
  /** Kubernetes: the API, for commands that read more or write (backend set) */
  cluster?: KubeCluster
  /** Kubernetes: the context used, and the namespace a bare pod name is in (-n, else the context's, else default) */
  kube?: {context: string; namespace: string}
  /** The run's transport to a node: made on first use, then the same one. */
  transportFor(node: InventoryNode): Transport
  /** End every transport (debug pods deleted, SSH connections closed); safe to call twice. */
  close(): Promise<void>
}

/** What a collect over the source takes from it: the transport to each node, and the NetworkPolicies its API holds. */
export function sourceCollectOptions(source: ClusterSource): {
  transportFactory: (node: InventoryNode) => Transport
  networkPolicies?: KubeNetworkPolicy[]
} {
  return {
    transportFactory: (node) => source.transportFor(node),
    ...(source.networkPolicies ? {networkPolicies: source.networkPolicies} : {}),
  }
}

const KUBE_FLAGS = [
  'kubeconfig',
  'context',
  'namespace',
  'via',
  'debug-image',
  'debug-namespace',
  'ssh-host-template',
  'ssh-user',
  'ssh-identity',
  'ssh-jump',
] as const
const SSH_FLAGS = ['ssh-host-template', 'ssh-user', 'ssh-identity', 'ssh-jump', 'ssh-config'] as const
const DEBUG_POD_FLAGS = ['debug-image', 'debug-namespace'] as const
const TEMPLATE_TOKENS = new Set(['name', 'ip'])

const given = (flags: SourceFlags, names: readonly (keyof SourceFlags)[]): Array<keyof SourceFlags> =>
  names.filter((n) => flags[n] !== undefined)

/** An SSH destination template: {name} and {ip} only, at least one of them. */
export function checkHostTemplate(template: string): string {
  const tokens = [...template.matchAll(/\{([^{}]*)\}/g)].map((m) => m[1]!)
  const unknown = tokens.find((t) => !TEMPLATE_TOKENS.has(t))
  if (unknown !== undefined)
    throw new UsageError(`--ssh-host-template ${template}: unknown {${unknown}} (use {name} or {ip})`)
  if (tokens.length === 0)
    throw new UsageError(
      `--ssh-host-template ${template}: must contain {name} or {ip}, or every node would be the same host`,
    )
  if (/[\s'"`$\\;|&<>]/.test(template.replace(/\{(name|ip)\}/g, '')))
    throw new UsageError(`--ssh-host-template ${template}: not a host name or ssh alias`)
  return template
}

/** --ssh-config names a file that must exist (as for ssh -F): said once, not once per node. */
function checkSshConfig(file: string): string {
  if (!existsSync(file)) throw new UsageError(`--ssh-config ${file}: no such file`, false)
  return file
}

/** A node's SSH destination from the template. */
export function nodeHost(template: string, node: Pick<InventoryNode, 'name' | 'internalIP'>): string {
  return template.replace(/\{name\}/g, node.name).replace(/\{ip\}/g, node.internalIP)
}

/**
 * The flags, checked: one source, and only the flags that go with it. Every
 * mistake is one line (UsageError, exit 2). Pure, so every rule is tested
 * without a cluster. `namespaced`: the command reads -n for its own arguments
 * (trace: a bare pod NAME, svc/NAME), so -n goes with a lab or an inventory too.
 */
export function resolveSource(flags: SourceFlags, opts: {namespaced?: boolean} = {}): SourceSpec {
  const flag = (n: string): string => `--${n}`
  if (flags.lab !== undefined && flags.inventory !== undefined)
    throw new UsageError('--lab and --inventory name two different clusters: give one')
  const fileSource = flags.lab !== undefined ? 'lab' : flags.inventory !== undefined ? 'inventory' : undefined
  if (fileSource) {
    // -n still names the namespace of the command's own arguments (trace's svc/NAME and pods) where the command reads it
    const kube = given(flags, KUBE_FLAGS).filter((n) => !(opts.namespaced && n === 'namespace'))
    if (kube.length > 0)
      throw new UsageError(`${flag(kube[0]!)} is for a Kubernetes cluster and cannot be used with --${fileSource}`)
    const transport = (flags.transport ?? 'auto') as TransportChoice
    const sshConfig = flags['ssh-config'] !== undefined ? {sshConfig: flags['ssh-config']} : {}
    return fileSource === 'lab'
      ? {kind: 'lab', name: flags.lab!, transport, ...sshConfig}
      : {kind: 'inventory', file: flags.inventory!, transport, ...sshConfig}
  }
  if (flags.transport !== undefined)
    throw new UsageError(
      '--transport is for --lab and --inventory; a Kubernetes cluster is reached --via debug-pod or --via ssh',
    )
  const kube: KubeConnectOptions = {
    ...(flags.kubeconfig !== undefined ? {kubeconfig: flags.kubeconfig} : {}),
    ...(flags.context !== undefined ? {context: flags.context} : {}),
    ...(flags.namespace !== undefined ? {namespace: flags.namespace} : {}),
  }
  const ssh = given(flags, SSH_FLAGS)
  const debugPod = given(flags, DEBUG_POD_FLAGS)
  const via = flags.via ?? (ssh.length > 0 ? 'ssh' : 'debug-pod')
  if (via === 'ssh') {
    if (debugPod.length > 0) throw new UsageError(`${flag(debugPod[0]!)} is for --via debug-pod, not --via ssh`)
    return {
      kind: 'kubernetes',
      kube,
      via: 'ssh',
      ssh: {
        hostTemplate: checkHostTemplate(flags['ssh-host-template'] ?? '{ip}'),
        ...(flags['ssh-user'] !== undefined ? {user: flags['ssh-user']} : {}),
        ...(flags['ssh-identity'] !== undefined ? {identityFile: flags['ssh-identity']} : {}),
        ...(flags['ssh-jump'] !== undefined ? {jump: flags['ssh-jump']} : {}),
        ...(flags['ssh-config'] !== undefined ? {configFile: flags['ssh-config']} : {}),
      },
    }
  }
  if (via !== 'debug-pod') throw new UsageError(`--via ${via}: expected debug-pod or ssh`)
  if (ssh.length > 0) throw new UsageError(`${flag(ssh[0]!)} is for --via ssh; the nodes are reached --via debug-pod`)
  return {
    kind: 'kubernetes',
    kube,
    via: 'debug-pod',
    debugPod: {
      ...(flags['debug-image'] !== undefined ? {image: flags['debug-image']} : {}),
      ...(flags['debug-namespace'] !== undefined ? {namespace: flags['debug-namespace']} : {}),
    },
  }
}

/** A transport the source owns: callers may close() it after each use, it stays open for the run. */
class RunTransport implements Transport {
  readonly target: string
  constructor(readonly inner: Transport) {
    this.target = inner.target
  }

  exec(script: string, opts?: Parameters<Transport['exec']>[1]): ReturnType<Transport['exec']> {
    return this.inner.exec(script, opts)
  }

  async close(): Promise<void> {
    /* the source closes the inner transport at the end of the run */
  }
}

/** A source from a spec: the inventory read, and transports made per node on first use. */
function makeSource(
  spec: SourceSpec,
  inventory: Inventory,
  factory: (node: InventoryNode) => Transport,
  extra: Partial<ClusterSource> = {},
): ClusterSource {
  const made = new Map<string, RunTransport>()
  let closing: Promise<void> | undefined
  return {
    spec,
    inventory,
    ...extra,
    transportFor(node) {
      if (closing) throw new TransportError(`node ${node.name}: the run is over`, 'config')
      let t = made.get(node.name)
      if (!t) {
        t = new RunTransport(factory(node))
        made.set(node.name, t)
      }
      return t
    },
    close() {
      closing ??= Promise.allSettled(
        [...made.values()].map((t) =>
          within(
            t.inner.close().catch(() => undefined),
            TRANSPORT_CLOSE_BOUND_MS,
            undefined,
          ),
        ),
      ).then(() => undefined)
      return closing
    },
  }
}

/**
 * Open the cluster a spec names: read its inventory (a lab's, a file, or the
 * Kubernetes API's with the CNI and backend detected) and get ready to reach
 * its nodes. Nothing is made on the nodes until a transport is used.
 * `orElse` names what else the command takes instead of a cluster (trace's
 * --snapshot), for the error when there is no Kubernetes config either.
 */
export async function openClusterSource(spec: SourceSpec, opts: {orElse?: string[]} = {}): Promise<ClusterSource> {
  if (spec.kind !== 'kubernetes') {
    const {createTransport} = await import('../transport/index.js')
    const sshConfig = spec.sshConfig === undefined ? undefined : checkSshConfig(spec.sshConfig)
    const inventory =
      spec.kind === 'lab'
        ? await (await import('../lab/inventory.js')).labInventoryOf(spec.name)
        : await (await import('../cluster/inventory.js')).loadInventory(spec.file)
    return makeSource(spec, inventory, (node) =>
      createTransport(node, spec.transport, sshConfig === undefined ? {} : {sshConfig}),
    )
  }
  const {KubeCluster} = await import('../cluster/kube.js')
  const {detectCni} = await import('../cluster/detect.js')
  let cluster: InstanceType<typeof KubeCluster>
  try {
    cluster = await KubeCluster.connect(spec.kube)
  } catch (error) {
    // nothing named and no kubeconfig either: say what else could be named
    if (error instanceof Error && /^no Kubernetes config:/.test(error.message)) {
      const others = ['a lab (--lab NAME)', 'an inventory file (--inventory FILE)', ...(opts.orElse ?? [])]
      throw new UsageError(`${error.message}; or name ${others.slice(0, -1).join(', ')} or ${others.at(-1)}`)
    }
    throw error
  }
  const {objects, notes} = await cluster.objects()
  const detection = detectCni(objects)
  detection.details.notes.push(...notes)
  const inventory = await cluster.inventory(detection)
  const extra = {
    detection,
    networkPolicies: objects.networkPolicies,
    cluster,
    kube: {context: cluster.api.config.context, namespace: cluster.namespace},
  }
  if (spec.via === 'ssh') {
    const {sshTransport} = await import('../transport/ssh.js')
    const {user, identityFile, jump} = spec.ssh
    const configFile = spec.ssh.configFile === undefined ? undefined : checkSshConfig(spec.ssh.configFile)
    return makeSource(
      spec,
      inventory,
      (node) =>
        sshTransport({
          host: nodeHost(spec.ssh.hostTemplate, node),
          node: node.name,
          ...(user ? {user} : {}),
          ...(identityFile ? {identityFile} : {}),
          ...(jump ? {proxyJump: jump} : {}),
          ...(configFile ? {configFile} : {}),
        }),
      extra,
    )
  }
  const {debugPodTransports} = await import('../transport/kube-debug.js')
  const {image, namespace} = spec.debugPod
  return makeSource(
    spec,
    inventory,
    debugPodTransports({api: cluster.api, ...(image ? {image} : {}), ...(namespace ? {namespace} : {})}),
    extra,
  )
}
