import {randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {link, readFile, stat, unlink, writeFile} from 'node:fs/promises'
import {hostname, userInfo} from 'node:os'
import path from 'node:path'

import type {KubeApi} from '../../cluster/kube-api.js'
import {KubeApiError} from '../../cluster/kube-api.js'
import type {KubeObject} from '../../cluster/kube-types.js'
import {NetctlError} from '../../errors.js'
import {formatDuration} from '../../util/duration.js'
import {pollUntil} from '../../util/wait.js'
import type {BackendTarget} from '../target.js'

/**
 * One change at a time per cluster (docs/design.md, "Changes are serialised"). A
 * writer takes the cluster's change lock before it plans and keeps it through
 * verify or rollback:
 *
 * - a lab: `change.lock` in its state directory;
 * - an inventory file: `FILE.lock` beside it;
 * - Kubernetes: a coordination.k8s.io/v1 Lease `netctl-change` in the CNI's
 *   namespace (the one netctl writes to), renewed while held as controllers'
 *   leader election does; one whose renewTime + leaseDurationSeconds has
 *   passed is expired and may be taken over.
 *
 * A lock whose holder ran on this host and whose process is gone is stale and
 * taken over, saying so. A second writer waits up to its --lock-timeout
 * (default 0: refused at once) and is then refused with the holder and since
 * when (exit 4).
 */

/** Who holds a lock: written into the lock file, and into the Lease's annotation. */
export interface LockHolder {
  host: string
  pid: number
  /** the process's start in clock ticks after boot (/proc/PID/stat): a pid reused later is not the holder */
  pidStart?: number
  user: string
  /** when it took the lock (ISO 8601) */
  since: string
  /** what it runs, e.g. "backend set flannel-host-gw" */
  command: string
}

/** The start time of a process (field 22 of /proc/PID/stat), when this system has /proc. */
export function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const start = Number(fields[19])
    return Number.isFinite(start) ? start : undefined
  } catch {
    return undefined
  }
}

export function currentHolder(command: string): LockHolder {
  const start = processStart(process.pid)
  let user: string
  try {
    user = userInfo().username
  } catch {
    user = String(process.getuid?.() ?? '?')
  }
  return {
    host: hostname(),
    pid: process.pid,
    ...(start === undefined ? {} : {pidStart: start}),
    user,
    since: new Date().toISOString(),
    command,
  }
}

export function holderText(h: LockHolder): string {
  return `${h.user}@${h.host} (pid ${h.pid}${h.command ? `, netctl ${h.command}` : ''})`
}

/** What this host knows of a process: whether it exists, and when it started. */
export interface ProcessTable {
  host: string
  /** undefined: no such process */
  startOf(pid: number): number | 'unknown' | undefined
}

export const localProcesses: ProcessTable = {
  host: hostname(),
  startOf(pid) {
    try {
      process.kill(pid, 0)
    } catch (error) {
      // EPERM: it exists, it is someone else's
      if ((error as NodeJS.ErrnoException).code !== 'EPERM') return undefined
    }
    return processStart(pid) ?? 'unknown'
  },
}

/**
 * Is the holder still there? Only a holder on this host can be known dead:
 * its pid is gone, or now belongs to a process that started at another time.
 */
export function holderState(h: LockHolder, here: ProcessTable = localProcesses): 'alive' | 'dead' | 'unknown' {
  if (h.host !== here.host) return 'unknown'
  if (!Number.isInteger(h.pid) || h.pid <= 0) return 'unknown'
  const start = here.startOf(h.pid)
  if (start === undefined) return 'dead'
  if (start !== 'unknown' && h.pidStart !== undefined && start !== h.pidStart) return 'dead'
  return 'alive'
}

/** Who has a lock now, as far as it says. */
export interface Held {
  holder?: LockHolder
  /** the holder as one phrase, for a lock not written by netctl too */
  who: string
  since?: string
  /** how a user gets rid of it when its holder is gone */
  hint?: string
}

export type Attempt = {ok: true; tookOver?: Held} | {ok: false; held: Held}

export interface ChangeLock {
  /** what is locked: "lab demo", "inventory /x/cluster.yaml", "Lease kube-flannel/netctl-change" */
  readonly what: string
  /** Take it if free or stale; otherwise say who has it. Never waits. */
  tryAcquire(): Promise<Attempt>
  release(): Promise<void>
}

