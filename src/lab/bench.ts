import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {BENCH_REACH_TIMEOUT_MS, QUICK_CHECK_TIMEOUT_MS} from '../defaults.js'
import {EnvironmentError, NetctlError, UsageError} from '../errors.js'
import {type CleanupHandle, onInterrupt} from '../util/cleanup.js'
import {firstLine, mapLimit, run} from '../util/exec.js'
import {pollUntil, sleep} from '../util/wait.js'
import {type Iperf3Result, parseIperf3Json, parsePingStats, type PingStats} from './bench-parse.js'
import {labUp} from './build.js'
import {execIn, listNetns} from './netns-setup.js'
import {labPreflight} from './preflight.js'
import {pingPod} from './status.js'
import {teardownLab} from './teardown.js'
import {defaultStateRoot, netnsPrefix, validateLabName} from './topology.js'
import {LAB_BACKENDS, type LabBackendName, type LabPod, type LabRecord} from './types.js'

/** iperf3's own port; it only ever listens inside a pod namespace of a bench lab. */
export const BENCH_PORT = 5201
/** Seconds between pings: below 0.2 s iputils allows it to root only, and the lab runs as root. */
export const PING_INTERVAL_SEC = 0.01
/** The lab each backend is measured in: small, so that the two cores are spent on the traffic. */
export const BENCH_LAB = {nodes: 2, podsPerNode: 2, topology: 'flat'} as const

export interface BenchOptions {
  /** undefined: every backend this machine can build */
  backends?: LabBackendName[]
  seconds: number
  pingCount: number
  /** rounds per pair, same-node and cross-node taking turns; each pair reports its median round */
  rounds: number
  /** base name; each backend's lab is NAME-<backend> (benchLabName) */
  name: string
}

export interface BenchHooks {
  progress?(line: string): void
  /** SIGINT or SIGTERM arrived: called once, before the labs named are torn down and the process exits */
  interrupted?(signal: NodeJS.Signals, labs: string[]): void
}

export interface BenchEndpoint {
  pod: string
  node: string
  ip: string
}

export interface PairBench {
  from: BenchEndpoint
  to: BenchEndpoint
  /** the round with the median average RTT */
  latency?: PingStats
  /** the round with the median throughput */
  throughput?: Iperf3Result
  /** every round, in the order run: average RTT (ms) and received bits per second */
  rounds?: Array<{rttAvgMs: number; bitsPerSecond: number}>
}

export interface BackendBench {
  backend: LabBackendName
  lab: string
  status: 'ok' | 'failed'
  /** why the backend could not be measured, one line */
  error?: string
  /** from the kernel: the node's uplink, the pod's eth0, and the largest DF packet that crossed nodes */
  mtu?: {underlay: number; pod: number; path: number}
  /** the baseline: two pods on the same node */
  sameNode?: PairBench
  crossNode?: PairBench
  /** cross-node / same-node, from the numbers above */
  ratio?: {throughput: number; latency: number}
  warnings: string[]
}

