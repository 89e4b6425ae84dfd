import {randomBytes} from 'node:crypto'
import {createRequire} from 'node:module'
import {PassThrough, Writable} from 'node:stream'

import {connectionError, KubeApi, KubeApiError, statusError} from '../cluster/kube-api.js'
import type {KubeConnectOptions} from '../cluster/kube-config.js'
import type {KubePod, KubeStatus} from '../cluster/kube-types.js'
import {
  DEBUG_POD_ACTIVE_DEADLINE_SECONDS,
  DEBUG_POD_DELETE_WAIT_MS,
  DEBUG_POD_SIGNAL_DELETE_MS,
  DEBUG_POD_START_TIMEOUT_MS,
  DEFAULT_DEBUG_IMAGE,
} from '../defaults.js'
import type {InventoryNode} from '../model/inventory.js'
import {type CleanupHandle, onInterrupt} from '../util/cleanup.js'
import {within} from '../util/wait.js'
import {remoteArgv, TIMEOUT_EXIT_CODE, wrapScript} from './remote-script.js'
import {ClusterRefusal, type ExecOptions, type Transport, TransportError, type TransportResult} from './types.js'

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
export const RUN_ID_LABEL = 'netctl.dev/run-id'
export const NODE_ANNOTATION = 'netctl.dev/node'
export const DEBUG_CONTAINER = 'debug'
/** channel protocols with a Status (and the exit code) on the error channel; v5 adds closing stdin */
const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io']

/** The command run in the debug pod: into every namespace of the host's PID 1, then sh reading the script from stdin. */
export function debugCommand(timeoutMs?: number): string[] {
  return ['nsenter', '-t', '1', '-m', '-u', '-n', '-i', ...remoteArgv(timeoutMs)]
}