/** Refused: another run holds the cluster's change lock (exit 4). */
export class LockHeldError extends NetctlError {
  constructor(
    readonly what: string,
    readonly held: Held,
    waitedMs: number,
  ) {
    const waited = waitedMs > 0 ? `, waited ${formatDuration(waitedMs)}` : ''
    super(
      `refused: ${what} is being changed by ${held.who}${held.since ? ` since ${held.since}` : ''}${waited}; retry later or pass --lock-timeout to wait${held.hint ? `; ${held.hint}` : ''}`,
      'refused',
      'LOCKED',
    )
    this.name = 'LockHeldError'
  }
}

/**
 * Take the lock, waiting up to timeoutMs (0: one attempt) for its holder to
 * let go. `waited` tells the caller that another run may have changed the
 * cluster meanwhile, so what it read before is stale.
 */
export async function acquireLock(
  lock: ChangeLock,
  opts: {timeoutMs: number; say?: (line: string) => void; pollMs?: number},
): Promise<{waited: boolean}> {
  const say = opts.say ?? (() => {})
  const started = Date.now()
  let told = false
  let held: Held | undefined
  const took = await pollUntil(
    async () => {
      const a = await lock.tryAcquire()
      if (a.ok) return a
      held = a.held
      if (!told && Date.now() - started < opts.timeoutMs) {
        say(`waiting up to ${formatDuration(opts.timeoutMs)} for ${a.held.who}, who is changing ${lock.what}`)
        told = true
      }
      return undefined
    },
    {timeoutMs: opts.timeoutMs, intervalMs: opts.pollMs ?? 500},
  )
  if (!took) throw new LockHeldError(lock.what, held!, opts.timeoutMs > 0 ? Date.now() - started : 0)
  if (took.tookOver)
    say(
      `took over the change lock of ${lock.what} from ${took.tookOver.who}${took.tookOver.since ? ` (since ${took.tookOver.since})` : ''}: its holder is gone`,
    )
  return {waited: told}
}

// ---------------------------------------------------------------- a lock file

function parseHolder(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as LockHolder
    return typeof h?.host === 'string' && typeof h.pid === 'number' ? h : undefined
  } catch {
    return undefined
  }
}

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException).code

/**
 * A lock file: the holder written to a private file first, then hard-linked
 * to the lock's name, which fails if it exists — so the lock never exists
 * half-written, and of two racing writers exactly one gets it.
 */
export class FileLock implements ChangeLock {
  private mine?: string

  constructor(
    readonly file: string,
    readonly what: string,
    private readonly holder: LockHolder,
    private readonly here: ProcessTable = localProcesses,
  ) {}

