/**
 * A Kubernetes API server emulation for tests, faithful to the wire where
 * netctl touches it:
 *
 * - HTTPS with a self-signed certificate made at start (openssl), valid for
 *   127.0.0.1; kubeconfigs trust it through certificate-authority-data.
 * - Bearer-token authentication: a wrong token is 401 everywhere, no token is
 *   system:anonymous (allowed /version only), as a default RBAC setup has it.
 * - REST paths and JSON shapes of kube-apiserver: apiVersion/kind, metadata with
 *   uid/resourceVersion/creationTimestamp, List kinds with metadata.resourceVersion
 *   (items without apiVersion/kind for built-in types, with them for CRDs), and
 *   `Status` objects for every error (code, reason, details {name, group, kind}).
 * - list / get / watch (newline-delimited {type, object}) with label and field
 *   selectors, create, delete (pods answer with the object, others with a
 *   Status), deletecollection, update, merge-patch, strategic-merge-patch (not
 *   for CRDs: 415 as the real server answers) and JSON patch. An update (PUT)
 *   or patch carrying a resourceVersion older than the stored one is 409
 *   Conflict.
 * - Leases (coordination.k8s.io/v1) validated as the real server does: times in
 *   MicroTime (RFC 3339 with microseconds), leaseDurationSeconds > 0,
 *   leaseTransitions >= 0; null fields are dropped (omitempty).
 * - Pods go Pending → Running (a "kubelet" fills in IPs and container
 *   statuses); an image listed as failing goes ErrImagePull ⇄ ImagePullBackOff;
 *   a pod bound to a node that does not exist stays Pending (no kubelet there);
 *   activeDeadlineSeconds ends a pod as DeadlineExceeded. A pod deleted with a
 *   grace period on a node whose kubelet is stopped stays Terminating (only a
 *   kubelet confirms a graceful deletion); grace period 0 removes it at once.
 * - RBAC denials by verb and resource → 403 with the Status a real server sends;
 *   Pod Security Admission by the namespace's enforce label (baseline, restricted).
 * - pods/exec over WebSocket, subprotocols v5.channel.k8s.io and
 *   v4.channel.k8s.io: stdin is channel 0, stdout 1, stderr 2, the error channel
 *   3 carries the final Status (Success, or NonZeroExitCode with an ExitCode
 *   cause), and v5's close frame (255, channel) half-closes stdin. As the
 *   kubelet does, an empty frame on the first output channel says the stream
 *   is ready.
 *
 * Exec against a lab: the process runs for real inside the lab's namespaces.
 * A host-network pod is pinned to its node (spec.nodeName) and runs in that
 * node's namespace (`ip netns exec <lab>.<node> ...`); `nsenter -t 1 -m -u -n -i
 * CMD...` in a hostPID pod enters "the host", which for a lab node is that
 * same namespace, so it becomes `ip netns exec <node netns> CMD...` (with no
 * CMD, `sh`). Other pods run in their own namespace when the lab has one.
 * The emulator kills an exec'd process when its connection drops (a kubelet
 * may leave it running) so that tests never leave strays behind. Commands
 * exec'd on a lab node find a `crictl` stand-in first on PATH (crictl-standin.ts)
 * that knows the node's pods as sandboxes whose network namespaces are the
 * lab's pod namespaces, so a pod known only from the API is found the way a
 * real node finds it.
 *
 * Not emulated: SPDY exec, server-side apply, pagination, bookmarks,
 * admission beyond defaults and Pod Security, and the scheduler beyond "first Ready node".
 */
import {type ChildProcess, execFileSync, spawn} from 'node:child_process'
import {randomBytes, randomUUID} from 'node:crypto'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import type {IncomingMessage, ServerResponse} from 'node:http'
import https from 'node:https'
import type {AddressInfo, Socket} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {type WebSocket, WebSocketServer} from 'ws'
import {parse as parseYaml, parseAllDocuments, stringify as stringifyYaml} from 'yaml'

import {CrictlStandin} from './crictl-standin.js'

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/kube')

type Obj = {apiVersion: string; kind: string; metadata: Record<string, any>; [key: string]: any}

interface ResourceDef {
  group: string
  version: string
  resource: string
  kind: string
  namespaced: boolean
  /** a CustomResourceDefinition: served only once installed; lists keep apiVersion/kind on items */
  crd?: boolean
  shortNames?: string[]
}

const RESOURCES: ResourceDef[] = [
  {group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false, shortNames: ['ns']},
  {group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false, shortNames: ['no']},
  {group: '', version: 'v1', resource: 'pods', kind: 'Pod', namespaced: true, shortNames: ['po']},
  {group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true, shortNames: ['cm']},
  {group: 'apps', version: 'v1', resource: 'daemonsets', kind: 'DaemonSet', namespaced: true, shortNames: ['ds']},
  {group: 'coordination.k8s.io', version: 'v1', resource: 'leases', kind: 'Lease', namespaced: true},
  {
    group: 'networking.k8s.io',
    version: 'v1',
    resource: 'networkpolicies',
    kind: 'NetworkPolicy',
    namespaced: true,
    shortNames: ['netpol'],
  },
  {group: '', version: 'v1', resource: 'services', kind: 'Service', namespaced: true, shortNames: ['svc']},
  {group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', kind: 'EndpointSlice', namespaced: true},
  {group: 'crd.projectcalico.org', version: 'v1', resource: 'ippools', kind: 'IPPool', namespaced: false, crd: true},
  {
    group: 'crd.projectcalico.org',
    version: 'v1',
    resource: 'bgpconfigurations',
    kind: 'BGPConfiguration',
    namespaced: false,
    crd: true,
  },
  {group: 'crd.projectcalico.org', version: 'v1', resource: 'bgppeers', kind: 'BGPPeer', namespaced: false, crd: true},
  {
    group: 'crd.projectcalico.org',
    version: 'v1',
    resource: 'blockaffinities',
    kind: 'BlockAffinity',
    namespaced: false,
    crd: true,
  },
]

const apiVersionOf = (d: ResourceDef): string => (d.group ? `${d.group}/${d.version}` : d.version)
const defByKind = (apiVersion: string, kind: string): ResourceDef | undefined =>
  RESOURCES.find((d) => d.kind === kind && apiVersionOf(d) === apiVersion)

export const VERSION_INFO = {
  major: '1',
  minor: '31',
  gitVersion: 'v1.31.4',
  gitCommit: 'a78aa47129b8539636eb86a9d00e31b2720fe06b',
  gitTreeState: 'clean',
  buildDate: '2024-12-10T11:37:43Z',
  goVersion: 'go1.22.9',
  compiler: 'gc',
  platform: 'linux/amd64',
}

const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io']

/** A controller's reaction to a client's change of an object: the object now and before. */
export type Reactor = (next: Obj, prev: Obj) => void | Promise<void>

export interface Denial {
  verb: string
  /** plural, with a subresource when it has one: pods, pods/exec, daemonsets */
  resource: string
  namespace?: string
}

export interface KubeApiServerOptions {
  /** the bearer token the server accepts (default: random) */
  token?: string
  /** who that token is, for Forbidden messages */
  user?: string
  /** RBAC: requests to refuse with 403 */
  deny?: Denial[]
  /** images whose pulls fail (ErrImagePull, then ImagePullBackOff) */
  failingImages?: string[]
  /** how long the "kubelet" takes to start a pod; default 100 ms */
  podStartMs?: number
  /** exec subprotocols served, in preference order; default v5 then v4 (a 1.29 server has v4 only) */
  execProtocols?: string[]
  /** false: lab nodes have no crictl (a node without the CRI tools); default true */
  crictl?: boolean
}

export interface KubeconfigOptions {
  context?: string
  cluster?: string
  user?: string
  token?: string
  namespace?: string
  server?: string
  /** leave out certificate-authority-data (the server's certificate is then untrusted) */
  noCA?: boolean
}

interface Watcher {
  def: ResourceDef
  namespace?: string
  labelSel: LabelReq[]
  fieldSel: FieldReq[]
  res: ServerResponse
}

type LabelReq = {key: string; op: 'exists' | '!exists' | '=' | '!=' | 'in' | 'notin'; values: string[]}
type FieldReq = {field: string; op: '=' | '!='; value: string}

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly status: Obj,
  ) {
    super(String(status.message))
  }
}

function statusObj(code: number, reason: string, message: string, details?: Record<string, unknown>): Obj {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? {details} : {}),
    code,
  }
}

function fail(code: number, reason: string, message: string, details?: Record<string, unknown>): never {
  throw new HttpError(code, statusObj(code, reason, message, details))
}

const clone = <T>(v: T): T => structuredClone(v)
/** RFC 3339 seconds, as Kubernetes writes timestamps */
const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')

function parseLabelSelector(s: string | null): LabelReq[] {
  if (!s) return []
  const parts: string[] = []
  let depth = 0
  let cur = ''
  for (const ch of s) {
    if (ch === '(') depth++
    if (ch === ')') depth--
    if (ch === ',' && depth === 0) {
      parts.push(cur)
      cur = ''
    } else {
      cur += ch
    }
  }
  parts.push(cur)
  return parts
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p): LabelReq => {
      let m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p)
      if (m) return {key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim())}
      m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(p)
      if (m) return {key: m[1]!, op: m[2] === '!=' ? '!=' : '=', values: [m[3]!]}
      if (p.startsWith('!')) return {key: p.slice(1), op: '!exists', values: []}
      if (/^[^=!\s]+$/.test(p)) return {key: p, op: 'exists', values: []}
      fail(400, 'BadRequest', `unable to parse requirement: invalid label selector: "${p}"`)
    })
}

function labelsMatch(labels: Record<string, string> | undefined, reqs: LabelReq[]): boolean {
  const l = labels ?? {}
  return reqs.every((r) => {
    const has = Object.hasOwn(l, r.key)
    switch (r.op) {
      case 'exists':
        return has
      case '!exists':
        return !has
      case '=':
        return has && l[r.key] === r.values[0]
      case '!=':
        return !has || l[r.key] !== r.values[0]
      case 'in':
        return has && r.values.includes(l[r.key]!)
      case 'notin':
        return !has || !r.values.includes(l[r.key]!)
    }
  })
}