/** A run id: one per netctl run, in every debug pod's labels, so leftovers of a run can be told from live pods. */
export function newRunId(): string {
  return `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
}

/** A pod name from a node name: DNS-1123 subdomain, at most 63 characters with its random tail. */
export function debugPodName(node: string): string {
  const base = node
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .replace(/[.-]+$/, '')
    .slice(0, 40)
    .replace(/[.-]+$/, '')
  return `netctl-debug-${base ? `${base}-` : ''}${randomBytes(3).toString('hex').slice(0, 5)}`
}

export interface DebugPodSpecOptions {
  name: string
  namespace: string
  node: string
  image: string
  runId: string
  activeDeadlineSeconds: number
}

/**
 * The debug pod: pinned to its node by nodeName (no scheduler, so cordons
 * and taints do not keep it off; it tolerates every taint anyway for the
 * NoExecute kind), in the host's network and PID namespaces, privileged so
 * that nsenter may enter PID 1's namespaces, never restarted, and bounded in
 * time by activeDeadlineSeconds.
 */
export function debugPodSpec(o: DebugPodSpecOptions): KubePod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: o.name,
      namespace: o.namespace,
      labels: {[MANAGED_BY_LABEL]: 'netctl', 'app.kubernetes.io/name': 'netctl-debug', [RUN_ID_LABEL]: o.runId},
      annotations: {
        [NODE_ANNOTATION]: o.node,
        'netctl.dev/purpose': 'read-only dataplane probe of the node (netctl); safe to delete',
      },
    },
    spec: {
      nodeName: o.node,
      hostNetwork: true,
      hostPID: true,
      dnsPolicy: 'ClusterFirstWithHostNet',
      restartPolicy: 'Never',
      activeDeadlineSeconds: o.activeDeadlineSeconds,
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      tolerations: [{operator: 'Exists'}],
      containers: [
        {
          name: DEBUG_CONTAINER,
          image: o.image,
          imagePullPolicy: 'IfNotPresent',
          // outlive the deadline: the pod ends by activeDeadlineSeconds or by netctl deleting it
          command: ['sleep', String(o.activeDeadlineSeconds + 60)],
          securityContext: {privileged: true},
          stdin: false,
          tty: false,
        },
      ],
    },
  }
}

/** Container waiting reasons that will not fix themselves while we wait. */
const FATAL_WAITING = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'CrashLoopBackOff',
])

/**
 * Why a debug pod will not start, from its status, or undefined while all is
 * well (Pending and pulling, or Running).
 */
export function podStartProblem(pod: KubePod): {reason: string; message: string} | undefined {
  const st = pod.status ?? {}
  if (pod.metadata.deletionTimestamp) return {reason: 'Deleted', message: 'the pod is being deleted'}
  if (st.phase === 'Failed' || st.phase === 'Succeeded') {
    const term = st.containerStatuses?.find((c) => c.state?.terminated)?.state?.terminated
    const why = st.reason ?? term?.reason ?? st.phase
    return {
      reason: why,
      message: `the pod ended (${why})${st.message ? `: ${st.message}` : term?.message ? `: ${term.message}` : ''}`,
    }
  }
  const sched = st.conditions?.find((c) => c.type === 'PodScheduled')
  if (sched?.status === 'False' && sched.reason === 'Unschedulable')
    return {reason: 'Unschedulable', message: `cannot be scheduled: ${sched.message ?? 'no node fits'}`}
  for (const c of st.containerStatuses ?? []) {
    const w = c.state?.waiting
    if (!w?.reason || !FATAL_WAITING.has(w.reason)) continue
    if (
      w.reason === 'ErrImagePull' ||
      w.reason === 'ImagePullBackOff' ||
      w.reason === 'InvalidImageName' ||
      w.reason === 'ErrImageNeverPull'
    ) {
      const detail = w.message ? `: ${w.message.replace(/^rpc error: code = \w+ desc = /, '')}` : ''
      return {
        reason: w.reason,
        message: `cannot pull image ${c.image ?? ''} (${w.reason}${detail}); choose a reachable image with --debug-image`,
      }
    }
    return {
      reason: w.reason,
      message: `container ${c.name} cannot start (${w.reason}${w.message ? `: ${w.message}` : ''})`,
    }
  }
  return undefined
}

function podRunning(pod: KubePod): boolean {
  return (
    pod.status?.phase === 'Running' &&
    (pod.status.containerStatuses ?? []).some((c) => c.name === DEBUG_CONTAINER && c.state?.running !== undefined)
  )
}

/** Where a pod stands, for a timeout message: "Pending (ContainerCreating)". */
function podStateWords(pod: KubePod | undefined): string {
  if (!pod) return 'not seen yet'
  const waiting = pod.status?.containerStatuses?.find((c) => c.state?.waiting)?.state?.waiting?.reason
  return `${pod.status?.phase ?? 'Pending'}${waiting ? ` (${waiting})` : pod.status?.containerStatuses ? '' : ' (no kubelet has taken it: is the node up?)'}`
}

// ---- the registry of live debug pods, deleted on SIGINT / SIGTERM / SIGHUP ------

interface LivePod {
  api: KubeApi
  namespace: string
  name: string
}

const live = new Map<string, LivePod>()
/** Held on the process's cleanup stack while any pod lives, from the first one made. */
let held: CleanupHandle | undefined

/** On a signal: delete every live pod at once, not waiting for them to go; say which could not be. */
async function deleteLive(): Promise<void> {
  const pods = [...live.values()]
  live.clear()
  held = undefined
  const results = await within(
    Promise.allSettled(pods.map((p) => deletePod(p.api, p.namespace, p.name, {wait: false}))),
    DEBUG_POD_SIGNAL_DELETE_MS,
    undefined,
  )
  const left = results
    ? pods.flatMap((p, i) =>
        results[i]!.status === 'rejected'
          ? [{...p, why: firstLineOf((results[i] as PromiseRejectedResult).reason)}]
          : [],
      )
    : pods.map((p) => ({...p, why: `no answer from the API server within ${DEBUG_POD_SIGNAL_DELETE_MS / 1000}s`}))
  if (left.length > 0) process.stderr.write(`${undeletedLine(left)}\n`)
}

function firstLineOf(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0]!
}

/**
 * One line naming the debug pods that could not be deleted and the command
 * that removes them later: said on stderr by the transport itself, because
 * a signal or a closing run has nobody else left to say it.
 */
export function undeletedLine(pods: ReadonlyArray<{namespace: string; name: string; why: string}>): string {
  const namespaces = [...new Set(pods.map((p) => p.namespace))]
  const list = pods.map((p) => `${p.namespace}/${p.name} (${p.why})`).join(', ')
  const cleanup = namespaces.length === 1 ? `netctl debug cleanup --namespace ${namespaces[0]}` : 'netctl debug cleanup'
  return `netctl: could not delete debug pod${pods.length === 1 ? '' : 's'} ${list}; remove ${pods.length === 1 ? 'it' : 'them'} with: ${cleanup}`
}

function register(p: LivePod): void {
  live.set(`${p.namespace}/${p.name}`, p)
  held ??= onInterrupt(() => `deleting ${live.size} debug pod${live.size === 1 ? '' : 's'}`, deleteLive)
}

function unregister(namespace: string, name: string): void {
  live.delete(`${namespace}/${name}`)
  if (live.size === 0) {
    held?.release()
    held = undefined
  }
}

/** Debug pods this process has running (their run ids are not leftovers). */
export function liveDebugPods(): Array<{namespace: string; name: string}> {
  return [...live.values()].map(({namespace, name}) => ({namespace, name}))
}

/**
 * Delete a pod (gone already is fine) with grace period 0: a graceful
 * deletion waits for the node's kubelet to confirm it, which a node whose
 * kubelet is down never does, and the pod would stay Terminating. The debug
 * pod only sleeps; nothing in it needs the time. With wait, until the API no
 * longer has it (bounded: a pod still there after that is an error).
 */
async function deletePod(api: KubeApi, namespace: string, name: string, opts: {wait: boolean}): Promise<void> {
  const p = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`
  let deleted: KubePod
  try {
    deleted = await api.delete<KubePod>(p, {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      gracePeriodSeconds: 0,
      propagationPolicy: 'Background',
    })
  } catch (error) {
    if (error instanceof KubeApiError && error.code === 'NOT_FOUND') return
    throw error
  }
  // a Status (or no deletionTimestamp) means the object is gone already
  if (!opts.wait || deleted?.kind !== 'Pod') return
  const how = await api
    .watch<KubePod>(
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
      {fieldSelector: `metadata.name=${name}`, resourceVersion: deleted.metadata?.resourceVersion},
      (ev) => ev.type === 'DELETED',
      {timeoutMs: DEBUG_POD_DELETE_WAIT_MS},
    )
    .catch(() => 'closed' as const)
  if (how === 'stopped') return
  // the watch timed out or broke: ask once more
  const still = await api.get<KubePod>(p).then(
    (pod) => pod,
    (error: unknown) => {
      if (error instanceof KubeApiError && error.code === 'NOT_FOUND') return undefined
      throw error
    },
  )
  if (still && still.metadata.uid === deleted.metadata.uid)
    throw new Error(
      `still ${still.metadata.deletionTimestamp ? 'Terminating' : 'there'} after ${DEBUG_POD_DELETE_WAIT_MS / 1000}s`,
    )
}

