/**
 * The lab's stand-in for flanneld's udp proxy, one per node, serving every peer:
 *
 *   flannel0 ──(socat)──▶ 127.0.0.1:tunSocket.forwarder ──▶ pick the peer by the
 *   inner destination (longest match over the peers' podCIDRs) ──▶ nodeIP:8285 → peerIP:8285
 *
 *   peerIP:8285 → nodeIP:8285 ──▶ 127.0.0.1:tunSocket.socat ──(socat)──▶ flannel0
 *
 * Each UDP payload is the bare IP packet, as flanneld sends it. Run as
 * `ip netns exec <node> node udp-forwarder.js <config.json>`; it never leaves
 * that namespace. SIGHUP re-reads the config (peers), SIGUSR1 writes the
 * status file (per-peer counters, drops) at once; SIGTERM stops it.
 */
import dgram from 'node:dgram'
import {appendFileSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {pathToFileURL} from 'node:url'

import {
  checkIPv4,
  decrementTTL,
  describePacket,
  type DropReason,
  FORWARDER_TITLE,
  type ForwarderConfig,
  type ForwarderPeer,
  parseForwarderConfig,
  PeerTable,
  TUN_SOCKET,
} from './flannel-udp-wire.js'

interface PeerCounters {
  txPackets: number
  txBytes: number
  rxPackets: number
  rxBytes: number
}

export interface ForwarderStatus {
  node: string
  pid: number
  state: 'starting' | 'running' | 'stopped'
  startedAt: string
  updatedAt: string
  configLoadedAt: string
  reloads: number
  nodeIP: string
  port: number
  peers: Array<ForwarderPeer & PeerCounters>
  drops: Record<DropReason, number>
  sendErrors: number
}

const STATUS_DELAY_MS = 1000

class Forwarder {
  private config: ForwarderConfig
  private table: PeerTable
  private readonly counters = new Map<string, PeerCounters>()
  private readonly drops: Record<DropReason, number> = {
    notIPv4: 0,
    malformed: 0,
    noPeer: 0,
    ttlExpired: 0,
    unknownSource: 0,
  }
  private sendErrors = 0
  private reloads = 0
  private configLoadedAt = new Date().toISOString()
  private readonly startedAt = new Date().toISOString()
  private state: ForwarderStatus['state'] = 'starting'
  private statusTimer: NodeJS.Timeout | undefined
  private readonly tun = dgram.createSocket('udp4')
  private readonly underlay = dgram.createSocket('udp4')

  constructor(private readonly configPath: string) {
    this.config = parseForwarderConfig(readFileSync(configPath, 'utf8'))
    this.table = new PeerTable(this.config.peers)
  }

  log(message: string): void {
    try {
      appendFileSync(this.config.logFile, `${new Date().toISOString()} ${this.config.node} ${message}\n`)
    } catch {
      process.stderr.write(`${message}\n`)
    }
  }

  async start(): Promise<void> {
    const c = this.config
    this.tun.on('message', (pkt) => this.fromTun(pkt))
    this.underlay.on('message', (pkt, from) => this.fromUnderlay(pkt, from))
    for (const s of [this.tun, this.underlay]) s.on('error', (e) => this.fatal(`socket error: ${e.message}`))
    await bind(this.tun, c.tunSocket.forwarder, TUN_SOCKET.host)
    await bind(this.underlay, c.port, c.nodeIP)
    this.state = 'running'
    this.log(
      `listening on ${c.nodeIP}:${c.port} (peers: ${this.peerList()}); flannel0 via socat at ${TUN_SOCKET.host}:${c.tunSocket.socat}`,
    )
    this.writeStatus()
  }

  private peerList(): string {
    return this.config.peers.map((p) => `${p.name} ${p.podCIDR} at ${p.ip}`).join(', ') || 'none'
  }

  private count(peer: ForwarderPeer): PeerCounters {
    let c = this.counters.get(peer.name)
    if (!c) {
      c = {txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0}
      this.counters.set(peer.name, c)
    }
    return c
  }

  /** Count a drop; log the 1st, 10th, 100th, ... of each reason, so a flood cannot fill the disk. */
  private drop(reason: DropReason, pkt: Buffer, where: string): void {
    const n = ++this.drops[reason]
    if (Number.isInteger(Math.log10(n))) this.log(`drop #${n} ${reason} (${where}): ${describePacket(pkt)}`)
    this.statusSoon()
  }

  /** A packet the kernel routed into flannel0: carry it to the peer that owns its destination. */
  private fromTun(pkt: Buffer): void {
    const bad = checkIPv4(pkt)
    if (bad) return this.drop(bad, pkt, 'from flannel0')
    const dst = pkt.readUInt32BE(16)
    const peer = this.table.lookup(dst)
    if (!peer) return this.drop('noPeer', pkt, 'from flannel0')
    if (!decrementTTL(pkt)) return this.drop('ttlExpired', pkt, 'from flannel0')
    const c = this.count(peer)
    c.txPackets++
    c.txBytes += pkt.length
    this.underlay.send(
      pkt,
      this.config.port,
      peer.ip,
      (e) => e && this.sendError(`to ${peer.name} ${peer.ip}:${this.config.port}`, e),
    )
    this.statusSoon()
  }

  /** A datagram on the port: from a known peer it goes into flannel0 as is. */
  private fromUnderlay(pkt: Buffer, from: dgram.RemoteInfo): void {
    const peer = this.table.byAddress(from.address)
    if (!peer) return this.drop('unknownSource', pkt, `from ${from.address}:${from.port}`)
    const bad = checkIPv4(pkt)
    if (bad) return this.drop(bad, pkt, `from ${peer.name}`)
    if (!decrementTTL(pkt)) return this.drop('ttlExpired', pkt, `from ${peer.name}`)
    const c = this.count(peer)
    c.rxPackets++
    c.rxBytes += pkt.length
    this.tun.send(
      pkt,
      this.config.tunSocket.socat,
      TUN_SOCKET.host,
      (e) => e && this.sendError('to flannel0 (socat)', e),
    )
    this.statusSoon()
  }

  private sendError(where: string, e: Error): void {
    const n = ++this.sendErrors
    if (Number.isInteger(Math.log10(n))) this.log(`send error #${n} ${where}: ${e.message}`)
  }

  /** SIGHUP: take the new peer list; a change of address or ports needs a restart. */
  reload(): void {
    let next: ForwarderConfig
    try {
      next = parseForwarderConfig(readFileSync(this.configPath, 'utf8'))
    } catch (error) {
      this.log(`reload failed, keeping ${this.config.peers.length} peers: ${(error as Error).message}`)
      return
    }
    const c = this.config
    if (next.nodeIP !== c.nodeIP || next.port !== c.port || next.tunSocket.forwarder !== c.tunSocket.forwarder) {
      this.log(`reload: nodeIP/port/tunSocket changed (${next.nodeIP}:${next.port}); restart the forwarder to use them`)
    }
    this.config = {
      ...next,
      nodeIP: c.nodeIP,
      port: c.port,
      tunSocket: {...next.tunSocket, forwarder: c.tunSocket.forwarder},
    }
    this.table = new PeerTable(this.config.peers)
    for (const name of [...this.counters.keys()])
      if (!next.peers.some((p) => p.name === name)) this.counters.delete(name)
    this.reloads++
    this.configLoadedAt = new Date().toISOString()
    this.log(`reloaded: peers ${this.peerList()}`)
    this.writeStatus()
  }

  status(): ForwarderStatus {
    const zero: PeerCounters = {txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0}
    return {
      node: this.config.node,
      pid: process.pid,
      state: this.state,
      startedAt: this.startedAt,
      updatedAt: new Date().toISOString(),
      configLoadedAt: this.configLoadedAt,
      reloads: this.reloads,
      nodeIP: this.config.nodeIP,
      port: this.config.port,
      peers: this.config.peers.map((p) => ({...p, ...(this.counters.get(p.name) ?? zero)})),
      drops: {...this.drops},
      sendErrors: this.sendErrors,
    }
  }

  /** Written whole and renamed into place, so a reader never sees half a file. */
  writeStatus(): void {
    if (this.statusTimer) clearTimeout(this.statusTimer)
    this.statusTimer = undefined
    try {
      const tmp = `${this.config.statusFile}.tmp`
      writeFileSync(tmp, `${JSON.stringify(this.status(), null, 2)}\n`)
      renameSync(tmp, this.config.statusFile)
    } catch (error) {
      this.log(`cannot write status: ${(error as Error).message}`)
    }
  }

  /** Traffic updates the status file at most once a second; SIGUSR1 does it at once. */
  private statusSoon(): void {
    if (this.statusTimer) return
    this.statusTimer = setTimeout(() => this.writeStatus(), STATUS_DELAY_MS)
    this.statusTimer.unref()
  }

  dump(): void {
    const s = this.status()
    const peers = s.peers
      .map((p) => `${p.name} tx ${p.txPackets}/${p.txBytes}B rx ${p.rxPackets}/${p.rxBytes}B`)
      .join('; ')
    const drops = Object.entries(s.drops)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')
    this.log(`counters: ${peers || 'no peers'}; drops: ${drops}; send errors ${s.sendErrors}`)
    this.writeStatus()
  }

  stop(signal: string): void {
    this.state = 'stopped'
    this.log(`stopping on ${signal}`)
    this.writeStatus()
    process.exit(0)
  }

  fatal(message: string): never {
    this.log(`fatal: ${message}`)
    process.stderr.write(`${FORWARDER_TITLE}: ${message}\n`)
    process.exit(1)
  }
}

function bind(socket: dgram.Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(new Error(`cannot bind ${address}:${port}: ${e.message}`))
    socket.once('error', onError)
    socket.bind({port, address, exclusive: true}, () => {
      socket.off('error', onError)
      resolve()
    })
  })
}

async function main(argv: string[]): Promise<void> {
  const configPath = argv[2]
  if (!configPath) {
    process.stderr.write(`usage: ${FORWARDER_TITLE} CONFIG.json\n`)
    process.exit(2)
  }
  // What `ps` and the node probe see: the name plus the config it serves.
  process.title = `${FORWARDER_TITLE} ${configPath}`
  let fwd: Forwarder
  try {
    fwd = new Forwarder(configPath)
  } catch (error) {
    process.stderr.write(`${FORWARDER_TITLE}: ${(error as Error).message}\n`)
    process.exit(1)
  }
  process.on('SIGHUP', () => fwd.reload())
  process.on('SIGUSR1', () => fwd.dump())
  process.on('SIGTERM', () => fwd.stop('SIGTERM'))
  process.on('SIGINT', () => fwd.stop('SIGINT'))
  process.on('uncaughtException', (e) => fwd.fatal(e.message))
  try {
    await fwd.start()
  } catch (error) {
    fwd.fatal((error as Error).message)
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main(process.argv)
