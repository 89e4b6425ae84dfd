import {spawn} from 'node:child_process'
import {closeSync, openSync, readFileSync} from 'node:fs'
import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {prefixLength, stripPrefix} from '../../analyze/ip.js'
import {DAEMON_READY_MS, DAEMON_STOP_MS, QUICK_CHECK_TIMEOUT_MS} from '../../defaults.js'
import {EnvironmentError, NetctlError} from '../../errors.js'
import {firstLine, mapLimit, run} from '../../util/exec.js'
import {standaloneModule} from '../../util/paths.js'
import {pollUntil} from '../../util/wait.js'
import {FLANNEL_UDP, type ForwarderConfig, TUN_SOCKET} from '../flannel-udp-wire.js'
import type {LabNode, LabPlan} from '../types.js'
import {flannelAnnotations} from './flannel.js'
import type {LabBackend} from './types.js'

export {FLANNEL_UDP} from '../flannel-udp-wire.js'

/** Where a node's udp-mode files live: all under the node's directory in the lab state dir. */
export function udpPaths(node: LabNode): {
  dir: string
  config: string
  status: string
  forwarderLog: string
  forwarderPid: string
  socatLog: string
  socatPid: string
} {
  const dir = path.join(node.dir, 'flannel-udp')
  return {
    dir,
    config: path.join(dir, 'forwarder.json'),
    status: path.join(dir, 'forwarder-status.json'),
    forwarderLog: path.join(dir, 'forwarder.log'),
    forwarderPid: path.join(dir, 'forwarder.pid'),
    socatLog: path.join(dir, 'socat.log'),
    socatPid: path.join(dir, 'socat.pid'),
  }
}

/** flannel0's address: the node's <podCIDR>.0 with the cluster's prefix, as flanneld's udp backend sets it. */
export function tunAddress(plan: LabPlan, node: LabNode): string {
  return `${stripPrefix(node.podCIDR)}/${prefixLength(plan.clusterCIDR)}`
}

export function forwarderConfig(plan: LabPlan, node: LabNode): ForwarderConfig {
  const p = udpPaths(node)
  return {
    node: node.name,
    nodeIP: node.ip,
    port: FLANNEL_UDP.port,
    tunSocket: {forwarder: TUN_SOCKET.forwarder, socat: TUN_SOCKET.socat},
    peers: plan.nodes.filter((n) => n.name !== node.name).map((n) => ({name: n.name, ip: n.ip, podCIDR: n.podCIDR})),
    logFile: p.forwarderLog,
    statusFile: p.status,
  }
}

/** How to run the forwarder: the built file, or its source through tsx when netctl runs from TypeScript. */
function forwarderCommand(): {argv: string[]; cwd?: string} {
  const m = standaloneModule('src/lab/udp-forwarder.ts', import.meta.url)
  if (!m) throw new EnvironmentError("the flannel-udp forwarder is missing: run 'npm run build'")
  return {argv: [process.execPath, ...m.execArgv, m.file], ...(m.execArgv.length > 0 ? {cwd: m.root} : {})}
}

/** socat owns flannel0 (gone when socat dies, like flanneld's TUN) and hands each packet to the forwarder as one datagram. */
function socatCommand(plan: LabPlan, node: LabNode): string[] {
  return [
    'socat',
    `TUN:${tunAddress(plan, node)},tun-name=${FLANNEL_UDP.device},iff-no-pi,iff-up,tun-type=tun`,
    `UDP-DATAGRAM:${TUN_SOCKET.host}:${TUN_SOCKET.forwarder},bind=${TUN_SOCKET.host}:${TUN_SOCKET.socat}`,
  ]
}

interface Daemon {
  pid: number
  /** set once the process has exited */
  exit?: string
}

/**
 * Start argv inside the node namespace, detached from netctl (it outlives
 * `lab up`), stdout and stderr appended to `log`. `ip netns exec` execs the
 * program, so the PID is the daemon's own; `lab down` finds it by namespace.
 */