/**
 * Pod Security Admission's refusal of a pod, from the API's 403 Status:
 * `pods "x" is forbidden: violates PodSecurity "baseline:latest": host
 * namespaces (hostNetwork=true, hostPID=true), privileged (container "debug"
 * must not set ...)`. Returns the level and the names of the checks it failed.
 */
export function podSecurityRefusal(error: unknown): {level: string; checks: string[]} | undefined {
  if (!(error instanceof KubeApiError) || error.httpStatus !== 403) return undefined
  const m = /violates PodSecurity "([^"]+)": (.*)$/.exec((error.status?.message ?? '').split('\n')[0]!)
  if (!m) return undefined
  // the checks are "name (detail), name (detail)": keep the names, drop the parenthesised details
  let depth = 0
  let outer = ''
  for (const ch of m[2]!) {
    if (ch === '(') depth++
    else if (ch === ')') depth = Math.max(0, depth - 1)
    else if (depth === 0) outer += ch
  }
  return {
    level: m[1]!,
    checks: outer
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean),
  }
}

/** The one line for a namespace whose Pod Security level refuses the debug pod, with both ways out. */
export function podSecurityMessage(namespace: string, refusal: {level: string; checks: string[]}): string {
  return (
    `namespace "${namespace}" refuses netctl's privileged debug pod: PodSecurity "${refusal.level}" forbids ${refusal.checks.join(', ')}; ` +
    `allow it with kubectl label namespace ${namespace} pod-security.kubernetes.io/enforce=privileged, or put the debug pods in a namespace that does with --debug-namespace NAME`
  )
}

