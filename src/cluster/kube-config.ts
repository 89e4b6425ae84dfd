import {existsSync, readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import path from 'node:path'

import type {KubeConfig} from '@kubernetes/client-node'

import {NetctlError} from '../errors.js'
import {parseUserYaml} from '../util/yaml.js'

/** How to find the cluster: the same knobs kubectl has. */
export interface KubeConnectOptions {
  /** --kubeconfig FILE: this file only (it must exist) */
  kubeconfig?: string
  /** --context NAME instead of the kubeconfig's current-context */
  context?: string
  /** -n/--namespace: instead of the context's namespace (default "default") */
  namespace?: string
  /** where $KUBECONFIG, $HOME and KUBERNETES_SERVICE_* come from; default process.env */
  env?: NodeJS.ProcessEnv
  /** prefix of /var/run/secrets/kubernetes.io/serviceaccount for the in-cluster config (tests); default none */
  serviceAccountRoot?: string
  /** per API request (connect to response headers); default 15 s */
  requestTimeoutMs?: number
}

export interface ResolvedKubeConfig {
  kc: KubeConfig
  /** kubeconfig files, or the service account when running in a pod */
  source: 'kubeconfig' | 'in-cluster'
  /** the files merged, in KUBECONFIG order (empty in-cluster) */
  files: string[]
  context: string
  cluster: string
  server: string
  user: string
  namespace: string
}

/** A kubeconfig problem: always the user's to fix, so a usage-class exit (2). */
export class KubeConfigError extends NetctlError {
  constructor(message: string) {
    super(message, 'usage', 'KUBECONFIG')
    this.name = 'KubeConfigError'
  }
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

type Named = {name?: unknown; [key: string]: unknown}
/** A kubeconfig as YAML gives it (kubectl's field names). */
export interface RawKubeconfig {
  clusters: Named[]
  users: Named[]
  contexts: Named[]
  'current-context'?: string
}

function asList(v: unknown, file: string, key: string): Named[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) throw new KubeConfigError(`kubeconfig ${file}: ${key} must be a list`)
  return v.map((e, i) => {
    if (e === null || typeof e !== 'object' || typeof (e as Named).name !== 'string' || (e as Named).name === '') {
      throw new KubeConfigError(`kubeconfig ${file}: ${key}[${i}] has no name`)
    }
    return e as Named
  })
}

function resolvePath(dir: string, p: unknown): unknown {
  return typeof p === 'string' && p !== '' && !path.isAbsolute(p) ? path.join(dir, p) : p
}

/**
 * One kubeconfig file, its relative paths made absolute against the file's
 * directory as kubectl does (certificate-authority, client-certificate,
 * client-key, token-file, and an exec command given as a relative path).
 */
export function parseKubeconfig(text: string, file: string): RawKubeconfig {
  const parsed = parseUserYaml(text)
  if ('problem' in parsed) {
    const {line, why} = parsed.problem
    throw new KubeConfigError(`kubeconfig ${file}: not valid YAML (${line ? `line ${line}: ` : ''}${why})`)
  }
  const data = (parsed.data ?? {}) as Record<string, unknown>
  if (typeof data !== 'object' || Array.isArray(data))
    throw new KubeConfigError(`kubeconfig ${file}: expected a mapping (apiVersion: v1, kind: Config)`)
  const dir = path.dirname(path.resolve(file))
  const clusters = asList(data.clusters, file, 'clusters').map((c) => {
    const cluster = {...((c.cluster ?? {}) as Record<string, unknown>)}
    cluster['certificate-authority'] = resolvePath(dir, cluster['certificate-authority'])
    return {...c, cluster}
  })
  const users = asList(data.users, file, 'users').map((u) => {
    const user = {...((u.user ?? {}) as Record<string, unknown>)}
    for (const k of ['client-certificate', 'client-key', 'token-file']) user[k] = resolvePath(dir, user[k])
    const exec = user.exec as {command?: unknown} | undefined
    if (exec && typeof exec.command === 'string' && exec.command.includes('/'))
      user.exec = {...exec, command: resolvePath(dir, exec.command)}
    return {...u, user}
  })
  const contexts = asList(data.contexts, file, 'contexts')
  const current =
    typeof data['current-context'] === 'string' && data['current-context'] !== '' ? data['current-context'] : undefined
  return {clusters, users, contexts, ...(current ? {'current-context': current} : {})}
}

/**
 * Merge kubeconfigs as kubectl merges $KUBECONFIG: the first file that
 * defines a cluster, user or context by a name wins, and so does the first
 * current-context set.
 */
export function mergeKubeconfigs(configs: readonly RawKubeconfig[]): RawKubeconfig {
  const out: RawKubeconfig = {clusters: [], users: [], contexts: []}
  for (const cfg of configs) {
    for (const key of ['clusters', 'users', 'contexts'] as const) {
      for (const entry of cfg[key]) if (!out[key].some((e) => e.name === entry.name)) out[key].push(entry)
    }
    if (out['current-context'] === undefined && cfg['current-context'] !== undefined)
      out['current-context'] = cfg['current-context']
  }
  return out
}

function readKubeconfig(file: string): RawKubeconfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new KubeConfigError(
      `kubeconfig ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message}`,
    )
  }
  return parseKubeconfig(text, file)
}

