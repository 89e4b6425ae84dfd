import http from 'node:http'
import https from 'node:https'
import {createInterface} from 'node:readline'

import {KUBE_REQUEST_TIMEOUT_MS} from '../defaults.js'
import {type ErrorClass, NetctlError} from '../errors.js'
import {type KubeConnectOptions, loadKubeConfig, type ResolvedKubeConfig} from './kube-config.js'
import type {KubeList, KubeObject, KubeStatus, WatchEvent} from './kube-types.js'

/** An API request, split the way RBAC sees it. */
export interface ApiTarget {
  group: string
  version: string
  resource: string
  subresource?: string
  namespace?: string
  name?: string
}

/** Split an API path (/api/v1/namespaces/ns/pods/x/exec, /apis/apps/v1/daemonsets) into its RBAC parts. */
export function parseApiPath(p: string): ApiTarget | undefined {
  const parts = p.split('?')[0]!.split('/').filter(Boolean).map(decodeURIComponent)
  let rest: string[]
  let group: string
  let version: string
  if (parts[0] === 'api' && parts.length >= 2) {
    group = ''
    version = parts[1]!
    rest = parts.slice(2)
  } else if (parts[0] === 'apis' && parts.length >= 3) {
    group = parts[1]!
    version = parts[2]!
    rest = parts.slice(3)
  } else {
    return undefined
  }
  let namespace: string | undefined
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1]
    rest = rest.slice(2)
  }
  const [resource, name, subresource] = rest
  if (!resource) return undefined
  return {
    group,
    version,
    resource,
    ...(namespace === undefined ? {} : {namespace}),
    ...(name === undefined ? {} : {name}),
    ...(subresource === undefined ? {} : {subresource}),
  }
}

/** The RBAC verb for an HTTP method on a path (as the API server's request-info resolver decides it). */
export function rbacVerb(method: string, target: ApiTarget | undefined, watch = false): string {
  const named = target?.name !== undefined
  switch (method.toUpperCase()) {
    case 'GET':
      return watch ? 'watch' : target?.subresource === 'exec' ? 'create' : named ? 'get' : 'list'
    case 'POST':
      return 'create'
    case 'PUT':
      return 'update'
    case 'PATCH':
      return 'patch'
    case 'DELETE':
      return named ? 'delete' : 'deletecollection'
    default:
      return method.toLowerCase()
  }
}

/** An error from the API server or on the way to it, one line, with the exit code it deserves. */
export class KubeApiError extends NetctlError {
  constructor(
    message: string,
    errorClass: ErrorClass,
    code: string,
    /** the HTTP status, when the server answered */
    readonly httpStatus?: number,
    /** the Status object the server sent */
    readonly status?: KubeStatus,
  ) {
    super(message, errorClass, code)
    this.name = 'KubeApiError'
  }

  get reason(): string | undefined {
    return this.status?.reason
  }
}

/** Nothing listening, no route, a dead name, a TLS failure: the cluster cannot be reached (exit 3). */
export function connectionError(err: NodeJS.ErrnoException, server: string, context: string): KubeApiError {
  const code = err.code ?? ''
  const why: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'no such host',
    EAI_AGAIN: 'name lookup failed',
    EHOSTUNREACH: 'no route to host',
    ENETUNREACH: 'network unreachable',
    ETIMEDOUT: 'connection timed out',
    ECONNRESET: 'connection reset',
    DEPTH_ZERO_SELF_SIGNED_CERT: "TLS: the server's certificate is self-signed and not trusted by the kubeconfig",
    SELF_SIGNED_CERT_IN_CHAIN: "TLS: the server's certificate chain ends in a CA the kubeconfig does not trust",
    UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      "TLS: the server's certificate is not signed by the kubeconfig's certificate-authority",
    UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      "TLS: the server's certificate is not signed by the kubeconfig's certificate-authority",
    CERT_HAS_EXPIRED: "TLS: the server's certificate has expired",
    ERR_TLS_CERT_ALTNAME_INVALID: "TLS: the server's certificate is not valid for this address",
  }
  const detail = why[code] ?? (err.message || code || 'unknown error').split('\n')[0]
  return new KubeApiError(
    `cannot reach the Kubernetes API server at ${server} (context ${context}): ${detail}`,
    'unreachable',
    'CLUSTER_UNREACHABLE',
  )
}