const FIELDS: Record<string, (o: Obj) => string | undefined> = {
  'metadata.name': (o) => o.metadata.name,
  'metadata.namespace': (o) => o.metadata.namespace,
  'spec.nodeName': (o) => o.spec?.nodeName ?? '',
  'status.podIP': (o) => o.status?.podIP ?? '',
  'status.phase': (o) => o.status?.phase ?? '',
}

function parseFieldSelector(s: string | null, def: ResourceDef): FieldReq[] {
  if (!s) return []
  return s.split(',').map((p) => {
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(p.trim())
    if (!m) fail(400, 'BadRequest', `invalid selector: '${p}'; can't understand '${p}'`)
    const field = m[1]!.trim()
    const podOnly = ['spec.nodeName', 'status.podIP', 'status.phase'].includes(field)
    if (!FIELDS[field] || (podOnly && def.resource !== 'pods'))
      fail(400, 'BadRequest', `field label not supported: ${field}`)
    return {field, op: m[2] === '!=' ? '!=' : '=', value: m[3]!}
  })
}

function fieldsMatch(o: Obj, reqs: FieldReq[]): boolean {
  return reqs.every((r) => {
    const v = FIELDS[r.field]!(o) ?? ''
    return r.op === '=' ? v === r.value : v !== r.value
  })
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: any, patch: any): any {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return clone(patch)
  const out = target !== null && typeof target === 'object' && !Array.isArray(target) ? {...target} : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatch(out[k], v)
  }
  return out
}

/** Lists that strategic merge patch merges by a key (the patchMergeKey of the built-in types netctl patches). */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort',
  imagePullSecrets: 'name',
  conditions: 'type',
  addresses: 'type',
  hostAliases: 'ip',
}

/** Strategic merge patch for built-in types: merge-keyed lists, `$patch: delete|replace`, `$retainKeys`, primitive-list deletes. */
function strategicMerge(target: any, patch: any, key?: string): any {
  if (patch === null || typeof patch !== 'object') return patch
  if (Array.isArray(patch)) {
    const mk = key ? MERGE_KEYS[key] : undefined
    if (!mk || !Array.isArray(target)) return clone(patch.filter((e) => !(e && typeof e === 'object' && e.$patch)))
    const out = target.map((e) => clone(e))
    for (const item of patch) {
      const idx = out.findIndex((e) => e && item && e[mk] === item[mk])
      if (item && item.$patch === 'delete') {
        if (idx >= 0) out.splice(idx, 1)
      } else if (item && item.$patch === 'replace') {
        const {$patch: _p, ...rest} = item
        if (idx >= 0) out[idx] = rest
        else out.push(rest)
      } else if (idx >= 0) {
        out[idx] = strategicMerge(out[idx], item)
      } else {
        out.push(strategicMerge(undefined, item))
      }
    }
    return out
  }
  if (patch.$patch === 'replace') {
    const {$patch: _p, ...rest} = patch
    return clone(rest)
  }
  if (patch.$patch === 'delete') return undefined
  let out: any = target !== null && typeof target === 'object' && !Array.isArray(target) ? {...target} : {}
  if (Array.isArray(patch.$retainKeys))
    out = Object.fromEntries(Object.entries(out).filter(([k]) => patch.$retainKeys.includes(k)))
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$retainKeys' || k === '$patch') continue
    if (k.startsWith('$setElementOrder/')) continue
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length)
      if (Array.isArray(out[field])) out[field] = out[field].filter((e: unknown) => !(v as unknown[]).includes(e))
      continue
    }
    if (v === null) delete out[k]
    else {
      const merged = strategicMerge(out[k], v, k)
      if (merged === undefined) delete out[k]
      else out[k] = merged
    }
  }
  return out
}

/** RFC 6902 JSON patch: add, remove, replace, test. */
function jsonPatch(target: any, ops: any): any {
  if (!Array.isArray(ops)) fail(400, 'BadRequest', 'the server rejected our request due to an error in our request')
  const doc = clone(target)
  for (const op of ops) {
    const ptr = String(op.path ?? '')
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    const last = ptr.pop()
    let parent: any = doc
    for (const p of ptr) {
      parent = parent?.[Array.isArray(parent) ? Number(p) : p]
      if (parent === undefined)
        fail(
          422,
          'Invalid',
          `the server rejected our request due to an error in our request: doc is missing path: "${op.path}"`,
        )
    }
    if (last === undefined) fail(422, 'Invalid', 'cannot patch the document root')
    const arr = Array.isArray(parent)
    const k = arr ? (last === '-' ? parent.length : Number(last)) : last
    switch (op.op) {
      case 'add':
        if (arr) parent.splice(k, 0, clone(op.value))
        else parent[k] = clone(op.value)
        break
      case 'replace':
        if (!(k in parent))
          fail(
            422,
            'Invalid',
            `the server rejected our request due to an error in our request: replace operation does not apply: doc is missing key: ${op.path}`,
          )
        parent[k] = clone(op.value)
        break
      case 'remove':
        if (!(k in parent))
          fail(
            422,
            'Invalid',
            `the server rejected our request due to an error in our request: remove operation does not apply: doc is missing path: "${op.path}"`,
          )
        if (arr) parent.splice(k, 1)
        else delete parent[k]
        break
      case 'test':
        if (JSON.stringify(parent[k]) !== JSON.stringify(op.value))
          fail(
            422,
            'Invalid',
            `the server rejected our request due to an error in our request: testing value ${op.path} failed`,
          )
        break
      default:
        fail(
          422,
          'Invalid',
          `the server rejected our request due to an error in our request: Unexpected kind: ${op.op}`,
        )
    }
  }
  return doc
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0)
}
function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.')
}

/** A lab inventory file (what `netctl lab up` writes), as far as the emulator reads it. */
interface LabInventory {
  cluster: {name: string; backend: string; clusterCIDR: string}
  nodes: Array<{
    name: string
    internalIP: string
    podCIDR: string
    access: {netns?: string}
    annotations?: Record<string, string>
    labels?: Record<string, string>
    paths?: {birdSocket?: string; flannelSubnetEnv?: string}
  }>
  pods?: Array<{name: string; namespace: string; node: string; ip: string; netns?: string}>
  services?: Array<{
    name: string
    namespace: string
    type?: string
    clusterIP: string
    sessionAffinity?: {clientIP: {timeoutSeconds: number}}
    internalTrafficPolicy?: string
    externalTrafficPolicy?: string
    trafficDistribution?: string
    externalIPs?: string[]
    loadBalancerIPs?: string[]
    loadBalancerSourceRanges?: string[]
    healthCheckNodePort?: number
    ports: Array<{name?: string; protocol: string; port: number; targetPort?: number; nodePort?: number}>
    endpoints?: Array<{
      addresses: string[]
      conditions?: {ready?: boolean}
      nodeName?: string
      zone?: string
      hints?: {forZones?: Array<{name: string}>; forNodes?: Array<{name: string}>}
      targetRef?: {kind: string; namespace?: string; name: string}
    }>
  }>
}

/** One multi-document YAML fixture from fixtures/kube, parsed. */
export function readFixture(name: string): Obj[] {
  const file = path.isAbsolute(name) ? name : path.join(FIXTURES, name.endsWith('.yaml') ? name : `${name}.yaml`)
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null)
}

export class KubeApiServer {
  readonly token: string
  readonly user: string
  readonly caPem: string
  url = ''
  /** every request, for tests to look at: method, path, RBAC verb and resource, answer */
  readonly requests: Array<{method: string; path: string; verb: string; resource: string; code: number}> = []
  /** every object created through the API (POST), as stored */
  readonly created: Obj[] = []
  deny: Denial[]
  failingImages: Set<string>
  podStartMs: number
  readonly execProtocols: string[]
  /** node name → lab network namespace; pod key ns/name → lab network namespace */
  readonly nodeNetns = new Map<string, string>()
  /** node name → the lab node's own run directories, seen by host execs at /run/calico and /run/flannel */
  private readonly nodeRun = new Map<string, {calico?: string; flannel?: string}>()
  readonly podNetns = new Map<string, string>()

