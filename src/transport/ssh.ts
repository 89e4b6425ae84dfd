import {spawn} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {constants as osConstants} from 'node:os'
import {Duplex} from 'node:stream'

import type SSHConfig from 'ssh-config'
import type ssh2 from 'ssh2'
import type {
  AnyAuthMethod,
  Client as SshClient,
  ClientChannel,
  ConnectConfig,
  ParsedKey,
  ServerHostKeyAlgorithm,
} from 'ssh2'

import {SSH_CONNECT_TIMEOUT_MS, SSH_KEEPALIVE_MS, SSH_MAX_CHANNELS} from '../defaults.js'
import {type CleanupHandle, onInterrupt} from '../util/cleanup.js'
import {within} from '../util/wait.js'
import {
  appendKnownHosts,
  blobKeyType,
  checkHostKey,
  fingerprint,
  knownHostsLine,
  knownHostsName,
  knownKeyTypes,
  loadKnownHosts,
} from './known-hosts.js'
import {remoteCommand, TIMEOUT_EXIT_CODE, wrapScript} from './remote-script.js'
import {loadSshConfig, resolveHost, type SshHostConfig, type SshJump, type SshOverrides} from './ssh-config.js'
import {type ExecOptions, type Transport, TransportError, type TransportResult} from './types.js'

type Ssh2 = typeof ssh2
let ssh2Loading: Promise<Ssh2> | undefined

/** ssh2 (and its crypto set-up) is loaded when a node is first reached over SSH, not by every run that reads a snapshot or a lab. */
function loadSsh2(): Promise<Ssh2> {
  ssh2Loading ??= import('ssh2').then((m) => m.default)
  return ssh2Loading
}

/** The SshOverrides (user, port, identityFile, ...) apply to the destination only; jump hosts use their own config blocks. */
export interface SshTransportOptions extends SshOverrides {
  /** the destination: an alias from the ssh config or a host name / address */
  host: string
  /** like `ssh -F FILE`: read only this config; default ~/.ssh/config then /etc/ssh/ssh_config */
  configFile?: string
  /** add unknown host keys to known_hosts (StrictHostKeyChecking=accept-new); a changed key is refused regardless */
  acceptNewHostKeys?: boolean
  /** per hop, for the TCP/proxy connection and the ssh handshake (ConnectTimeout in the config wins); default 10 s */
  connectTimeoutMs?: number
  /** channels open at once on the connection; the rest wait in line (sshd's MaxSessions is 10); default 4 */
  maxChannels?: number
  /** ssh-agent socket; default $SSH_AUTH_SOCK; false: never use an agent */
  agent?: string | false
  /** the cluster node this destination is, named in host-key refusals (an address says little) */
  node?: string
}

export {remoteCommand, TIMEOUT_EXIT_CODE, wrapScript} from './remote-script.js'
const MAX_JUMP_DEPTH = 8

/** Host key algorithms ssh2 offers, in its own default order. */
const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
]

/** Ask for a key type already in known_hosts first, as OpenSSH does, so a known host is not asked for a type it was never recorded with. */
function preferKnownTypes(types: string[]): ServerHostKeyAlgorithm[] {
  const wanted = new Set<string>(
    types.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t])),
  )
  return [...HOST_KEY_ALGORITHMS.filter((a) => wanted.has(a)), ...HOST_KEY_ALGORITHMS.filter((a) => !wanted.has(a))]
}

/** Process groups of the ProxyCommands still running, ended when netctl exits or is interrupted. */
const proxyGroups = new Set<number>()
/** Held on the process's cleanup stack while any ProxyCommand runs. */
let proxiesHeld: CleanupHandle | undefined

function endGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal)
  } catch {
    /* the group is gone already */
  }
}

function endAllProxyGroups(): void {
  for (const pgid of proxyGroups) endGroup(pgid, 'SIGTERM')
  proxyGroups.clear()
  untrackProxies()
}

function trackProxies(): void {
  if (proxiesHeld) return
  proxiesHeld = onInterrupt(
    () => `ending ${proxyGroups.size} ProxyCommand${proxyGroups.size === 1 ? '' : 's'}`,
    endAllProxyGroups,
  )
  process.on('exit', endAllProxyGroups)
}

