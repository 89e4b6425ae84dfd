import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {addToIPv4} from '../../analyze/ip.js'
import {parseBirdProtocols} from '../../collect/parse/bird.js'
import {BIRD_CONTROL_TIMEOUT_MS, BIRD_QUERY_TIMEOUT_MS, QUICK_CHECK_TIMEOUT_MS} from '../../defaults.js'
import {EnvironmentError, NetctlError} from '../../errors.js'
import type {BgpSession} from '../../model/node-state.js'
import {firstLine, mapLimit} from '../../util/exec.js'
import {pollUntil} from '../../util/wait.js'
import {
  bgpSession,
  birdConfig,
  birdPaths,
  birdPeers,
  calicoIPv4Address,
  peerIPFromProtocol,
  RR_CLUSTER_ID,
} from '../bird.js'
import {execIn} from '../netns-setup.js'
import type {NsScript} from '../script.js'
import type {BgpSessionStatus} from '../status.js'
import {l2Adjacent} from '../topology.js'
import type {LabNode, LabPlan} from '../types.js'
import type {LabBackend, LabNodeDaemon} from './types.js'
import {addVxlanDevice, addVxlanPeerFdb, peersOf} from './vxlan.js'

/** Felix's VXLAN device: VNI 4096 on the IANA port, 50 bytes of outer headers. */
export const CALICO_VXLAN = {device: 'vxlan.calico', vni: 4096, port: 4789, overhead: 50} as const
/** The routing protocol number Felix marks its routes with (`proto 80`). */
export const FELIX_RT_PROTO = 80

/** Unix socket paths are limited to 108 bytes (sun_path), including the NUL. */
const SUN_PATH_MAX = 107

/** Write a node's bird.cfg (for plan.backend) and start BIRD inside the node; BIRD daemonizes once its config parses. */
async function startBirdNode(plan: LabPlan, node: LabNode): Promise<void> {
  const p = await writeBirdConfig(plan, node)
  const r = await execIn(node.netns, ['bird', '-c', p.config, '-s', p.socket, '-P', p.pidFile], {
    timeoutMs: BIRD_CONTROL_TIMEOUT_MS,
  })
  if (r.code !== 0) {
    throw new NetctlError(
      `BIRD did not start on ${node.name}: ${firstLine(r.stderr) || firstLine(r.stdout) || `exit ${r.code}`} (config: ${p.config})`,
    )
  }
}

async function writeBirdConfig(plan: LabPlan, node: LabNode): Promise<ReturnType<typeof birdPaths>> {
  const p = birdPaths(node)
  if (Buffer.byteLength(p.socket) > SUN_PATH_MAX) {
    throw new EnvironmentError(
      `BIRD control socket path is longer than ${SUN_PATH_MAX} bytes: ${p.socket} (use a shorter NETCTL_STATE_DIR)`,
    )
  }
  for (const f of [p.config, p.socket, p.log]) await mkdir(path.dirname(f), {recursive: true})
  await writeFile(p.config, birdConfig(plan, node))
  return p
}

/**
 * Rewrite a running BIRD's config for plan.backend and have it re-read it
 * (`birdc configure`): BGP sessions whose config is unchanged stay up; the
 * kernel protocol re-exports under its new filter. Starts BIRD when it is not running.
 */
async function reconfigureBirdNode(plan: LabPlan, node: LabNode): Promise<void> {
  const p = await writeBirdConfig(plan, node)
  const r = await execIn(node.netns, ['birdc', '-s', p.socket, 'configure'], {timeoutMs: BIRD_CONTROL_TIMEOUT_MS})
  if (r.code !== 0 || !/Reconfigur/.test(r.stdout)) {
    if (/Unable to connect|No such file|Connection refused/i.test(`${r.stdout}\n${r.stderr}`))
      return startBirdNode(plan, node)
    throw new NetctlError(
      `BIRD on ${node.name} did not take its new config: ${firstLine(r.stdout.replace(/^BIRD .* ready\.$/m, '')) || firstLine(r.stderr) || `exit ${r.code}`} (config: ${p.config})`,
    )
  }
}