/** The kubeconfig files kubectl would read, in order; missing files in $KUBECONFIG are skipped as kubectl skips them. */
export function kubeconfigFiles(opts: KubeConnectOptions): {files: string[]; tried: string} {
  const env = opts.env ?? process.env
  if (opts.kubeconfig !== undefined) return {files: [opts.kubeconfig], tried: `--kubeconfig ${opts.kubeconfig}`}
  if (env.KUBECONFIG) {
    const listed = env.KUBECONFIG.split(path.delimiter).filter((f) => f !== '')
    return {
      files: listed.filter((f) => existsSync(f)),
      tried: `KUBECONFIG=${env.KUBECONFIG} (no such file${listed.length > 1 ? 's' : ''})`,
    }
  }
  const home = env.HOME || homedir()
  const file = path.join(home, '.kube', 'config')
  return {files: existsSync(file) ? [file] : [], tried: `${file} does not exist`}
}

function inClusterPossible(opts: KubeConnectOptions): boolean {
  const env = opts.env ?? process.env
  return Boolean(
    env.KUBERNETES_SERVICE_HOST &&
    env.KUBERNETES_SERVICE_PORT &&
    existsSync(`${opts.serviceAccountRoot ?? ''}${SERVICE_ACCOUNT_DIR}/token`),
  )
}

/**
 * Find and load the cluster config the way kubectl does: --kubeconfig, else
 * the files in $KUBECONFIG merged, else ~/.kube/config; when none of those
 * holds anything and netctl runs in a pod, the pod's service account.
 * --context and -n override what the kubeconfig says.
 */
export async function loadKubeConfig(opts: KubeConnectOptions = {}): Promise<ResolvedKubeConfig> {
  const env = opts.env ?? process.env
  const {files, tried} = kubeconfigFiles(opts)
  const merged = mergeKubeconfigs(files.map(readKubeconfig))
  const empty = merged.clusters.length === 0 && merged.contexts.length === 0 && merged.users.length === 0
  const {KubeConfig} = await import('@kubernetes/client-node')
  const kc = new KubeConfig()

  if (empty && opts.kubeconfig === undefined && inClusterPossible(opts)) {
    if (opts.context !== undefined)
      throw new KubeConfigError(
        `--context ${opts.context}: no kubeconfig to take it from (${tried}); in a pod netctl uses its service account`,
      )
    const dir = `${opts.serviceAccountRoot ?? ''}${SERVICE_ACCOUNT_DIR}`
    const host = env.KUBERNETES_SERVICE_HOST!
    const server = `https://${host.includes(':') ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT}`
    // the token is read again on every request (it is rotated), as client-go does
    kc.loadFromOptions({
      clusters: [{name: 'in-cluster', server, caFile: `${dir}/ca.crt`, skipTLSVerify: false}],
      users: [{name: 'service-account', authProvider: {name: 'tokenFile', config: {tokenFile: `${dir}/token`}}}],
      contexts: [{name: 'in-cluster', cluster: 'in-cluster', user: 'service-account'}],
      currentContext: 'in-cluster',
    })
    const nsFile = `${dir}/namespace`
    const podNamespace = existsSync(nsFile) ? readFileSync(nsFile, 'utf8').trim() : ''
    return {
      kc,
      source: 'in-cluster',
      files: [],
      context: 'in-cluster',
      cluster: 'in-cluster',
      server,
      user: 'service-account',
      namespace: opts.namespace || podNamespace || 'default',
    }
  }

  const where = files.length ? files.join(path.delimiter) : ''
  if (empty) {
    if (files.length > 0) throw new KubeConfigError(`kubeconfig ${where} defines no cluster, user or context`)
    throw new KubeConfigError(
      `no Kubernetes config: ${tried}, and netctl is not running in a pod (pass --kubeconfig, set KUBECONFIG, or run inside the cluster)`,
    )
  }
  const contextNames = merged.contexts.map((c) => String(c.name))
  const contextName = opts.context ?? merged['current-context']
  if (contextName === undefined) {
    throw new KubeConfigError(
      `kubeconfig ${where} has no current-context; pass --context (${contextNames.length ? `contexts: ${contextNames.join(', ')}` : 'it defines no context'})`,
    )
  }
  const ctxEntry = merged.contexts.find((c) => c.name === contextName)
  if (!ctxEntry) {
    throw new KubeConfigError(
      `context "${contextName}" not found in kubeconfig ${where} (${contextNames.length ? `contexts: ${contextNames.join(', ')}` : 'it defines no context'})`,
    )
  }
  const ctx = (ctxEntry.context ?? {}) as {cluster?: string; user?: string; namespace?: string}
  if (!ctx.cluster) throw new KubeConfigError(`context "${contextName}" in kubeconfig ${where} names no cluster`)
  const clusterEntry = merged.clusters.find((c) => c.name === ctx.cluster)
  if (!clusterEntry)
    throw new KubeConfigError(
      `context "${contextName}" names cluster "${ctx.cluster}", which kubeconfig ${where} does not define`,
    )
  const server = (clusterEntry.cluster as {server?: unknown} | undefined)?.server
  if (typeof server !== 'string' || server === '')
    throw new KubeConfigError(`cluster "${ctx.cluster}" in kubeconfig ${where} has no server`)
  if (ctx.user && !merged.users.some((u) => u.name === ctx.user)) {
    throw new KubeConfigError(
      `context "${contextName}" names user "${ctx.user}", which kubeconfig ${where} does not define`,
    )
  }
  try {
    // client-node parses the entries (auth providers, exec plugins, certificates) from the merged document
    kc.loadFromString(JSON.stringify({apiVersion: 'v1', kind: 'Config', ...merged, 'current-context': contextName}))
  } catch (error) {
    throw new KubeConfigError(`kubeconfig ${where}: ${(error as Error).message.split('\n')[0]}`)
  }
  return {
    kc,
    source: 'kubeconfig',
    files,
    context: contextName,
    cluster: ctx.cluster,
    server: server.replace(/\/$/, ''),
    user: ctx.user ?? '',
    namespace: opts.namespace || ctx.namespace || 'default',
  }
}