  private readonly store = new Map<string, Map<string, Obj>>()
  private readonly installedGroups = new Set<string>()
  private readonly events: Array<{rv: number; def: ResourceDef; type: string; object: Obj}> = []
  private readonly watchers = new Set<Watcher>()
  private readonly execs = new Map<string, Set<ChildProcess>>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly sockets = new Set<Socket>()
  private readonly allocated = new Map<string, number>()
  private rv = 1000
  private readonly kubeletsDown = new Set<string>()
  private readonly reactors: Array<{resource: string; fn: Reactor}> = []
  private readonly rolloutHandlers: Array<(ds: Obj) => Promise<void>> = []
  /** what controllers and rollout handlers failed with (a stuck rollout says why here) */
  readonly reactorErrors: string[] = []
  private server!: https.Server
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols: Set<string>) => [...protocols].find((p) => this.execProtocols.includes(p)) ?? false,
  })
  private readonly dir: string
  /** the lab's pods as container-runtime sandboxes, for the crictl stand-in */
  private readonly crictl?: CrictlStandin
  private closed = false

  private constructor(opts: KubeApiServerOptions) {
    this.token = opts.token ?? randomBytes(24).toString('base64url')
    this.user = opts.user ?? 'system:serviceaccount:default:netctl'
    this.deny = [...(opts.deny ?? [])]
    this.failingImages = new Set(opts.failingImages ?? [])
    this.podStartMs = opts.podStartMs ?? 100
    this.execProtocols = opts.execProtocols ?? EXEC_PROTOCOLS
    this.dir = mkdtempSync(path.join(tmpdir(), 'netctl-kube-apiserver-'))
    // a throwaway self-signed certificate for 127.0.0.1, as kind or minikube would mint one
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        path.join(this.dir, 'apiserver.key'),
        '-out',
        path.join(this.dir, 'apiserver.crt'),
        '-days',
        '2',
        '-subj',
        '/CN=kube-apiserver',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ],
      {stdio: 'ignore'},
    )
    this.caPem = readFileSync(path.join(this.dir, 'apiserver.crt'), 'utf8')
    if (opts.crictl !== false) this.crictl = new CrictlStandin(path.join(this.dir, 'crictl'))
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease'])
      this.add({apiVersion: 'v1', kind: 'Namespace', metadata: {name: ns}})
  }

  static async start(opts: KubeApiServerOptions = {}): Promise<KubeApiServer> {
    const s = new KubeApiServer(opts)
    s.server = https.createServer(
      {key: readFileSync(path.join(s.dir, 'apiserver.key')), cert: s.caPem},
      (req, res) => void s.handle(req, res),
    )
    s.server.on(
      'upgrade',
      (req: IncomingMessage, socket: Socket, head: Buffer) => void s.handleUpgrade(req, socket, head),
    )
    s.server.on('connection', (sock: Socket) => {
      s.sockets.add(sock)
      sock.once('close', () => s.sockets.delete(sock))
    })
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve))
    s.url = `https://127.0.0.1:${(s.server.address() as AddressInfo).port}`
    return s
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const t of this.timers) clearTimeout(t)
    for (const set of this.execs.values()) for (const child of set) child.kill('SIGKILL')
    for (const w of this.watchers) w.res.end()
    for (const c of this.wss.clients) c.terminate()
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve())
      for (const s of this.sockets) s.destroy()
    })
    rmSync(this.dir, {recursive: true, force: true})
  }

  // ---- kubeconfig --------------------------------------------------------

  kubeconfig(o: KubeconfigOptions = {}): object {
    const context = o.context ?? 'emulator'
    const cluster = o.cluster ?? context
    const user = o.user ?? `${context}-user`
    return {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: cluster,
          cluster: {
            server: o.server ?? this.url,
            ...(o.noCA ? {} : {'certificate-authority-data': Buffer.from(this.caPem).toString('base64')}),
          },
        },
      ],
      users: [{name: user, user: {token: o.token ?? this.token}}],
      contexts: [{name: context, context: {cluster, user, ...(o.namespace ? {namespace: o.namespace} : {})}}],
      'current-context': context,
      preferences: {},
    }
  }

  /** Write a kubeconfig for this server (YAML, as kubectl writes it). */
  writeKubeconfig(file: string, o: KubeconfigOptions = {}): string {
    writeFileSync(file, stringifyYaml(this.kubeconfig(o)))
    return file
  }

  // ---- the store ---------------------------------------------------------

  private key(def: ResourceDef): string {
    return `${def.group}/${def.resource}`
  }

  private bucket(def: ResourceDef): Map<string, Obj> {
    let b = this.store.get(this.key(def))
    if (!b) {
      b = new Map()
      this.store.set(this.key(def), b)
    }
    return b
  }

  private nextRV(): string {
    this.rv += 1
    return String(this.rv)
  }

  /** Make a CRD's group served (as installing Calico's CRDs does); adding one of its objects does it too. */
  installCRDs(group: string): void {
    this.installedGroups.add(group)
  }

  /** Put objects in the store as if applied; namespaces named by them spring into being. */
  add(objs: Obj | Obj[]): Obj[] {
    return (Array.isArray(objs) ? objs : [objs]).map((o) => {
      const def = defByKind(o.apiVersion, o.kind)
      if (!def) throw new Error(`kube-apiserver emulator: no resource for ${o.apiVersion} ${o.kind}`)
      if (def.crd) this.installedGroups.add(def.group)
      const obj = clone(o)
      obj.metadata ??= {}
      if (def.namespaced) {
        obj.metadata.namespace ??= 'default'
        if (!this.get('namespaces', '', obj.metadata.namespace))
          this.add({apiVersion: 'v1', kind: 'Namespace', metadata: {name: obj.metadata.namespace}})
      } else {
        delete obj.metadata.namespace
      }
      this.stamp(obj, def)
      this.bucket(def).set(`${obj.metadata.namespace ?? ''}/${obj.metadata.name}`, obj)
      this.emit(def, 'ADDED', obj)
      return obj
    })
  }

  private stamp(obj: Obj, def: ResourceDef): void {
    obj.apiVersion = apiVersionOf(def)
    obj.kind = def.kind
    obj.metadata.uid ??= randomUUID()
    obj.metadata.creationTimestamp ??= now()
    obj.metadata.resourceVersion = this.nextRV()
    if (def.resource === 'namespaces') {
      obj.metadata.labels = {...obj.metadata.labels, 'kubernetes.io/metadata.name': obj.metadata.name}
      obj.spec ??= {finalizers: ['kubernetes']}
      obj.status ??= {phase: 'Active'}
    }
    if (def.resource === 'daemonsets' || def.crd) obj.metadata.generation ??= 1
  }

  /** Add the objects of a fixture file (optionally edited first). */
  addFixture(name: string, edit?: (o: Obj) => Obj | undefined): Obj[] {
    return this.add(readFixture(name).flatMap((o) => (edit ? (edit(o) ?? []) : [o])))
  }

  get(resource: string, namespace: string, name: string): Obj | undefined {
    const def = RESOURCES.find((d) => d.resource === resource)!
    const o = this.bucket(def).get(`${def.namespaced ? namespace : ''}/${name}`)
    return o ? clone(o) : undefined
  }

  list(resource: string, namespace?: string): Obj[] {
    const def = RESOURCES.find((d) => d.resource === resource)!
    return [...this.bucket(def).values()]
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .map(clone)
  }

  /** Change an object in place (as a controller would), bumping its resourceVersion and telling watchers. */
  update(resource: string, namespace: string, name: string, fn: (o: Obj) => void): Obj {
    const def = RESOURCES.find((d) => d.resource === resource)!
    const k = `${def.namespaced ? namespace : ''}/${name}`
    const cur = this.bucket(def).get(k)
    if (!cur) throw new Error(`kube-apiserver emulator: no ${resource} ${k}`)
    const next = clone(cur)
    fn(next)
    next.metadata.resourceVersion = this.nextRV()
    this.bucket(def).set(k, next)
    this.emit(def, 'MODIFIED', next)
    return clone(next)
  }

  private remove(def: ResourceDef, obj: Obj): void {
    const k = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`
    if (!this.bucket(def).delete(k)) return
    const gone = {...clone(obj), metadata: {...obj.metadata, resourceVersion: this.nextRV()}}
    this.emit(def, 'DELETED', gone)
    if (def.resource === 'pods') this.killExecs(k)
  }

  private emit(def: ResourceDef, type: string, object: Obj): void {
    const rv = Number(object.metadata.resourceVersion)
    this.events.push({rv, def, type, object: clone(object)})
    for (const w of this.watchers) {
      if (w.def !== def) continue
      if (w.namespace !== undefined && object.metadata.namespace !== w.namespace) continue
      if (!labelsMatch(object.metadata.labels, w.labelSel) || !fieldsMatch(object, w.fieldSel)) continue
      w.res.write(`${JSON.stringify({type, object})}\n`)
    }
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t)
      if (!this.closed) fn()
    }, ms)
    t.unref()
    this.timers.add(t)
  }

  /** The node's kubelet stops: the node goes NotReady (Unknown), pods bound to it stay Pending, and a graceful deletion of one stays pending. */
  stopKubelet(node: string): void {
    this.kubeletsDown.add(node)
    const t = now()
    this.update('nodes', '', node, (n) => {
      n.status ??= {}
      n.status.conditions = (n.status.conditions ?? []).map((c: any) =>
        c.type === 'Ready'
          ? {
              ...c,
              status: 'Unknown',
              reason: 'NodeStatusUnknown',
              message: 'Kubelet stopped posting node status.',
              lastTransitionTime: t,
            }
          : c,
      )
    })
  }

  // ---- seeding from a lab ------------------------------------------------

  /**
   * Seed from a lab: its nodes (InternalIP, podCIDR, annotations, labels) and
   * pods from the lab's inventory file, and the CNI objects of its backend from
   * fixtures/kube, adapted (the flannel Network and backend type, the Calico
   * pool CIDR and encapsulation, route reflectors). Exec then reaches the lab's
   * namespaces.
   */
  seedFromLab(lab: {inventory: string} | string): void {
    const inv = parseYaml(readFileSync(typeof lab === 'string' ? lab : lab.inventory, 'utf8')) as LabInventory
    const t = now()
    for (const n of inv.nodes) {
      if (n.access.netns) this.nodeNetns.set(n.name, n.access.netns)
      this.nodeRun.set(n.name, {
        ...(n.paths?.birdSocket ? {calico: path.dirname(n.paths.birdSocket)} : {}),
        ...(n.paths?.flannelSubnetEnv ? {flannel: path.dirname(n.paths.flannelSubnetEnv)} : {}),
      })
      this.add({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: n.name,
          labels: {
            'kubernetes.io/arch': 'amd64',
            'kubernetes.io/os': 'linux',
            ...n.labels,
            'kubernetes.io/hostname': n.name,
          },
          annotations: {...n.annotations},
        },
        spec: {podCIDR: n.podCIDR, podCIDRs: [n.podCIDR]},
        status: {
          addresses: [
            {type: 'InternalIP', address: n.internalIP},
            {type: 'Hostname', address: n.name},
          ],
          conditions: [
            {
              type: 'MemoryPressure',
              status: 'False',
              reason: 'KubeletHasSufficientMemory',
              lastHeartbeatTime: t,
              lastTransitionTime: t,
            },
            {
              type: 'DiskPressure',
              status: 'False',
              reason: 'KubeletHasNoDiskPressure',
              lastHeartbeatTime: t,
              lastTransitionTime: t,
            },
            {
              type: 'PIDPressure',
              status: 'False',
              reason: 'KubeletHasSufficientPID',
              lastHeartbeatTime: t,
              lastTransitionTime: t,
            },
            {
              type: 'Ready',
              status: 'True',
              reason: 'KubeletReady',
              message: 'kubelet is posting ready status',
              lastHeartbeatTime: t,
              lastTransitionTime: t,
            },
          ],
          nodeInfo: {
            architecture: 'amd64',
            containerRuntimeVersion: 'containerd://1.7.24',
            kernelVersion: '6.1.0-netctl-lab',
            kubeletVersion: VERSION_INFO.gitVersion,
            operatingSystem: 'linux',
            osImage: 'netctl lab node',
          },
        },
      })
    }
    for (const p of inv.pods ?? []) {
      if (p.netns) this.podNetns.set(`${p.namespace}/${p.name}`, p.netns)
      const node = inv.nodes.find((n) => n.name === p.node)
      const [pod] = this.add(
        this.runningPod(p.namespace, p.name, p.node, p.ip, node?.internalIP ?? '', {app: p.name.replace(/-\d+$/, '')}),
      )
      if (p.netns)
        this.crictl?.add({
          namespace: p.namespace,
          name: p.name,
          uid: pod!.metadata.uid,
          node: p.node,
          ip: p.ip,
          netns: p.netns,
          createdAt: pod!.status.startTime,
        })
    }
    for (const svc of inv.services ?? []) this.add(this.serviceObjects(svc))
    const backend = inv.cluster.backend
    if (backend.startsWith('flannel-')) {
      const type = backend.slice('flannel-'.length)
      this.addFixture('flannel', (o) => {
        if (o.kind === 'ConfigMap' && o.metadata.name === 'kube-flannel-cfg') {
          const conf = JSON.parse(o.data['net-conf.json'])
          conf.Network = inv.cluster.clusterCIDR
          conf.Backend = {Type: type}
          o.data['net-conf.json'] = `${JSON.stringify(conf, null, 2)}\n`
        }
        return o
      })
    } else if (backend.startsWith('calico-')) {
      const asNumber = Number(inv.nodes[0]?.annotations?.['projectcalico.org/ASNumber'] ?? 64512)
      this.addFixture('calico', (o) => {
        if (o.kind === 'IPPool') {
          o.spec.cidr = inv.cluster.clusterCIDR
          // the lab kernel has no ipip: the lab's Calico runs without encapsulation, or with VXLAN
          o.spec.ipipMode = 'Never'
          o.spec.vxlanMode = backend === 'calico-vxlan' ? 'Always' : 'Never'
        }
        if (o.kind === 'BGPConfiguration') o.spec.asNumber = asNumber
        if (o.kind === 'BGPConfiguration' && backend === 'calico-rr') return undefined
        return o
      })
      if (backend === 'calico-rr')
        this.addFixture('calico-rr', (o) => (o.kind === 'BGPConfiguration' ? {...o, spec: {...o.spec, asNumber}} : o))
    } else if (backend === 'canal') {
      // the canal DaemonSet and canal-config, whose net-conf.json is flannel's (vxlan)
      this.addFixture('canal', (o) => {
        if (o.kind === 'ConfigMap' && o.metadata.name === 'canal-config') {
          const conf = JSON.parse(o.data['net-conf.json'])
          conf.Network = inv.cluster.clusterCIDR
          o.data['net-conf.json'] = `${JSON.stringify(conf, null, 2)}\n`
        }
        return o
      })
    }
  }

  /**
   * A lab Service as the API holds it, and the EndpointSlice its controller
   * keeps: named by the Service plus a random suffix, labelled with the
   * Service's name, its ports named as the Service's. A port named http
   * targets the container port by that name (the slice says which number), as
   * manifests often write it.
   */
  private serviceObjects(svc: NonNullable<LabInventory['services']>[number]): Obj[] {
    const service: Obj = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: svc.name,
        namespace: svc.namespace,
        labels: svc.name === 'kube-dns' ? {'k8s-app': 'kube-dns'} : {app: svc.name},
      },
      spec: {
        type: svc.type ?? 'ClusterIP',
        clusterIP: svc.clusterIP,
        clusterIPs: [svc.clusterIP],
        ipFamilies: ['IPv4'],
        ports: svc.ports.map((p) => ({
          ...(p.name ? {name: p.name} : {}),
          protocol: p.protocol,
          port: p.port,
          targetPort: p.name === 'http' ? 'http' : (p.targetPort ?? p.port),
          ...(p.nodePort ? {nodePort: p.nodePort} : {}),
        })),
        // the API server fills in the policies' defaults
        internalTrafficPolicy: svc.internalTrafficPolicy ?? 'Cluster',
        // a NodePort or LoadBalancer has one (Cluster by default); a ClusterIP Service none
        ...(svc.type === 'NodePort' || svc.type === 'LoadBalancer'
          ? {externalTrafficPolicy: svc.externalTrafficPolicy ?? 'Cluster'}
          : {}),
        ...(svc.externalIPs ? {externalIPs: svc.externalIPs} : {}),
        ...(svc.loadBalancerSourceRanges ? {loadBalancerSourceRanges: svc.loadBalancerSourceRanges} : {}),
        ...(svc.healthCheckNodePort ? {healthCheckNodePort: svc.healthCheckNodePort} : {}),
        // the API server keeps the timeout it defaulted (10800 s) with ClientIP
        ...(svc.sessionAffinity
          ? {sessionAffinity: 'ClientIP', sessionAffinityConfig: {clientIP: {...svc.sessionAffinity.clientIP}}}
          : {sessionAffinity: 'None'}),
        ...(svc.trafficDistribution ? {trafficDistribution: svc.trafficDistribution} : {}),
      },
      // the load balancer controller's ingress (MetalLB-like: a VIP kube-proxy captures)
      status: {
        loadBalancer: svc.loadBalancerIPs ? {ingress: svc.loadBalancerIPs.map((ip) => ({ip, ipMode: 'VIP'}))} : {},
      },
    }
    const slice: Obj = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${svc.name}-${randomBytes(3).toString('hex').slice(0, 5)}`,
        generateName: `${svc.name}-`,
        namespace: svc.namespace,
        labels: {
          'kubernetes.io/service-name': svc.name,
          'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
        },
      },
      addressType: 'IPv4',
      endpoints: (svc.endpoints ?? []).map((e) => ({
        addresses: e.addresses,
        conditions: {ready: e.conditions?.ready !== false, serving: e.conditions?.ready !== false, terminating: false},
        ...(e.nodeName ? {nodeName: e.nodeName} : {}),
        ...(e.zone ? {zone: e.zone} : {}),
        ...(e.hints ? {hints: e.hints} : {}),
        ...(e.targetRef ? {targetRef: {...e.targetRef, uid: randomUUID()}} : {}),
      })),
      ports: svc.ports.map((p) => ({
        ...(p.name ? {name: p.name} : {}),
        protocol: p.protocol,
        port: p.targetPort ?? p.port,
      })),
    }
    return [service, slice]
  }

  /** A pod as the API holds it once its kubelet has started it. */
  private runningPod(
    ns: string,
    name: string,
    node: string,
    ip: string,
    hostIP: string,
    labels: Record<string, string>,
  ): Obj {
    const t = now()
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {name, namespace: ns, labels},
      spec: {
        nodeName: node,
        containers: [
          {
            name: 'app',
            image: 'docker.io/library/busybox:1.36',
            command: ['sleep', 'infinity'],
            imagePullPolicy: 'IfNotPresent',
          },
        ],
        restartPolicy: 'Always',
        dnsPolicy: 'ClusterFirst',
        schedulerName: 'default-scheduler',
        serviceAccountName: 'default',
        terminationGracePeriodSeconds: 30,
      },
      status: {
        phase: 'Running',
        hostIP,
        hostIPs: [{ip: hostIP}],
        podIP: ip,
        podIPs: [{ip}],
        startTime: t,
        qosClass: 'BestEffort',
        conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({
          type,
          status: 'True',
          lastProbeTime: null,
          lastTransitionTime: t,
        })),
        containerStatuses: [this.runningStatus('app', 'docker.io/library/busybox:1.36', t)],
      },
    }
  }

  private runningStatus(name: string, image: string, t: string): Obj {
    return {
      name,
      image,
      imageID: `${image.split(':')[0]}@sha256:${randomBytes(32).toString('hex')}`,
      containerID: `containerd://${randomBytes(32).toString('hex')}`,
      ready: true,
      started: true,
      restartCount: 0,
      lastState: {},
      state: {running: {startedAt: t}},
    } as unknown as Obj
  }

  // ---- HTTP --------------------------------------------------------------

  /** Who the request is from: the token's user, anonymous, or 401. */
  private authenticate(req: IncomingMessage): string {
    const auth = req.headers.authorization
    if (!auth) return 'system:anonymous'
    const m = /^Bearer\s+(\S+)$/i.exec(auth)
    if (!m || m[1] !== this.token) fail(401, 'Unauthorized', 'Unauthorized')
    return this.user
  }

  private authorize(
    user: string,
    verb: string,
    def: ResourceDef,
    sub: string | undefined,
    ns: string | undefined,
    name: string | undefined,
  ): void {
    const resource = sub ? `${def.resource}/${sub}` : def.resource
    const denied =
      user === 'system:anonymous' ||
      this.deny.some(
        (d) => d.verb === verb && d.resource === resource && (d.namespace === undefined || d.namespace === ns),
      )
    if (!denied) return
    const subject = name ? `${def.resource} "${name}"` : def.resource
    const scope = ns ? `in the namespace "${ns}"` : 'at the cluster scope'
    fail(
      403,
      'Forbidden',
      `${subject} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "${def.group}" ${scope}`,
      {
        ...(name ? {name} : {}),
        ...(def.group ? {group: def.group} : {}),
        kind: def.resource,
      },
    )
  }

  private send(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body)
    res.writeHead(code, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
      'Audit-Id': randomUUID(),
      'Cache-Control': 'no-cache, private',
    })
    res.end(text)
  }

  private async body(req: IncomingMessage): Promise<any> {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const text = Buffer.concat(chunks).toString('utf8')
    if (text.trim() === '') return undefined
    try {
      return JSON.parse(text)
    } catch (error) {
      fail(400, 'BadRequest', `the object provided is unrecognized (must be of type JSON): ${(error as Error).message}`)
    }
  }

  /** /api/v1/..., /apis/G/V/...: the resource, namespace, name and subresource a path names. */
  private route(pathname: string): {def: ResourceDef; ns?: string; name?: string; sub?: string} | undefined {
    const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent)
    let group = ''
    let version: string
    let rest: string[]
    if (parts[0] === 'api' && parts.length >= 3) {
      version = parts[1]!
      rest = parts.slice(2)
    } else if (parts[0] === 'apis' && parts.length >= 4) {
      group = parts[1]!
      version = parts[2]!
      rest = parts.slice(3)
    } else {
      return undefined
    }
    let ns: string | undefined
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      ns = rest[1]
      rest = rest.slice(2)
    }
    const def = RESOURCES.find((d) => d.group === group && d.version === version && d.resource === rest[0])
    if (!def || (def.crd && !this.installedGroups.has(def.group))) return undefined
    if (ns !== undefined && !def.namespaced) return undefined
    if (rest.length > 3) return undefined
    return {
      def,
      ...(ns === undefined ? {} : {ns}),
      ...(rest[1] === undefined ? {} : {name: rest[1]}),
      ...(rest[2] === undefined ? {} : {sub: rest[2]}),
    }
  }

  private discovery(pathname: string): unknown | undefined {
    if (pathname === '/version' || pathname === '/version/') return VERSION_INFO
    if (pathname === '/api')
      return {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{clientCIDR: '0.0.0.0/0', serverAddress: this.url.replace('https://', '')}],
      }
    if (pathname === '/apis') {
      const groups = [
        ...new Set(
          RESOURCES.filter((d) => d.group && (!d.crd || this.installedGroups.has(d.group))).map((d) => d.group),
        ),
      ]
      return {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: groups.map((g) => {
          const gv = {groupVersion: `${g}/v1`, version: 'v1'}
          return {name: g, versions: [gv], preferredVersion: gv}
        }),
      }
    }
    const m = /^\/(?:api\/v1|apis\/([^/]+)\/v1)\/?$/.exec(pathname)
    if (m) {
      const group = m[1] ?? ''
      if (group && RESOURCES.some((d) => d.group === group && d.crd) && !this.installedGroups.has(group))
        return undefined
      const defs = RESOURCES.filter((d) => d.group === group)
      if (defs.length === 0) return undefined
      return {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: group ? `${group}/v1` : 'v1',
        resources: defs.flatMap((d) => [
          {
            name: d.resource,
            singularName: d.kind.toLowerCase(),
            namespaced: d.namespaced,
            kind: d.kind,
            verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
            ...(d.shortNames ? {shortNames: d.shortNames} : {}),
          },
          ...(d.resource === 'pods'
            ? [
                {
                  name: 'pods/exec',
                  singularName: '',
                  namespaced: true,
                  kind: 'PodExecOptions',
                  verbs: ['create', 'get'],
                },
              ]
            : []),
        ]),
      }
    }
    return undefined
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://emulator')
    const method = (req.method ?? 'GET').toUpperCase()
    const log = {method, path: `${url.pathname}${url.search}`, verb: '', resource: '', code: 200}
    this.requests.push(log)
    try {
      const user = this.authenticate(req)
      const disc = this.discovery(url.pathname)
      if (disc !== undefined) {
        if (user === 'system:anonymous' && !url.pathname.startsWith('/version'))
          fail(403, 'Forbidden', `forbidden: User "system:anonymous" cannot get path "${url.pathname}"`, {})
        return this.send(res, 200, disc)
      }
      const r = this.route(url.pathname)
      if (!r) fail(404, 'NotFound', 'the server could not find the requested resource', {})
      const {def, ns, name, sub} = r
      const watch = ['true', '1'].includes(url.searchParams.get('watch') ?? '')
      const verb = {
        GET: name ? 'get' : watch ? 'watch' : 'list',
        POST: 'create',
        PUT: 'update',
        PATCH: 'patch',
        DELETE: name ? 'delete' : 'deletecollection',
      }[method]
      if (!verb) fail(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`, {})
      log.verb = sub === 'exec' ? 'create' : verb
      log.resource = sub ? `${def.resource}/${sub}` : def.resource
      this.authorize(user, log.verb, def, sub, ns, name)
      if (sub === 'exec') fail(400, 'BadRequest', 'Upgrade request required')
      if (sub !== undefined && sub !== 'status')
        fail(404, 'NotFound', 'the server could not find the requested resource', {})
      if (method === 'GET' && !name)
        return watch ? this.watch(def, ns, url, res) : this.send(res, 200, this.listResponse(def, ns, url))
      if (method === 'GET') return this.send(res, 200, this.getOr404(def, ns, name!))
      if (method === 'POST') {
        if (name) fail(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {})
        const created = this.createObject(def, ns, await this.body(req))
        log.code = 201
        return this.send(res, 201, created)
      }
      if (method === 'PUT') return this.send(res, 200, this.updateObject(def, ns, name!, await this.body(req)))
      if (method === 'PATCH')
        return this.send(
          res,
          200,
          this.patchObject(def, ns, name!, String(req.headers['content-type'] ?? ''), await this.body(req)),
        )
      if (method === 'DELETE' && name)
        return this.send(res, 200, this.deleteObject(def, ns, name, await this.body(req)))
      return this.send(res, 200, this.deleteCollection(def, ns, url))
    } catch (error) {
      if (error instanceof HttpError) {
        log.code = error.code
        return this.send(res, error.code, error.status)
      }
      log.code = 500
      return this.send(
        res,
        500,
        statusObj(500, 'InternalError', `Internal error occurred: ${(error as Error).message}`),
      )
    }
  }

  private matching(def: ResourceDef, ns: string | undefined, url: URL): Obj[] {
    const labelSel = parseLabelSelector(url.searchParams.get('labelSelector'))
    const fieldSel = parseFieldSelector(url.searchParams.get('fieldSelector'), def)
    return [...this.bucket(def).values()]
      .filter((o) => ns === undefined || o.metadata.namespace === ns)
      .filter((o) => labelsMatch(o.metadata.labels, labelSel) && fieldsMatch(o, fieldSel))
      .sort((a, b) =>
        `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(
          `${b.metadata.namespace ?? ''}/${b.metadata.name}`,
        ),
      )
  }

  private listResponse(def: ResourceDef, ns: string | undefined, url: URL): Obj {
    // built-in lists carry kind and apiVersion once, at the top; custom resources keep them per item
    const items = this.matching(def, ns, url).map((o) => {
      if (def.crd) return clone(o)
      const {apiVersion: _a, kind: _k, ...rest} = clone(o)
      return rest
    })
    return {
      apiVersion: apiVersionOf(def),
      kind: `${def.kind}List`,
      metadata: {resourceVersion: String(this.rv)},
      items,
    } as Obj
  }

  private getOr404(def: ResourceDef, ns: string | undefined, name: string): Obj {
    const o = this.bucket(def).get(`${ns ?? ''}/${name}`)
    if (!o)
      fail(404, 'NotFound', `${def.resource}${def.group ? `.${def.group}` : ''} "${name}" not found`, {
        name,
        ...(def.group ? {group: def.group} : {}),
        kind: def.resource,
      })
    return clone(o)
  }

  private watch(def: ResourceDef, ns: string | undefined, url: URL, res: ServerResponse): void {
    const w: Watcher = {
      def,
      ...(ns === undefined ? {} : {namespace: ns}),
      labelSel: parseLabelSelector(url.searchParams.get('labelSelector')),
      fieldSel: parseFieldSelector(url.searchParams.get('fieldSelector'), def),
      res,
    }
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
      'Cache-Control': 'no-cache, private',
    })
    // kube-apiserver flushes the headers at once: a watch with nothing to say yet is still answered
    res.flushHeaders()
    const from = url.searchParams.get('resourceVersion')
    const matches = (o: Obj): boolean =>
      (ns === undefined || o.metadata.namespace === ns) &&
      labelsMatch(o.metadata.labels, w.labelSel) &&
      fieldsMatch(o, w.fieldSel)
    if (from && from !== '0') {
      // resume: every change after that version
      for (const e of this.events)
        if (e.def === def && e.rv > Number(from) && matches(e.object))
          res.write(`${JSON.stringify({type: e.type, object: e.object})}\n`)
    } else {
      // no version: the current state as ADDED events, then changes
      for (const o of this.matching(def, ns, url)) res.write(`${JSON.stringify({type: 'ADDED', object: o})}\n`)
    }
    this.watchers.add(w)
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 0)
    if (timeout > 0) this.later(timeout * 1000, () => res.end())
    res.once('close', () => this.watchers.delete(w))
  }

  private createObject(def: ResourceDef, ns: string | undefined, body: any): Obj {
    if (!body || typeof body !== 'object')
      fail(400, 'BadRequest', 'the object provided is unrecognized (must be of type JSON)')
    if (body.kind !== def.kind || body.apiVersion !== apiVersionOf(def)) {
      fail(
        400,
        'BadRequest',
        `the API version in the data (${body.apiVersion}) does not match the expected API version (${apiVersionOf(def)})`,
      )
    }
    const obj = clone(body) as Obj
    obj.metadata ??= {}
    if (!obj.metadata.name) {
      if (!obj.metadata.generateName)
        fail(
          422,
          'Invalid',
          `${def.kind} "" is invalid: metadata.name: Required value: name or generateName is required`,
          {
            kind: def.kind,
            causes: [
              {
                reason: 'FieldValueRequired',
                message: 'Required value: name or generateName is required',
                field: 'metadata.name',
              },
            ],
          },
        )
      obj.metadata.name = `${obj.metadata.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`
    }
    if (def.namespaced) {
      if (obj.metadata.namespace && obj.metadata.namespace !== ns)
        fail(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request')
      obj.metadata.namespace = ns
      if (!this.get('namespaces', '', ns!))
        fail(404, 'NotFound', `namespaces "${ns}" not found`, {name: ns, kind: 'namespaces'})
    }
    const k = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`
    if (this.bucket(def).has(k))
      fail(
        409,
        'AlreadyExists',
        `${def.resource}${def.group ? `.${def.group}` : ''} "${obj.metadata.name}" already exists`,
        {name: obj.metadata.name, ...(def.group ? {group: def.group} : {}), kind: def.resource},
      )
    for (const f of ['uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp']) delete obj.metadata[f]
    if (def.resource === 'pods') this.podSecurity(obj)
    if (def.resource === 'pods') this.admitPod(obj)
    if (def.resource === 'leases') this.admitLease(obj)
    this.stamp(obj, def)
    this.bucket(def).set(k, obj)
    this.created.push(clone(obj))
    this.emit(def, 'ADDED', obj)
    if (def.resource === 'pods') this.schedule(obj)
    return clone(obj)
  }

  /**
   * Pod Security Admission as the namespace's `pod-security.kubernetes.io/enforce`
   * label asks: baseline refuses host namespaces and privileged containers,
   * restricted those and what a root container may do. The 403 is the real
   * one's shape: `pods "x" is forbidden: violates PodSecurity "baseline:latest": ...`,
   * failed checks in the order the real admission lists them.
   */
  private podSecurity(pod: Obj): void {
    const labels = this.get('namespaces', '', pod.metadata.namespace)?.metadata.labels ?? {}
    const level = labels['pod-security.kubernetes.io/enforce']
    if (level !== 'baseline' && level !== 'restricted') return
    const spec = pod.spec ?? {}
    const containers: any[] = spec.containers ?? []
    const failed: string[] = []
    const host = (['hostNetwork', 'hostPID', 'hostIPC'] as const).filter((f) => spec[f] === true)
    if (host.length > 0) failed.push(`host namespaces (${host.map((f) => `${f}=true`).join(', ')})`)
    const privileged = containers.filter((c) => c.securityContext?.privileged === true).map((c) => `"${c.name}"`)
    if (privileged.length > 0)
      failed.push(
        `privileged (container${privileged.length > 1 ? 's' : ''} ${privileged.join(', ')} must not set securityContext.privileged=true)`,
      )
    if (level === 'restricted') {
      const names = containers.map((c) => `"${c.name}"`).join(', ')
      const each = containers.length > 1 ? 'containers' : 'container'
      if (containers.some((c) => c.securityContext?.allowPrivilegeEscalation !== false))
        failed.push(
          `allowPrivilegeEscalation != false (${each} ${names} must set securityContext.allowPrivilegeEscalation=false)`,
        )
      if (containers.some((c) => !(c.securityContext?.capabilities?.drop ?? []).includes('ALL')))
        failed.push(`unrestricted capabilities (${each} ${names} must set securityContext.capabilities.drop=["ALL"])`)
      if (
        spec.securityContext?.runAsNonRoot !== true &&
        containers.some((c) => c.securityContext?.runAsNonRoot !== true)
      )
        failed.push(`runAsNonRoot != true (pod or ${each} ${names} must set securityContext.runAsNonRoot=true)`)
      if (!spec.securityContext?.seccompProfile && containers.some((c) => !c.securityContext?.seccompProfile))
        failed.push(
          `seccompProfile (pod or ${each} ${names} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`,
        )
    }
    if (failed.length === 0) return
    const version = labels['pod-security.kubernetes.io/enforce-version'] ?? 'latest'
    fail(
      403,
      'Forbidden',
      `pods "${pod.metadata.name}" is forbidden: violates PodSecurity "${level}:${version}": ${failed.join(', ')}`,
      {name: pod.metadata.name, kind: 'pods'},
    )
  }

  /** Validation and the defaults the API server fills in for a pod. */
  private admitPod(pod: Obj): void {
    const spec = pod.spec
    const containers = spec?.containers
    if (!Array.isArray(containers) || containers.length === 0) {
      fail(422, 'Invalid', `Pod "${pod.metadata.name}" is invalid: spec.containers: Required value`, {
        name: pod.metadata.name,
        kind: 'Pod',
        causes: [{reason: 'FieldValueRequired', message: 'Required value', field: 'spec.containers'}],
      })
    }
    containers.forEach((c: any, i: number) => {
      if (!c.image)
        fail(422, 'Invalid', `Pod "${pod.metadata.name}" is invalid: spec.containers[${i}].image: Required value`, {
          name: pod.metadata.name,
          kind: 'Pod',
          causes: [{reason: 'FieldValueRequired', message: 'Required value', field: `spec.containers[${i}].image`}],
        })
      c.imagePullPolicy ??= /:latest$|^[^:]*$/.test(c.image) ? 'Always' : 'IfNotPresent'
      c.terminationMessagePath ??= '/dev/termination-log'
      c.terminationMessagePolicy ??= 'File'
      c.resources ??= {}
    })
    spec.restartPolicy ??= 'Always'
    spec.dnsPolicy ??= 'ClusterFirst'
    spec.schedulerName ??= 'default-scheduler'
    spec.terminationGracePeriodSeconds ??= 30
    spec.serviceAccountName ??= 'default'
    spec.enableServiceLinks ??= true
    spec.priority ??= 0
    spec.securityContext ??= {}
    pod.status = {phase: 'Pending', qosClass: 'BestEffort'}
  }

  /** The scheduler and the kubelet, in miniature. */
  private schedule(pod: Obj): void {
    const ns = pod.metadata.namespace
    const name = pod.metadata.name
    const uid = pod.metadata.uid
    const alive = (): Obj | undefined => {
      const p = this.bucket(RESOURCES[2]!).get(`${ns}/${name}`)
      return p && p.metadata.uid === uid && !p.metadata.deletionTimestamp ? p : undefined
    }
    let nodeName: string | undefined = pod.spec.nodeName
    if (!nodeName) {
      const ready = this.list('nodes').find(
        (n) =>
          !n.spec?.unschedulable && n.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'),
      )
      const total = this.list('nodes').length
      if (!ready) {
        this.update('pods', ns, name, (p) => {
          p.status.conditions = [
            {
              type: 'PodScheduled',
              status: 'False',
              reason: 'Unschedulable',
              message: `0/${total} nodes are available: ${total === 0 ? 'no nodes available to schedule pods' : `${total} node(s) were unschedulable`}.`,
              lastProbeTime: null,
              lastTransitionTime: now(),
            },
          ]
        })
        return
      }
      nodeName = ready.metadata.name as string
      this.update('pods', ns, name, (p) => {
        p.spec.nodeName = nodeName
      })
    }
    const node = this.get('nodes', '', nodeName)
    // bound to a node with no kubelet (none, or stopped): it stays Pending, as on a real cluster
    if (!node || this.kubeletsDown.has(nodeName)) return
    const hostIP = node.status?.addresses?.find((a: any) => a.type === 'InternalIP')?.address ?? ''
    const step = Math.max(1, Math.floor(this.podStartMs / 2))
    this.later(step, () => {
      if (!alive()) return
      const t = now()
      const podIP = pod.spec.hostNetwork ? hostIP : this.allocateIP(node)
      this.update('pods', ns, name, (p) => {
        p.status.hostIP = hostIP
        p.status.hostIPs = [{ip: hostIP}]
        if (podIP) {
          p.status.podIP = podIP
          p.status.podIPs = [{ip: podIP}]
        }
        p.status.startTime = t
        p.status.conditions = [
          {type: 'PodReadyToStartContainers', status: 'True', lastProbeTime: null, lastTransitionTime: t},
          {type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: t},
          {
            type: 'Ready',
            status: 'False',
            reason: 'ContainersNotReady',
            message: `containers with unready status: [${p.spec.containers.map((c: any) => c.name).join(' ')}]`,
            lastProbeTime: null,
            lastTransitionTime: t,
          },
          {
            type: 'ContainersReady',
            status: 'False',
            reason: 'ContainersNotReady',
            message: `containers with unready status: [${p.spec.containers.map((c: any) => c.name).join(' ')}]`,
            lastProbeTime: null,
            lastTransitionTime: t,
          },
          {type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: t},
        ]
        p.status.containerStatuses = p.spec.containers.map((c: any) => ({
          name: c.name,
          image: c.image,
          imageID: '',
          ready: false,
          started: false,
          restartCount: 0,
          lastState: {},
          state: {waiting: {reason: 'ContainerCreating'}},
        }))
      })
      const failing = pod.spec.containers.filter((c: any) => this.failingImages.has(c.image))
      if (failing.length > 0) return this.pullFails(ns, name, alive, step, 0)
      this.later(step, () => {
        if (!alive()) return
        const t2 = now()
        this.update('pods', ns, name, (p) => {
          p.status.phase = 'Running'
          for (const c of p.status.conditions)
            if (c.status === 'False' && c.type !== 'PodScheduled')
              Object.assign(c, {status: 'True', lastTransitionTime: t2, reason: undefined, message: undefined})
          p.status.conditions = JSON.parse(JSON.stringify(p.status.conditions))
          p.status.containerStatuses = p.spec.containers.map((c: any) => this.runningStatus(c.name, c.image, t2))
        })
        const deadline = pod.spec.activeDeadlineSeconds
        if (typeof deadline === 'number') this.later(deadline * 1000, () => this.deadlineExceeded(ns, name, alive))
      })
    })
  }

  private pullFails(ns: string, name: string, alive: () => Obj | undefined, step: number, round: number): void {
    this.later(step, () => {
      if (!alive()) return
      this.update('pods', ns, name, (p) => {
        for (const cs of p.status.containerStatuses) {
          if (!this.failingImages.has(cs.image)) continue
          const ref = cs.image.includes('/') ? cs.image : `docker.io/library/${cs.image}`
          cs.state = {
            waiting:
              round % 2 === 0
                ? {
                    reason: 'ErrImagePull',
                    message: `rpc error: code = NotFound desc = failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": ${ref}: not found`,
                  }
                : {reason: 'ImagePullBackOff', message: `Back-off pulling image "${cs.image}"`},
          }
        }
      })
      if (round < 6) this.pullFails(ns, name, alive, step * 2, round + 1)
    })
  }

  private deadlineExceeded(ns: string, name: string, alive: () => Obj | undefined): void {
    if (!alive()) return
    this.killExecs(`${ns}/${name}`)
    const t = now()
    this.update('pods', ns, name, (p) => {
      p.status.phase = 'Failed'
      p.status.reason = 'DeadlineExceeded'
      p.status.message = `Pod was active on the node longer than the specified deadline`
      p.status.containerStatuses = (p.status.containerStatuses ?? []).map((cs: any) => ({
        ...cs,
        ready: false,
        started: false,
        state: {terminated: {exitCode: 137, reason: 'Error', startedAt: cs.state?.running?.startedAt, finishedAt: t}},
      }))
    })
  }

  /** The next free address of the node's podCIDR (the lab's own pods keep theirs). */
  private allocateIP(node: Obj): string | undefined {
    const cidr: string | undefined = node.spec?.podCIDR
    if (!cidr) return undefined
    const [base, len] = cidr.split('/') as [string, string]
    const used = new Set(
      this.list('pods')
        .filter((p) => p.spec?.nodeName === node.metadata.name)
        .map((p) => p.status?.podIP),
    )
    const size = 2 ** (32 - Number(len))
    let n = this.allocated.get(node.metadata.name) ?? 100
    while (n < size - 1 && used.has(intToIp(ipToInt(base) + n))) n++
    this.allocated.set(node.metadata.name, n + 1)
    return n < size - 1 ? intToIp(ipToInt(base) + n) : undefined
  }

  private updateObject(def: ResourceDef, ns: string | undefined, name: string, body: any): Obj {
    const cur = this.getOr404(def, ns, name)
    if (!body || body.metadata?.name !== name)
      fail(
        400,
        'BadRequest',
        `the name of the object (${body?.metadata?.name}) does not match the name on the URL (${name})`,
      )
    if (body.metadata.resourceVersion && body.metadata.resourceVersion !== cur.metadata.resourceVersion) {
      fail(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${def.resource}${def.group ? `.${def.group}` : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        {name, ...(def.group ? {group: def.group} : {}), kind: def.resource},
      )
    }
    return this.store_(def, cur, {
      ...clone(body),
      metadata: {
        ...body.metadata,
        uid: cur.metadata.uid,
        creationTimestamp: cur.metadata.creationTimestamp,
        namespace: cur.metadata.namespace,
      },
    })
  }

  /** Lease validation (pkg/apis/coordination/validation) and decoding: MicroTime fields, positive duration, nulls dropped. */
  private admitLease(lease: Obj): void {
    const spec = (lease.spec ??= {})
    for (const k of Object.keys(spec)) if (spec[k] === null) delete spec[k]
    const invalid = (field: string, value: unknown, why: string): never =>
      fail(
        422,
        'Invalid',
        `Lease.coordination.k8s.io "${lease.metadata.name}" is invalid: ${field}: Invalid value: ${JSON.stringify(value)}: ${why}`,
        {
          name: lease.metadata.name,
          group: 'coordination.k8s.io',
          kind: 'Lease',
          causes: [{reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${why}`, field}],
        },
      )
    for (const k of ['acquireTime', 'renewTime']) {
      // the server decodes these as MicroTime; anything else does not even parse
      if (
        spec[k] !== undefined &&
        !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/.test(String(spec[k]))
      ) {
        fail(
          400,
          'BadRequest',
          `Lease in version "v1" cannot be handled as a Lease: parsing time "${spec[k]}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse`,
        )
      }
    }
    if (
      spec.leaseDurationSeconds !== undefined &&
      !(Number.isInteger(spec.leaseDurationSeconds) && spec.leaseDurationSeconds > 0)
    )
      invalid('spec.leaseDurationSeconds', spec.leaseDurationSeconds, 'must be greater than 0')
    if (spec.leaseTransitions !== undefined && !(Number.isInteger(spec.leaseTransitions) && spec.leaseTransitions >= 0))
      invalid('spec.leaseTransitions', spec.leaseTransitions, 'must be greater than or equal to 0')
  }

  private store_(def: ResourceDef, cur: Obj, next: Obj): Obj {
    if (def.resource === 'leases') this.admitLease(next)
    next.apiVersion = apiVersionOf(def)
    next.kind = def.kind
    next.metadata.name = cur.metadata.name
    if (def.namespaced) next.metadata.namespace = cur.metadata.namespace
    next.metadata.uid = cur.metadata.uid
    next.metadata.creationTimestamp = cur.metadata.creationTimestamp
    next.metadata.resourceVersion = this.nextRV()
    const specChanged = JSON.stringify(next.spec) !== JSON.stringify(cur.spec)
    if ((def.resource === 'daemonsets' || def.crd) && specChanged)
      next.metadata.generation = (cur.metadata.generation ?? 1) + 1
    this.bucket(def).set(`${cur.metadata.namespace ?? ''}/${cur.metadata.name}`, next)
    this.emit(def, 'MODIFIED', next)
    if (def.resource === 'daemonsets' && JSON.stringify(next.spec?.template) !== JSON.stringify(cur.spec?.template))
      this.rollOut(next)
    for (const r of this.reactors) if (r.resource === def.resource) this.react(r.fn, clone(next), clone(cur))
    return clone(next)
  }

  // ---- controllers -------------------------------------------------------

  /**
   * A client changed an object of `resource` (PUT or PATCH): `fn` runs after
   * the answer is sent, as a controller or node agent watching it would react
   * (Felix following an IPPool). An error is kept in reactorErrors.
   */
  onChange(resource: string, fn: Reactor): void {
    this.reactors.push({resource, fn})
  }

  /**
   * The DaemonSet controller rolls out a new pod template (a `rollout restart`
   * or any template change): the status first says 0 pods updated, then each
   * rollout handler runs — the new pods starting, for a lab: the node agent
   * programming the dataplane — and once they all succeed every pod counts
   * as updated and available. A handler that fails leaves the rollout stuck,
   * as a crash-looping pod does. With no handler it completes after podStartMs.
   */
  onRollout(fn: (ds: Obj) => Promise<void>): void {
    this.rolloutHandlers.push(fn)
  }

  private react(fn: Reactor, next: Obj, prev: Obj): void {
    this.later(0, () => {
      Promise.resolve(fn(next, prev)).catch((error: Error) => this.reactorErrors.push(error.message))
    })
  }

  private rollOut(ds: Obj): void {
    const {namespace, name} = ds.metadata
    const generation = ds.metadata.generation
    const desired = this.list('nodes').filter((n) => !this.kubeletsDown.has(n.metadata.name)).length
    const setStatus = (updated: number, available: number): void => {
      const cur = this.get('daemonsets', namespace, name)
      if (!cur || cur.metadata.generation !== generation) return
      this.update('daemonsets', namespace, name, (o) => {
        o.status = {
          ...o.status,
          observedGeneration: generation,
          desiredNumberScheduled: desired,
          currentNumberScheduled: desired,
          updatedNumberScheduled: updated,
          numberReady: available,
          numberAvailable: available,
          numberUnavailable: desired - available,
        }
      })
    }
    setStatus(0, Math.max(0, desired - 1))
    this.later(this.podStartMs, () => {
      Promise.all(this.rolloutHandlers.map((h) => h(clone(ds)))).then(
        () => !this.closed && setStatus(desired, desired),
        (error: Error) => this.reactorErrors.push(`rollout of daemonset ${namespace}/${name}: ${error.message}`),
      )
    })
  }

  private patchObject(def: ResourceDef, ns: string | undefined, name: string, contentType: string, patch: any): Obj {
    const cur = this.getOr404(def, ns, name)
    const type = contentType.split(';')[0]!.trim()
    let next: Obj
    if (type === 'application/merge-patch+json') next = mergePatch(cur, patch)
    else if (type === 'application/strategic-merge-patch+json' && !def.crd) next = strategicMerge(cur, patch)
    else if (type === 'application/json-patch+json') next = jsonPatch(cur, patch)
    else {
      const accepted = def.crd
        ? 'application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml'
        : 'application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json'
      fail(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: ${accepted}`,
      )
    }
    if (!next || typeof next !== 'object') fail(422, 'Invalid', 'the patched object is not an object')
    // a resourceVersion in the patch is a precondition, as on a real server
    const rv = next.metadata?.resourceVersion
    if (rv !== undefined && rv !== cur.metadata.resourceVersion) {
      fail(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${def.resource}${def.group ? `.${def.group}` : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        {name, ...(def.group ? {group: def.group} : {}), kind: def.resource},
      )
    }
    return this.store_(def, cur, next)
  }

  private deleteObject(def: ResourceDef, ns: string | undefined, name: string, opts: any): Obj {
    const cur = this.getOr404(def, ns, name)
    if (def.resource !== 'pods') {
      this.remove(def, cur)
      // most built-in resources answer a delete with a Status; custom resources with the object
      return def.crd
        ? cur
        : {
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Success',
            details: {name, ...(def.group ? {group: def.group} : {}), kind: def.resource, uid: cur.metadata.uid},
          }
    }
    // pods delete gracefully: the answer is the pod with its deletionTimestamp, then it goes
    const grace =
      typeof opts?.gracePeriodSeconds === 'number'
        ? opts.gracePeriodSeconds
        : (cur.spec?.terminationGracePeriodSeconds ?? 30)
    const marked = this.update('pods', ns!, name, (p) => {
      p.metadata.deletionTimestamp ??= now()
      p.metadata.deletionGracePeriodSeconds = grace
    })
    this.killExecs(`${ns}/${name}`)
    const gone = (): void => {
      const p = this.bucket(def).get(`${ns}/${name}`)
      if (p && p.metadata.uid === cur.metadata.uid) this.remove(def, p)
    }
    // A graceful deletion waits for the kubelet to confirm that the containers stopped; a node
    // whose kubelet is down never does, and the pod stays Terminating (grace period 0, an
    // unscheduled or a finished pod go at once, as on a real server).
    const node = cur.spec?.nodeName as string | undefined
    const terminal = cur.status?.phase === 'Succeeded' || cur.status?.phase === 'Failed'
    if (grace > 0 && node !== undefined && this.kubeletsDown.has(node) && !terminal) return marked
    // the emulated containers stop at once; a short pause keeps the MODIFIED-then-DELETED order observable
    this.later(grace === 0 ? 1 : Math.min(grace * 1000, 50), gone)
    return marked
  }

  private deleteCollection(def: ResourceDef, ns: string | undefined, url: URL): Obj {
    const victims = this.matching(def, ns, url)
    for (const v of victims) {
      if (def.resource === 'pods') this.deleteObject(def, v.metadata.namespace, v.metadata.name, {})
      else this.remove(def, v)
    }
    return {
      apiVersion: apiVersionOf(def),
      kind: `${def.kind}List`,
      metadata: {resourceVersion: String(this.rv)},
      items: victims,
    } as Obj
  }

  // ---- exec --------------------------------------------------------------

  private rejectUpgrade(socket: Socket, code: number, status: Obj): void {
    const body = JSON.stringify(status)
    const text = `HTTP/1.1 ${code} ${code === 401 ? 'Unauthorized' : code === 403 ? 'Forbidden' : code === 404 ? 'Not Found' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
    socket.end(text)
  }

  private async handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://emulator')
    const log = {method: 'GET', path: `${url.pathname}${url.search}`, verb: 'create', resource: 'pods/exec', code: 101}
    this.requests.push(log)
    socket.on('error', () => undefined)
    try {
      const user = this.authenticate(req)
      const r = this.route(url.pathname)
      if (!r || r.def.resource !== 'pods' || r.sub !== 'exec' || !r.name || !r.ns)
        fail(404, 'NotFound', 'the server could not find the requested resource', {})
      // since 1.31 the websocket GET needs `create` on pods/exec, like the old SPDY POST
      this.authorize(user, 'create', r.def, 'exec', r.ns, r.name)
      const pod = this.getOr404(r.def, r.ns, r.name)
      const q = url.searchParams
      const command = q.getAll('command')
      if (command.length === 0) fail(400, 'BadRequest', 'you must specify at least 1 command')
      const names: string[] = pod.spec.containers.map((c: any) => c.name)
      const container = q.get('container') ?? (names.length === 1 ? names[0] : undefined)
      if (!container)
        fail(
          400,
          'BadRequest',
          `a container name must be specified for pod ${r.name}, choose one of: [${names.join(' ')}]`,
        )
      if (!names.includes(container)) fail(400, 'BadRequest', `container ${container} is not valid for pod ${r.name}`)
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed')
        fail(400, 'BadRequest', `cannot exec into a container in a completed pod; current phase is ${pod.status.phase}`)
      const running = pod.status?.containerStatuses?.find((c: any) => c.name === container)?.state?.running
      if (!running || pod.metadata.deletionTimestamp)
        fail(400, 'BadRequest', `unable to upgrade connection: container not found ("${container}")`)
      const offered = String(req.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean)
      if (!offered.some((p) => this.execProtocols.includes(p)))
        fail(
          400,
          'BadRequest',
          `requested protocol(s) are not supported: [${offered.join(' ')}]; supports [${this.execProtocols.join(' ')}]`,
        )
      const want = {
        stdin: ['true', '1'].includes(q.get('stdin') ?? ''),
        stdout: ['true', '1'].includes(q.get('stdout') ?? ''),
        stderr: ['true', '1'].includes(q.get('stderr') ?? ''),
      }
      this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => this.runExec(ws, pod, command, want))
    } catch (error) {
      const e =
        error instanceof HttpError
          ? error
          : new HttpError(500, statusObj(500, 'InternalError', `Internal error occurred: ${(error as Error).message}`))
      log.code = e.code
      this.rejectUpgrade(socket, e.code, e.status)
    }
  }

  /** Where a pod's process runs in the lab, and with which argv (see the header comment for the mapping). */
  private execArgv(pod: Obj, command: string[]): {netns?: string; argv: string[]; node?: string} {
    let argv = command
    const hostPID = pod.spec.hostPID === true
    if (argv[0] === 'nsenter' && hostPID) {
      // nsenter -t 1 [-m -u -n -i -p ...] [--] CMD...: into the host's namespaces, i.e. the lab node's
      let i = 1
      while (i < argv.length && argv[i]!.startsWith('-')) {
        const a = argv[i]!
        if (a === '--') {
          i++
          break
        }
        i += a === '-t' || a === '--target' ? 2 : 1
      }
      argv = argv.slice(i)
      if (argv.length === 0) argv = ['sh']
    }
    const netns = pod.spec.hostNetwork
      ? this.nodeNetns.get(pod.spec.nodeName)
      : this.podNetns.get(`${pod.metadata.namespace}/${pod.metadata.name}`)
    return {...(netns ? {netns} : {}), argv, ...(pod.spec.hostNetwork && netns ? {node: pod.spec.nodeName} : {})}
  }

  private runExec(
    ws: WebSocket,
    pod: Obj,
    command: string[],
    want: {stdin: boolean; stdout: boolean; stderr: boolean},
  ): void {
    const v5 = ws.protocol === 'v5.channel.k8s.io'
    const send = (channel: number, data: Buffer | string): void => {
      if (ws.readyState !== ws.OPEN) return
      const b = typeof data === 'string' ? Buffer.from(data) : data
      ws.send(Buffer.concat([Buffer.from([channel]), b]))
    }
    const finish = (status: Record<string, unknown>): void => {
      send(3, JSON.stringify(status))
      ws.close(1000)
    }
    // the kubelet signals a ready stream with an empty frame on the first output channel
    send(want.stdout ? 1 : want.stderr ? 2 : 3, Buffer.alloc(0))
    const {netns, argv, node} = this.execArgv(pod, command)
    if (!netns) {
      finish({
        metadata: {},
        status: 'Failure',
        message: `Internal error occurred: error executing command in container: the emulator has no namespace for pod ${pod.metadata.namespace}/${pod.metadata.name}`,
        reason: 'InternalError',
        details: {causes: [{message: 'no lab namespace'}]},
        code: 500,
      })
      return
    }
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`
    // on a lab node, the node's container runtime tools: the crictl stand-in first on PATH
    const env =
      node && this.crictl
        ? {...process.env, PATH: `${this.crictl.binDir(node)}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`}
        : process.env
    const child = spawn('ip', ['netns', 'exec', netns, ...(node ? this.hostRun(node) : []), ...argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env,
    })
    let set = this.execs.get(key)
    if (!set) {
      set = new Set()
      this.execs.set(key, set)
    }
    set.add(child)
    child.stdout.on('data', (b: Buffer) => want.stdout && send(1, b))
    child.stderr.on('data', (b: Buffer) => want.stderr && send(2, b))
    child.stdin.on('error', () => undefined)
    if (!want.stdin) child.stdin.end()
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const b = isBinary ? data : Buffer.from(data)
      if (b.length === 0) return
      if (b[0] === 0 && want.stdin) child.stdin.write(b.subarray(1))
      // v5: [255, channel] closes that channel; only stdin can be closed by the client
      else if (v5 && b[0] === 255 && b[1] === 0) child.stdin.end()
    })
    ws.once('close', () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    let spawnError: Error | undefined
    child.once('error', (e) => {
      spawnError = e
    })
    child.once('close', (code, signal) => {
      set!.delete(child)
      if (spawnError) {
        return finish({
          metadata: {},
          status: 'Failure',
          message: `Internal error occurred: error executing command in container: ${spawnError.message}`,
          reason: 'InternalError',
          details: {causes: [{message: spawnError.message}]},
          code: 500,
        })
      }
      // killed by a signal: the runtime reports 128 + its number, as a shell would
      const rc =
        code ?? 128 + (({SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1} as Record<string, number>)[signal ?? ''] ?? 9)
      if (rc === 0) return finish({metadata: {}, status: 'Success'})
      finish({
        metadata: {},
        status: 'Failure',
        message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${rc}`,
        reason: 'NonZeroExitCode',
        details: {causes: [{reason: 'ExitCode', message: String(rc)}]},
      })
    })
  }

  /**
   * A host exec on a lab node sees that node's own /run, as a real node's
   * root filesystem has calico-node's /var/run/calico (bird.ctl) and
   * flanneld's /run/flannel (subnet.env): a /run made of the node's run
   * directories and the real /run/netns (the runtime's pod namespaces) is
   * mounted over /run. `ip netns exec` runs each command in a mount namespace
   * of its own that does not propagate back, so nothing changes outside it.
   */
  private hostRun(node: string): string[] {
    const dirs = this.nodeRun.get(node)
    if (!dirs || (!dirs.calico && !dirs.flannel)) return []
    const root = path.join(this.dir, 'run', node)
    for (const d of ['netns', 'calico', 'flannel']) mkdirSync(path.join(root, d), {recursive: true})
    const binds = [
      ['calico', dirs.calico],
      ['flannel', dirs.flannel],
    ].filter((b): b is [string, string] => b[1] !== undefined)
    const script = [
      'set -e',
      'mount --rbind /run/netns "$0/netns"',
      ...binds.map(([name]) => `[ -d "$NETCTL_RUN_${name}" ] && mount --bind "$NETCTL_RUN_${name}" "$0/${name}"`),
      'mount --rbind "$0" /run',
      'exec "$@"',
    ].join('\n')
    return ['env', ...binds.map(([name, dir]) => `NETCTL_RUN_${name}=${dir}`), 'sh', '-c', script, root]
  }

  private killExecs(podKey: string): void {
    for (const child of this.execs.get(podKey) ?? []) child.kill('SIGKILL')
  }
}

export async function startKubeApiServer(opts: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  return KubeApiServer.start(opts)
}

// Standalone: serve a lab until interrupted, for trying netctl by hand.
//   node --import tsx test/helpers/kube-apiserver.ts --lab NAME --kubeconfig FILE
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(name)
    return i > 0 ? process.argv[i + 1] : undefined
  }
  const lab = arg('--lab')
  const file = arg('--kubeconfig') ?? path.join(tmpdir(), 'netctl-emulator.kubeconfig')
  const server = await KubeApiServer.start()
  if (lab) server.seedFromLab(path.join(process.env.NETCTL_STATE_DIR ?? '/run/netctl/labs', lab, 'inventory.yaml'))
  server.writeKubeconfig(file, {context: lab ? `lab-${lab}` : 'emulator'})
  console.log(
    `kube-apiserver emulator at ${server.url}${lab ? ` serving lab ${lab}` : ''}; kubeconfig ${file}; Ctrl-C to stop`,
  )
  const stop = (): void => void server.close().then(() => process.exit(0))
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