/** Stop a node's BIRD (`birdc down`); its routes stay in the kernel (`persist`), as when calico/node stops. */
async function stopBirdNode(node: LabNode): Promise<void> {
  const p = birdPaths(node)
  const r = await execIn(node.netns, ['birdc', '-s', p.socket, 'down'], {timeoutMs: BIRD_CONTROL_TIMEOUT_MS})
  if (r.code !== 0 && !/Unable to connect|No such file|Connection refused/i.test(`${r.stdout}\n${r.stderr}`)) {
    throw new NetctlError(
      `BIRD on ${node.name} did not stop: ${firstLine(r.stdout) || firstLine(r.stderr) || `exit ${r.code}`}`,
    )
  }
  // gone when its socket no longer answers; one that lingers is left to teardown
  await pollUntil(
    async () => {
      const q = await execIn(node.netns, ['birdc', '-s', p.socket, 'show', 'status'], {
        timeoutMs: QUICK_CHECK_TIMEOUT_MS,
      })
      return q.code !== 0 || !/BIRD/.test(q.stdout) || /Unable to connect/.test(q.stdout) ? true : undefined
    },
    {timeoutMs: BIRD_QUERY_TIMEOUT_MS, intervalMs: 100},
  )
}

/** BIRD as `backend set` drives it node by node: the same daemon in every Calico mode. */
const BIRD: LabNodeDaemon = {name: 'bird', start: startBirdNode, stop: stopBirdNode, reconfigure: reconfigureBirdNode}

/** Every node's BIRD. */
async function startBird(plan: LabPlan): Promise<void> {
  await mapLimit(plan.nodes, 4, (node) => startBirdNode(plan, node))
}

/** `birdc show protocols` on one node, as session rows for the BGP protocols; never throws. */
async function nodeSessions(plan: LabPlan, node: LabNode): Promise<BgpSessionStatus[]> {
  const expected = birdPeers(plan, node)
  const byIP = new Map(plan.nodes.map((n) => [n.ip, n]))
  const r = await execIn(node.netns, ['birdc', '-s', birdPaths(node).socket, 'show', 'protocols'], {
    timeoutMs: BIRD_QUERY_TIMEOUT_MS,
  })
  // BIRD not answering: every session it should hold is down, saying why
  const notAnswering = (why: string): BgpSessionStatus[] =>
    expected.map((p) => ({
      node: node.name,
      peer: p.node.name,
      peerIP: p.node.ip,
      state: 'Down',
      info: `${p.protocol}: BIRD not answering (${why})`,
    }))
  if (r.code !== 0 || !/^Name\s+Proto/m.test(r.stdout)) {
    // birdc failed or printed no table
    const why = r.timedOut
      ? 'birdc timed out'
      : firstLine(r.stdout.replace(/^BIRD .* ready\.$/m, '')) || firstLine(r.stderr) || `birdc exit ${r.code}`
    return notAnswering(why)
  }
  let rows: BgpSession[]
  try {
    rows = parseBirdProtocols(r.stdout)
  } catch (error) {
    // output BIRD cut short or did not write: as good as not answering
    const why = error instanceof Error ? error.message : String(error)
    return notAnswering(why)
  }
  const seen = new Set(rows.map((row) => row.name))
  const sessions: BgpSessionStatus[] = rows.map((row) => {
    const ip = peerIPFromProtocol(row.name)
    const peer = ip ? byIP.get(ip) : undefined
    const {state, detail} = bgpSession(row)
    return {
      node: node.name,
      peer: peer?.name ?? row.name,
      ...(ip ? {peerIP: ip} : {}),
      state,
      info: detail ? `${row.name}: ${detail}` : row.name,
    }
  })
  for (const p of expected) {
    if (!seen.has(p.protocol))
      sessions.push({
        node: node.name,
        peer: p.node.name,
        peerIP: p.node.ip,
        state: 'Missing',
        info: `${p.protocol}: not configured in BIRD`,
      })
  }
  return sessions
}

async function allSessions(plan: LabPlan): Promise<BgpSessionStatus[]> {
  return (await mapLimit(plan.nodes, 8, (n) => nodeSessions(plan, n))).flat()
}

interface KernelRoute {
  dst: string
  type?: string
  gateway?: string
  dev?: string
  protocol?: string
}

/** The routes BIRD put in a node's kernel table. */
async function birdRoutes(node: LabNode): Promise<KernelRoute[] | undefined> {
  const r = await execIn(node.netns, ['ip', '-j', 'route', 'show', 'proto', 'bird'], {timeoutMs: BIRD_QUERY_TIMEOUT_MS})
  if (r.code !== 0) return undefined
  try {
    return JSON.parse(r.stdout || '[]') as KernelRoute[]
  } catch {
    return undefined
  }
}

interface DataplaneCheck {
  /** what is not there yet */
  missing: string[]
  /** routes to blocks across the router, as the kernel has them */
  acrossRouter: Array<{node: string; block: string; via?: string}>
}