/**
 * Shared by the transports of one run: the first debug pod is created alone,
 * and the others wait for the API's answer to it, so that a refusal of the
 * whole namespace is met once, before any other node is touched.
 */
export interface DebugPodGate {
  first?: Promise<void>
}

// ---- the transport -----------------------------------------------------------

export interface KubeDebugOptions {
  /** the node to probe (its Kubernetes name) */
  node: string
  /** a client to share between the nodes of a run; else one is made from `kube` */
  api?: KubeApi
  kube?: KubeConnectOptions
  /** where the pod goes; default the context's namespace */
  namespace?: string
  image?: string
  /** default: a new one; share one between the transports of a run */
  runId?: string
  /** the run's gate (debugPodTransports shares one): the first pod is created before the others */
  gate?: DebugPodGate
  /** how long the pod may take to be Running (image pull included); default 120 s */
  startTimeoutMs?: number
  activeDeadlineSeconds?: number
}

interface StartedPod {
  api: KubeApi
  namespace: string
  name: string
}

/** The ws package (a dependency of netctl's own; client-node speaks it too), loaded on first use. */
/* eslint-disable @typescript-eslint/no-explicit-any -- ws is loaded untyped at run time */
let wsClass: (new (uri: string, protocols: string[], opts: object) => any) | undefined
function loadWs(): new (uri: string, protocols: string[], opts: object) => any {
  if (!wsClass) {
    const req = createRequire(import.meta.url)
    wsClass = req('ws') as typeof wsClass
  }
  return wsClass!
}
/* eslint-enable @typescript-eslint/no-explicit-any */

function collector(): {stream: Writable; text: () => string} {
  const chunks: Buffer[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))
      cb()
    },
  })
  return {stream, text: () => Buffer.concat(chunks).toString('utf8')}
}

/** The exit code in the error channel's Status (v4/v5): Success, or NonZeroExitCode with an ExitCode cause. */
export function exitCodeOf(status: KubeStatus | undefined): {code: number; message?: string} {
  if (!status) return {code: 255, message: 'the exec stream closed without an exit status'}
  if (status.status === 'Success') return {code: 0}
  if (status.reason === 'NonZeroExitCode') {
    const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode')
    const n = Number(cause?.message)
    if (Number.isInteger(n)) return {code: n}
  }
  // the command could not run at all (no nsenter in the image, container gone)
  return {code: 126, message: status.message ?? status.reason ?? 'exec failed'}
}

/**
 * `--via debug-pod`: a privileged, host-network, host-PID pod pinned to the
 * node, and each script run through pods/exec (WebSocket, channel protocol
 * v5 or v4) as `nsenter -t 1 -m -u -n -i sh -s` with the script on stdin.
 * The pod is made on first use and deleted on close(), on a failed start,
 * and on SIGINT/SIGTERM; leftovers of killed runs end by their own deadline
 * and are removed by `netctl debug cleanup`.
 */
export class KubeDebugTransport implements Transport {
  readonly target: string
  readonly runId: string
  private started?: Promise<StartedPod>
  private closed = false

  constructor(private readonly opts: KubeDebugOptions) {
    this.target = `debug pod on node ${opts.node}`
    this.runId = opts.runId ?? newRunId()
  }

  /** Create the pod and wait until it runs (done by the first exec() when not called before). */
  start(deadline?: number): Promise<StartedPod> {
    if (this.closed) return Promise.reject(new TransportError(`${this.target}: transport is closed`, 'unreachable'))
    this.started ??= this.createPod(deadline)
    return this.started
  }

  /** The pod's namespace and name once it was created. */
  async pod(): Promise<{namespace: string; name: string} | undefined> {
    const s = await this.started?.catch(() => undefined)
    return s ? {namespace: s.namespace, name: s.name} : undefined
  }

  private fail(error: unknown): TransportError {
    if (error instanceof TransportError) return error
    if (error instanceof KubeApiError) {
      const reason =
        error.code === 'UNAUTHORIZED'
          ? 'auth'
          : error.code === 'FORBIDDEN'
            ? 'refused'
            : error.code === 'KUBECONFIG'
              ? 'config'
              : 'unreachable'
      return new TransportError(`${this.target}: ${error.message}`, reason)
    }
    const e = error as Error & {exitCode?: number}
    return new TransportError(
      `${this.target}: ${(e.message ?? String(error)).split('\n')[0]}`,
      e.exitCode === 2 ? 'config' : 'unreachable',
    )
  }