function spawnInNetns(netns: string, argv: string[], log: string, cwd?: string): Daemon {
  const fd = openSync(log, 'a')
  try {
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], {
      detached: true,
      stdio: ['ignore', fd, fd],
      ...(cwd ? {cwd} : {}),
    })
    const d: Daemon = {pid: child.pid ?? -1}
    child.on('error', (e) => (d.exit = e.message))
    child.on('exit', (code, signal) => (d.exit = signal ? `killed by ${signal}` : `exit ${code}`))
    child.unref()
    return d
  } finally {
    closeSync(fd)
  }
}

function lastLogLine(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
    return lines.at(-1) ?? ''
  } catch {
    return ''
  }
}

/** Poll `check` until it returns a value; fail when the daemon exits or time runs out. */
async function waitFor<T>(
  what: string,
  daemon: Daemon,
  log: string,
  check: () => Promise<T | undefined>,
  timeoutMs = DAEMON_READY_MS,
): Promise<T> {
  return pollUntil(
    async () => {
      const v = await check()
      if (v === undefined && daemon.exit !== undefined) {
        throw new NetctlError(
          `${what}: it stopped (${daemon.exit})${lastLogLine(log) ? `: ${lastLogLine(log)}` : ''} (log: ${log})`,
        )
      }
      return v
    },
    {timeoutMs, intervalMs: 50, reason: `${what}: not ready after ${timeoutMs / 1000}s (log: ${log})`},
  )
}

interface IpLink {
  ifname: string
  mtu: number
  flags: string[]
  qdisc?: string
  linkinfo?: {info_kind?: string}
  addr_info?: Array<{family: string; local: string; prefixlen: number}>
}

async function readTun(netns: string): Promise<IpLink | undefined> {
  const r = await run('ip', ['-n', netns, '-j', '-d', 'addr', 'show', 'dev', FLANNEL_UDP.device])
  if (r.code !== 0) return undefined
  try {
    return (JSON.parse(r.stdout) as IpLink[])[0]
  } catch {
    return undefined
  }
}

/**
 * Start one node's udp dataplane: the forwarder first (so flannel0's first
 * packet has somewhere to go), then socat, then flannel0's MTU. Exported for
 * `backend set`, which starts and stops a node's daemons on its own.
 */
async function startUdpNode(plan: LabPlan, node: LabNode): Promise<void> {
  const p = udpPaths(node)
  await mkdir(p.dir, {recursive: true})
  await writeFile(p.config, `${JSON.stringify(forwarderConfig(plan, node), null, 2)}\n`)

  const cmd = forwarderCommand()
  const fwd = spawnInNetns(node.netns, [...cmd.argv, p.config], p.forwarderLog, cmd.cwd)
  await writeFile(p.forwarderPid, `${fwd.pid}\n`)
  await waitFor(`the udp forwarder on ${node.name} did not start`, fwd, p.forwarderLog, async () => {
    try {
      const s = JSON.parse(readFileSync(p.status, 'utf8')) as {pid?: number; state?: string}
      return s.pid === fwd.pid && s.state === 'running' ? true : undefined
    } catch {
      return undefined
    }
  })

  const socat = spawnInNetns(node.netns, socatCommand(plan, node), p.socatLog)
  await writeFile(p.socatPid, `${socat.pid}\n`)
  const want = tunAddress(plan, node)
  await waitFor(`socat on ${node.name} did not create ${FLANNEL_UDP.device}`, socat, p.socatLog, async () => {
    const link = await readTun(node.netns)
    return link?.addr_info?.some((a) => a.family === 'inet' && `${a.local}/${a.prefixlen}` === want) ? link : undefined
  })

  // flanneld sets the TUN's MTU itself; socat cannot, so it is set once the device exists.
  const mtu = plan.underlayMTU - FLANNEL_UDP.overhead
  const r = await run('ip', ['-n', node.netns, 'link', 'set', 'dev', FLANNEL_UDP.device, 'mtu', String(mtu)])
  if (r.code !== 0)
    throw new NetctlError(`cannot set ${FLANNEL_UDP.device} MTU ${mtu} on ${node.name}: ${firstLine(r.stderr)}`)
  // The kernel gives a new device its real qdisc only when the link watcher
  // gets to it (noop until then: every packet out is discarded), so wait for that too.
  await waitFor(`${FLANNEL_UDP.device} on ${node.name} is not up with MTU ${mtu}`, socat, p.socatLog, async () => {
    const link = await readTun(node.netns)
    return link && link.mtu === mtu && link.flags.includes('UP') && link.qdisc !== undefined && link.qdisc !== 'noop'
      ? link
      : undefined
  })
}