function untrackProxies(): void {
  proxiesHeld?.release()
  proxiesHeld = undefined
  process.removeListener('exit', endAllProxyGroups)
}

/**
 * A ProxyCommand run as OpenSSH runs it (`sh -c 'exec CMD'`), its stdin/stdout
 * as the ssh stream. It leads a process group of its own, so that whatever it
 * forks (`sh -c "a; b"`, a wrapper script) ends with it: a child left holding
 * the pipes would keep netctl alive. A terminal's Ctrl-C no longer reaches that
 * group, so netctl ends it on SIGINT/SIGTERM/SIGHUP (the cleanup stack) and at exit.
 */
class ProxyProcess {
  readonly stream: Duplex
  readonly exited: Promise<string>
  private stderr = ''
  private readonly child
  private ended = false

  constructor(command: string) {
    const child = spawn('sh', ['-c', `exec ${command}`], {stdio: ['pipe', 'pipe', 'pipe'], detached: true})
    this.child = child
    if (child.pid !== undefined) {
      proxyGroups.add(child.pid)
      trackProxies()
    }
    this.exited = new Promise((resolve) => {
      child.on('error', (e) => resolve(`could not start: ${e.message}`))
      child.on('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exit status ${code}`))
    })
    child.stderr.on('data', (b: Buffer) => {
      if (this.stderr.length < 4096) this.stderr += b.toString('utf8')
    })
    child.stdin.on('error', () => {
      /* EPIPE once the proxy has gone; the stream reports it */
    })
    const stream = new Duplex({
      allowHalfOpen: false,
      read() {
        child.stdout.resume()
      },
      write(chunk: Buffer, _enc, cb) {
        if (child.stdin.destroyed || !child.stdin.writable) return cb(new Error('proxy command has exited'))
        child.stdin.write(chunk, (e) => cb(e ?? null))
      },
      final(cb) {
        child.stdin.end()
        cb()
      },
      destroy: (err, cb) => {
        this.kill()
        cb(err)
      },
    })
    child.stdout.on('data', (b: Buffer) => {
      if (!stream.push(b)) child.stdout.pause()
    })
    child.stdout.on('end', () => stream.push(null))
    child.on('error', (e) => stream.destroy(e))
    this.stream = stream
  }

  /** What the proxy said and how it ended, for an error message; waits briefly for it to exit. */
  async why(): Promise<string> {
    const status = await within(this.exited, 500, 'still running')
    const line = this.stderr
      .split('\n')
      .map((l) => l.trim())
      .find(Boolean)
    return line ? `${status}: ${line}` : status
  }

  /**
   * End the proxy's process group (and only it), then let go of its pipes:
   * a descendant that left the group (setsid) must not hold netctl either.
   */
  kill(): void {
    if (this.ended) return
    this.ended = true
    const pgid = this.child.pid
    if (pgid !== undefined && proxyGroups.delete(pgid)) {
      endGroup(pgid, 'SIGTERM')
      // a member that ignores SIGTERM gets SIGKILL; the group id stays ours while any member lives
      setTimeout(() => endGroup(pgid, 'SIGKILL'), 1000).unref()
      if (proxyGroups.size === 0) untrackProxies()
    }
    // give the stderr of a failed start a moment to arrive (why() reads it), then let go of the pipes
    setTimeout(() => {
      for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) s.destroy()
    }, 600).unref()
    this.child.unref()
  }
}

/** One established ssh connection in a chain (jump hosts first, the target last). */
interface Hop {
  alias: string
  client: SshClient
  proxy?: ProxyProcess
}

/** Hand out at most `n` slots; waiters give up at their deadline. */
class Slots {
  private waiters: Array<() => void> = []
  constructor(private free: number) {}