function resourceWords(t: ApiTarget | undefined): {resource: string; group: string} {
  if (!t) return {resource: 'the resource', group: ''}
  return {resource: t.subresource ? `${t.resource}/${t.subresource}` : t.resource, group: t.group}
}

/**
 * A non-2xx answer as one line. 401 and 403 keep the cluster from being read
 * at all (exit 3, like an unreachable one); 403 names the verb and resource
 * that RBAC must allow, from the Status the server sent; NotFound is the
 * user's to fix (exit 2).
 */
export function statusError(
  httpStatus: number,
  status: KubeStatus | undefined,
  req: {method: string; path: string; watch?: boolean},
  who: {server: string; context: string; user: string},
): KubeApiError {
  const target = parseApiPath(req.path)
  const reason = status?.reason ?? http.STATUS_CODES[httpStatus] ?? 'Error'
  const serverSays = (status?.message ?? '').split('\n')[0]!.trim()
  if (httpStatus === 401) {
    return new KubeApiError(
      `the Kubernetes API server at ${who.server} rejected the credentials of context ${who.context}${who.user ? ` (user ${who.user})` : ''}: 401 Unauthorized; the token or client certificate is invalid or expired, log in again or fix the kubeconfig`,
      'unreachable',
      'UNAUTHORIZED',
      httpStatus,
      status,
    )
  }
  if (httpStatus === 403) {
    // "pods "x" is forbidden: User "u" cannot create resource "pods/exec" in API group "" in the namespace "ns""
    const m =
      /User "([^"]*)" cannot (\S+) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]+)"| at the cluster scope)?/.exec(
        serverSays,
      )
    const fallback = resourceWords(target)
    const detailsResource = status?.details?.kind
      ? target?.subresource
        ? `${status.details.kind}/${target.subresource}`
        : status.details.kind
      : undefined
    const verb = m?.[2] ?? rbacVerb(req.method, target, req.watch)
    const resource = m?.[3] ?? detailsResource ?? fallback.resource
    const group = m?.[4] ?? status?.details?.group ?? fallback.group
    const ns = m ? m[5] : target?.namespace
    const user = m?.[1] ? `user "${m[1]}"` : who.user ? `user ${who.user}` : 'this user'
    const name = status?.details?.name ?? target?.name
    const scope = ns ? `in namespace "${ns}"` : 'at the cluster scope'
    return new KubeApiError(
      `Forbidden: ${user} may not ${verb} ${resource}${name ? ` "${name}"` : ''} ${scope}; RBAC must allow verb "${verb}" on resource "${resource}" (API group "${group}")`,
      'unreachable',
      'FORBIDDEN',
      httpStatus,
      status,
    )
  }
  if (httpStatus === 404) {
    const name = status?.details?.name ?? target?.name
    const kind = status?.details?.kind ?? target?.resource
    const msg =
      name && serverSays !== 'the server could not find the requested resource'
        ? `${kind ? `${kind} ` : ''}"${target?.namespace ? `${target.namespace}/` : ''}${name}" not found`
        : `the API server has no ${target ? `${target.resource} in ${target.group ? `${target.group}/` : ''}${target.version}` : req.path} (not installed on this cluster)`
    return new KubeApiError(msg, 'usage', 'NOT_FOUND', httpStatus, status)
  }
  const exit: ErrorClass = httpStatus >= 500 ? 'unreachable' : 'failed'
  return new KubeApiError(
    `the Kubernetes API server answered ${req.method} ${req.path.split('?')[0]} with ${httpStatus} ${reason}${serverSays ? `: ${serverSays}` : ''}`,
    exit,
    httpStatus === 409 ? 'CONFLICT' : 'API_ERROR',
    httpStatus,
    status,
  )
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>
  body?: unknown
  contentType?: string
  timeoutMs?: number
}

export type PatchType = 'merge' | 'strategic' | 'json'
const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
}

function withQuery(p: string, query?: RequestOptions['query']): string {
  if (!query) return p
  const qs = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, String(v))
  const s = qs.toString()
  return s ? `${p}${p.includes('?') ? '&' : '?'}${s}` : p
}