  private async createPod(deadline?: number): Promise<StartedPod> {
    let api: KubeApi
    try {
      api = this.opts.api ?? (await KubeApi.connect(this.opts.kube ?? {}))
    } catch (error) {
      throw this.fail(error)
    }
    const namespace = this.opts.namespace ?? api.namespace
    const name = debugPodName(this.opts.node)
    const activeDeadlineSeconds = this.opts.activeDeadlineSeconds ?? DEBUG_POD_ACTIVE_DEADLINE_SECONDS
    const spec = debugPodSpec({
      name,
      namespace,
      node: this.opts.node,
      image: this.opts.image ?? DEFAULT_DEBUG_IMAGE,
      runId: this.runId,
      activeDeadlineSeconds,
    })
    try {
      // a pod bound to a node that does not exist would wait forever: say so now
      await api.get(`/api/v1/nodes/${encodeURIComponent(this.opts.node)}`).catch((error: unknown) => {
        if (error instanceof KubeApiError && error.code === 'NOT_FOUND')
          throw new TransportError(
            `${this.target}: node "${this.opts.node}" not found (context ${api.config.context})`,
            'config',
          )
        if (error instanceof KubeApiError && error.code === 'FORBIDDEN') return undefined
        throw error
      })
    } catch (error) {
      throw this.fail(error)
    }
    const gate = this.opts.gate
    let admitted: ((refusal?: ClusterRefusal) => void) | undefined
    if (gate?.first) {
      // another node's pod went first: a namespace that refused it refuses this one too
      await gate.first
    } else if (gate) {
      gate.first = new Promise<void>((resolve, reject) => {
        admitted = (refusal) => (refusal ? reject(refusal) : resolve())
      })
      gate.first.catch(() => undefined)
    }
    // registered before the POST: a signal that lands while it is in flight still deletes the pod
    register({api, namespace, name})
    let created: KubePod
    try {
      created = await api.create<KubePod>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, spec)
      admitted?.()
    } catch (error) {
      // not made (Forbidden, AlreadyExists): nothing of ours to delete
      unregister(namespace, name)
      const psa = podSecurityRefusal(error)
      if (psa) {
        const refusal = new ClusterRefusal(podSecurityMessage(namespace, psa))
        admitted?.(refusal)
        throw refusal
      }
      admitted?.()
      throw this.fail(error)
    }
    try {
      await this.waitRunning(api, namespace, name, created, deadline)
      return {api, namespace, name}
    } catch (error) {
      await deletePod(api, namespace, name, {wait: false}).catch((e: unknown) =>
        process.stderr.write(`${undeletedLine([{namespace, name, why: firstLineOf(e)}])}\n`),
      )
      unregister(namespace, name)
      throw this.fail(error)
    }
  }

  private async waitRunning(
    api: KubeApi,
    namespace: string,
    name: string,
    created: KubePod,
    deadline?: number,
  ): Promise<void> {
    const startMs = this.opts.startTimeoutMs ?? DEBUG_POD_START_TIMEOUT_MS
    const began = Date.now()
    const until = Math.min(began + startMs, deadline ?? Infinity)
    let last: KubePod = created
    let problem: {reason: string; message: string} | undefined = podStartProblem(created)
    if (!problem && podRunning(created)) return
    while (!problem && Date.now() < until) {
      const how = await api.watch<KubePod>(
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
        {fieldSelector: `metadata.name=${name}`, resourceVersion: last.metadata.resourceVersion},
        (ev) => {
          if (ev.type === 'DELETED') {
            problem = {reason: 'Deleted', message: 'the pod was deleted while starting'}
            return true
          }
          last = ev.object
          problem = podStartProblem(last)
          return problem !== undefined || podRunning(last)
        },
        {timeoutMs: Math.max(1, until - Date.now())},
      )
      if (how === 'stopped' && !problem) return
      if (how === 'timeout') break
      // the server ended the watch early: pick up where it left off
    }
    if (problem)
      throw new TransportError(
        `${this.target}: pod ${namespace}/${name} ${problem.message}`,
        problem.reason === 'Unschedulable' ? 'refused' : 'config',
      )
    throw new TransportError(
      `${this.target}: pod ${namespace}/${name} not Running after ${Math.round((Date.now() - began) / 100) / 10}s: ${podStateWords(last)}`,
      'timeout',
    )
  }

  async exec(script: string, opts: ExecOptions = {}): Promise<TransportResult> {
    if (this.closed) throw new TransportError(`${this.target}: transport is closed`, 'unreachable')
    const deadline = opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs
    const pod = await this.start(deadline)
    if (deadline !== undefined && Date.now() >= deadline)
      return {stdout: '', stderr: '', code: TIMEOUT_EXIT_CODE, timedOut: true}
    return this.runExec(pod, script, opts.stdin, deadline)
  }

  /**
   * client-node's Exec speaks the channel protocol over whatever connect()
   * hands it; this one opens the WebSocket itself (with client-node's own ws
   * and the kubeconfig's TLS and credentials) so that an HTTP refusal keeps
   * its Status, and offers only v5 and v4, the versions whose error channel
   * carries a Status with the exit code.
   */
  private channelSocket(pod: StartedPod): {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the client's WebSocketInterface returns its untyped ws
    connect: (path: string, text: unknown, binary: ((stream: number, buff: Buffer) => boolean) | null) => Promise<any>
  } {
    const kc = pod.api.config.kc
    const who = {server: pod.api.server, context: pod.api.config.context, user: pod.api.config.user}
    return {
      connect: async (path, _text, binary) => {
        const opts: Record<string, unknown> = {}
        await kc.applyToHTTPSOptions(opts)
        const url = `${pod.api.server.replace(/^http/, 'ws')}${path}`
        const WS = loadWs()
        return new Promise((resolve, reject) => {
          let settled = false
          const ws = new WS(url, EXEC_PROTOCOLS, opts)
          ws.on(
            'unexpected-response',
            (req: {destroy: () => void}, res: NodeJS.ReadableStream & {statusCode?: number}) => {
              const chunks: Buffer[] = []
              res.on('data', (b: Buffer) => chunks.push(b))
              res.on('end', () => {
                let status: KubeStatus | undefined
                try {
                  status = JSON.parse(Buffer.concat(chunks).toString('utf8')) as KubeStatus
                } catch {
                  status = undefined
                }
                settled = true
                reject(statusError(res.statusCode ?? 0, status, {method: 'GET', path: path.split('?')[0]!}, who))
                req.destroy()
                ws.terminate()
              })
            },
          )
          ws.once('open', () => {
            settled = true
            resolve(ws)
          })
          ws.on('error', (e: NodeJS.ErrnoException) => {
            if (settled) return
            settled = true
            reject(connectionError(e, pod.api.server, pod.api.config.context))
          })
          ws.on('message', (data: Buffer | Buffer[], isBinary: boolean) => {
            const b = Array.isArray(data) ? Buffer.concat(data) : data
            // stdout, stderr and the error channel; a server-side close frame (255) needs nothing here
            if (!isBinary || b.length === 0 || b[0]! < 1 || b[0]! > 3) return
            if (binary && !binary(b[0]!, b.subarray(1))) ws.close()
          })
        })
      },
    }
  }

  private async runExec(
    pod: StartedPod,
    script: string,
    stdin: string | undefined,
    deadline?: number,
  ): Promise<TransportResult> {
    const {Exec} = await import('@kubernetes/client-node')
    const out = collector()
    const err = collector()
    const input = new PassThrough()
    const exec = new Exec(pod.api.config.kc, this.channelSocket(pod) as never)
    let status: KubeStatus | undefined
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- ws, untyped (loadWs)
    let ws: any
    try {
      ws = await exec.exec(
        pod.namespace,
        pod.name,
        DEBUG_CONTAINER,
        debugCommand(deadline === undefined ? undefined : deadline - Date.now()),
        out.stream,
        err.stream,
        input,
        false,
        (s) => {
          status = s as unknown as KubeStatus
        },
      )
    } catch (error) {
      throw this.fail(error)
    }
    // The trailing exit lets sh finish without EOF: v4 has no way to half-close stdin
    // (client-node closes the whole socket when stdin ends), so only v5 gets the close frame.
    input.write(`${wrapScript(script, stdin)}exit $?\n`)
    if (ws.protocol === 'v5.channel.k8s.io') input.end()
    return new Promise<TransportResult>((resolve) => {
      let timer: NodeJS.Timeout | undefined
      let settled = false
      const done = (r: TransportResult): void => {
        if (settled) return
        settled = true
        if (timer) clearTimeout(timer)
        resolve(r)
      }
      if (deadline !== undefined) {
        timer = setTimeout(
          () => {
            ws.terminate()
            done({stdout: out.text(), stderr: err.text(), code: TIMEOUT_EXIT_CODE, timedOut: true})
          },
          Math.max(0, deadline - Date.now()),
        )
      }
      ws.on('close', () => {
        const {code, message} = exitCodeOf(status)
        const stderr = err.text()
        done({
          stdout: out.text(),
          stderr: message ? `${stderr}${stderr && !stderr.endsWith('\n') ? '\n' : ''}netctl: ${message}\n` : stderr,
          code,
        })
      })
    })
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const pod = await this.started?.catch(() => undefined)
    if (!pod) return
    try {
      await deletePod(pod.api, pod.namespace, pod.name, {wait: true})
    } catch (error) {
      process.stderr.write(`${undeletedLine([{namespace: pod.namespace, name: pod.name, why: firstLineOf(error)}])}\n`)
    } finally {
      unregister(pod.namespace, pod.name)
    }
  }
}