export interface BenchReport {
  name: string
  seconds: number
  pingCount: number
  rounds: number
  pingIntervalSec: number
  lab: {nodes: number; podsPerNode: number; topology: string}
  /** loadAverage: the 1-minute load when the run started; other work on the machine is noise here */
  host: {cores: number; kernel: string; iperf3: string; loadAverage: number}
  startedAt: string
  results: BackendBench[]
  /** backends left out of the default set, and why */
  skipped: Array<{backend: LabBackendName; reason: string}>
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000
/** Ratios keep 4 significant digits: a userspace path can sit far below 0.001 of its baseline. */
const sig4 = (x: number): number => Number(x.toPrecision(4))

/** `flannel-host-gw` → `NAME-f-host-gw`: the family's initial keeps names short and distinct. */
export function benchLabName(name: string, backend: LabBackendName): string {
  return `${name}-${backend.replace(/^([a-z])[a-z]*-/, '$1-')}`
}

/**
 * `--backends a,b`: names from LAB_BACKENDS, in the order given, each once.
 * oclif names the flag before the message (`--backends: unknown backend ...`).
 */
export function parseBackendList(text: string): LabBackendName[] {
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  if (names.length === 0) throw new UsageError(`give one or more of ${LAB_BACKENDS.join(', ')}`)
  for (const n of names) {
    if (!(LAB_BACKENDS as readonly string[]).includes(n))
      throw new UsageError(`unknown backend '${n}': one of ${LAB_BACKENDS.join(', ')}`)
  }
  return [...new Set(names)] as LabBackendName[]
}

/** Every name the run will use must be a valid lab name: fail before anything is built. */
function validateNames(name: string, backends: readonly LabBackendName[]): void {
  for (const b of backends) {
    try {
      validateLabName(benchLabName(name, b))
    } catch {
      const longest = backends.map((x) => benchLabName(name, x)).sort((a, c) => c.length - a.length)[0]!
      throw new UsageError(
        `--name '${name}': each backend's lab is NAME-<backend> (here ${longest}), which must be 1-24 lower-case letters, digits and single '-'`,
      )
    }
  }
}

async function iperf3Version(): Promise<string> {
  const r = await run('iperf3', ['--version'])
  if (r.code === 127) throw new EnvironmentError(`missing iperf3: install with 'apt-get install iperf3'`)
  return firstLine(r.stdout).replace(/\s*\(.*$/, '') || 'iperf3'
}

/**
 * The default set: every backend of LAB_BACKENDS whose preflight passes here
 * (its programs are installed). Whether its lab then really comes up is for
 * the run to find out; a failure there is a row of the table, not a skip.
 */
export async function buildableBackends(): Promise<{backends: LabBackendName[]; skipped: BenchReport['skipped']}> {
  const backends: LabBackendName[] = []
  const skipped: BenchReport['skipped'] = []
  for (const backend of LAB_BACKENDS) {
    try {
      await labPreflight({backend, ssh: false})
      backends.push(backend)
    } catch (error) {
      skipped.push({backend, reason: firstLine((error as Error).message)})
    }
  }
  return {backends, skipped}
}

/**
 * Owns the labs (and iperf3 servers) of a run while it lasts: on SIGINT or
 * SIGTERM (the process's cleanup stack) it tears them down, also when a lab
 * is half-built (the builder may still be adding namespaces, so it looks
 * again until none is left); the stack then ends the process with 128 +
 * the signal.
 */
class LabGuard {
  private readonly labs = new Set<string>()
  private readonly servers = new Set<ChildProcess>()
  private signal?: NodeJS.Signals
  /** set once a signal came: never settles, the stack ends the process once the teardown is done */
  aborting?: Promise<never>
  private readonly held: CleanupHandle

  constructor(
    private readonly stateRoot: string,
    private readonly hooks: BenchHooks,
  ) {
    this.held = onInterrupt(
      () => `removing the bench's labs${this.labs.size > 0 ? ` ${[...this.labs].join(', ')}` : ''}`,
      (sig) => this.abort(sig),
      {ending: 'exit'},
    )
  }

  own(lab: string): void {
    this.labs.add(lab)
  }

  release(lab: string): void {
    this.labs.delete(lab)
  }

  track(server: ChildProcess): void {
    this.servers.add(server)
  }

  untrack(server: ChildProcess): void {
    this.servers.delete(server)
  }

  /** Between steps: stop working once a signal came (the stack is tearing down). */
  check(): void {
    if (this.signal) throw new NetctlError(`interrupted by ${this.signal}`)
  }

  private async leftOver(labs: string[]): Promise<boolean> {
    const namespaces = await listNetns()
    return labs.some(
      (l) => namespaces.some((ns) => ns.startsWith(netnsPrefix(l))) || existsSync(path.join(this.stateRoot, l)),
    )
  }

  private async abort(sig: NodeJS.Signals): Promise<void> {
    this.signal = sig
    this.aborting = new Promise<never>(() => {})
    const labs = [...this.labs]
    this.hooks.interrupted?.(sig, labs)
    for (const s of this.servers) s.kill('SIGKILL')
    for (let pass = 0; pass < 10; pass++) {
      await mapLimit(labs, 2, (l) => teardownLab(l, this.stateRoot).catch(() => undefined))
      await sleep(300)
      if (!(await this.leftOver(labs))) break
    }
  }

  dispose(): void {
    this.held.release()
  }
}

async function labExists(lab: string, stateRoot: string): Promise<boolean> {
  if (existsSync(path.join(stateRoot, lab))) return true
  return (await listNetns()).some((ns) => ns.startsWith(netnsPrefix(lab)))
}

/** Poll until each pair answers a ping (the backend's daemons may still be settling). */
async function waitReachable(pairs: Array<[LabPod, LabPod]>, guard: LabGuard): Promise<void> {
  const deadline = Date.now() + BENCH_REACH_TIMEOUT_MS
  for (const [a, b] of pairs) {
    await pollUntil(
      async () => {
        guard.check()
        return (await pingPod(a, b, 1)).ok ? true : undefined
      },
      {
        deadline,
        intervalMs: 200,
        reason: `pods do not reach each other: ${a.name} -> ${b.name} (${b.ip}) got no ping reply within ${BENCH_REACH_TIMEOUT_MS / 1000}s`,
      },
    )
  }
}

/** `ping -c N -i 0.01` from inside a pod; a run with no reply at all is a failure. */
async function measureLatency(from: LabPod, to: LabPod, count: number): Promise<PingStats> {
  const deadline = Math.ceil(count * PING_INTERVAL_SEC) + 5
  const argv = [
    'ping',
    '-n',
    '-q',
    '-c',
    String(count),
    '-i',
    String(PING_INTERVAL_SEC),
    '-W',
    '1',
    '-w',
    String(deadline),
    to.ip,
  ]
  const r = await execIn(from.netns, argv, {timeoutMs: (deadline + 5) * 1000})
  let stats: PingStats
  try {
    stats = parsePingStats(r.stdout)
  } catch {
    throw new NetctlError(
      `ping ${from.name} -> ${to.name}: ${firstLine(r.stderr) || firstLine(r.stdout) || `exit ${r.code}`}`,
    )
  }
  if (!stats.rttMs || stats.received === 0)
    throw new NetctlError(`ping ${from.name} -> ${to.name} (${to.ip}): no reply to ${stats.transmitted} pings`)
  return stats
}

/** Is an address:port listening inside the namespace (`ss -tln` there)? */
async function listening(netns: string, ip: string, port: number): Promise<boolean> {
  const r = await execIn(netns, ['ss', '-Htln'])
  return r.stdout.split('\n').some((l) => l.split(/\s+/).includes(`${ip}:${port}`))
}

/**
 * One iperf3 TCP test: a one-off server (`-s -1`) in the destination pod bound
 * to the pod's IP, the client (`-J`) in the source pod. The server is ours:
 * it is stopped here whatever happens (and teardown would kill it anyway).
 */
async function measureThroughput(from: LabPod, to: LabPod, seconds: number, guard: LabGuard): Promise<Iperf3Result> {
  const server = spawn('ip', ['netns', 'exec', to.netns, 'iperf3', '-s', '-1', '-B', to.ip, '-p', String(BENCH_PORT)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  guard.track(server)
  let output = ''
  const keep = (b: Buffer): void => {
    output = (output + b.toString('utf8')).slice(-4000)
  }
  server.stdout.on('data', keep)
  server.stderr.on('data', keep)
  let exited: string | undefined
  const closed = new Promise<void>((resolve) => {
    server.on('error', (e) => {
      exited = e.message
      resolve()
    })
    server.on('close', (code, signal) => {
      exited ??= signal ? `killed by ${signal}` : `exit ${code}`
      resolve()
    })
  })
  const lastLine = (): string =>
    output
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .at(-1) ?? ''
  try {
    await pollUntil(
      async () => {
        if (await listening(to.netns, to.ip, BENCH_PORT)) return true
        guard.check()
        if (exited !== undefined)
          throw new NetctlError(`iperf3 server in ${to.name} stopped (${exited})${lastLine() ? `: ${lastLine()}` : ''}`)
        return undefined
      },
      {
        timeoutMs: 5000,
        intervalMs: 50,
        reason: `iperf3 server in ${to.name} is not listening on ${to.ip}:${BENCH_PORT} after 5s`,
      },
    )
    const limit = seconds + 20
    const r = await execIn(
      from.netns,
      ['iperf3', '-c', to.ip, '-p', String(BENCH_PORT), '-t', String(seconds), '-J', '--connect-timeout', '3000'],
      {timeoutMs: limit * 1000},
    )
    if (r.timedOut) throw new NetctlError(`iperf3 ${from.name} -> ${to.name} did not finish within ${limit}s`)
    if (r.stdout.trim() === '')
      throw new NetctlError(`iperf3 ${from.name} -> ${to.name}: ${firstLine(r.stderr) || `exit ${r.code}`}`)
    return parseIperf3Json(r.stdout)
  } finally {
    // A one-off server leaves by itself after its test; give it a moment, then stop it.
    await Promise.race([closed, sleep(2000)])
    if (exited === undefined) {
      server.kill('SIGTERM')
      await Promise.race([closed, sleep(1000)])
      if (exited === undefined) server.kill('SIGKILL')
    }
    guard.untrack(server)
  }
}

async function linkMTU(netns: string, dev: string): Promise<number> {
  const r = await run('ip', ['-n', netns, '-j', 'link', 'show', 'dev', dev])
  const mtu = r.code === 0 ? (JSON.parse(r.stdout) as Array<{mtu?: number}>)[0]?.mtu : undefined
  if (typeof mtu !== 'number')
    throw new NetctlError(`cannot read the MTU of ${dev} in ${netns}: ${firstLine(r.stderr) || 'no such device'}`)
  return mtu
}

/** One ping of `size` bytes (IP packet) with DF set; a loss is retried once before it counts. */
async function dfPing(from: LabPod, ip: string, size: number): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = await execIn(
      from.netns,
      ['ping', '-n', '-q', '-c', '1', '-W', '1', '-M', 'do', '-s', String(size - 28), ip],
      {timeoutMs: QUICK_CHECK_TIMEOUT_MS},
    )
    if (r.code === 0) return true
  }
  return false
}

/**
 * The largest IP packet that crosses from `from` to `to` with DF set. A pod
 * cannot send more than its own MTU, so that is tried first; below it the
 * answer is found by halving (the 84-byte reachability ping already passed).
 */
async function probePathMTU(from: LabPod, to: LabPod, podMTU: number, guard: LabGuard): Promise<number> {
  if (await dfPing(from, to.ip, podMTU)) return podMTU
  let ok = 84
  let bad = podMTU
  while (bad - ok > 1) {
    guard.check()
    const mid = Math.floor((ok + bad) / 2)
    if (await dfPing(from, to.ip, mid)) ok = mid
    else bad = mid
  }
  return ok
}

/** The median element by `key`; for an even count the lower of the two middle ones, so it is always a real round. */
export function medianBy<T>(items: readonly T[], key: (t: T) => number): T {
  const sorted = [...items].sort((a, b) => key(a) - key(b))
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

const endpoint = (p: LabPod): BenchEndpoint => ({pod: p.name, node: p.node, ip: p.ip})

/** The pairs: the first pod to another pod on its node (baseline), and to the first pod of another node. */
function benchPairs(record: LabRecord): {same: [LabPod, LabPod]; cross: [LabPod, LabPod]} {
  const src = record.pods[0]
  const sameDst = record.pods.find((p) => p !== src && p.node === src?.node)
  const crossDst = record.pods.find((p) => p.node !== src?.node)
  if (!src || !sameDst || !crossDst)
    throw new NetctlError(`lab ${record.name} lacks a same-node and a cross-node pod pair`)
  return {same: [src, sameDst], cross: [src, crossDst]}
}

async function benchBackend(
  backend: LabBackendName,
  opts: BenchOptions,
  guard: LabGuard,
  say: (s: string) => void,
  stateRoot: string,
): Promise<BackendBench> {
  const lab = benchLabName(opts.name, backend)
  const result: BackendBench = {backend, lab, status: 'failed', warnings: []}
  let owned = false
  try {
    await labPreflight({backend, ssh: false})
    // Never take down a lab this run did not make.
    if (await labExists(lab, stateRoot))
      throw new UsageError(
        `a lab named '${lab}' already exists and is not this run's: remove it with 'netctl lab down --name ${lab}', or pick another --name`,
        false,
      )
    guard.check()
    guard.own(lab)
    owned = true
    say(`lab up ${lab}`)
    const record = await labUp(
      {
        name: lab,
        nodes: BENCH_LAB.nodes,
        podsPerNode: BENCH_LAB.podsPerNode,
        backend,
        topology: BENCH_LAB.topology,
        routeReflectors: 1,
        ssh: false,
      },
      (step) => {
        guard.check()
        say(step)
      },
      stateRoot,
    )
    result.warnings.push(...record.warnings)
    const {same, cross} = benchPairs(record)
    result.sameNode = {from: endpoint(same[0]), to: endpoint(same[1])}
    result.crossNode = {from: endpoint(cross[0]), to: endpoint(cross[1])}

    say('waiting until pods reach each other')
    await waitReachable([same, cross], guard)

    // Same-node and cross-node take turns, round after round, so that load from
    // elsewhere on the machine falls on both; each pair keeps its median round.
    type Round = {latency: PingStats; throughput: Iperf3Result}
    const runs: {same: Round[]; cross: Round[]} = {same: [], cross: []}
    for (let round = 1; round <= opts.rounds; round++) {
      say(`round ${round}/${opts.rounds}: ${opts.pingCount} pings and ${opts.seconds}s of iperf3 per pair`)
      const sameLatency = await measureLatency(...same, opts.pingCount)
      const crossLatency = await measureLatency(...cross, opts.pingCount)
      guard.check()
      const sameThroughput = await measureThroughput(...same, opts.seconds, guard)
      guard.check()
      const crossThroughput = await measureThroughput(...cross, opts.seconds, guard)
      guard.check()
      runs.same.push({latency: sameLatency, throughput: sameThroughput})
      runs.cross.push({latency: crossLatency, throughput: crossThroughput})
    }
    for (const [pair, rs] of [
      [result.sameNode, runs.same],
      [result.crossNode, runs.cross],
    ] as const) {
      pair.latency = medianBy(rs, (r) => r.latency.rttMs!.avg).latency
      pair.throughput = medianBy(rs, (r) => r.throughput.bitsPerSecond).throughput
      pair.rounds = rs.map((r) => ({rttAvgMs: r.latency.rttMs!.avg, bitsPerSecond: r.throughput.bitsPerSecond}))
    }

    say('path MTU')
    const srcNode = record.nodes.find((n) => n.name === cross[0].node)!
    const underlay = await linkMTU(srcNode.netns, 'eth0')
    const pod = await linkMTU(cross[0].netns, 'eth0')
    const pathMTU = await probePathMTU(...cross, pod, guard)
    result.mtu = {underlay, pod, path: pathMTU}
    if (pathMTU < pod)
      result.warnings.push(
        `pod MTU is ${pod} but only ${pathMTU}-byte packets cross nodes with DF set: larger ones are dropped on the way`,
      )

    result.ratio = {
      throughput: sig4(result.crossNode.throughput!.bitsPerSecond / result.sameNode.throughput!.bitsPerSecond),
      latency: sig4(result.crossNode.latency!.rttMs!.avg / result.sameNode.latency!.rttMs!.avg),
    }
    result.status = 'ok'
  } catch (error) {
    result.error = firstLine((error as Error).message) || String(error)
  } finally {
    if (owned) {
      say(`lab down ${lab}`)
      try {
        await teardownLab(lab, stateRoot)
      } catch (error) {
        result.warnings.push(
          `teardown of ${lab} failed: ${firstLine((error as Error).message)} (run 'netctl lab down --name ${lab}')`,
        )
      }
      guard.release(lab)
    }
  }
  return result
}

/**
 * `netctl lab bench`: for each backend in turn, a small lab (2 nodes × 2
 * pods, flat); latency and TCP throughput of a same-node pod pair (the
 * baseline) and of a cross-node pair, taking turns for `rounds` rounds; the
 * MTUs; then the lab goes — also when something fails, and on SIGINT / SIGTERM.
 */
export async function runBench(
  opts: BenchOptions,
  hooks: BenchHooks = {},
  stateRoot = defaultStateRoot(),
): Promise<BenchReport> {
  if (opts.backends) validateNames(opts.name, opts.backends)
  else validateNames(opts.name, LAB_BACKENDS)
  if (!Number.isInteger(opts.seconds) || opts.seconds < 1)
    throw new UsageError(`--seconds must be a whole number of seconds, at least 1`)
  if (!Number.isInteger(opts.pingCount) || opts.pingCount < 1) throw new UsageError(`--ping-count must be at least 1`)
  if (!Number.isInteger(opts.rounds) || opts.rounds < 1) throw new UsageError(`--rounds must be at least 1`)
  // Root first: without it every backend would "fail" the same way.
  await labPreflight({backend: 'flannel-vxlan', ssh: false})
  const iperf3 = await iperf3Version()

  let backends = opts.backends
  let skipped: BenchReport['skipped'] = []
  if (!backends) {
    ;({backends, skipped} = await buildableBackends())
    if (backends.length === 0)
      throw new EnvironmentError(
        `no backend can be built here: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`,
      )
  }

  const report: BenchReport = {
    name: opts.name,
    seconds: opts.seconds,
    pingCount: opts.pingCount,
    rounds: opts.rounds,
    pingIntervalSec: PING_INTERVAL_SEC,
    lab: {...BENCH_LAB},
    host: {cores: os.cpus().length, kernel: os.release(), iperf3, loadAverage: round3(os.loadavg()[0] ?? 0)},
    startedAt: new Date().toISOString(),
    results: [],
    skipped,
  }
  const guard = new LabGuard(stateRoot, hooks)
  try {
    for (const [i, backend] of backends.entries()) {
      const say = (s: string): void => hooks.progress?.(`[${i + 1}/${backends.length}] ${backend}: ${s}`)
      report.results.push(await benchBackend(backend, opts, guard, say, stateRoot))
      // Interrupted: no table for a run cut short; the cleanup stack ends the process once the labs are gone.
      if (guard.aborting) await guard.aborting
    }
  } finally {
    guard.dispose()
  }
  return report
}