function parseStatus(text: string): KubeStatus | undefined {
  try {
    const v = JSON.parse(text) as KubeStatus
    return v && typeof v === 'object' && (v.kind === 'Status' || typeof v.code === 'number') ? v : undefined
  } catch {
    return undefined
  }
}

/**
 * A small REST client over client-node's KubeConfig: the kubeconfig's TLS and
 * authentication (tokens, client certificates, exec plugins, token files) are
 * applied by client-node; requests, timeouts and errors are netctl's, so that
 * every failure becomes one line that says what to do, and a Status object
 * from the server is never lost.
 */
export class KubeApi {
  private agent?: http.Agent

  constructor(
    readonly config: ResolvedKubeConfig,
    private readonly timeoutMs = KUBE_REQUEST_TIMEOUT_MS,
  ) {}

  static async connect(opts: KubeConnectOptions = {}): Promise<KubeApi> {
    return new KubeApi(await loadKubeConfig(opts), opts.requestTimeoutMs)
  }

  get namespace(): string {
    return this.config.namespace
  }

  get server(): string {
    return this.config.server
  }

  private who(): {server: string; context: string; user: string} {
    return {server: this.config.server, context: this.config.context, user: this.config.user}
  }

  /** The TLS agent and the auth headers for one request (a token file or exec plugin may hand out a new token). */
  private async prepare(): Promise<{agent: http.Agent; headers: Record<string, string>}> {
    const opts: https.RequestOptions & {headers?: Record<string, string>} = {}
    try {
      await this.config.kc.applyToHTTPSOptions(opts)
    } catch (error) {
      // an exec credential plugin that fails, a client key that cannot be read, http:// without insecure-skip-tls-verify
      throw new NetctlError(
        `context ${this.config.context}: cannot set up credentials or TLS: ${(error as Error).message.split('\n')[0]}`,
        'usage',
        'KUBECONFIG',
      )
    }
    this.agent ??= opts.agent as http.Agent
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k] = String(v)
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(String(opts.auth)).toString('base64')}`
    return {agent: this.agent, headers}
  }

  /** Open a request; resolves with the response once its headers arrived. */
  private async open(
    method: string,
    p: string,
    opts: RequestOptions & {accept?: string},
  ): Promise<{res: http.IncomingMessage; req: http.ClientRequest}> {
    const {agent, headers} = await this.prepare()
    const url = new URL(this.config.server + p)
    const body =
      opts.body === undefined
        ? undefined
        : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body))
    const mod = url.protocol === 'http:' ? http : https
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs
    return new Promise((resolve, reject) => {
      const req = mod.request(url, {
        method,
        agent,
        headers: {
          Accept: opts.accept ?? 'application/json',
          'User-Agent': 'netctl',
          ...headers,
          ...(body
            ? {'Content-Type': opts.contentType ?? 'application/json', 'Content-Length': String(body.length)}
            : {}),
        },
      })
      const timer = setTimeout(() => {
        req.destroy(Object.assign(new Error(`no answer within ${Math.round(timeoutMs / 1000)}s`), {code: 'ETIMEDOUT'}))
      }, timeoutMs)
      req.once('response', (res) => {
        clearTimeout(timer)
        resolve({res, req})
      })
      req.once('error', (err) => {
        clearTimeout(timer)
        reject(connectionError(err as NodeJS.ErrnoException, this.config.server, this.config.context))
      })
      req.end(body)
    })
  }

  async request<T>(method: string, p: string, opts: RequestOptions = {}): Promise<T> {
    const path = withQuery(p, opts.query)
    const {res} = await this.open(method, path, opts)
    const chunks: Buffer[] = []
    const text = await new Promise<string>((resolve, reject) => {
      res.on('data', (b: Buffer) => chunks.push(b))
      res.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
      res.once('error', (err) =>
        reject(connectionError(err as NodeJS.ErrnoException, this.config.server, this.config.context)),
      )
    })
    const code = res.statusCode ?? 0
    if (code < 200 || code >= 300) throw statusError(code, parseStatus(text), {method, path}, this.who())
    try {
      return JSON.parse(text) as T
    } catch {
      throw new KubeApiError(
        `the Kubernetes API server answered ${method} ${p} with something that is not JSON`,
        'unreachable',
        'API_ERROR',
        code,
      )
    }
  }

  get<T extends KubeObject>(p: string, query?: RequestOptions['query']): Promise<T> {
    return this.request<T>('GET', p, {query})
  }

  list<T extends KubeObject>(p: string, query?: RequestOptions['query']): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', p, {query})
  }

  create<T extends KubeObject>(p: string, body: object): Promise<T> {
    return this.request<T>('POST', p, {body})
  }

  /** PUT the whole object; its metadata.resourceVersion makes it conditional (409 Conflict when it changed). */
  update<T extends KubeObject>(p: string, body: object): Promise<T> {
    return this.request<T>('PUT', p, {body})
  }

  delete<T = KubeObject>(p: string, body?: object): Promise<T> {
    return this.request<T>('DELETE', p, body === undefined ? {} : {body})
  }

  patch<T extends KubeObject>(p: string, body: unknown, type: PatchType = 'merge'): Promise<T> {
    return this.request<T>('PATCH', p, {body, contentType: PATCH_CONTENT_TYPES[type]})
  }

  version(): Promise<{major: string; minor: string; gitVersion: string; [key: string]: string}> {
    return this.request('GET', '/version')
  }

  /**
   * Watch a collection: onEvent sees each {type, object} as the server streams
   * it and returns true to stop. Resolves 'stopped', 'timeout' (the deadline
   * passed) or 'closed' (the server ended the stream); an ERROR event (410
   * Gone and the like) rejects with the Status it carries.
   */
  async watch<T extends KubeObject>(
    p: string,
    query: RequestOptions['query'],
    onEvent: (ev: WatchEvent<T>) => boolean | void,
    opts: {timeoutMs?: number} = {},
  ): Promise<'stopped' | 'timeout' | 'closed'> {
    const path = withQuery(p, {...query, watch: 'true', allowWatchBookmarks: 'false'})
    const deadline = opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs
    // the server has the request timeout to answer; the watch's own deadline runs from now
    const opening = this.open('GET', path, {})
    let opened: Awaited<typeof opening> | 'timeout'
    if (deadline === undefined) {
      opened = await opening
    } else {
      let timer: NodeJS.Timeout | undefined
      const expired = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()))
      })
      opened = await Promise.race([opening, expired]).finally(() => clearTimeout(timer))
      if (opened === 'timeout') {
        opening.then(
          ({req}) => req.destroy(),
          () => undefined,
        )
        return 'timeout'
      }
    }
    const {res, req} = opened
    const code = res.statusCode ?? 0
    if (code !== 200) {
      const chunks: Buffer[] = []
      for await (const b of res) chunks.push(b as Buffer)
      throw statusError(
        code,
        parseStatus(Buffer.concat(chunks).toString('utf8')),
        {method: 'GET', path, watch: true},
        this.who(),
      )
    }
    return new Promise((resolve, reject) => {
      let settled = false
      const finish = (how: 'stopped' | 'timeout' | 'closed', err?: Error): void => {
        if (settled) return
        settled = true
        if (timer) clearTimeout(timer)
        lines.close()
        req.destroy()
        if (err) reject(err)
        else resolve(how)
      }
      const timer =
        deadline === undefined ? undefined : setTimeout(() => finish('timeout'), Math.max(0, deadline - Date.now()))
      const lines = createInterface({input: res, crlfDelay: Infinity})
      lines.on('line', (line) => {
        if (settled || line.trim() === '') return
        let ev: WatchEvent<T>
        try {
          ev = JSON.parse(line) as WatchEvent<T>
        } catch {
          return
        }
        if (ev.type === 'ERROR') {
          const st = ev.object as unknown as KubeStatus
          return finish('closed', statusError(st.code ?? 500, st, {method: 'GET', path, watch: true}, this.who()))
        }
        try {
          if (onEvent(ev) === true) finish('stopped')
        } catch (error) {
          finish('closed', error as Error)
        }
      })
      lines.once('close', () => finish('closed'))
      res.once('error', (err) =>
        finish('closed', connectionError(err as NodeJS.ErrnoException, this.config.server, this.config.context)),
      )
    })
  }
}