export function kubeDebugTransport(opts: KubeDebugOptions): KubeDebugTransport {
  return new KubeDebugTransport(opts)
}

/**
 * Transports for the nodes of one run, sharing a client and a run id: the
 * shape of the collector's transport factory (one per inventory node).
 */
export function debugPodTransports(
  opts: Omit<KubeDebugOptions, 'node'> & {api: KubeApi},
): (node: InventoryNode) => KubeDebugTransport {
  const runId = opts.runId ?? newRunId()
  const gate: DebugPodGate = opts.gate ?? {}
  return (node) => new KubeDebugTransport({...opts, node: node.name, runId, gate})
}

// ---- leftovers ---------------------------------------------------------------

export interface LeftoverPod {
  namespace: string
  name: string
  node: string
  runId: string
  phase: string
  createdAt: string
}

export interface CleanupResult {
  /** the namespace searched, or "all" */
  namespace: string
  deleted: LeftoverPod[]
  failed: Array<LeftoverPod & {error: string}>
}

/**
 * Delete the debug pods earlier netctl runs left behind (killed before they
 * could clean up): pods labelled managed-by netctl with a run id, except
 * those this process is using.
 */
export async function deleteLeftoverDebugPods(api: KubeApi, opts: {namespace?: string} = {}): Promise<CleanupResult> {
  const p = opts.namespace ? `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/pods` : '/api/v1/pods'
  const list = await api.list<KubePod>(p, {labelSelector: `${MANAGED_BY_LABEL}=netctl,${RUN_ID_LABEL}`})
  const mine = new Set(liveDebugPods().map((x) => `${x.namespace}/${x.name}`))
  const leftovers: LeftoverPod[] = list.items
    .filter((pod) => !mine.has(`${pod.metadata.namespace}/${pod.metadata.name}`))
    .map((pod) => ({
      namespace: pod.metadata.namespace ?? '',
      name: pod.metadata.name,
      node: pod.spec?.nodeName ?? pod.metadata.annotations?.[NODE_ANNOTATION] ?? '',
      runId: pod.metadata.labels?.[RUN_ID_LABEL] ?? '',
      phase: pod.status?.phase ?? 'Unknown',
      createdAt: pod.metadata.creationTimestamp ?? '',
    }))
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name))
  const result: CleanupResult = {namespace: opts.namespace ?? 'all', deleted: [], failed: []}
  await Promise.all(
    leftovers.map(async (pod) => {
      try {
        await deletePod(api, pod.namespace, pod.name, {wait: false})
        result.deleted.push(pod)
      } catch (error) {
        // the server refusing one pod (403 in one namespace) does not stop the others; losing the server does
        if (!(error instanceof KubeApiError) || error.httpStatus === undefined) throw error
        result.failed.push({...pod, error: (error as Error).message})
      }
    }),
  )
  const order = (a: LeftoverPod, b: LeftoverPod): number =>
    a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name)
  result.deleted.sort(order)
  result.failed.sort(order)
  return result
}
