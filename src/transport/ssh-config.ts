import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import SSHConfig, {glob, type Line} from 'ssh-config'

import type {SshOverrides} from '../model/inventory.js'
import {shq} from '../util/shell.js'
import {TransportError} from './types.js'

/**
 * How one destination is reached, resolved from ssh_config(5) the way
 * OpenSSH does it: the first value obtained for a keyword wins, Host and
 * Match blocks apply in file order, the user's file before the system's.
 */
export interface SshHostConfig {
  /** the name as the caller gave it (alias or host), used in every message */
  alias: string
  hostname: string
  port: number
  user: string
  identityFiles: string[]
  /** identity files were named explicitly (config or option), not the defaults */
  identitiesExplicit: boolean
  identitiesOnly: boolean
  /** ProxyJump hops, outermost first ([] when unset or `none`) */
  proxyJump: SshJump[]
  /** the ProxyCommand with its %-tokens expanded (hostnames shell-quoted), unset or `none` → undefined */
  proxyCommand?: string
  userKnownHostsFiles: string[]
  globalKnownHostsFiles: string[]
  strictHostKeyChecking: 'yes' | 'no' | 'accept-new' | 'ask'
  hashKnownHosts: boolean
  hostKeyAlias?: string
  connectTimeoutMs?: number
}

export interface SshJump {
  host: string
  user?: string
  port?: number
}

/** What a caller (an inventory entry, a flag) sets explicitly: the inventory's type (src/model/inventory.ts). */
export type {SshOverrides}

const MAX_INCLUDE_DEPTH = 16

function configError(message: string): TransportError {
  return new TransportError(message, 'config')
}

function home(): string {
  return os.homedir()
}

function localUser(): string {
  try {
    return os.userInfo().username
  } catch {
    return process.env.USER ?? 'root'
  }
}

export function expandTilde(p: string): string {
  if (p === '~') return home()
  if (p.startsWith('~/')) return path.join(home(), p.slice(2))
  return p
}

/**
 * Expand ssh_config %-tokens. Only the tokens in `tokens` are allowed for
 * this keyword; anything else is an error, as it is for OpenSSH.
 */
export function expandTokens(template: string, tokens: Record<string, string>, what: string): string {
  let out = ''
  for (let i = 0; i < template.length; i++) {
    const ch = template[i]!
    if (ch !== '%') {
      out += ch
      continue
    }
    const t = template[++i]
    if (t === '%') out += '%'
    else if (t !== undefined && t in tokens) out += tokens[t]
    else throw configError(`${what}: unknown token %${t ?? ''} in '${template}'`)
  }
  return out
}

/** Parse `[user@]host[:port]`, `[user@][v6addr]:port` or `ssh://[user@]host[:port]` (ProxyJump syntax). */
export function parseJump(spec: string): SshJump {
  let s = spec.trim().replace(/^ssh:\/\//, '')
  let user: string | undefined
  const at = s.lastIndexOf('@')
  if (at >= 0) {
    user = s.slice(0, at)
    s = s.slice(at + 1)
  }
  let host = s
  let port: number | undefined
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s)
  if (v6) {
    host = v6[1]!
    if (v6[2]) port = Number(v6[2])
  } else if (/^[^:]+:\d+$/.test(s)) {
    const i = s.lastIndexOf(':')
    host = s.slice(0, i)
    port = Number(s.slice(i + 1))
  }
  if (host === '' || (port !== undefined && (port < 1 || port > 65535)))
    throw configError(`ProxyJump: cannot parse '${spec}'`)
  return {host, ...(user ? {user} : {}), ...(port ? {port} : {})}
}

function stripUnsupported(config: SSHConfig): void {
  // CanonicalizeHostName makes the parser run DNS lookups; netctl never canonicalizes.
  for (let i = config.length - 1; i >= 0; i--) {
    const line = config[i] as Line
    if (!('param' in line)) continue
    if (/^canonicalizehostname$/i.test(line.param)) config.splice(i, 1)
    else if ('config' in line && line.config) stripUnsupported(line.config)
  }
}

function includeFiles(pattern: string, baseDir: string): string[] {
  const abs = path.isAbsolute(expandTilde(pattern)) ? expandTilde(pattern) : path.join(baseDir, pattern)
  const dir = path.dirname(abs)
  const base = path.basename(abs)
  if (!/[*?]/.test(base)) return existsSync(abs) ? [abs] : []
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((f) => glob(base, f))
    .sort()
    .map((f) => path.join(dir, f))
    .filter((f) => statSync(f).isFile())
}

/**
 * Parse one file, splicing in its top-level `Include` files (ssh_config(5):
 * relative to ~/.ssh or /etc/ssh). An Include inside a Host or Match block is
 * not followed (netctl reads that block's own lines only).
 */