/**
 * BGP-routed modes are complete when every session is Established and every
 * node's kernel holds its own block as a blackhole and each peer's block:
 * via the peer itself when it is L2-adjacent; across the router, whatever the
 * kernel resolved (that is reported, not waited for).
 */
async function checkDataplane(plan: LabPlan, programsRoutes: boolean): Promise<DataplaneCheck> {
  const missing: string[] = []
  const acrossRouter: DataplaneCheck['acrossRouter'] = []
  for (const s of await allSessions(plan)) {
    if (s.state !== 'Established')
      missing.push(`${s.node} -> ${s.peer} (${s.peerIP ?? '?'}) is ${s.state}${s.info ? ` [${s.info}]` : ''}`)
  }
  if (!programsRoutes) return {missing, acrossRouter}
  await mapLimit(plan.nodes, 8, async (node) => {
    const routes = await birdRoutes(node)
    if (!routes) {
      missing.push(`${node.name}: cannot read its routing table`)
      return
    }
    if (!routes.some((r) => r.dst === node.podCIDR && r.type === 'blackhole'))
      missing.push(`${node.name}: blackhole ${node.podCIDR} proto bird`)
    for (const peer of peersOf(plan, node)) {
      const route = routes.find((r) => r.dst === peer.podCIDR && r.type !== 'blackhole')
      if (l2Adjacent(node, peer)) {
        if (!route || route.gateway !== peer.ip || route.dev !== 'eth0')
          missing.push(`${node.name}: ${peer.podCIDR} via ${peer.ip} dev eth0 proto bird`)
      } else if (!route) {
        missing.push(`${node.name}: a route to ${peer.podCIDR} (learned from ${peer.name})`)
      } else {
        acrossRouter.push({node: node.name, block: peer.podCIDR, ...(route.gateway ? {via: route.gateway} : {})})
      }
    }
  })
  return {missing, acrossRouter}
}

function list(items: string[], max = 6): string {
  return `${items.slice(0, max).join('; ')}${items.length > max ? `; ... (${items.length - max} more)` : ''}`
}

async function waitForDataplane(plan: LabPlan, timeoutMs: number, programsRoutes: boolean): Promise<string[]> {
  let check: Awaited<ReturnType<typeof checkDataplane>> = {missing: [], acrossRouter: []}
  await pollUntil(
    async () => {
      check = await checkDataplane(plan, programsRoutes)
      return check.missing.length === 0 ? check : undefined
    },
    {timeoutMs, intervalMs: 500},
  )
  const warnings: string[] = []
  if (check.missing.length > 0) {
    warnings.push(
      `${plan.backend} dataplane incomplete after ${Math.round(timeoutMs / 1000)}s, still missing: ${list(check.missing)}`,
    )
  }
  if (check.acrossRouter.length > 0) {
    const eg = check.acrossRouter.slice(0, 3).map((r) => `${r.node}: ${r.block} via ${r.via ?? '?'}`)
    warnings.push(
      `${plan.backend}: ${check.acrossRouter.length} route(s) to blocks across the router resolve to the router itself (${eg.join(', ')}); ` +
        'the router does not speak BGP and has no route to pod blocks, so those packets are dropped there',
    )
  }
  return warnings
}

function crossRouterPairs(plan: LabPlan): string[] {
  const pairs: string[] = []
  for (const a of plan.nodes)
    for (const b of plan.nodes) if (a.name < b.name && !l2Adjacent(a, b)) pairs.push(`${a.name}-${b.name}`)
  return pairs
}

/** Node annotations calico/node writes (libcalico-go's Kubernetes node mapping). */
function calicoAnnotations(plan: LabPlan, node: LabNode): Record<string, string> {
  return {
    'projectcalico.org/IPv4Address': calicoIPv4Address(node),
    // written when calico/node runs with AS set (the lab's nodes do: AS=<plan.asNumber>)
    'projectcalico.org/ASNumber': String(plan.asNumber),
    ...(node.routeReflector ? {'projectcalico.org/RouteReflectorClusterID': RR_CLUSTER_ID} : {}),
    ...(isCalicoVxlan(plan.backend)
      ? {'projectcalico.org/IPv4VXLANTunnelAddr': node.tunnelIP, 'projectcalico.org/VXLANTunnelMACAddr': node.vtepMAC}
      : {}),
  }
}