  acquire(deadline?: number): Promise<(() => void) | undefined> {
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      const next = this.waiters.shift()
      if (next) next()
      else this.free++
    }
    if (this.free > 0) {
      this.free--
      return Promise.resolve(release)
    }
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined
      const grant = (): void => {
        if (timer) clearTimeout(timer)
        resolve(release)
      }
      this.waiters.push(grant)
      if (deadline !== undefined) {
        timer = setTimeout(
          () => {
            this.waiters = this.waiters.filter((w) => w !== grant)
            resolve(undefined)
          },
          Math.max(0, deadline - Date.now()),
        )
      }
    })
  }
}

function closeHops(hops: readonly Hop[]): Promise<void> {
  return Promise.all(
    [...hops].reverse().map(
      (hop) =>
        new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer)
            hop.proxy?.kill()
            resolve()
          }
          const timer = setTimeout(() => {
            hop.client.destroy()
            done()
          }, 2000)
          timer.unref()
          hop.client.once('close', done)
          hop.client.end()
        }),
    ),
  ).then(() => undefined)
}

function jumpSpec(j: SshJump): string {
  const host = j.host.includes(':') ? `[${j.host}]` : j.host
  return `${j.user ? `${j.user}@` : ''}${host}${j.port ? `:${j.port}` : ''}`
}

function signalCode(name: string | undefined): number {
  const n = name ? (osConstants.signals as Record<string, number>)[`SIG${name}`] : undefined
  return 128 + (n ?? 0)
}

/**
 * A node reached over SSH, the way `ssh` itself would reach it: the user's
 * ssh config (or -F FILE), ProxyJump / ProxyCommand, the agent or identity
 * files, and known_hosts checked strictly. One connection per node, reused
 * by every exec(); at most maxChannels scripts run on it at once.
 */
export class SshTransport implements Transport {
  readonly target: string
  private config?: SSHConfig
  private conn?: Promise<Hop[]>
  private readonly slots: Slots
  private closed = false

  constructor(private readonly opts: SshTransportOptions) {
    this.target = `ssh ${opts.host}`
    this.slots = new Slots(Math.max(1, opts.maxChannels ?? SSH_MAX_CHANNELS))
  }

  /** Where `host` resolves to (HostName, User, Port, proxies, files); reads the config once. */
  resolve(host = this.opts.host, overrides: SshOverrides = this.overrides()): SshHostConfig {
    this.config ??= loadSshConfig(this.opts.configFile)
    return resolveHost(this.config, host, overrides)
  }

  private overrides(): SshOverrides {
    const {user, port, identityFile, proxyJump, proxyCommand, knownHostsFile} = this.opts
    return Object.fromEntries(
      Object.entries({user, port, identityFile, proxyJump, proxyCommand, knownHostsFile}).filter(
        ([, v]) => v !== undefined,
      ),
    )
  }

  async exec(script: string, opts: ExecOptions = {}): Promise<TransportResult> {
    if (this.closed) throw new TransportError(`${this.target}: transport is closed`, 'unreachable')
    const deadline = opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs
    const hops = await this.connection(deadline)
    const release = await this.slots.acquire(deadline)
    if (!release) return {stdout: '', stderr: '', code: TIMEOUT_EXIT_CODE, timedOut: true}
    return this.runChannel(hops.at(-1)!.client, script, opts.stdin, deadline, release)
  }

  async close(): Promise<void> {
    this.closed = true
    const conn = this.conn
    this.conn = undefined
    const hops = await conn?.catch(() => undefined)
    if (hops) await closeHops(hops)
  }

  private connection(deadline?: number): Promise<Hop[]> {
    if (this.conn) return this.conn
    const p = (async () => this.openHop(this.resolve(), this.target, [this.opts.host], deadline))().catch(
      (error: unknown) => {
        // anything ssh2 throws itself still reaches the caller as one TransportError line
        if (error instanceof TransportError) throw error
        throw new TransportError(
          `${this.target}: ${String((error as Error)?.message ?? error).split('\n')[0]}`,
          'unreachable',
        )
      },
    )
    this.conn = p
    p.then(
      (hops) => {
        // a dropped connection is opened again by the next exec()
        hops.at(-1)!.client.once('close', () => {
          if (this.conn === p) this.conn = undefined
          void closeHops(hops)
        })
        if (this.closed) void closeHops(hops)
      },
      () => {
        if (this.conn === p) this.conn = undefined
      },
    )
    return p
  }