function parseFile(file: string, baseDir: string, depth = 0): Line[] {
  if (depth > MAX_INCLUDE_DEPTH) throw configError(`${file}: Include nested too deep`)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw configError(
      `cannot read ssh config ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    )
  }
  let parsed: SSHConfig
  try {
    parsed = SSHConfig.parse(text)
  } catch (error) {
    throw configError(`cannot parse ssh config ${file}: ${(error as Error).message}`)
  }
  const out: Line[] = []
  for (const line of parsed) {
    if ('param' in line && /^include$/i.test(line.param) && !('config' in line)) {
      const values = Array.isArray(line.value) ? line.value.map((v) => v.val) : [line.value]
      for (const v of values) for (const f of includeFiles(v, baseDir)) out.push(...parseFile(f, baseDir, depth + 1))
    } else {
      out.push(line)
    }
  }
  return out
}

/**
 * Load the ssh configuration: FILE alone when given (like `ssh -F FILE`,
 * which must exist), else ~/.ssh/config then /etc/ssh/ssh_config, either
 * of which may be missing.
 */
export function loadSshConfig(configFile?: string): SSHConfig {
  const config = new SSHConfig()
  if (configFile) {
    if (!existsSync(configFile)) throw configError(`ssh config ${configFile} does not exist`)
    // a relative Include in a -F file is still relative to ~/.ssh, as ssh_config(5) says for user files
    config.push(...parseFile(configFile, path.join(home(), '.ssh')))
  } else {
    const user = path.join(home(), '.ssh', 'config')
    if (existsSync(user)) config.push(...parseFile(user, path.join(home(), '.ssh')))
    const system = '/etc/ssh/ssh_config'
    if (existsSync(system)) config.push(...parseFile(system, '/etc/ssh'))
  }
  stripUnsupported(config)
  return config
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}

function list(v: string | string[] | undefined): string[] {
  if (v === undefined) return []
  return (Array.isArray(v) ? v : [v]).flatMap((x) => x.split(/\s+/)).filter(Boolean)
}

function portOf(v: string | number | undefined, what: string): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw configError(`${what}: bad port '${v}'`)
  return n
}

/**
 * The ProxyCommand ready for `sh -c`: %h %n %r are shell-quoted, because a
 * hostname (possibly from a cluster) must never become shell syntax.
 */
export function proxyCommandLine(
  template: string,
  t: {alias: string; hostname: string; port: number; user: string},
): string {
  return expandTokens(
    template,
    {h: shq(t.hostname), n: shq(t.alias), p: String(t.port), r: shq(t.user)},
    'ProxyCommand',
  )
}

/** Resolve everything needed to reach `alias`; overrides win over the file. */
export function resolveHost(config: SSHConfig, alias: string, overrides: SshOverrides = {}): SshHostConfig {
  const c = config.compute(overrides.user ? {Host: alias, User: overrides.user} : {Host: alias}, {
    ignoreCase: true,
    matchExec: false,
  })
  const hostname = expandTokens(first(c.hostname) ?? alias, {h: alias}, `HostName of ${alias}`)
  const port = overrides.port ?? portOf(first(c.port), `Port of ${alias}`) ?? 22
  const user = overrides.user ?? first(c.user) ?? localUser()
  const fileTokens = {
    d: home(),
    u: localUser(),
    h: hostname,
    n: alias,
    p: String(port),
    r: user,
    l: os.hostname().split('.')[0] ?? '',
  }
  const fileOf = (p: string, what: string): string => expandTilde(expandTokens(p, fileTokens, what))

  const configured = [...(overrides.identityFile ? [overrides.identityFile] : []), ...list(c.identityfile)]
  const identityFiles = configured.length
    ? configured.map((f) => fileOf(f, `IdentityFile of ${alias}`))
    : ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => path.join(home(), '.ssh', f))

  // ProxyJump and ProxyCommand compete: whichever was obtained first wins (ssh_config(5)).
  const keys = Object.keys(c)
  let jumpSpec: string | undefined
  let commandSpec: string | undefined
  if (overrides.proxyJump !== undefined) jumpSpec = overrides.proxyJump
  else if (overrides.proxyCommand !== undefined) commandSpec = overrides.proxyCommand
  else {
    const ji = keys.indexOf('proxyjump')
    const ci = keys.indexOf('proxycommand')
    if (ji >= 0 && (ci < 0 || ji < ci)) jumpSpec = first(c.proxyjump)
    else if (ci >= 0) commandSpec = first(c.proxycommand)
  }
  const proxyJump = jumpSpec && jumpSpec !== 'none' ? jumpSpec.split(',').map(parseJump) : []
  const proxyCommand =
    commandSpec && commandSpec !== 'none' ? proxyCommandLine(commandSpec, {alias, hostname, port, user}) : undefined

  const userKnown = overrides.knownHostsFile ? [overrides.knownHostsFile] : list(c.userknownhostsfile)
  const globalKnown = list(c.globalknownhostsfile)
  const strict = (first(c.stricthostkeychecking) ?? 'ask').toLowerCase()
  const strictHostKeyChecking =
    strict === 'yes'
      ? 'yes'
      : strict === 'accept-new'
        ? 'accept-new'
        : strict === 'no' || strict === 'off'
          ? 'no'
          : 'ask'
  const timeout = first(c.connecttimeout)
  const hostKeyAlias = first(c.hostkeyalias)

  return {
    alias,
    hostname,
    port,
    user,
    identityFiles,
    identitiesExplicit: configured.length > 0,
    identitiesOnly: first(c.identitiesonly)?.toLowerCase() === 'yes',
    proxyJump,
    ...(proxyCommand ? {proxyCommand} : {}),
    userKnownHostsFiles: (userKnown.length ? userKnown : ['~/.ssh/known_hosts', '~/.ssh/known_hosts2']).map((f) =>
      fileOf(f, `UserKnownHostsFile of ${alias}`),
    ),
    globalKnownHostsFiles: (globalKnown.length
      ? globalKnown
      : ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']
    ).map((f) => fileOf(f, `GlobalKnownHostsFile of ${alias}`)),
    strictHostKeyChecking,
    hashKnownHosts: first(c.hashknownhosts)?.toLowerCase() === 'yes',
    ...(hostKeyAlias ? {hostKeyAlias} : {}),
    ...(timeout && Number(timeout) > 0 ? {connectTimeoutMs: Number(timeout) * 1000} : {}),
  }
}