  private async place(target: string, content: string): Promise<boolean> {
    const tmp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}`
    try {
      await writeFile(tmp, content, {mode: 0o644})
      await link(tmp, target)
      return true
    } catch (error) {
      if (errno(error) === 'EEXIST') return false
      // a directory netctl may not write in: no lock, so no change
      throw new NetctlError(
        `cannot take the change lock ${target}: ${(error as Error).message}`,
        'refused',
        'LOCK_FAILED',
      )
    } finally {
      await unlink(tmp).catch(() => {})
    }
  }

  private held(text: string): Held {
    const h = parseHolder(text)
    const hint = `if that run is gone, remove ${this.file}`
    return h
      ? {holder: h, who: holderText(h), since: h.since, hint}
      : {who: `an unreadable lock file ${this.file}`, hint}
  }

  async tryAcquire(): Promise<Attempt> {
    const content = `${JSON.stringify(this.holder)}\n`
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await this.place(this.file, content)) {
        this.mine = content
        return {ok: true}
      }
      let text: string
      try {
        text = await readFile(this.file, 'utf8')
      } catch (error) {
        if (errno(error) === 'ENOENT') continue // let go between our two looks
        throw error
      }
      const held = this.held(text)
      if (!held.holder || holderState(held.holder, this.here) !== 'dead') return {ok: false, held}
      if (await this.takeOver(text, content)) {
        this.mine = content
        return {ok: true, tookOver: held}
      }
    }
    const text = await readFile(this.file, 'utf8').catch(() => '')
    return {ok: false, held: this.held(text)}
  }

  /**
   * Replace a stale lock. Two runs may find the same stale lock at once: a
   * second lock file guards the replacement, and the lock is removed only if
   * it still holds what was judged stale, so exactly one of them gets it.
   */
  private async takeOver(stale: string, content: string): Promise<boolean> {
    const guard = `${this.file}.takeover`
    if (!(await this.place(guard, content))) {
      // a guard left by a run killed in these few milliseconds: gone after a while
      const age = await stat(guard).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      )
      if (age > 10_000) await unlink(guard).catch(() => {})
      return false
    }
    try {
      const now = await readFile(this.file, 'utf8').catch(() => undefined)
      if (now !== stale) return false
      await unlink(this.file)
      return await this.place(this.file, content)
    } finally {
      await unlink(guard).catch(() => {})
    }
  }

  async release(): Promise<void> {
    if (!this.mine) return
    const now = await readFile(this.file, 'utf8').catch(() => undefined)
    // never remove a lock that is no longer ours (taken over after we were judged gone)
    if (now === this.mine) await unlink(this.file).catch(() => {})
    this.mine = undefined
  }
}

// ---------------------------------------------------------------- a Lease

export const LEASE_NAME = 'netctl-change'
/** The holder as netctl wrote it, so that a later run can tell a dead holder on its own host. */
export const HOLDER_ANNOTATION = 'netctl.dev/holder'

export interface LeaseSpec {
  holderIdentity?: string | null
  leaseDurationSeconds?: number | null
  acquireTime?: string | null
  renewTime?: string | null
  leaseTransitions?: number | null
}

export interface KubeLease extends KubeObject {
  spec?: LeaseSpec
}

/** MicroTime as the API server writes it: RFC 3339 with microseconds. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
}

/** A Lease nobody holds: released, never held, or not renewed within its duration. */
export function leaseFree(spec: LeaseSpec | undefined, now: number): 'released' | 'expired' | undefined {
  if (!spec?.holderIdentity) return 'released'
  const last = Date.parse(spec.renewTime ?? spec.acquireTime ?? '')
  const duration = spec.leaseDurationSeconds ?? 0
  if (!Number.isFinite(last) || now > last + duration * 1000) return 'expired'
  return undefined
}

export interface LeaseOptions {
  /** seconds the lease stays valid after a renewal (default 30) */
  durationSeconds?: number
  /** the holder lost the lease (it was taken over after it failed to renew in time) */
  onLost?: (by: string) => void
}

/**
 * The change lock of a Kubernetes cluster: a Lease, written with its
 * resourceVersion as a precondition so that of two writers one wins and the
 * other gets 409 Conflict, renewed every third of its duration.
 */
export class LeaseLock implements ChangeLock {
  readonly what: string
  private readonly path: string
  private readonly identity: string
  private readonly duration: number
  private current?: KubeLease
  private timer?: NodeJS.Timeout
  private renewing?: Promise<void>

  constructor(
    private readonly api: KubeApi,
    readonly namespace: string,
    private readonly holder: LockHolder,
    private readonly opts: LeaseOptions = {},
    private readonly here: ProcessTable = localProcesses,
    readonly name = LEASE_NAME,
  ) {
    this.what = `the cluster (Lease ${namespace}/${name})`
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`
    this.identity = `${holder.user}@${holder.host}_${holder.pid}`
    this.duration = opts.durationSeconds ?? 30
  }

  private held(lease: KubeLease): Held {
    const spec = lease.spec ?? {}
    const h = parseHolder(lease.metadata.annotations?.[HOLDER_ANNOTATION] ?? '')
    const mine = h && `${h.user}@${h.host}_${h.pid}` === spec.holderIdentity ? h : undefined
    const expires = Date.parse(spec.renewTime ?? spec.acquireTime ?? '') + (spec.leaseDurationSeconds ?? 0) * 1000
    const hint = Number.isFinite(expires)
      ? `its lease expires at ${new Date(expires).toISOString()} unless renewed`
      : undefined
    return {
      ...(mine ? {holder: mine} : {}),
      who: mine ? holderText(mine) : `holder "${spec.holderIdentity}"`,
      ...(spec.acquireTime ? {since: spec.acquireTime} : {}),
      ...(hint ? {hint} : {}),
    }
  }

  private body(lease: KubeLease | undefined, transitions: number): KubeLease {
    const now = microTime(new Date())
    const annotations = {...lease?.metadata.annotations, [HOLDER_ANNOTATION]: JSON.stringify(this.holder)}
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {...lease?.metadata, name: this.name, namespace: this.namespace, annotations},
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.duration,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: transitions,
      },
    }
  }

  async tryAcquire(): Promise<Attempt> {
    for (let attempt = 0; attempt < 5; attempt++) {
      let lease: KubeLease | undefined
      try {
        lease = await this.api.get<KubeLease>(`${this.path}/${encodeURIComponent(this.name)}`)
      } catch (error) {
        if (!(error instanceof KubeApiError && error.code === 'NOT_FOUND')) throw error
      }
      let tookOver: Held | undefined
      if (lease) {
        const free = leaseFree(lease.spec, Date.now())
        const held = this.held(lease)
        const dead = !free && held.holder && holderState(held.holder, this.here) === 'dead'
        if (!free && !dead) return {ok: false, held}
        if (free === 'expired' || dead) tookOver = held
      }
      try {
        // as leader election counts them: every change of holder, a release included
        const transitions = lease
          ? (lease.spec?.leaseTransitions ?? 0) + (lease.spec?.holderIdentity === this.identity ? 0 : 1)
          : 0
        this.current = lease
          ? await this.api.update<KubeLease>(
              `${this.path}/${encodeURIComponent(this.name)}`,
              this.body(lease, transitions),
            )
          : await this.api.create<KubeLease>(this.path, this.body(undefined, 0))
      } catch (error) {
        // another writer got there first (409 AlreadyExists or Conflict): look again
        if (error instanceof KubeApiError && error.httpStatus === 409) continue
        throw error
      }
      this.startRenewing()
      return tookOver ? {ok: true, tookOver} : {ok: true}
    }
    const lease = await this.api.get<KubeLease>(`${this.path}/${encodeURIComponent(this.name)}`)
    return {ok: false, held: this.held(lease)}
  }

  private startRenewing(): void {
    this.timer = setInterval(
      () => {
        this.renewing ??= this.renew().finally(() => (this.renewing = undefined))
      },
      (this.duration * 1000) / 3,
    )
  }

  /** Push renewTime on; if the Lease is someone else's now, it was lost. */
  private async renew(): Promise<void> {
    if (!this.current) return
    const url = `${this.path}/${encodeURIComponent(this.name)}`
    try {
      this.current = await this.api.update<KubeLease>(url, {
        ...this.current,
        spec: {...this.current.spec, renewTime: microTime(new Date())},
      })
    } catch (error) {
      if (!(error instanceof KubeApiError && error.httpStatus === 409)) return // a failed renewal is retried at the next tick
      const now = await this.api.get<KubeLease>(url).catch(() => undefined)
      if (now?.spec?.holderIdentity === this.identity) {
        this.current = now
        return this.renew()
      }
      this.stop()
      this.current = undefined
      this.opts.onLost?.(now ? this.held(now).who : 'the Lease was deleted')
    }
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  async release(): Promise<void> {
    this.stop()
    await this.renewing
    if (!this.current) return
    const url = `${this.path}/${encodeURIComponent(this.name)}`
    const {[HOLDER_ANNOTATION]: _mine, ...annotations} = this.current.metadata.annotations ?? {}
    // as leader election releases: no holder, and a lease that has run out
    const body = {
      ...this.current,
      metadata: {...this.current.metadata, annotations},
      spec: {...this.current.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(new Date())},
    }
    this.current = undefined
    await this.api.update(url, body).catch(() => {
      /* not ours any more, or unreachable: it expires on its own */
    })
  }
}

// ---------------------------------------------------------------- per target

/** The namespace of the CNI's own DaemonSet (where netctl writes), else kube-system: one place per cluster whoever runs netctl. */
export function leaseNamespace(target: BackendTarget): string {
  const d = target.kube?.detection
  const ds = d?.details.daemonSets.find((x) => x.cni === d.cni) ?? d?.details.daemonSets[0]
  return ds?.namespace || 'kube-system'
}

/** The change lock of the cluster a target names. */
export function changeLockOf(target: BackendTarget, command: string, opts: LeaseOptions = {}): ChangeLock {
  const holder = currentHolder(command)
  if (target.kind === 'kubernetes') return new LeaseLock(target.kube!.cluster.api, leaseNamespace(target), holder, opts)
  if (target.record)
    return new FileLock(path.join(target.record.stateDir, 'change.lock'), `lab ${target.record.name}`, holder)
  return new FileLock(`${target.inventoryFile!}.lock`, `the cluster of ${target.inventoryFile!}`, holder)
}