  /** Connect to `cfg` (through its ProxyJump hosts or ProxyCommand), returning the chain of connections. */
  private async openHop(
    cfg: SshHostConfig,
    prefix: string,
    chain: readonly string[],
    deadline?: number,
  ): Promise<Hop[]> {
    if (chain.length > MAX_JUMP_DEPTH)
      throw new TransportError(
        `${this.target}: more than ${MAX_JUMP_DEPTH} ProxyJump hops (${chain.join(' -> ')})`,
        'config',
      )
    let via: Hop[] = []
    let sock: Duplex | undefined
    let proxy: ProxyProcess | undefined
    if (cfg.proxyJump.length > 0) {
      // ssh -J a,b host ≡ reach b through a, then host through b; the last jump's own config block applies
      const last = cfg.proxyJump.at(-1)!
      const earlier = cfg.proxyJump.slice(0, -1)
      const jumpCfg = this.resolve(last.host, {
        ...(last.user ? {user: last.user} : {}),
        ...(last.port ? {port: last.port} : {}),
        ...(earlier.length ? {proxyJump: earlier.map(jumpSpec).join(',')} : {}),
      })
      if (chain.includes(last.host))
        throw new TransportError(
          `${this.target}: ProxyJump loop in the ssh config (${[...chain, last.host].join(' -> ')})`,
          'config',
        )
      via = await this.openHop(jumpCfg, `${this.target}: jump host ${last.host}`, [...chain, last.host], deadline)
      try {
        sock = await this.forward(via.at(-1)!, cfg, prefix)
      } catch (error) {
        await closeHops(via)
        throw error
      }
    } else if (cfg.proxyCommand) {
      proxy = new ProxyProcess(cfg.proxyCommand)
      sock = proxy.stream
    }
    try {
      const client = await this.handshake(cfg, prefix, sock, proxy, deadline)
      return [...via, {alias: cfg.alias, client, ...(proxy ? {proxy} : {})}]
    } catch (error) {
      proxy?.kill()
      await closeHops(via)
      throw error
    }
  }