/**
 * Calico pods reach their node through proxy ARP for 169.254.1.1, and Linux
 * answers a proxy ARP only for an address it has a route to: a Calico node
 * needs a default route (projectcalico/calico#3270). The flat underlay has no
 * router, so a node there gets the default route a LAN host has, via the
 * subnet's first address; on the routed topology it already has one.
 */
export function nodeDefaultRoute(s: NsScript, plan: LabPlan, node: LabNode): void {
  const subnet = plan.subnets.find((x) => x.cidr === node.subnet)
  if (subnet?.gateway) return
  s.ip('route', 'add', 'default', 'via', addToIPv4(node.subnet, 1), 'dev', 'eth0')
}

/** Calico without encapsulation: BIRD carries the blocks, the kernel routes them over the underlay. */
function bgpBackend(name: 'calico-bgp' | 'calico-rr'): LabBackend {
  return {
    name,
    family: 'calico',
    podMTU: (u) => u,
    nodeState(s, plan, node) {
      // pool routes are BIRD's: its static blackhole and what it learns, exported to the kernel
      nodeDefaultRoute(s, plan, node)
    },
    annotations: calicoAnnotations,
    start: startBird,
    daemon: BIRD,
    ready: (plan, timeoutMs) => waitForDataplane(plan, timeoutMs, true),
    sessions: allSessions,
    warnings(plan) {
      const pairs = crossRouterPairs(plan)
      if (pairs.length === 0) return []
      return [
        `${name} has no encapsulation: a pod packet to another node goes to that node's address as next hop, which needs the two nodes L2-adjacent; ` +
          `on the routed topology ${pairs.length} node pair(s) are across the router (${list(pairs)}) and the router does not peer with BIRD, ` +
          'so pods on those nodes cannot reach each other (Calico would need IPIP/VXLAN CrossSubnet, or the router as a BGP peer)',
      ]
    },
  }
}

export const calicoBgp = bgpBackend('calico-bgp')
export const calicoRr = bgpBackend('calico-rr')

/** Calico's VXLAN modes: the pool's vxlanMode is Always or CrossSubnet. */
export function isCalicoVxlan(backend: string): boolean {
  return backend === 'calico-vxlan' || backend === 'calico-vxlan-crosssubnet'
}

/**
 * What Felix programs for a VXLAN pool: vxlan.calico and, per peer, a
 * PERMANENT neighbour and a `self permanent` FDB entry, and a route — via the
 * peer's tunnel address onlink (Always, or CrossSubnet across subnets), or
 * straight via the peer node (CrossSubnet within a subnet); its own block as
 * a blackhole. BIRD still runs (calico_backend: bird) with the mesh up, but
 * keeps pool routes out of the kernel.
 */
function vxlanState(crossSubnet: boolean): LabBackend['nodeState'] {
  return (s, plan, node) => {
    nodeDefaultRoute(s, plan, node)
    const dev = CALICO_VXLAN.device
    addVxlanDevice(s, CALICO_VXLAN, plan, node, node.tunnelIP)
    s.ip('route', 'add', 'blackhole', node.podCIDR, 'proto', FELIX_RT_PROTO)
    for (const peer of peersOf(plan, node)) {
      s.ip('neigh', 'add', peer.tunnelIP, 'lladdr', peer.vtepMAC, 'dev', dev, 'nud', 'permanent')
      if (crossSubnet && l2Adjacent(node, peer))
        s.ip('route', 'add', peer.podCIDR, 'via', peer.ip, 'dev', 'eth0', 'proto', FELIX_RT_PROTO)
      else s.ip('route', 'add', peer.podCIDR, 'via', peer.tunnelIP, 'dev', dev, 'onlink', 'proto', FELIX_RT_PROTO)
    }
    addVxlanPeerFdb(s, CALICO_VXLAN, plan, node)
  }
}

/** Calico VXLAN, Always: every peer through vxlan.calico. */
export const calicoVxlan: LabBackend = {
  name: 'calico-vxlan',
  family: 'calico',
  podMTU: (u) => u - CALICO_VXLAN.overhead,
  nodeState: vxlanState(false),
  annotations: calicoAnnotations,
  start: startBird,
  daemon: BIRD,
  ready: (plan, timeoutMs) => waitForDataplane(plan, timeoutMs, false),
  sessions: allSessions,
}

/** Calico VXLAN, CrossSubnet: direct within a subnet, vxlan.calico across the router. */
export const calicoVxlanCrossSubnet: LabBackend = {
  ...calicoVxlan,
  name: 'calico-vxlan-crosssubnet',
  nodeState: vxlanState(true),
}