/** The PID in a pid file, if that process is still the program we started (PIDs are reused). */
function daemonPid(pidFile: string, program: RegExp): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim())
    if (!Number.isInteger(pid) || pid <= 1) return undefined
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ')
    return program.test(cmdline) || program.test(readFileSync(`/proc/${pid}/comm`, 'utf8')) ? pid : undefined
  } catch {
    return undefined
  }
}

/** Exited: no such process, or a zombie its new parent has not reaped yet (a daemon outlives the netctl that started it). */
const gone = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z'
  } catch {
    return true
  }
}

/**
 * Stop one node's udp dataplane: socat first (flannel0, and with it the
 * cluster route, goes when socat exits, as with flanneld), then the forwarder.
 */
async function stopUdpNode(node: LabNode, timeoutMs = DAEMON_STOP_MS): Promise<void> {
  const p = udpPaths(node)
  for (const [file, program] of [
    [p.socatPid, /socat/],
    [p.forwarderPid, /udp-forwarder/],
  ] as const) {
    const pid = daemonPid(file, program)
    if (pid === undefined) continue
    process.kill(pid, 'SIGTERM')
    if (!(await pollUntil(() => (gone(pid) ? true : undefined), {timeoutMs, intervalMs: 50})))
      process.kill(pid, 'SIGKILL')
  }
  await pollUntil(async () => ((await readTun(node.netns)) === undefined ? true : undefined), {
    timeoutMs,
    intervalMs: 50,
    reason: `${FLANNEL_UDP.device} on ${node.name} is still there after its daemons stopped`,
  })
}

/** One ping from a node to a peer's flannel0 address: node → forwarder → UDP 8285 → peer → and back. */
async function tunnelPing(from: LabNode, to: LabNode): Promise<boolean> {
  const r = await run(
    'ip',
    ['netns', 'exec', from.netns, 'ping', '-n', '-q', '-c', '1', '-W', '1', stripPrefix(to.podCIDR)],
    {timeoutMs: QUICK_CHECK_TIMEOUT_MS},
  )
  return r.code === 0
}

/**
 * flannel udp: a TUN `flannel0` (<podCIDR>.0 with the cluster prefix, so the
 * kernel's own prefix route `<clusterCIDR> dev flannel0` steers every remote
 * pod into it; the node's /24 on cni0 wins by longest prefix) and a userspace
 * daemon carrying each IP packet in one UDP datagram on port 8285.
 */
export const flannelUdp: LabBackend = {
  name: 'flannel-udp',
  family: 'flannel',
  podMTU: (u) => u - FLANNEL_UDP.overhead,
  nodeState() {
    // No kernel state of its own: flannel0 (and with its address the cluster
    // route) belongs to socat, started with the forwarder in start().
  },
  annotations: (_plan, node) => flannelAnnotations('udp', null, node),
  async start(plan) {
    await mapLimit(plan.nodes, 4, (node) => startUdpNode(plan, node))
  },
  daemon: {name: 'flannel-udp', start: startUdpNode, stop: (node) => stopUdpNode(node)},
  async ready(plan, timeoutMs) {
    const deadline = Date.now() + Math.min(timeoutMs, DAEMON_READY_MS)
    // A ring (each node to the next) exercises every forwarder's sending and
    // receiving side in N pings; `lab status` checks pod pairs in full.
    const pairs = plan.nodes.map((a, i) => [a, plan.nodes[(i + 1) % plan.nodes.length]!] as const)
    const results = await mapLimit(pairs, 8, async ([a, b]) => {
      // no pause: a ping that gets no answer has already waited its second
      const reached = await pollUntil(async () => ((await tunnelPing(a, b)) ? true : undefined), {
        deadline,
        intervalMs: 0,
      })
      return reached
        ? undefined
        : `${a.name} cannot reach ${b.name}'s ${FLANNEL_UDP.device} (${stripPrefix(b.podCIDR)}) through UDP ${FLANNEL_UDP.port}`
    })
    return results.filter((w): w is string => w !== undefined)
  },
}