  /** A direct-tcpip channel from the jump host to the target: the target's ssh runs over it. */
  private forward(jump: Hop, cfg: SshHostConfig, prefix: string): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      jump.client.forwardOut('127.0.0.1', 0, cfg.hostname, cfg.port, (err, channel) => {
        if (err) {
          const why = err.message.replace(/^\(SSH\) /, '')
          reject(
            new TransportError(
              `${prefix}: cannot reach ${cfg.hostname} port ${cfg.port} through jump host ${jump.alias}: ${why}`,
              'unreachable',
            ),
          )
        } else {
          resolve(channel)
        }
      })
    })
  }

  private identities(
    utils: Ssh2['utils'],
    cfg: SshHostConfig,
    prefix: string,
  ): {methods: AnyAuthMethod[]; offered: string[]} {
    const methods: AnyAuthMethod[] = []
    const offered: string[] = []
    const agent = this.opts.agent === false ? undefined : (this.opts.agent ?? process.env.SSH_AUTH_SOCK)
    // IdentitiesOnly with named files: OpenSSH offers only those, so a full agent does not exhaust MaxAuthTries
    if (agent && !(cfg.identitiesOnly && cfg.identitiesExplicit)) {
      methods.push({type: 'agent', username: cfg.user, agent})
      offered.push('agent')
    }
    for (const file of cfg.identityFiles) {
      if (!existsSync(file)) {
        if (cfg.identitiesExplicit) offered.push(`${file} (missing)`)
        continue
      }
      let parsed: ParsedKey | ParsedKey[] | Error
      try {
        parsed = utils.parseKey(readFileSync(file)) as ParsedKey | ParsedKey[] | Error
      } catch (error) {
        parsed = error as Error
      }
      if (parsed instanceof Error) {
        // an encrypted key needs its passphrase: load it into an agent instead
        offered.push(`${file} (unusable: ${parsed.message.split('\n')[0]})`)
        continue
      }
      const key = Array.isArray(parsed) ? parsed[0] : parsed
      if (!key) continue
      methods.push({type: 'publickey', username: cfg.user, key})
      offered.push(file)
    }
    if (!methods.some((m) => m.type === 'agent' || m.type === 'publickey')) {
      throw new TransportError(
        `${prefix}: no key to log in to ${cfg.user}@${cfg.hostname} with (no agent, ${offered.join(', ') || 'no identity file'})`,
        'auth',
      )
    }
    return {methods, offered}
  }

  private async handshake(
    cfg: SshHostConfig,
    prefix: string,
    sock: Duplex | undefined,
    proxy: ProxyProcess | undefined,
    deadline?: number,
  ): Promise<SshClient> {
    const {Client, utils} = await loadSsh2()
    const {methods, offered} = this.identities(utils, cfg, prefix)
    const known = await loadKnownHosts([...cfg.userKnownHostsFiles, ...cfg.globalKnownHostsFiles])
    const name = cfg.hostKeyAlias ?? knownHostsName(cfg.hostname, cfg.port)
    const types = knownKeyTypes(known, name)
    const acceptNew =
      this.opts.acceptNewHostKeys === true ||
      cfg.strictHostKeyChecking === 'accept-new' ||
      cfg.strictHostKeyChecking === 'no'
    const writeTo = cfg.userKnownHostsFiles[0]!
    let refusal: TransportError | undefined

    // the destination's own key names its node; a jump host's is named by the prefix
    const whose = `${prefix === this.target && this.opts.node ? `node ${this.opts.node} ` : ''}(${name})`
    const hostVerifier = (key: Buffer, verify: (ok: boolean) => void): void => {
      const fp = fingerprint(key)
      const type = blobKeyType(key) ?? 'unknown-type'
      const v = checkHostKey(known, name, key)
      if (v.status === 'ok') return verify(true)
      if (v.status === 'changed') {
        refusal = new TransportError(
          `${prefix}: host key changed for ${whose}: it presents ${type} ${fp} but ${v.entry.file} line ${v.entry.line} has ${v.entry.keyType} ${fingerprint(v.entry.key)}; refusing to connect (if the node was rebuilt, remove that line: ssh-keygen -R '${name}' -f ${v.entry.file})`,
          'hostkey-changed',
          this.opts.node,
        )
        return verify(false)
      }
      if (v.status === 'revoked') {
        refusal = new TransportError(
          `${prefix}: host key of ${whose} is revoked: ${type} ${fp} is marked @revoked in ${v.entry.file} line ${v.entry.line}; refusing to connect`,
          'refused',
          this.opts.node,
        )
        return verify(false)
      }
      if (!acceptNew) {
        const other = v.otherTypes.length ? `; keys of other types (${v.otherTypes.join(', ')}) are known for it` : ''
        refusal = new TransportError(
          `${prefix}: unknown host key for ${whose}: it presents ${type} ${fp}, which no known_hosts file lists; refusing to connect: check the key and add it to ${writeTo}, or accept new keys (StrictHostKeyChecking accept-new)${other}`,
          'hostkey-unknown',
          this.opts.node,
        )
        return verify(false)
      }
      appendKnownHosts(writeTo, knownHostsLine([name], key, cfg.hashKnownHosts)).then(
        () => verify(true),
        (error: Error) => {
          refusal = new TransportError(
            `${prefix}: cannot record the host key ${fp} in ${writeTo}: ${error.message}`,
            'config',
          )
          verify(false)
        },
      )
    }

    const budget = deadline === undefined ? Infinity : deadline - Date.now()
    const timeoutMs = Math.max(
      1,
      Math.min(cfg.connectTimeoutMs ?? this.opts.connectTimeoutMs ?? SSH_CONNECT_TIMEOUT_MS, budget),
    )
    const client = new Client()
    client.setMaxListeners(0)
    const config: ConnectConfig = {
      ...(sock ? {sock} : {host: cfg.hostname, port: cfg.port}),
      username: cfg.user,
      readyTimeout: timeoutMs,
      hostVerifier,
      authHandler: methods,
      keepaliveInterval: SSH_KEEPALIVE_MS,
      keepaliveCountMax: 3,
      ...(types.length ? {algorithms: {serverHostKey: preferKnownTypes(types)}} : {}),
    }
    const where = `${cfg.hostname} port ${cfg.port}`
    await new Promise<void>((resolve, reject) => {
      let settled = false
      const fail = async (err?: Error & {level?: string; code?: string}): Promise<void> => {
        if (settled) return
        settled = true
        client.destroy()
        if (refusal) return reject(refusal)
        if (err?.level === 'client-authentication') {
          return reject(
            new TransportError(
              `${prefix}: authentication failed for ${cfg.user}@${cfg.hostname} (offered: ${offered.join(', ')})`,
              'auth',
            ),
          )
        }
        if (err?.level === 'client-timeout') {
          return reject(
            new TransportError(
              `${prefix}: no ssh handshake with ${where} within ${Math.round(timeoutMs / 100) / 10}s`,
              'timeout',
            ),
          )
        }
        if (proxy)
          return reject(
            new TransportError(
              `${prefix}: cannot connect to ${where} through ProxyCommand (${await proxy.why()})`,
              'unreachable',
            ),
          )
        const why = err
          ? err.code === 'ECONNREFUSED'
            ? 'connection refused'
            : err.message
          : 'connection closed before the ssh handshake'
        reject(new TransportError(`${prefix}: cannot connect to ${where}: ${why}`, 'unreachable'))
      }
      client.once('ready', () => {
        settled = true
        resolve()
      })
      client.on('error', (err) => void fail(err))
      client.once('close', () => void fail())
      client.connect(config)
    })
    return client
  }

  private runChannel(
    client: SshClient,
    script: string,
    stdin: string | undefined,
    deadline: number | undefined,
    release: () => void,
  ): Promise<TransportResult> {
    return new Promise<TransportResult>((resolve, reject) => {
      const out: Buffer[] = []
      const err: Buffer[] = []
      let channel: ClientChannel | undefined
      let settled = false
      let exit: number | undefined
      let timer: NodeJS.Timeout | undefined
      const text = (bufs: Buffer[]): string => Buffer.concat(bufs).toString('utf8')
      const done = (): void => {
        if (timer) clearTimeout(timer)
        client.removeListener('close', lost)
        release()
      }
      const lost = (): void => {
        done()
        if (settled) return
        settled = true
        reject(new TransportError(`${this.target}: connection lost while the script was running`, 'unreachable'))
      }
      client.once('close', lost)
      if (deadline !== undefined) {
        timer = setTimeout(
          () => {
            if (settled) return
            settled = true
            // sshd may not act on signals; closing the channel ends the session's pipes either way
            try {
              channel?.signal('KILL')
            } catch {
              /* not supported */
            }
            channel?.close()
            resolve({stdout: text(out), stderr: text(err), code: TIMEOUT_EXIT_CODE, timedOut: true})
          },
          Math.max(0, deadline - Date.now()),
        )
      }
      client.exec(remoteCommand(deadline === undefined ? undefined : deadline - Date.now()), (e, ch) => {
        if (e) {
          done()
          if (settled) return
          settled = true
          return reject(
            new TransportError(
              `${this.target}: cannot open a session: ${e.message.replace(/^\(SSH\) /, '')}`,
              'unreachable',
            ),
          )
        }
        channel = ch
        if (settled) {
          // timed out while the channel was being opened
          ch.once('close', done)
          ch.close()
          return
        }
        ch.on('data', (b: Buffer) => out.push(b))
        ch.stderr.on('data', (b: Buffer) => err.push(b))
        ch.on('exit', (code: number | null, signal?: string) => {
          exit = typeof code === 'number' ? code : signalCode(signal)
        })
        ch.once('close', () => {
          done()
          if (settled) return
          settled = true
          // no exit status at all: ssh reports 255 for that too
          resolve({stdout: text(out), stderr: text(err), code: exit ?? 255})
        })
        ch.end(wrapScript(script, stdin))
      })
    })
  }
}

export function sshTransport(opts: SshTransportOptions): SshTransport {
  return new SshTransport(opts)
}
